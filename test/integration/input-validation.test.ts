/**
 * Input the schema allows but the service must not take: control characters in text and ids
 * (a U+0000 used to end as INTERNAL on the embedded database), and enum numbers this server does
 * not know (a ListPayments status of 99 used to be ignored, listing everything). Every case answers
 * INVALID_ARGUMENT naming the field, over gRPC and Connect, on MySQL and on the embedded database.
 */
import { ConnectError, Code as ConnectCode } from "@connectrpc/connect";
import { type ServiceError, status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { grpcError } from "../support/waiting.js";

/** The field violations of a failed gRPC call, as "field REASON". */
function grpcViolations(error: ServiceError): string[] {
  expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
  const details = readGrpcErrorDetails(error);
  expect(details.errorInfo?.reason).toBe("INVALID_REQUEST");
  return (details.badRequest?.fieldViolations ?? []).map((v) => `${v.field} ${v.reason}`);
}

async function connectViolations(call: Promise<unknown>): Promise<string[]> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    const connectError = error as ConnectError;
    expect(connectError.code).toBe(ConnectCode.InvalidArgument);
    expect(connectError.findDetails(ErrorInfoSchema)[0]?.reason).toBe("INVALID_REQUEST");
    return (connectError.findDetails(BadRequestSchema)[0]?.fieldViolations ?? []).map((v) => `${v.field} ${v.reason}`);
  }
  throw new Error("expected the call to fail");
}

const NUL = "\u0000";
let orderSeq = 0;

describe.each(["mysql", "sqlite"] as const)("on %s", (database) => {
  let t: TestApp;
  let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
  let paymentId: string;

  beforeAll(async () => {
    t = await startTestApp({ database });
    merchant = await t.createMerchant("Validation Shop");
    const created = await t.grpc.payments.createPayment(payment(), merchant.headers);
    paymentId = created.payment!.id;
  });
  afterAll(() => t?.stop());

  function payment(overrides: Record<string, unknown> = {}) {
    return {
      merchantOrderNo: `validation-${database}-${Date.now()}-${++orderSeq}`,
      currency: "CNY",
      amount: 100n,
      channel: Channel.ALIPAY,
      subject: "Tea",
      ...overrides,
    };
  }

  const byId = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

  describe("control characters", () => {
    it("U+0000 in the subject: INVALID_ARGUMENT on subject over gRPC and Connect", async () => {
      const error = await grpcError(t.grpc.payments.createPayment(payment({ subject: `Tea${NUL}` }), merchant.headers));
      expect(grpcViolations(error)).toEqual(["subject CONTROL_CHARACTERS"]);
      expect(await connectViolations(t.connect.payments.createPayment(payment({ subject: `Tea${NUL}` }), { headers: merchant.headers }))).toEqual([
        "subject CONTROL_CHARACTERS",
      ]);
    });

    it("U+0000 in a payment id: INVALID_ARGUMENT on the id, for every lookup", async () => {
      const id = `${paymentId.slice(0, 10)}${NUL}${paymentId.slice(11)}`;
      expect(grpcViolations(await grpcError(t.grpc.payments.getPayment(byId(id), merchant.headers)))).toEqual([
        "lookup.payment_id CONTROL_CHARACTERS",
      ]);
      expect(await connectViolations(t.connect.payments.getPayment(byId(id), { headers: merchant.headers }))).toEqual([
        "lookup.payment_id CONTROL_CHARACTERS",
      ]);
      expect(grpcViolations(await grpcError(t.grpc.payments.queryPayment(byId(id), merchant.headers)))).toEqual([
        "lookup.payment_id CONTROL_CHARACTERS",
      ]);
      expect(grpcViolations(await grpcError(t.grpc.payments.closePayment({ paymentId: id }, merchant.headers)))).toEqual([
        "payment_id CONTROL_CHARACTERS",
      ]);
      expect(
        grpcViolations(
          await grpcError(t.grpc.payments.refundPayment({ paymentId: id, merchantRefundNo: "r-1", amount: 1n }, merchant.headers)),
        ),
      ).toEqual(["payment_id CONTROL_CHARACTERS"]);
      expect(grpcViolations(await grpcError(t.grpc.payments.listRefunds({ paymentId: id }, merchant.headers)))).toEqual([
        "payment_id CONTROL_CHARACTERS",
      ]);
      expect(grpcViolations(await grpcError(t.grpc.payments.getRefund({ refundId: id }, merchant.headers)))).toEqual([
        "refund_id CONTROL_CHARACTERS",
      ]);
      const lookupByOrderNo = { lookup: { key: { case: "merchantOrderNo" as const, value: `order${NUL}` } } };
      expect(grpcViolations(await grpcError(t.grpc.payments.getPayment(lookupByOrderNo, merchant.headers)))).toEqual([
        "lookup.merchant_order_no CONTROL_CHARACTERS",
      ]);
    });

    it("control characters in items, metadata and the order number of a create", async () => {
      const error = await grpcError(
        t.grpc.payments.createPayment(
          payment({
            merchantOrderNo: `order${NUL}`,
            items: [{ sku: `sku\n1`, name: `Tea\u001b[31m`, quantity: 1n, unitAmount: 100n }],
            metadata: { note: `a\u007fb`, [`k\u0085`]: "v" },
          }),
          merchant.headers,
        ),
      );
      expect(grpcViolations(error).sort()).toEqual(
        [
          "merchant_order_no CONTROL_CHARACTERS",
          "items[0].sku CONTROL_CHARACTERS",
          "items[0].name CONTROL_CHARACTERS",
          "metadata.note CONTROL_CHARACTERS",
          "metadata.k\ufffd CONTROL_CHARACTERS",
        ].sort(),
      );
    });

    it("a lone surrogate sent in Connect JSON: INVALID_ARGUMENT naming subject (protobuf-es refuses it while decoding)", async () => {
      const response = await fetch(`${t.app.httpUrl}/payments.v1.PaymentService/CreatePayment`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: merchant.headers.authorization! },
        body: `{"merchantOrderNo":"lone-${database}-${Date.now()}","currency":"CNY","amount":"100","channel":"CHANNEL_ALIPAY","subject":"Tea \\ud800"}`,
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { code: string; message: string };
      expect(body.code).toBe("invalid_argument");
      expect(body.message).toMatch(/subject/);
    });

    it("control characters in a refund's reason and number", async () => {
      const error = await grpcError(
        t.grpc.payments.refundPayment({ paymentId, merchantRefundNo: `r${NUL}`, amount: 1n, reason: `broken${NUL}` }, merchant.headers),
      );
      expect(grpcViolations(error).sort()).toEqual(["merchant_refund_no CONTROL_CHARACTERS", "reason CONTROL_CHARACTERS"]);
    });

    it("control characters in a merchant's name and a merchant id", async () => {
      const named = await grpcError(t.grpc.merchants.createMerchant({ name: `Shop${NUL}` }, t.adminHeaders));
      expect(grpcViolations(named)).toEqual(["name CONTROL_CHARACTERS"]);
      const byMerchantId = await grpcError(t.grpc.merchants.getMerchant({ merchantId: `m${NUL}` }, t.adminHeaders));
      expect(grpcViolations(byMerchantId)).toEqual(["merchant_id CONTROL_CHARACTERS"]);
      const rotated = await grpcError(t.grpc.merchants.rotateApiKey({ merchantId: `m${NUL}` }, t.adminHeaders));
      expect(grpcViolations(rotated)).toEqual(["merchant_id CONTROL_CHARACTERS"]);
    });

    it("control characters in a discrepancy id and resolution", async () => {
      const error = await grpcError(
        t.grpc.settlement.resolveDiscrepancy({ discrepancyId: `d${NUL}`, resolution: `refunded${NUL}`, resolvedBy: "ops" }, t.adminHeaders),
      );
      expect(grpcViolations(error).sort()).toEqual(["discrepancy_id CONTROL_CHARACTERS", "resolution CONTROL_CHARACTERS"]);
    });

    it("an id that no object can have (too long, other characters) is INVALID_ARGUMENT without a database read", async () => {
      const long = "A".repeat(100_000);
      expect(grpcViolations(await grpcError(t.grpc.payments.getPayment(byId(long), merchant.headers)))).toEqual([
        "lookup.payment_id INVALID_FORMAT",
      ]);
      expect(grpcViolations(await grpcError(t.grpc.payments.closePayment({ paymentId: "a b" }, merchant.headers)))).toEqual([
        "payment_id INVALID_FORMAT",
      ]);
      // A well-formed id that does not exist is still NOT_FOUND.
      const missing = await grpcError(t.grpc.payments.getPayment(byId("01ARZ3NDEKTSV4RRFFQ69G5FAV"), merchant.headers));
      expect(missing.code).toBe(GrpcStatus.NOT_FOUND);
    });

    it("a page token with control characters or of megabyte size is INVALID_ARGUMENT", async () => {
      expect(grpcViolations(await grpcError(t.grpc.payments.listPayments({ pageToken: `abc${NUL}` }, merchant.headers)))).toEqual([
        "page_token CONTROL_CHARACTERS",
      ]);
      expect(
        grpcViolations(await grpcError(t.grpc.payments.listPayments({ pageToken: "A".repeat(500_000) }, merchant.headers))),
      ).toEqual(["page_token INVALID_PAGE_TOKEN"]);
    });
  });

  describe("enum numbers this server does not know", () => {
    it("ListPayments with status 99: INVALID_ARGUMENT on status, over gRPC and Connect (it used to list everything)", async () => {
      const status = 99 as PaymentStatus;
      expect(grpcViolations(await grpcError(t.grpc.payments.listPayments({ status }, merchant.headers)))).toEqual([
        "status UNKNOWN_ENUM_VALUE",
      ]);
      expect(await connectViolations(t.connect.payments.listPayments({ status }, { headers: merchant.headers }))).toEqual([
        "status UNKNOWN_ENUM_VALUE",
      ]);
      // A known status still filters.
      const pending = await t.grpc.payments.listPayments({ status: PaymentStatus.SUCCEEDED }, merchant.headers);
      expect(pending.payments).toEqual([]);
    });

    it("ListPayments with channel 99: INVALID_ARGUMENT on channel", async () => {
      const channel = 99 as Channel;
      expect(grpcViolations(await grpcError(t.grpc.payments.listPayments({ channel }, merchant.headers)))).toEqual([
        "channel UNKNOWN_ENUM_VALUE",
      ]);
      expect(await connectViolations(t.connect.payments.listPayments({ channel }, { headers: merchant.headers }))).toEqual([
        "channel UNKNOWN_ENUM_VALUE",
      ]);
    });

    it("ListPayments with a timestamp outside the Timestamp range: INVALID_ARGUMENT", async () => {
      const error = await grpcError(
        t.grpc.payments.listPayments({ createdAfter: { seconds: 10n ** 15n }, createdBefore: { seconds: 0n, nanos: -1 } }, merchant.headers),
      );
      expect(grpcViolations(error)).toEqual(["created_after OUT_OF_RANGE", "created_before OUT_OF_RANGE"]);
    });

    it("CreatePayment with channel 99: INVALID_ARGUMENT on channel", async () => {
      const error = await grpcError(t.grpc.payments.createPayment(payment({ channel: 99 }), merchant.headers));
      expect(grpcViolations(error)).toEqual(["channel UNKNOWN_ENUM_VALUE"]);
    });

    it("SetFeeRule with channel 99 or refund_fee_policy 99: INVALID_ARGUMENT on each", async () => {
      const rule = { merchantId: merchant.id, channel: 99 as Channel, currency: "CNY", rateBps: 60, refundFeePolicy: 99 };
      expect(grpcViolations(await grpcError(t.grpc.merchants.setFeeRule(rule, t.adminHeaders)))).toEqual([
        "channel UNKNOWN_ENUM_VALUE",
        "refund_fee_policy UNKNOWN_ENUM_VALUE",
      ]);
      expect(await connectViolations(t.connect.merchants.setFeeRule(rule, { headers: t.adminHeaders }))).toEqual([
        "channel UNKNOWN_ENUM_VALUE",
        "refund_fee_policy UNKNOWN_ENUM_VALUE",
      ]);
    });
  });
});
