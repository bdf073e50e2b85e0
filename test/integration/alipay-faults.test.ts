/**
 * Every Alipay fault the simulator can inject, against the whole service on MySQL: what the
 * merchant is answered, and the end state of the payment, the callback log, the outbox and the
 * ledger. The plain happy path and concurrent duplicates live in alipay-payment-flow.test.ts.
 */
import type { ServiceError } from "@grpc/grpc-js";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { EntityName, FilterQuery } from "@mikro-orm/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { applyChannelStatus } from "../../src/payments/channel-outcome.js";
import { Payment as PaymentEntity } from "../../src/payments/payment-entity.js";
import { Refund as RefundEntity } from "../../src/refunds/refund-entity.js";
import type { SimTradeView } from "../../src/simulator/simulator.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

const PRECREATE = "alipay.trade.precreate";
const QUERY = "alipay.trade.query";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  // A short channel deadline keeps the timeout cases quick; normal calls take a few milliseconds.
  t = await startTestApp({ channelTimeoutMs: 1000 });
  merchant = await t.createMerchant("Fault Tolerant Tea");
});
afterEach(async () => {
  t.simulator.clearFaults();
  const ledger = await checkLedger(t.app.uow.session());
  expect(ledger.violations).toEqual([]);
  expect(ledger.ok).toBe(true);
});
afterAll(() => t?.stop());

function orderNo(): string {
  return `fault-${Date.now()}-${++orderSeq}`;
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

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

async function statusOf(id: string): Promise<PaymentStatus | undefined> {
  return (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment?.status;
}

async function row(id: string) {
  return t.app.db.em().findOneOrFail(PaymentEntity, { id }, { disableIdentityMap: true });
}

async function countRows<T extends object>(entity: EntityName<T>, where: FilterQuery<T>): Promise<number> {
  return t.app.db.em().count(entity, where);
}

async function journalEntries(paymentId: string): Promise<string[]> {
  const rows: { entry_type: string }[] = await t.app.db
    .em()
    .getConnection()
    .execute("select entry_type from journal_entry where payment_id = ? order by id", [paymentId]);
  return rows.map((entry) => entry.entry_type);
}

function trade(paymentNo: string): SimTradeView {
  const view = t.simulator.getTrade("alipay", paymentNo);
  if (!view) throw new Error(`the simulator has no trade ${paymentNo}`);
  return view;
}

async function created(overrides: Record<string, unknown> = {}) {
  const response = await t.grpc.payments.createPayment(alipayPayment(overrides), merchant.headers);
  return response.payment!;
}

/** A payment the shopper paid at Alipay whose notify never reaches us: only a query can tell. */
async function paidSilently() {
  const payment = await created();
  t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { dropNotifies: true } });
  t.simulator.pay("alipay", payment.paymentNo);
  return payment;
}

describe("notify delivery faults", () => {
  it("applies a notify once when Alipay re-sends the same notify_id after a non-success answer", async () => {
    const payment = await created();
    // Under another number for a moment, as when the notify beats our insert on another replica.
    const hiddenNo = `X${payment.paymentNo.slice(1)}`;
    await t.app.db.em().nativeUpdate(PaymentEntity, { id: payment.id }, { paymentNo: hiddenNo });
    t.simulator.pay("alipay", payment.paymentNo);
    const notifyId = trade(payment.paymentNo).notifications[0]!.id;
    const refused = await eventually(
      () => countRows(CallbackLog, { notificationId: notifyId, verdict: "unknown_payment" }),
      (n) => n >= 1,
    );
    expect(refused).toBeGreaterThanOrEqual(1);
    await t.app.db.em().nativeUpdate(PaymentEntity, { id: payment.id }, { paymentNo: payment.paymentNo });

    await eventually(
      () => statusOf(payment.id),
      (status) => status === PaymentStatus.SUCCEEDED,
    );
    const notification = await eventually(
      () => trade(payment.paymentNo).notifications[0]!,
      (n) => n.state === "acknowledged",
    );
    expect(notification.state).toBe("acknowledged");
    expect(notification.attempts.length).toBeGreaterThanOrEqual(2);
    expect(notification.attempts[0]).toMatchObject({ acknowledged: false, body: "fail" });
    expect(notification.attempts.at(-1)).toMatchObject({ acknowledged: true, body: "success" });

    // Two more re-sends of the byte-identical notify, one after the other, as Alipay does after a lost answer.
    const applied = await t.app.db.em().findOneOrFail(CallbackLog, { notificationId: notifyId, verdict: "applied" });
    for (let i = 0; i < 2; i++) {
      const answer = await fetch(`${t.app.httpUrl}/callbacks/alipay`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
        body: Buffer.from(applied.rawBody),
      });
      expect({ status: answer.status, body: await answer.text() }).toEqual({ status: 200, body: "success" });
    }

    expect(await countRows(CallbackLog, { notificationId: notifyId, verdict: "applied" })).toBe(1);
    expect(await countRows(CallbackLog, { notificationId: notifyId, verdict: "duplicate" })).toBe(2);
    expect(await countRows(OutboxEvent, { aggregateId: payment.id, eventType: "payment.succeeded" })).toBe(1);
    expect(await journalEntries(payment.id)).toEqual(["payment_succeeded"]);
  });

  it("ends REFUNDED, as Alipay says, when a full refund's TRADE_CLOSED notify overtakes the payment's TRADE_SUCCESS", async () => {
    const payment = await created();
    // The delay lets both notifies queue up; outOfOrder then delivers the newest first.
    t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { outOfOrder: true, notifyDelayMs: 1500 } });
    t.simulator.pay("alipay", payment.paymentNo);
    const queried = await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers);
    expect(queried.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    const refund = await t.grpc.payments.refundPayment(
      { paymentId: payment.id, merchantRefundNo: "ooo-full", amount: 8888n, reason: "out of stock" },
      merchant.headers,
    );
    expect(refund.refund?.status).toBe(RefundStatus.SUCCEEDED);

    const notifications = await eventually(
      () => trade(payment.paymentNo).notifications,
      (list) => list.length === 2 && list.every((n) => n.state === "acknowledged"),
    );
    const [paymentNotify, refundNotify] = notifications;
    expect(paymentNotify?.kind).toBe("payment");
    expect(refundNotify?.kind).toBe("refund");
    expect(refundNotify!.attempts[0]!.at < paymentNotify!.attempts[0]!.at).toBe(true);

    const refundLog = await t.app.db.em().findOneOrFail(CallbackLog, { notificationId: refundNotify!.id });
    expect(refundLog.verdict).toBe("ignored");
    const paymentLog = await t.app.db.em().findOneOrFail(CallbackLog, { notificationId: paymentNotify!.id });
    expect(paymentLog).toMatchObject({ verdict: "applied", effect: "unchanged" });

    const after = await t.grpc.payments.getPayment(lookup(payment.id), merchant.headers);
    expect(after.payment?.status).toBe(PaymentStatus.REFUNDED);
    expect(after.payment?.refundedAmount).toBe(8888n);
    const channelSide = trade(payment.paymentNo);
    expect(channelSide.channelState).toBe("TRADE_CLOSED");
    expect(channelSide.refundedMinor).toBe("8888");
    expect(await countRows(OutboxEvent, { aggregateId: payment.id, eventType: "payment.succeeded" })).toBe(1);
    expect(await journalEntries(payment.id)).toEqual(["payment_succeeded", "refund_accepted", "refund_succeeded"]);
  });

  it("stays PENDING while the notify is held back (notifyDelayMs), then ends SUCCEEDED from one delivery", async () => {
    const payment = await created();
    t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { notifyDelayMs: 1500 } });
    t.simulator.pay("alipay", payment.paymentNo);
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
    expect(trade(payment.paymentNo).notifications[0]).toMatchObject({ state: "queued", attempts: [] });

    const status = await eventually(
      () => statusOf(payment.id),
      (s) => s === PaymentStatus.SUCCEEDED,
    );
    expect(status).toBe(PaymentStatus.SUCCEEDED);
    const notification = trade(payment.paymentNo).notifications[0]!;
    expect(notification.attempts).toHaveLength(1);
    expect(notification.attempts[0]).toMatchObject({ acknowledged: true, body: "success" });
  });

  it("answers the create and ends SUCCEEDED when the notify arrives while the create call waits on Alipay", async () => {
    t.simulator.setFaults({ channel: "alipay", faults: { notifyBeforeCreateReturns: true } });
    const payment = await created();
    // The simulator answered the precreate only after our callback route had answered its notify.
    expect(payment.status).toBe(PaymentStatus.SUCCEEDED);
    expect(payment.channelTradeNo).toBe(trade(payment.paymentNo).channelTradeNo);
    const logs = await t.app.db.em().find(CallbackLog, { paymentId: payment.id });
    expect(logs.map((log) => [log.verdict, log.effect])).toEqual([["applied", "PENDING->SUCCEEDED"]]);
    const stored = await row(payment.id);
    expect(stored.actionKind).toBe("qr_code_url");
    expect(stored.actionValue).toBe(trade(payment.paymentNo).attributes.qr_code);
    expect(await journalEntries(payment.id)).toEqual(["payment_succeeded"]);
  });
});

describe("gateway faults on create", () => {
  async function expectPendingWithoutAction(merchantOrderNo: string) {
    const stored = await t.app.db
      .em()
      .findOneOrFail(PaymentEntity, { merchantId: merchant.id, merchantOrderNo }, { disableIdentityMap: true });
    expect(stored.status).toBe("PENDING");
    expect(stored.actionKind).toBeNull();
    expect(stored.actionValue).toBeNull();
    return stored;
  }

  async function retryGetsTheSamePayment(request: ReturnType<typeof alipayPayment>, paymentId: string) {
    const retried = (await t.grpc.payments.createPayment(request, merchant.headers)).payment!;
    expect(retried.id).toBe(paymentId);
    expect(retried.status).toBe(PaymentStatus.PENDING);
    expect(retried.action?.action.case).toBe("qrCodeUrl");
    expect(retried.action?.action.value).toBe(trade(retried.paymentNo).attributes.qr_code);
    return retried;
  }

  it("answers UNAVAILABLE on a 5xx, keeps the payment PENDING without a QR code, and a retry opens it", async () => {
    t.simulator.setFaults({ channel: "alipay", faults: { apiError: { method: PRECREATE, status: 503, times: 1 } } });
    const request = alipayPayment();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("CHANNEL_UNAVAILABLE");
    const stored = await expectPendingWithoutAction(request.merchantOrderNo);
    expect(t.simulator.getTrade("alipay", stored.paymentNo)).toBeUndefined();

    await retryGetsTheSamePayment(request, stored.id);
  });

  it("answers UNAVAILABLE when the precreate times out unanswered, and a retry opens the payment", async () => {
    t.simulator.setFaults({ channel: "alipay", faults: { apiTimeout: { method: PRECREATE, times: 1 } } });
    const request = alipayPayment();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("CHANNEL_UNAVAILABLE");
    const stored = await expectPendingWithoutAction(request.merchantOrderNo);
    expect(t.simulator.getTrade("alipay", stored.paymentNo)).toBeUndefined();

    await retryGetsTheSamePayment(request, stored.id);
  });

  it("gets the trade Alipay did create when only the precreate's answer was lost", async () => {
    t.simulator.setFaults({ channel: "alipay", faults: { apiTimeout: { method: PRECREATE, times: 1, apply: true } } });
    const request = alipayPayment();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    const stored = await expectPendingWithoutAction(request.merchantOrderNo);
    const createdAtAlipay = trade(stored.paymentNo);

    const retried = await retryGetsTheSamePayment(request, stored.id);
    expect(retried.action?.action.value).toBe(createdAtAlipay.attributes.qr_code);
    expect(trade(stored.paymentNo).channelTradeNo).toBe(createdAtAlipay.channelTradeNo);
    expect(t.simulator.listTrades("alipay").filter((sim) => sim.outTradeNo === stored.paymentNo)).toHaveLength(1);
  });
});

describe("gateway faults on query", () => {
  it("answers QueryPayment UNAVAILABLE on a 5xx and on a timeout, changing nothing; the next query applies the payment", async () => {
    const payment = await paidSilently();
    const before = await row(payment.id);

    for (const faults of [
      { apiError: { method: QUERY, status: 500 as const, times: 1 } },
      { apiTimeout: { method: QUERY, times: 1 } },
    ]) {
      t.simulator.setFaults({ channel: "alipay", faults });
      const error = await grpcError(t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers));
      expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
      expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("CHANNEL_UNAVAILABLE");
      const after = await row(payment.id);
      expect(after.status).toBe("PENDING");
      expect(after.fee).toBe(0n);
      expect(after.channelTradeNo).toBeNull();
      expect(after.updatedAt).toEqual(before.updatedAt);
      expect(await journalEntries(payment.id)).toEqual([]);
    }

    const queried = await t.connect.payments.queryPayment(lookup(payment.id), { headers: merchant.headers });
    expect(queried.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    expect(await journalEntries(payment.id)).toEqual(["payment_succeeded"]);
  });
});

describe("answers not signed by Alipay (badResponseSignature)", () => {
  async function expectRefused(error: ServiceError) {
    // The outcome at Alipay is unknown, as if it were unreachable; the cause is named for operators.
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    const info = readGrpcErrorDetails(error).errorInfo;
    expect(info?.metadata.channel_code).toBe("RESPONSE_SIGNATURE_INVALID");
  }

  it("refuses a create answer it cannot verify and leaves the payment PENDING to retry", async () => {
    t.simulator.setFaults({ channel: "alipay", faults: { badResponseSignature: true } });
    const request = alipayPayment();
    await expectRefused(await grpcError(t.grpc.payments.createPayment(request, merchant.headers)));
    const stored = await t.app.db
      .em()
      .findOneOrFail(PaymentEntity, { merchantId: merchant.id, merchantOrderNo: request.merchantOrderNo }, { disableIdentityMap: true });
    expect(stored.status).toBe("PENDING");
    expect(stored.actionKind).toBeNull();

    t.simulator.clearFaults();
    const retried = (await t.grpc.payments.createPayment(request, merchant.headers)).payment!;
    expect(retried.id).toBe(stored.id);
    expect(retried.status).toBe(PaymentStatus.PENDING);
    expect(retried.action?.action.value).toBe(trade(stored.paymentNo).attributes.qr_code);
  });

  it("refuses query and close answers it cannot verify, changing nothing", async () => {
    const payment = await paidSilently();
    t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { badResponseSignature: true } });
    await expectRefused(await grpcError(t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)));
    await expectRefused(await grpcError(t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers)));
    expect((await row(payment.id)).status).toBe("PENDING");
    expect(await journalEntries(payment.id)).toEqual([]);
  });

  it("keeps a refund PROCESSING, its amount reserved, when the refund answer cannot be verified; the sweeper finishes it", async () => {
    const payment = await paidSilently();
    await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers);
    t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { badResponseSignature: true } });
    const refund = (
      await t.grpc.payments.refundPayment({ paymentId: payment.id, merchantRefundNo: "unsigned-1", amount: 5000n }, merchant.headers)
    ).refund!;
    // Alipay did pay it back: marking it FAILED would make the amount refundable a second time.
    expect(trade(payment.paymentNo).refunds).toMatchObject([{ amountMinor: "5000", state: "succeeded" }]);
    expect(refund.status).toBe(RefundStatus.PROCESSING);
    const overRefund = await grpcError(
      t.grpc.payments.refundPayment({ paymentId: payment.id, merchantRefundNo: "unsigned-2", amount: 3889n }, merchant.headers),
    );
    expect(readGrpcErrorDetails(overRefund).errorInfo?.reason).toBe("REFUND_EXCEEDS_PAYMENT");

    // The sweeper cannot trust the refund query either while the fault lasts.
    await t.app.db.em().nativeUpdate(RefundEntity, { id: refund.id }, { nextQueryAt: new Date(Date.now() - 1000) });
    await t.app.refundSweeper.runOnce();
    const stillProcessing = await t.app.db.em().findOneOrFail(RefundEntity, { id: refund.id }, { disableIdentityMap: true });
    expect(stillProcessing.status).toBe("PROCESSING");

    t.simulator.clearFaults();
    await t.app.db.em().nativeUpdate(RefundEntity, { id: refund.id }, { nextQueryAt: new Date(Date.now() - 1000) });
    expect(await t.app.refundSweeper.runOnce()).toMatchObject({ finished: 1 });
    const finished = await t.grpc.payments.getRefund({ refundId: refund.id }, merchant.headers);
    expect(finished.refund?.status).toBe(RefundStatus.SUCCEEDED);
    expect((await t.grpc.payments.getPayment(lookup(payment.id), merchant.headers)).payment?.refundedAmount).toBe(5000n);
  });
});

describe("paid after close", () => {
  async function expectPaidAfterCloseRaised(paymentId: string, paymentNo: string) {
    const log = await eventually(
      () => t.app.db.em().findOne(CallbackLog, { paymentId, verdict: "applied" }, { disableIdentityMap: true }),
      (found) => found !== null,
    );
    expect(log?.effect).toBe("paid_after_close");
    const payment = (await t.grpc.payments.getPayment(lookup(paymentId), merchant.headers)).payment!;
    expect(payment.status).toBe(PaymentStatus.CLOSED);
    expect(payment.refundedAmount).toBe(0n);

    const channelTradeNo = trade(paymentNo).channelTradeNo;
    const listed = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
    const raised = listed.discrepancies.filter((d) => d.paymentId === paymentId);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      kind: "PAID_AFTER_CLOSE",
      channel: Channel.ALIPAY,
      merchantId: merchant.id,
      channelTradeNo,
      amount: 8888n,
      currency: "CNY",
      status: "OPEN",
    });
    expect(await countRows(OutboxEvent, { aggregateId: paymentId, eventType: "payment.succeeded" })).toBe(0);
    expect(await journalEntries(paymentId)).toEqual(["paid_after_close"]);

    // Asking Alipay again sees the same money: no second discrepancy, no state change.
    const queried = await t.grpc.payments.queryPayment(lookup(paymentId), merchant.headers);
    expect(queried.payment?.status).toBe(PaymentStatus.CLOSED);

    const resolved = await t.grpc.settlement.resolveDiscrepancy(
      { discrepancyId: raised[0]!.id, resolution: `refunded the shopper on Alipay trade ${channelTradeNo}` },
      t.adminHeaders,
    );
    expect(resolved.discrepancy).toMatchObject({ status: "RESOLVED", resolution: `refunded the shopper on Alipay trade ${channelTradeNo}` });
    const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
    expect(open.discrepancies.filter((d) => d.paymentId === paymentId)).toEqual([]);
  }

  it("keeps a payment CLOSED and raises PAID_AFTER_CLOSE when Alipay confirms the close but the shopper's payment lands", async () => {
    const payment = await created();
    t.simulator.scan("alipay", payment.paymentNo);
    // The delay makes the success notify arrive after our close committed; the race itself is the next test.
    t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { paidAfterClose: true, notifyDelayMs: 300 } });
    const closed = await t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers);
    expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);
    await expectPaidAfterCloseRaised(payment.id, payment.paymentNo);
  });

  it("never drops the money when the success notify races the close: CLOSED with a discrepancy, or SUCCEEDED", async () => {
    const payments = await Promise.all(Array.from({ length: 10 }, () => created()));
    for (const payment of payments) {
      t.simulator.scan("alipay", payment.paymentNo);
      t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { paidAfterClose: true } });
    }
    const closes = await Promise.allSettled(
      payments.map((payment) => t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers)),
    );
    await eventually(
      () => Promise.all(payments.map((payment) => countRows(CallbackLog, { paymentId: payment.id, verdict: "applied" }))),
      (counts) => counts.every((n) => n === 1),
    );
    const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
    for (const [index, payment] of payments.entries()) {
      const close = closes[index]!;
      const status = await statusOf(payment.id);
      const raised = open.discrepancies.filter((d) => d.paymentId === payment.id && d.kind === "PAID_AFTER_CLOSE");
      if (close.status === "fulfilled") {
        // Our close committed first: the money that came anyway is raised for refund.
        expect(status).toBe(PaymentStatus.CLOSED);
        expect(raised).toHaveLength(1);
      } else {
        // The notify committed first: the payment is paid and the close is refused.
        expect((close.reason as ServiceError).code).toBe(GrpcStatus.FAILED_PRECONDITION);
        expect(status).toBe(PaymentStatus.SUCCEEDED);
        expect(raised).toHaveLength(0);
      }
    }
  });

  it("raises PAID_AFTER_CLOSE for a success read while PENDING but applied after the close committed", async () => {
    const payment = await created();
    // What a callback handler (or a query) read just before the merchant's close went through.
    const readBeforeClose = await row(payment.id);
    await t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers);
    const success = { state: "succeeded" as const, channelTradeNo: "2026112222001499990000000001", amountMinor: 8888n, currency: "CNY" };
    const outcome = await t.app.uow.transaction(t.app.uow.session(), (tx) => applyChannelStatus(tx, readBeforeClose, success, "callback:TRADE_SUCCESS"));
    expect(outcome.effect).toBe("paid_after_close");
    expect(await statusOf(payment.id)).toBe(PaymentStatus.CLOSED);
    const listed = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
    expect(listed.discrepancies.filter((d) => d.paymentId === payment.id)).toMatchObject([
      { kind: "PAID_AFTER_CLOSE", channelTradeNo: success.channelTradeNo, amount: 8888n },
    ]);
    expect(await journalEntries(payment.id)).toEqual(["paid_after_close"]);
  });

  it("raises PAID_AFTER_CLOSE when a QR code closed before anyone scanned it is paid later", async () => {
    const payment = await created();
    const closed = await t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers);
    expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);
    // Alipay had no trade to close: the QR code stays payable.
    expect(trade(payment.paymentNo).state).toBe("created");
    t.simulator.pay("alipay", payment.paymentNo);
    await expectPaidAfterCloseRaised(payment.id, payment.paymentNo);
  });
});
