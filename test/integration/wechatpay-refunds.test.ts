/**
 * WeChat Pay refunds end to end on MySQL: RefundPayment over gRPC and Connect, `POST
 * /v3/refund/domestic/refunds` at the simulator, `REFUND.*` callbacks, the refund sweeper's
 * queries, refund faults, the ledger, and the trade bill that lists it all.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import { createWechatPayChannel } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { toWechatBillTime } from "../../src/channels/wechatpay/wechatpay-time.js";
import { PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { billRecords } from "../support/bill-records.js";
import { eventually, grpcError } from "../support/waiting.js";
import { wechatPayment } from "../support/wechatpay.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let refundSeq = 0;

beforeAll(async () => {
  t = await startTestApp({ channelTimeoutMs: 500 });
  merchant = await t.createMerchant("WeChat Refund Shop");
});
afterEach(() => t.simulator.clearFaults());
afterAll(() => t?.stop());

function lookup(id: string) {
  return { lookup: { key: { case: "paymentId" as const, value: id } } };
}

/** A WeChat payment of `amount` fen, paid and known to the service as SUCCEEDED. */
async function paidPayment(amount = 8888n) {
  const created = await t.grpc.payments.createPayment(wechatPayment({ amount, items: [] }), merchant.headers);
  const payment = created.payment!;
  t.simulator.pay("wechatpay", payment.paymentNo);
  await eventually(
    () => t.grpc.payments.getPayment(lookup(payment.id), merchant.headers),
    (read) => read.payment?.status === PaymentStatus.SUCCEEDED,
  );
  return payment;
}

function refund(paymentId: string, amount: bigint, merchantRefundNo = `rf-${Date.now()}-${++refundSeq}`) {
  return t.grpc.payments.refundPayment({ paymentId, merchantRefundNo, amount, reason: "商品破损" }, merchant.headers);
}

async function payment(id: string) {
  return (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment!;
}

function getRefund(refundId: string) {
  return t.connect.payments.getRefund({ refundId }, { headers: merchant.headers });
}

function wechatTrade(paymentNo: string) {
  return t.simulator.getTrade("wechatpay", paymentNo)!;
}

describe("refunds through WeChat Pay", () => {
  it("refunds part at once, then the rest; WeChat's REFUND.SUCCESS callbacks are acknowledged; the payment ends REFUNDED", async () => {
    const paid = await paidPayment(8888n);
    const first = (await refund(paid.id, 3_000n)).refund!;
    expect(first).toMatchObject({ status: RefundStatus.SUCCEEDED, amount: 3_000n, currency: "CNY", reason: "商品破损" });
    expect(first.channelRefundNo).toMatch(/^503\d{26}$/);
    expect(first.refundNo).toBe(wechatTrade(paid.paymentNo).refunds[0]?.refundNo);
    expect(await payment(paid.id)).toMatchObject({ status: PaymentStatus.SUCCEEDED, refundedAmount: 3_000n });
    expect(wechatTrade(paid.paymentNo)).toMatchObject({ channelState: "REFUND", refundedMinor: "3000" });

    // More than is left never reaches WeChat.
    const tooMuch = await grpcError(refund(paid.id, 5_889n));
    expect(tooMuch.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(readGrpcErrorDetails(tooMuch).errorInfo?.reason).toBe("REFUND_EXCEEDS_PAYMENT");
    expect(wechatTrade(paid.paymentNo).refunds).toHaveLength(1);

    const rest = (await refund(paid.id, 5_888n)).refund!;
    expect(rest.status).toBe(RefundStatus.SUCCEEDED);
    expect(await payment(paid.id)).toMatchObject({ status: PaymentStatus.REFUNDED, refundedAmount: 8_888n });

    const trade = await eventually(
      () => wechatTrade(paid.paymentNo),
      (view) => view.notifications.filter((n) => n.kind === "refund" && n.state === "acknowledged").length === 2,
    );
    const refundNotifications = trade.notifications.filter((n) => n.kind === "refund");
    expect(refundNotifications.map((n) => n.attempts.at(-1)?.status)).toEqual([204, 204]);
    const logs = await t.app.db.em().find(CallbackLog, { notificationId: { $in: refundNotifications.map((n) => n.id) } });
    // The refund call already reported SUCCESS; the callbacks confirm it and change nothing.
    expect(logs.map((log) => [log.verdict, log.effect])).toEqual([
      ["applied", "unchanged"],
      ["applied", "unchanged"],
    ]);
  });

  it("is idempotent on merchant_refund_no, and refuses the same number for another amount", async () => {
    const paid = await paidPayment(1_000n);
    const first = (await refund(paid.id, 400n, "same-no")).refund!;
    const again = (
      await t.connect.payments.refundPayment(
        { paymentId: paid.id, merchantRefundNo: "same-no", amount: 400n, reason: "商品破损" },
        { headers: merchant.headers },
      )
    ).refund!;
    expect(again.id).toBe(first.id);
    expect(wechatTrade(paid.paymentNo).refunds).toHaveLength(1);
    const changed = await grpcError(refund(paid.id, 500n, "same-no"));
    expect(changed.code).toBe(GrpcStatus.ALREADY_EXISTS);
    expect(readGrpcErrorDetails(changed).errorInfo?.reason).toBe("IDEMPOTENCY_KEY_REUSED");

    // WeChat itself keys refunds on out_refund_no: a repeat is the same refund, a changed amount is refused.
    const wechatpay = createWechatPayChannel({ ...t.config.wechatpay!, timeoutMs: 2_000 });
    const request = {
      trade: { paymentNo: paid.paymentNo, amountMinor: 1_000n, currency: "CNY" },
      refundNo: first.refundNo,
      amountMinor: 400n,
      notifyUrl: `${t.app.httpUrl}/callbacks/wechatpay`,
    };
    expect(await wechatpay.refund(request)).toEqual({ state: "succeeded", channelRefundNo: first.channelRefundNo, detail: "SUCCESS" });
    await expect(wechatpay.refund({ ...request, amountMinor: 500n })).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    expect(wechatTrade(paid.paymentNo).refunds).toHaveLength(1);
  });
});

describe("refunds that finish later", () => {
  it("refundDelayMs: PROCESSING at first, then WeChat's REFUND.SUCCESS callback finishes it", async () => {
    const paid = await paidPayment(5_000n);
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: paid.paymentNo, faults: { refundDelayMs: 200 } });
    const accepted = (await refund(paid.id, 2_000n)).refund!;
    expect(accepted.status).toBe(RefundStatus.PROCESSING);
    expect(accepted.channelRefundNo).toMatch(/^503/);
    expect(wechatTrade(paid.paymentNo).refunds[0]?.state).toBe("processing");

    const done = await eventually(
      () => getRefund(accepted.id),
      (read) => read.refund?.status === RefundStatus.SUCCEEDED,
    );
    expect(done.refund?.succeededAt).toBeDefined();
    expect(await payment(paid.id)).toMatchObject({ status: PaymentStatus.SUCCEEDED, refundedAmount: 2_000n });
    const log = await t.app.db.em().findOneOrFail(CallbackLog, { paymentId: paid.id, effect: { $like: "refund %" } });
    expect(log).toMatchObject({ verdict: "applied", effect: `refund ${accepted.id} PROCESSING->SUCCEEDED` });
  });
});

describe("refunds WeChat refuses or abandons", () => {
  it("refundFails with refundDelayMs: PROCESSING, then REFUND.ABNORMAL fails it and releases the amount", async () => {
    const paid = await paidPayment(2_000n);
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: paid.paymentNo, faults: { refundFails: true, refundDelayMs: 100 } });
    const accepted = (await refund(paid.id, 1_500n)).refund!;
    expect(accepted.status).toBe(RefundStatus.PROCESSING);

    const failed = await eventually(
      () => getRefund(accepted.id),
      (read) => read.refund?.status === RefundStatus.FAILED,
    );
    expect(failed.refund?.failureReason).toContain("ABNORMAL");
    expect(wechatTrade(paid.paymentNo).refunds[0]?.state).toBe("failed");
    const log = await t.app.db.em().findOneOrFail(CallbackLog, { paymentId: paid.id, effect: { $like: "refund %" } });
    expect(log.effect).toBe(`refund ${accepted.id} PROCESSING->FAILED`);
    expect(JSON.parse(Buffer.from(log.rawBody).toString("utf8")).event_type).toBe("REFUND.ABNORMAL");

    t.simulator.clearFaults({ channel: "wechatpay", outTradeNo: paid.paymentNo });
    expect((await refund(paid.id, 2_000n)).refund?.status).toBe(RefundStatus.SUCCEEDED);
  });
});

describe("books and bills", () => {
  it("lists today's payments and refunds in WeChat's trade bill, with fees, as the app's adapter reads it", async () => {
    const paid = await paidPayment(12_345n);
    const refunded = (await refund(paid.id, 345n)).refund!;
    const wechatpay = createWechatPayChannel({ ...t.config.wechatpay!, timeoutMs: 2_000 });
    const today = toWechatBillTime(new Date()).slice(0, 10);
    const records = (await billRecords(wechatpay.fetchBill(today))).filter((record) => record.paymentNo === paid.paymentNo);
    expect(records).toEqual([
      expect.objectContaining({
        kind: "payment",
        amountMinor: 12_345n,
        feeMinor: 74n,
        currency: "CNY",
        channelTradeNo: wechatTrade(paid.paymentNo).channelTradeNo,
      }),
      expect.objectContaining({ kind: "refund", refundNo: refunded.refundNo, amountMinor: 345n, feeMinor: -2n }),
    ]);
    // A day without trades has no statement: WeChat's NO_STATEMENT_EXIST, read as an empty bill.
    expect(await billRecords(wechatpay.fetchBill("2020-01-01"))).toEqual([]);
  });

  it("leaves the ledger balanced after every refund above", async () => {
    const check = await t.grpc.settlement.checkLedger({}, t.adminHeaders);
    expect(check.violations).toEqual([]);
    expect(check.ok).toBe(true);
  });
});
