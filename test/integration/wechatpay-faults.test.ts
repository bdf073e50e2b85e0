/**
 * WeChat Pay under faults, through the whole app on MySQL: an API that fails, hangs or answers
 * unsigned; callbacks duplicated, late, out of order, early, forged or corrupted. Each test
 * proves what the service did with it: nothing wrong applied, everything right applied once.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { FilterQuery } from "@mikro-orm/core";
import { CallbackLog, type CallbackLogRow } from "../../src/callbacks/callback-entities.js";
import { ChannelRejectedError } from "../../src/channels/channel.js";
import { buildAuthorization, signWechatResponse } from "../../src/channels/wechatpay/wechatpay-signature.js";
import { createWechatPayChannel } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { Payment as PaymentEntity } from "../../src/payments/payment-entity.js";
import { WECHATPAY_OPERATIONS } from "../../src/simulator/wechatpay-simulator.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";
import { postWechatCallback, transactionResource, wechatCallback, wechatPayment } from "../support/wechatpay.js";

const CHANNEL_TIMEOUT_MS = 400;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;

beforeAll(async () => {
  t = await startTestApp({ channelTimeoutMs: CHANNEL_TIMEOUT_MS });
  merchant = await t.createMerchant("WeChat Fault Shop");
});
afterEach(() => t.simulator.clearFaults());
afterAll(() => t?.stop());

function lookup(id: string) {
  return { lookup: { key: { case: "paymentId" as const, value: id } } };
}

async function statusOf(id: string) {
  return (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment?.status;
}

async function create(overrides: Record<string, unknown> = {}) {
  return (await t.grpc.payments.createPayment(wechatPayment(overrides), merchant.headers)).payment!;
}

function logCount(where: FilterQuery<CallbackLogRow>): Promise<number> {
  return t.app.db.em().count(CallbackLog, where);
}

function succeededEvents(paymentId: string): Promise<number> {
  return t.app.db.em().count(OutboxEvent, { aggregateId: paymentId, eventType: "payment.succeeded" });
}

async function journalEntries(paymentId: string): Promise<number> {
  const rows = await t.app.db.em().getConnection().execute("select count(*) as n from journal_entry where payment_id = ?", [paymentId]);
  return Number(rows[0]?.n);
}

describe("API faults", () => {
  it("apiError: a 503 on the Native order leaves the payment pending; the merchant's retry opens it", async () => {
    t.simulator.setFaults({ channel: "wechatpay", faults: { apiError: { method: WECHATPAY_OPERATIONS.native, status: 503, times: 1 } } });
    const request = wechatPayment();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("CHANNEL_UNAVAILABLE");
    const stored = await t.app.db
      .em()
      .findOneOrFail(PaymentEntity, { merchantOrderNo: request.merchantOrderNo }, { disableIdentityMap: true });
    expect(stored).toMatchObject({ status: "PENDING", actionKind: null });
    expect(t.simulator.getTrade("wechatpay", stored.paymentNo)).toBeUndefined();

    const retried = await t.grpc.payments.createPayment(request, merchant.headers);
    expect(retried.payment?.id).toBe(stored.id);
    expect(retried.payment?.action?.action.value).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
  });

  it("apiTimeout with apply: the order was placed although the answer was lost; the retry gets the same code_url", async () => {
    t.simulator.setFaults({ channel: "wechatpay", faults: { apiTimeout: { method: WECHATPAY_OPERATIONS.native, times: 1, apply: true } } });
    const request = wechatPayment();
    const started = Date.now();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(CHANNEL_TIMEOUT_MS * 4);
    const stored = await t.app.db
      .em()
      .findOneOrFail(PaymentEntity, { merchantOrderNo: request.merchantOrderNo }, { disableIdentityMap: true });
    const atWechat = t.simulator.getTrade("wechatpay", stored.paymentNo);
    expect(atWechat?.channelState).toBe("NOTPAY");

    const retried = await t.connect.payments.createPayment(request, { headers: merchant.headers });
    expect(retried.payment?.action?.action.value).toBe(atWechat?.attributes.code_url);
    expect(t.simulator.listTrades("wechatpay").filter((trade) => trade.outTradeNo === stored.paymentNo)).toHaveLength(1);
  });

  it("apiTimeout on the query: QueryPayment answers UNAVAILABLE and changes nothing", async () => {
    const payment = await create();
    t.simulator.setFaults({
      channel: "wechatpay",
      outTradeNo: payment.paymentNo,
      faults: { dropNotifies: true, apiTimeout: { method: WECHATPAY_OPERATIONS.query } },
    });
    t.simulator.pay("wechatpay", payment.paymentNo);
    const error = await t.connect.payments
      .queryPayment(lookup(payment.id), { headers: merchant.headers })
      .catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason).toBe("CHANNEL_UNAVAILABLE");
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
  });

  it("badResponseSignature: a SUCCESS that WeChat did not sign is never applied", async () => {
    const payment = await create();
    t.simulator.setFaults({
      channel: "wechatpay",
      outTradeNo: payment.paymentNo,
      faults: { dropNotifies: true, badResponseSignature: true },
    });
    t.simulator.pay("wechatpay", payment.paymentNo);
    const error = await grpcError(t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers));
    expect([GrpcStatus.FAILED_PRECONDITION, GrpcStatus.UNAVAILABLE]).toContain(error.code);
    expect(error.details).toMatch(/signature/);
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);

    t.simulator.clearFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo });
    expect((await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)).payment?.status).toBe(PaymentStatus.SUCCEEDED);
  });

  it("the sweeper leaves a payment pending and reschedules it while WeChat answers 5xx", async () => {
    const payment = await create();
    const past = new Date(Date.now() - 1000);
    await t.app.db.em().nativeUpdate(PaymentEntity, { id: payment.id }, { expiresAt: past, nextQueryAt: past });
    t.simulator.setFaults({ channel: "wechatpay", faults: { apiError: { status: 500 } } });
    try {
      await t.app.sweeper.runOnce();
    } finally {
      t.simulator.clearFaults({ channel: "wechatpay" });
    }
    const row = await t.app.db.em().findOneOrFail(PaymentEntity, { id: payment.id }, { disableIdentityMap: true });
    expect(row.status).toBe("PENDING");
    expect(row.queryAttempts).toBe(1);
    expect(row.nextQueryAt!.getTime()).toBeGreaterThan(Date.now());
    expect(t.simulator.getTrade("wechatpay", payment.paymentNo)?.channelState).toBe("NOTPAY");
  });

  it("WeChat refuses a request signed with another merchant key (401 SIGN_ERROR) or not signed at all", async () => {
    const keys = testKeys().wechatpay;
    const config = { ...t.config.wechatpay!, timeoutMs: 2_000 };
    const impostor = createWechatPayChannel({ ...config, mchPrivateKeyPem: keys.platformPrivateKeyPem });
    const refused = await impostor
      .queryPayment({ paymentNo: "P-unknown-000001", amountMinor: 1n, currency: "CNY" })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ChannelRejectedError);
    expect(refused).toMatchObject({ code: "SIGN_ERROR" });

    const path = `/wechatpay/v3/pay/transactions/out-trade-no/P-unknown-000001?mchid=${keys.mchId}`;
    const unsigned = await fetch(`${t.simulator.url}${path}`);
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ code: "SIGN_ERROR" });
    expect(unsigned.headers.get("wechatpay-signature")).toBeTruthy();

    // The signature covers the full request target: signing the path without the query does not pass.
    const partial = buildAuthorization({
      mchId: keys.mchId,
      serialNo: keys.mchSerialNo,
      privateKey: keys.mchPrivateKeyPem,
      method: "GET",
      pathWithQuery: path.split("?")[0]!,
      body: "",
    });
    expect((await fetch(`${t.simulator.url}${path}`, { headers: { authorization: partial } })).status).toBe(401);
    const whole = buildAuthorization({
      mchId: keys.mchId,
      serialNo: keys.mchSerialNo,
      privateKey: keys.mchPrivateKeyPem,
      method: "GET",
      pathWithQuery: path,
      body: "",
    });
    const answer = await fetch(`${t.simulator.url}${path}`, { headers: { authorization: whole } });
    expect(answer.status).toBe(404);
    expect(await answer.json()).toMatchObject({ code: "ORDER_NOT_EXIST" });
  });
});

describe("callback faults", () => {
  it("duplicateNotifies: ten concurrent copies of one callback are applied exactly once", async () => {
    const payment = await create();
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo, faults: { duplicateNotifies: 10 } });
    t.simulator.pay("wechatpay", payment.paymentNo);
    await eventually(
      () => logCount({ paymentId: payment.id }),
      (n) => n >= 10,
    );
    expect(await statusOf(payment.id)).toBe(PaymentStatus.SUCCEEDED);
    expect(await logCount({ paymentId: payment.id, verdict: "applied" })).toBe(1);
    expect(await logCount({ paymentId: payment.id, verdict: "duplicate" })).toBe(9);
    expect(await succeededEvents(payment.id)).toBe(1);
    expect(await journalEntries(payment.id)).toBe(1);
    const attempts = t.simulator.getTrade("wechatpay", payment.paymentNo)!.notifications[0]!.attempts;
    expect(attempts.map((attempt) => attempt.status)).toEqual(Array(10).fill(204));
  });

  it("notifyBeforeCreateReturns: the success callback that beats the create answer is applied", async () => {
    const request = wechatPayment();
    // The payment number is not known before the create, so the fault is set for the whole channel.
    t.simulator.setFaults({ channel: "wechatpay", faults: { notifyBeforeCreateReturns: true } });
    const created = await t.grpc.payments.createPayment(request, merchant.headers);
    t.simulator.clearFaults({ channel: "wechatpay" });
    expect(created.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    expect(await logCount({ paymentId: created.payment!.id, verdict: "applied" })).toBe(1);
  });

  it("notifyDelayMs with outOfOrder: a late payment callback arriving after the refund's changes nothing", async () => {
    const payment = await create({ amount: 1_000n, items: [] });
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo, faults: { notifyDelayMs: 300, outOfOrder: true } });
    t.simulator.pay("wechatpay", payment.paymentNo);
    // The shop learns of the success by querying, and refunds it all before any callback went out.
    expect((await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)).payment?.status).toBe(PaymentStatus.SUCCEEDED);
    const refund = await t.grpc.payments.refundPayment(
      { paymentId: payment.id, merchantRefundNo: "late-1", amount: 1_000n, reason: "" },
      merchant.headers,
    );
    expect(refund.refund?.channelRefundNo).toMatch(/^503/);
    const trade = await eventually(
      () => t.simulator.getTrade("wechatpay", payment.paymentNo)!,
      (view) => view.notifications.length === 2 && view.notifications.every((n) => n.state === "acknowledged"),
    );
    const firstDelivered = [...trade.notifications].sort((a, b) => Date.parse(a.attempts[0]!.at) - Date.parse(b.attempts[0]!.at))[0];
    expect(firstDelivered?.kind).toBe("refund");
    expect(await statusOf(payment.id)).toBe(PaymentStatus.REFUNDED);
    expect(await succeededEvents(payment.id)).toBe(1);
    expect(await journalEntries(payment.id)).toBe(3);
  });

  it("paidAfterClose: the close says yes, then the money arrives; the payment stays CLOSED and a discrepancy is raised", async () => {
    const payment = await create();
    // The delay lets the close commit first; a callback racing the close transaction is another case.
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo, faults: { paidAfterClose: true, notifyDelayMs: 200 } });
    const closed = await t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers);
    expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);
    const log = await eventually(
      () => t.app.db.em().findOne(CallbackLog, { paymentId: payment.id }, { disableIdentityMap: true }),
      (row) => row !== null,
    );
    expect(log).toMatchObject({ verdict: "applied", effect: "paid_after_close", answerStatus: 204 });
    expect(await statusOf(payment.id)).toBe(PaymentStatus.CLOSED);
    const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN" }, t.adminHeaders);
    const mine = open.discrepancies.filter((d) => d.paymentId === payment.id);
    expect(mine).toEqual([
      expect.objectContaining({
        kind: "PAID_AFTER_CLOSE",
        amount: 8888n,
        channelTradeNo: t.simulator.getTrade("wechatpay", payment.paymentNo)?.channelTradeNo,
      }),
    ]);
  });
});

describe("corrupted and forged callbacks", () => {
  it("badSignature: a callback not signed by WeChat is refused with 400 {code: FAIL} and changes nothing", async () => {
    const payment = await create();
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo, faults: { badSignature: true } });
    t.simulator.pay("wechatpay", payment.paymentNo);
    const trade = await eventually(
      () => t.simulator.getTrade("wechatpay", payment.paymentNo)!,
      (view) => (view.notifications[0]?.attempts.length ?? 0) >= 1,
    );
    expect(trade.notifications[0]?.attempts[0]).toMatchObject({ status: 400, acknowledged: false });
    expect(JSON.parse(trade.notifications[0]!.attempts[0]!.body!)).toEqual({ code: "FAIL", message: "bad_signature" });
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
    expect(await succeededEvents(payment.id)).toBe(0);
  });

  it("alterAmount: a correctly signed callback for another total is refused as a mismatch and changes nothing", async () => {
    const payment = await create();
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo, faults: { alterAmount: 100 } });
    t.simulator.pay("wechatpay", payment.paymentNo);
    const log = await eventually(
      () => t.app.db.em().findOne(CallbackLog, { paymentId: payment.id, verdict: "mismatch" }, { disableIdentityMap: true }),
      (row) => row !== null,
    );
    expect(log?.reason).toContain("8988");
    expect(log?.answerStatus).toBe(400);
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
    expect(await journalEntries(payment.id)).toBe(0);
  });

  it("refuses every corrupted callback with its reason, changing nothing, and applies the genuine one once", async () => {
    const payment = await create();
    const keys = testKeys().wechatpay;
    const resource = transactionResource(payment.paymentNo, 8888);
    const genuine = wechatCallback(resource);
    const flipped = JSON.parse(genuine.body);
    const sealed = Buffer.from(flipped.resource.ciphertext, "base64");
    sealed[0] = (sealed[0] as number) ^ 0xff;
    flipped.resource.ciphertext = sealed.toString("base64");

    const cases: { name: string; callback: { headers: Record<string, string>; body: string }; reason: string }[] = [
      {
        name: "body changed after signing",
        callback: { ...genuine, body: genuine.body.replace('"summary":"支付成功"', '"summary":"支付成功 "') },
        reason: "bad_signature",
      },
      {
        name: "signed by another key",
        callback: wechatCallback(resource, { signingKeyPem: keys.mchPrivateKeyPem }),
        reason: "bad_signature",
      },
      {
        name: "no signature headers",
        callback: { headers: { "content-type": "application/json" }, body: genuine.body },
        reason: "missing_headers",
      },
      {
        name: "signed a quarter of an hour ago",
        callback: wechatCallback(resource, { timestamp: String(Math.floor(Date.now() / 1000) - 900) }),
        reason: "stale_timestamp",
      },
      {
        name: "another public key id",
        callback: wechatCallback(resource, { publicKeyId: "PUB_KEY_ID_0000000000000000000000000000" }),
        reason: "unknown_serial",
      },
      {
        name: "encrypted with another APIv3 key",
        callback: wechatCallback(resource, { apiV3Key: "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ" }),
        reason: "decrypt_failed",
      },
      { name: "ciphertext corrupted, then signed", callback: signedBody(JSON.stringify(flipped)), reason: "decrypt_failed" },
      { name: "another merchant's transaction", callback: wechatCallback({ ...resource, mchid: "1900000999" }), reason: "mchid_mismatch" },
      {
        name: "another app's transaction",
        callback: wechatCallback({ ...resource, appid: "wx0000000000000000" }),
        reason: "appid_mismatch",
      },
      { name: "signed, but not JSON", callback: signedBody("id=EV-1&event_type=TRANSACTION.SUCCESS"), reason: "malformed_body" },
    ];
    for (const { name, callback, reason } of cases) {
      const answer = await postWechatCallback(t, callback);
      expect({ name, status: answer.status, body: JSON.parse(answer.body) }).toEqual({
        name,
        status: 400,
        body: { code: "FAIL", message: reason },
      });
    }
    const rejected = await t.app.db
      .em()
      .find(CallbackLog, { channel: "wechatpay", verdict: "rejected" }, { orderBy: { id: "desc" }, limit: cases.length });
    expect(rejected.map((log) => log.reason).reverse()).toEqual(cases.map((c) => c.reason));
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);

    expect(await postWechatCallback(t, genuine)).toEqual({ status: 204, body: "" });
    expect(await postWechatCallback(t, genuine)).toEqual({ status: 204, body: "" });
    expect(await statusOf(payment.id)).toBe(PaymentStatus.SUCCEEDED);
    expect(await logCount({ paymentId: payment.id, verdict: "applied" })).toBe(1);
    expect(await logCount({ paymentId: payment.id, verdict: "duplicate" })).toBe(1);
  });

  it("answers a genuine callback for an unknown order with non-success, so WeChat re-sends it", async () => {
    const answer = await postWechatCallback(t, wechatCallback(transactionResource("P20261122000000UNKNOWNUNKNOWN0", 100)));
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "FAIL" });
  });
});

/** Any body, with valid `Wechatpay-*` signature headers over it. */
function signedBody(body: string): { headers: Record<string, string>; body: string } {
  const keys = testKeys().wechatpay;
  const headers = signWechatResponse({ body, privateKey: keys.platformPrivateKeyPem, publicKeyId: keys.publicKeyId });
  return { headers: { "content-type": "application/json", ...headers }, body };
}
