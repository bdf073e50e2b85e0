/**
 * The payment flow end to end on MySQL: real gRPC (grpc-js) and Connect clients against the
 * servers on free ports, Alipay spoken by the simulator over real HTTP, callbacks posted by the
 * simulator to the shim.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signNotifyParams } from "../../src/channels/alipay/alipay-signature.js";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import { Payment as PaymentEntity } from "../../src/payments/payment-entity.js";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant();
});
afterAll(() => t?.stop());

function orderNo(): string {
  return `ord-${Date.now()}-${++orderSeq}`;
}

function alipayPayment(overrides: Record<string, unknown> = {}) {
  return {
    merchantOrderNo: orderNo(),
    currency: "CNY",
    amount: 8888n,
    channel: Channel.ALIPAY,
    subject: "Oolong tea 250g",
    items: [{ sku: "TEA-250", name: "Oolong tea 250g", quantity: 2n, unitAmount: 4444n }],
    ...overrides,
  };
}

function getByGrpc(id: string) {
  return t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: id } } }, merchant.headers);
}

/** Posts a form body to the shim the way Alipay does, and returns the answer. */
async function postAlipayNotify(params: Record<string, string>) {
  const response = await fetch(`${t.app.httpUrl}/callbacks/alipay`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: new URLSearchParams(params).toString(),
  });
  return { status: response.status, body: await response.text() };
}

function forgedNotify(paymentNo: string, overrides: Record<string, string>) {
  const keys = testKeys().alipay;
  const params: Record<string, string> = {
    notify_time: "2026-11-22 10:00:00",
    notify_type: "trade_status_sync",
    notify_id: `forged-${Date.now()}-${Math.random()}`,
    app_id: keys.appId,
    charset: "utf-8",
    version: "1.0",
    sign_type: "RSA2",
    trade_no: "2026112222001400000000000001",
    out_trade_no: paymentNo,
    seller_id: keys.sellerId,
    trade_status: "TRADE_SUCCESS",
    total_amount: "88.88",
    receipt_amount: "88.88",
    buyer_pay_amount: "88.88",
    gmt_payment: "2026-11-22 10:00:00",
    ...overrides,
  };
  params.sign = signNotifyParams(params, keys.alipayPrivateKeyPem);
  return params;
}

describe("merchants and authentication", () => {
  it("needs the admin token for admin calls", async () => {
    const error = await grpcError(t.grpc.merchants.createMerchant({ name: "x" }, { authorization: "Bearer wrong-token" }));
    expect(error.code).toBe(GrpcStatus.UNAUTHENTICATED);
    const missing = await grpcError(t.grpc.merchants.createMerchant({ name: "x" }));
    expect(missing.code).toBe(GrpcStatus.UNAUTHENTICATED);
  });

  it("shows the API key once and stores only its hash", async () => {
    const created = await t.grpc.merchants.createMerchant({ name: "Hash Shop" }, t.adminHeaders);
    expect(created.apiKey).toMatch(/^sk_live_/);
    expect(created.webhookSecret).toMatch(/^whsec_/);
    const rows = await t.app.db.em().getConnection().execute("select * from merchant where id = ?", [created.merchant!.id]);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(created.apiKey);
    expect(dump).not.toContain(created.webhookSecret);
    const fetched = await t.connect.merchants.getMerchant({ merchantId: created.merchant!.id }, { headers: t.adminHeaders });
    expect(fetched.merchant?.apiKeyPrefix).toBe(created.apiKey.slice(0, 12));
  });

  it("stops accepting the old API key as soon as it is rotated", async () => {
    const m = await t.createMerchant("Rotating Shop");
    const rotated = await t.grpc.merchants.rotateApiKey({ merchantId: m.id }, t.adminHeaders);
    const old = await grpcError(t.grpc.payments.listPayments({}, m.headers));
    expect(old.code).toBe(GrpcStatus.UNAUTHENTICATED);
    const page = await t.grpc.payments.listPayments({}, { authorization: `Bearer ${rotated.apiKey}` });
    expect(page.payments).toEqual([]);
  });

  it("answers UNAUTHENTICATED to merchant calls without a valid key", async () => {
    const error = await grpcError(t.grpc.payments.createPayment(alipayPayment(), { authorization: "Bearer sk_live_nope" }));
    expect(error.code).toBe(GrpcStatus.UNAUTHENTICATED);
  });
});

describe("a payment through Alipay", () => {
  it("goes from creation to success: grpc-js create, simulator pays, notify through the shim, Connect read", async () => {
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    const payment = created.payment!;
    expect(payment.status).toBe(PaymentStatus.PENDING);
    expect(payment.action?.action.case).toBe("qrCodeUrl");
    expect(payment.action?.action.value).toMatch(/^https:\/\/qr\.alipay\.com\//);
    expect(payment.amount).toBe(8888n);
    expect(payment.items).toHaveLength(1);

    t.simulator.pay("alipay", payment.paymentNo);
    const read = await eventually(
      () => t.connect.payments.getPayment({ lookup: { key: { case: "paymentId", value: payment.id } } }, { headers: merchant.headers }),
      (r) => r.payment?.status === PaymentStatus.SUCCEEDED,
    );
    expect(read.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    expect(read.payment?.channelTradeNo).not.toBe("");
    expect(read.payment?.paidAt).toBeDefined();
    expect(read.payment?.action).toBeUndefined();

    const trade = t.simulator.getTrade("alipay", payment.paymentNo)!;
    expect(JSON.stringify(trade)).toContain("success");
  });

  it("reads by merchant order number over both transports", async () => {
    const request = alipayPayment();
    await t.connect.payments.createPayment(request, { headers: merchant.headers });
    const byGrpc = await t.grpc.payments.getPayment(
      { lookup: { key: { case: "merchantOrderNo", value: request.merchantOrderNo } } },
      merchant.headers,
    );
    expect(byGrpc.payment?.merchantOrderNo).toBe(request.merchantOrderNo);
    expect(byGrpc.payment?.amount).toBe(8888n);
  });

  it("ListPayments filters by status and channel and pages with a cursor", async () => {
    const m = await t.createMerchant("Listing Shop");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await t.grpc.payments.createPayment(alipayPayment(), m.headers);
      ids.push(created.payment!.id);
    }
    await t.grpc.payments.closePayment({ paymentId: ids[0]! }, m.headers);

    const first = await t.grpc.payments.listPayments({ pageSize: 2 }, m.headers);
    expect(first.payments.map((p) => p.id)).toEqual([ids[4], ids[3]]);
    const second = await t.grpc.payments.listPayments({ pageSize: 2, pageToken: first.nextPageToken }, m.headers);
    expect(second.payments.map((p) => p.id)).toEqual([ids[2], ids[1]]);
    const third = await t.grpc.payments.listPayments({ pageSize: 2, pageToken: second.nextPageToken }, m.headers);
    expect(third.payments.map((p) => p.id)).toEqual([ids[0]]);
    expect(third.nextPageToken).toBe("");

    const closed = await t.grpc.payments.listPayments({ status: PaymentStatus.CLOSED }, m.headers);
    expect(closed.payments.map((p) => p.id)).toEqual([ids[0]]);
    const card = await t.grpc.payments.listPayments({ channel: Channel.CARD }, m.headers);
    expect(card.payments).toEqual([]);
    const future = await t.grpc.payments.listPayments(
      { createdAfter: { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600), nanos: 0 } },
      m.headers,
    );
    expect(future.payments).toEqual([]);

    const mixed = await grpcError(
      t.grpc.payments.listPayments({ pageToken: first.nextPageToken, status: PaymentStatus.PENDING }, m.headers),
    );
    expect(mixed.code).toBe(GrpcStatus.INVALID_ARGUMENT);
  });
});

describe("idempotency", () => {
  it("returns the same payment for the same merchant_order_no and request", async () => {
    const request = alipayPayment();
    const first = await t.grpc.payments.createPayment(request, merchant.headers);
    const second = await t.grpc.payments.createPayment(request, merchant.headers);
    expect(second.payment?.id).toBe(first.payment?.id);
  });

  it("refuses the same merchant_order_no with a different request", async () => {
    const request = alipayPayment();
    await t.grpc.payments.createPayment(request, merchant.headers);
    const error = await grpcError(t.grpc.payments.createPayment({ ...request, amount: 100n, items: [] }, merchant.headers));
    expect(error.code).toBe(GrpcStatus.ALREADY_EXISTS);
    expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("MERCHANT_ORDER_NO_REUSED");
  });

  it("answers a repeated idempotency-key with the original payment, and a different body with IDEMPOTENCY_KEY_REUSED", async () => {
    const key = `key-${orderNo()}`;
    const request = alipayPayment();
    const headers = { ...merchant.headers, "idempotency-key": key };
    const first = await t.grpc.payments.createPayment(request, headers);
    const again = await t.connect.payments.createPayment(request, { headers });
    expect(again.payment?.id).toBe(first.payment?.id);

    const error = await grpcError(t.grpc.payments.createPayment({ ...request, merchantOrderNo: orderNo() }, headers));
    expect(error.code).toBe(GrpcStatus.ALREADY_EXISTS);
    expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("IDEMPOTENCY_KEY_REUSED");
    const viaConnect = await t.connect.payments
      .createPayment({ ...request, amount: 1n, items: [] }, { headers })
      .catch((e: unknown) => ConnectError.from(e));
    expect(viaConnect).toBeInstanceOf(ConnectError);
    expect((viaConnect as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason).toBe("IDEMPOTENCY_KEY_REUSED");
  });

  it("creates one payment when the same request races ten times", async () => {
    const request = alipayPayment();
    const headers = { ...merchant.headers, "idempotency-key": `race-${request.merchantOrderNo}` };
    const results = await Promise.all(Array.from({ length: 10 }, () => t.grpc.payments.createPayment(request, headers)));
    expect(new Set(results.map((r) => r.payment!.id)).size).toBe(1);
    const rows = await t.app.db.em().count(PaymentEntity, { merchantOrderNo: request.merchantOrderNo });
    expect(rows).toBe(1);
  });
});

describe("another merchant's payments", () => {
  it("are NOT_FOUND, never PERMISSION_DENIED, for every read and write", async () => {
    const other = await t.createMerchant("Other Shop");
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    const id = created.payment!.id;
    const lookup = { lookup: { key: { case: "paymentId" as const, value: id } } };
    for (const call of [
      () => t.grpc.payments.getPayment(lookup, other.headers),
      () => t.grpc.payments.queryPayment(lookup, other.headers),
      () => t.grpc.payments.closePayment({ paymentId: id }, other.headers),
    ]) {
      const error = await grpcError(call());
      expect(error.code).toBe(GrpcStatus.NOT_FOUND);
      expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("PAYMENT_NOT_FOUND");
    }
    const byOrder = await grpcError(
      t.grpc.payments.getPayment({ lookup: { key: { case: "merchantOrderNo", value: created.payment!.merchantOrderNo } } }, other.headers),
    );
    expect(byOrder.code).toBe(GrpcStatus.NOT_FOUND);
    const listed = await t.grpc.payments.listPayments({}, other.headers);
    expect(listed.payments.map((p) => p.id)).not.toContain(id);
  });
});

describe("validation", () => {
  it("answers INVALID_ARGUMENT with a field violation per bad field, over gRPC", async () => {
    const error = await grpcError(
      t.grpc.payments.createPayment(
        { merchantOrderNo: "", currency: "XYZ", amount: -5n, channel: Channel.UNSPECIFIED, subject: "" },
        merchant.headers,
      ),
    );
    expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    const details = readGrpcErrorDetails(error);
    expect(details.errorInfo?.reason).toBe("INVALID_REQUEST");
    expect(details.badRequest?.fieldViolations.map((v) => v.field).sort()).toEqual(
      ["amount", "channel", "currency", "merchant_order_no", "subject"].sort(),
    );
  });

  it("answers AMOUNT_MISMATCH over Connect when items do not add up, and stores nothing", async () => {
    const request = alipayPayment({ amount: 9999n });
    const error = await t.connect.payments
      .createPayment(request, { headers: merchant.headers })
      .catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    const connectError = error as ConnectError;
    expect(connectError.code).toBe(Code.InvalidArgument);
    expect(connectError.findDetails(ErrorInfoSchema)[0]?.reason).toBe("AMOUNT_MISMATCH");
    expect(connectError.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("amount");
    expect(await t.app.db.em().count(PaymentEntity, { merchantOrderNo: request.merchantOrderNo })).toBe(0);
  });

  it("refuses a card number smuggled into metadata", async () => {
    const error = await grpcError(
      t.grpc.payments.createPayment(alipayPayment({ metadata: { note: "4111 1111 1111 1111" } }), merchant.headers),
    );
    expect(readGrpcErrorDetails(error).badRequest?.fieldViolations[0]?.reason).toBe("CARD_NUMBER_NOT_ALLOWED");
  });

  it("refuses a Connect request over the size limit without reading it into the service", async () => {
    const response = await fetch(`${t.app.httpUrl}/payments.v1.PaymentService/CreatePayment`, {
      method: "POST",
      headers: { "content-type": "application/json", ...merchant.headers },
      body: JSON.stringify({ merchantOrderNo: orderNo(), subject: "x".repeat(t.config.maxRequestBytes + 1) }),
    });
    const body = (await response.json()) as { code?: string };
    expect(body.code).toBe("resource_exhausted");
  });

  it("speaks plain Connect JSON to curl-like clients", async () => {
    const response = await fetch(`${t.app.httpUrl}/payments.v1.PaymentService/CreatePayment`, {
      method: "POST",
      headers: { "content-type": "application/json", ...merchant.headers },
      body: JSON.stringify({ merchantOrderNo: orderNo(), currency: "CNY", amount: "100", channel: "CHANNEL_ALIPAY", subject: "Tea" }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { payment: { status: string; amount: string } };
    expect(body.payment.status).toBe("PAYMENT_STATUS_PENDING");
    expect(body.payment.amount).toBe("100");
  });
});

describe("Alipay notifies", () => {
  it("rejects a correctly signed notify for another app id, changing nothing", async () => {
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    const answer = await postAlipayNotify(forgedNotify(created.payment!.paymentNo, { app_id: "2099000000000000" }));
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.body).not.toBe("success");
    expect((await getByGrpc(created.payment!.id)).payment?.status).toBe(PaymentStatus.PENDING);
  });

  it("answers an unknown order with non-success so Alipay re-sends, and a valid one with exactly `success`", async () => {
    const unknown = await postAlipayNotify(forgedNotify("P20261122000000UNKNOWNUNKNOWN00", {}));
    expect(unknown.body).not.toBe("success");
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    const valid = await postAlipayNotify(forgedNotify(created.payment!.paymentNo, {}));
    expect(valid).toEqual({ status: 200, body: "success" });
    expect((await getByGrpc(created.payment!.id)).payment?.status).toBe(PaymentStatus.SUCCEEDED);
  });

  it("keeps every callback with its raw bytes and verdict", async () => {
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    const params = forgedNotify(created.payment!.paymentNo, {});
    await postAlipayNotify(params);
    const logs = await t.app.db.em().find(CallbackLog, { paymentId: created.payment!.id });
    expect(logs).toHaveLength(1);
    expect(Buffer.from(logs[0]!.rawBody).toString()).toBe(new URLSearchParams(params).toString());
    expect(logs[0]!.effect).toBe("PENDING->SUCCEEDED");
  });
});

