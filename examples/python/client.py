#!/usr/bin/env python3
"""A merchant's Python client of the payments service, over gRPC with the stubs generate.sh makes.

Creates a payment, reads it back, then sends an invalid request and decodes the
google.rpc.BadRequest the service attaches to the error (in the `grpc-status-details-bin`
trailer, as a google.rpc.Status). Prints one JSON object per step.

    bash examples/python/generate.sh
    PAYMENTS_GRPC_TARGET=127.0.0.1:50051 PAYMENTS_API_KEY=sk_live_... python3 examples/python/client.py
"""
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from payments.v1 import payment_pb2, payment_service_pb2, payment_service_pb2_grpc  # noqa: E402


def status_details(error: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status the service put in the error's trailers (empty when there is none)."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    return status_pb2.Status()


def main() -> None:
    target = os.environ.get("PAYMENTS_GRPC_TARGET", "127.0.0.1:50051")
    api_key = os.environ["PAYMENTS_API_KEY"]
    auth = (("authorization", f"Bearer {api_key}"),)
    with grpc.insecure_channel(target) as channel:
        payments = payment_service_pb2_grpc.PaymentServiceStub(channel)

        order_no = f"py-{uuid.uuid4().hex[:12]}"
        created = payments.CreatePayment(
            payment_service_pb2.CreatePaymentRequest(
                merchant_order_no=order_no,
                currency="CNY",
                amount=1999,
                channel=payment_pb2.CHANNEL_ALIPAY,
                subject="Python client order",
                items=[payment_pb2.PaymentItem(sku="SKU-1", name="Tea", quantity=1, unit_amount=1999)],
            ),
            metadata=auth + (("idempotency-key", order_no),),
            timeout=10,
        ).payment
        print(json.dumps({"step": "created", "id": created.id, "status": payment_pb2.PaymentStatus.Name(created.status),
                          "qr_code_url": created.action.qr_code_url}))

        read = payments.GetPayment(
            payment_service_pb2.GetPaymentRequest(lookup=payment_service_pb2.PaymentLookup(payment_id=created.id)),
            metadata=auth,
            timeout=10,
        ).payment
        print(json.dumps({"step": "read", "id": read.id, "merchant_order_no": read.merchant_order_no,
                          "amount": read.amount, "currency": read.currency}))

        try:
            payments.CreatePayment(
                payment_service_pb2.CreatePaymentRequest(merchant_order_no="", currency="XXX", amount=0,
                                                         channel=payment_pb2.CHANNEL_ALIPAY, subject="x"),
                metadata=auth,
                timeout=10,
            )
            raise SystemExit("an invalid CreatePayment was accepted")
        except grpc.RpcError as error:
            status = status_details(error)
            violations = []
            reason = ""
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    violations = [{"field": v.field, "description": v.description} for v in bad_request.field_violations]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason = info.reason
            print(json.dumps({"step": "invalid", "code": error.code().name, "reason": reason, "violations": violations}))


if __name__ == "__main__":
    main()
