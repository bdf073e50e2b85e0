/** PaymentService: decodes, calls the payment domain for the calling merchant (from the auth interceptor), encodes. */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { ValidationError, Violations } from "../errors.js";
import { checkLookupId, checkPageToken, checkPrintable } from "../input-text.js";
import type { PaymentService as PaymentDomain } from "../payments/payment-service.js";
import type { RefundService as RefundDomain } from "../refunds/refund-service.js";
import {
  ClosePaymentResponseSchema,
  CreatePaymentResponseSchema,
  GetPaymentResponseSchema,
  GetRefundResponseSchema,
  ListRefundsResponseSchema,
  RefundPaymentResponseSchema,
  ListPaymentsResponseSchema,
  type PaymentService,
  QueryPaymentResponseSchema,
} from "../../gen/payments/v1/payment_service_pb.js";
import { merchantOf, sessionOf } from "./auth.js";
import {
  createPaymentInputFromProto,
  lookupFromProto,
  paymentListFilterFromProto,
  paymentToProto,
  refundToProto,
} from "./mappers.js";

/** The PaymentService handlers of this module; the streams (event-rpc.ts) and webhook deliveries (webhook-rpc.ts) live apart. */
export type PaymentRpc = Omit<
  ServiceImpl<typeof PaymentService>,
  "watchPayment" | "streamEvents" | "listWebhookDeliveries" | "redeliverWebhook"
>;

export function createPaymentRpc(uow: UnitOfWork, payments: PaymentDomain, refunds: RefundDomain): PaymentRpc {
  return {
    async createPayment(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const idempotencyKey = ctx.requestHeader.get("idempotency-key") ?? undefined;
      if (idempotencyKey !== undefined) {
        const v = new Violations();
        checkPrintable(v, "idempotency-key", idempotencyKey);
        v.throwIfAny();
      }
      const view = await payments.createPayment(session, merchant, createPaymentInputFromProto(req), idempotencyKey);
      return create(CreatePaymentResponseSchema, { payment: paymentToProto(view) });
    },
    async getPayment(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const view = await payments.getPayment(session, merchant.id, lookupFromProto(req.lookup));
      return create(GetPaymentResponseSchema, { payment: paymentToProto(view) });
    },
    async queryPayment(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const view = await payments.queryPayment(session, merchant.id, lookupFromProto(req.lookup));
      return create(QueryPaymentResponseSchema, { payment: paymentToProto(view) });
    },
    async listPayments(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const v = new Violations();
      const filter = paymentListFilterFromProto(v, req);
      checkPageToken(v, "page_token", req.pageToken);
      v.throwIfAny();
      const page = await payments.listPayments(session, merchant.id, filter);
      return create(ListPaymentsResponseSchema, {
        payments: page.payments.map(paymentToProto),
        nextPageToken: page.nextPageToken,
      });
    },
    async closePayment(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const v = new Violations();
      checkLookupId(v, "payment_id", req.paymentId);
      v.throwIfAny();
      const view = await payments.closePayment(session, merchant.id, req.paymentId);
      return create(ClosePaymentResponseSchema, { payment: paymentToProto(view) });
    },
    async refundPayment(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const refund = await refunds.refundPayment(session, merchant.id, {
        paymentId: req.paymentId,
        merchantRefundNo: req.merchantRefundNo,
        amount: req.amount,
        reason: req.reason,
      });
      return create(RefundPaymentResponseSchema, { refund: refundToProto(refund) });
    },
    async getRefund(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      let lookup: { refundId: string } | { paymentId: string; merchantRefundNo: string };
      const v = new Violations();
      if (req.refundId !== "") {
        checkLookupId(v, "refund_id", req.refundId);
        lookup = { refundId: req.refundId };
      } else if (req.paymentId !== "" && req.merchantRefundNo !== "") {
        checkLookupId(v, "payment_id", req.paymentId);
        checkLookupId(v, "merchant_refund_no", req.merchantRefundNo);
        lookup = { paymentId: req.paymentId, merchantRefundNo: req.merchantRefundNo };
      } else {
        throw new ValidationError([
          { field: "refund_id", reason: "REQUIRED", description: "set refund_id, or payment_id with merchant_refund_no" },
        ]);
      }
      v.throwIfAny();
      return create(GetRefundResponseSchema, { refund: refundToProto(await refunds.getRefund(session, merchant.id, lookup)) });
    },
    async listRefunds(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const v = new Violations();
      if (req.paymentId !== "") checkLookupId(v, "payment_id", req.paymentId);
      checkPageToken(v, "page_token", req.pageToken);
      v.throwIfAny();
      const page = await refunds.listRefunds(session, merchant.id, {
        paymentId: req.paymentId || undefined,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return create(ListRefundsResponseSchema, { refunds: page.refunds.map(refundToProto), nextPageToken: page.nextPageToken });
    },
  };
}
