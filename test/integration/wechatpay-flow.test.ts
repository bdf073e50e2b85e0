/**
 * WeChat Pay payments end to end on MySQL: grpc-js and Connect clients against the app on free
 * ports, WeChat Pay API v3 spoken by the simulator over real HTTP (signed both ways), encrypted
 * callbacks posted by the simulator to the shim.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import { createWechatPayChannel } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { Payment as PaymentEntity } from "../../src/payments/payment-entity.js";
import { WECHATPAY_NOTIFY_RETRY_GAPS_MS } from "../../src/simulator/wechatpay/wechatpay-side.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";
import { wechatPayment } from "../support/wechatpay.js";

const TIME_SCALE = 0.0005;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;

beforeAll(async () => {
  t = await startTestApp({ timeScale: TIME_SCALE });
  merchant = await t.createMerchant("WeChat Tea Shop");
});
afterAll(() => t?.stop());

function lookup(id: string) {
  return { lookup: { key: { case: "paymentId" as const, value: id } } };
}

function getByGrpc(id: string) {
  return t.grpc.payments.getPayment(lookup(id), merchant.headers);
}

async function create(overrides: Record<string, unknown> = {}) {
  const created = await t.grpc.payments.createPayment(wechatPayment(overrides), merchant.headers);
  return created.payment!;
}

describe("a payment through WeChat Pay", () => {
  it("goes from Native order to success: code_url, scan, pay, encrypted callback acknowledged with 204", async () => {
    const payment = await create();
    expect(payment.status).toBe(PaymentStatus.PENDING);
    expect(payment.channel).toBe(Channel.WECHAT_PAY);
    expect(payment.action?.action.case).toBe("codeUrl");
    expect(payment.action?.action.value).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=[0-9A-Za-z]+$/);

    expect(t.simulator.getTrade("wechatpay", payment.paymentNo)).toMatchObject({
      channelState: "NOTPAY",
      amountMinor: "8888",
      subject: "龙井茶 250g",
      attributes: { code_url: payment.action?.action.value },
    });
    expect(t.simulator.scan("wechatpay", payment.paymentNo).channelState).toBe("USERPAYING");
    const scanned = await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers);
    expect(scanned.payment?.status).toBe(PaymentStatus.PENDING);

    const paid = t.simulator.pay("wechatpay", payment.paymentNo);
    expect(paid).toMatchObject({ state: "paid", channelState: "SUCCESS" });
    const read = await eventually(
      () => t.connect.payments.getPayment(lookup(payment.id), { headers: merchant.headers }),
      (r) => r.payment?.status === PaymentStatus.SUCCEEDED,
    );
    expect(read.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    expect(read.payment?.channelTradeNo).toBe(paid.channelTradeNo);
    expect(read.payment?.channelTradeNo).toMatch(/^4200\d{24}$/);
    expect(read.payment?.paidAt).toBeDefined();

    const trade = await eventually(
      () => t.simulator.getTrade("wechatpay", payment.paymentNo)!,
      (view) => view.notifications[0]?.state === "acknowledged",
    );
    expect(trade.notifications).toHaveLength(1);
    expect(trade.notifications[0]).toMatchObject({ kind: "payment", state: "acknowledged" });
    expect(trade.notifications[0]?.attempts).toEqual([expect.objectContaining({ status: 204, body: "", acknowledged: true })]);

    const logs = await t.app.db.em().find(CallbackLog, { paymentId: payment.id });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ channel: "wechatpay", verdict: "applied", effect: "PENDING->SUCCEEDED", answerStatus: 204 });
    expect(logs[0]?.notificationId).toBe(trade.notifications[0]?.id);
    expect(logs[0]?.notificationId).toMatch(/^EV-\d+$/);
    // The raw body is the encrypted envelope: nothing of the transaction is readable without the APIv3 key.
    const envelope = JSON.parse(Buffer.from(logs[0]!.rawBody).toString("utf8"));
    expect(envelope).toMatchObject({
      event_type: "TRANSACTION.SUCCESS",
      resource_type: "encrypt-resource",
      resource: { algorithm: "AEAD_AES_256_GCM" },
    });
    expect(JSON.stringify(envelope)).not.toContain(payment.paymentNo);
    expect(await t.app.db.em().count(OutboxEvent, { aggregateId: payment.id, eventType: "payment.succeeded" })).toBe(1);
  });

  it("opens the same WeChat order when the merchant repeats the create", async () => {
    const request = wechatPayment();
    const first = await t.grpc.payments.createPayment(request, merchant.headers);
    const again = await t.connect.payments.createPayment(request, { headers: merchant.headers });
    expect(again.payment?.id).toBe(first.payment?.id);
    expect(again.payment?.action?.action.value).toBe(first.payment?.action?.action.value);
    expect(t.simulator.listTrades("wechatpay").filter((trade) => trade.outTradeNo === first.payment?.paymentNo)).toHaveLength(1);

    // WeChat keys Native orders on out_trade_no: the same body again is the same order, a changed one is refused.
    const wechatpay = createWechatPayChannel({ ...t.config.wechatpay!, timeoutMs: 2_000 });
    const order = {
      paymentNo: first.payment!.paymentNo,
      amountMinor: 8888n,
      currency: "CNY",
      subject: "龙井茶 250g",
      expiresAt: new Date(Number(first.payment!.expiresAt!.seconds) * 1000),
      notifyUrl: `${t.config.publicBaseUrl}/callbacks/wechatpay`,
      idempotencyKey: "again",
    };
    expect((await wechatpay.createPayment(order)).action.value).toBe(first.payment?.action?.action.value);
    await expect(wechatpay.createPayment({ ...order, amountMinor: 8887n })).rejects.toMatchObject({ code: "INVALID_REQUEST" });
  });

  it("learns of a failed payment (PAYERROR, never notified) by querying", async () => {
    const payment = await create();
    expect(t.simulator.pay("wechatpay", payment.paymentNo, "fail").channelState).toBe("PAYERROR");
    expect(t.simulator.getTrade("wechatpay", payment.paymentNo)?.notifications).toEqual([]);
    const queried = await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers);
    expect(queried.payment?.status).toBe(PaymentStatus.FAILED);
    expect(queried.payment?.statusReason).toContain("PAYERROR");
  });

  it("refuses a WeChat payment in another currency without opening an order", async () => {
    const request = wechatPayment({ currency: "USD" });
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    const stored = await t.app.db
      .em()
      .findOneOrFail(PaymentEntity, { merchantOrderNo: request.merchantOrderNo }, { disableIdentityMap: true });
    expect(stored.status).toBe("FAILED");
    expect(stored.statusReason).toContain("CURRENCY_NOT_SUPPORTED");
    expect(t.simulator.getTrade("wechatpay", stored.paymentNo)).toBeUndefined();
  });
});

describe("closing", () => {
  it("ClosePayment of an order WeChat says is paid (ORDERPAID) records the success instead", async () => {
    const payment = await create();
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo, faults: { dropNotifies: true } });
    t.simulator.pay("wechatpay", payment.paymentNo);
    const error = await grpcError(t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers));
    expect(error.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("INVALID_TRANSITION");
    expect((await getByGrpc(payment.id)).payment?.status).toBe(PaymentStatus.SUCCEEDED);
  });
});

describe("callback delivery", () => {
  it("re-sends a callback the service refused, on WeChat's schedule and with the same event id, until it is acknowledged", async () => {
    const payment = await create();
    // Signed with a key that is not WeChat's: refused until the fault is lifted, then the re-send applies.
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo, faults: { badSignature: true } });
    t.simulator.pay("wechatpay", payment.paymentNo);
    await eventually(
      () => t.simulator.getTrade("wechatpay", payment.paymentNo)!.notifications[0]?.attempts.length ?? 0,
      (attempts) => attempts >= 2,
    );
    t.simulator.clearFaults({ channel: "wechatpay", outTradeNo: payment.paymentNo });
    const trade = await eventually(
      () => t.simulator.getTrade("wechatpay", payment.paymentNo)!,
      (view) => view.notifications[0]?.state === "acknowledged",
    );
    const attempts = trade.notifications[0]!.attempts;
    expect(attempts.at(-1)).toMatchObject({ status: 204, acknowledged: true });
    expect(attempts.slice(0, -1).every((attempt) => attempt.status === 400 && !attempt.acknowledged)).toBe(true);
    expect(JSON.parse(attempts[0]!.body!)).toEqual({ code: "FAIL", message: "bad_signature" });
    const gap = Date.parse(attempts[1]!.at) - Date.parse(attempts[0]!.at);
    expect(gap).toBeGreaterThanOrEqual(WECHATPAY_NOTIFY_RETRY_GAPS_MS[0]! * TIME_SCALE - 5);

    const logs = await t.app.db.em().find(CallbackLog, { channel: "wechatpay", notificationId: trade.notifications[0]!.id });
    expect(logs.map((log) => log.verdict)).toEqual(["applied"]);
    expect(
      await t.app.db.em().count(CallbackLog, { channel: "wechatpay", verdict: "rejected", reason: "bad_signature" }),
    ).toBeGreaterThanOrEqual(attempts.length - 1);
    expect((await getByGrpc(payment.id)).payment?.status).toBe(PaymentStatus.SUCCEEDED);
  });
});
