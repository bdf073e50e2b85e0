/**
 * Card refunds end to end on MySQL: RefundPayment over grpc-js, refunds created at the simulated
 * acquirer over real HTTP, refund webhooks through the shim, the refund sweeper, and the ledger
 * invariants checked after every scenario.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import { createCardChannel } from "../../src/channels/card/card-channel.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import type { SimulatorFaults } from "../../src/simulator/simulator.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { billRecords } from "../support/bill-records.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let seq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Card Refunds Shop");
  await t.registerCardWebhook();
});
afterAll(() => t?.stop());
afterEach(async () => {
  t.simulator.clearFaults();
  const ledger = await checkLedger(t.app.uow.session());
  expect(ledger.violations).toEqual([]);
  expect(ledger.ok).toBe(true);
});

async function getPayment(id: string) {
  const read = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: id } } }, merchant.headers);
  return read.payment!;
}

/** A card payment the shopper has paid, SUCCEEDED here. */
async function paidPayment(amount = 2000n) {
  const created = await t.grpc.payments.createPayment(
    {
      merchantOrderNo: `card-refund-${Date.now()}-${++seq}`,
      currency: "USD",
      amount,
      channel: Channel.CARD,
      subject: "Pu-erh cake",
      paymentMethod: "pm_card_visa",
    },
    merchant.headers,
  );
  const { id, paymentNo } = created.payment!;
  t.simulator.pay("card", paymentNo);
  const paid = await eventually(
    () => getPayment(id),
    (p) => p.status === PaymentStatus.SUCCEEDED,
  );
  expect(paid.status).toBe(PaymentStatus.SUCCEEDED);
  return paid;
}

async function refund(paymentId: string, amount: bigint, merchantRefundNo = `rf-${Date.now()}-${++seq}`) {
  const answer = await t.grpc.payments.refundPayment({ paymentId, merchantRefundNo, amount, reason: "changed their mind" }, merchant.headers);
  return answer.refund!;
}

async function getRefund(refundId: string) {
  return (await t.grpc.payments.getRefund({ refundId }, merchant.headers)).refund!;
}

function waitForRefund(refundId: string, status: RefundStatus) {
  return eventually(
    () => getRefund(refundId),
    (r) => r.status === status,
  );
}

function faultsFor(paymentNo: string, faults: SimulatorFaults) {
  t.simulator.setFaults({ channel: "card", outTradeNo: paymentNo, faults });
}

async function journalEntries(where: { refundId?: string; paymentId?: string }, entryType: string): Promise<number> {
  const [column, value] = where.refundId ? ["refund_id", where.refundId] : ["payment_id", where.paymentId];
  const rows = await t.app.db
    .em()
    .getConnection()
    .execute(`select count(*) as n from journal_entry where ${column} = ? and entry_type = ?`, [value, entryType]);
  return Number(rows[0]?.n);
}

describe("card refunds", () => {
  it("keeps a pending refund PROCESSING and finishes it by the acquirer's refund.updated webhook", async () => {
    const payment = await paidPayment(2000n);
    faultsFor(payment.paymentNo, { refundDelayMs: 150 });
    const pending = await refund(payment.id, 900n);
    expect(pending.status).toBe(RefundStatus.PROCESSING);
    expect(pending.channelRefundNo).toMatch(/^re_/);

    const done = await waitForRefund(pending.id, RefundStatus.SUCCEEDED);
    expect(done.status).toBe(RefundStatus.SUCCEEDED);
    expect(done.succeededAt).toBeDefined();
    const applied = await t.app.db.em().find(CallbackLog, { paymentId: payment.id, effect: { $like: "%PROCESSING->SUCCEEDED" } });
    expect(applied).toHaveLength(1);
    expect(JSON.parse(Buffer.from(applied[0]!.rawBody).toString("utf8")).type).toBe("refund.updated");
    expect((await getPayment(payment.id)).refundedAmount).toBe(900n);
  });

  it("fails a pending refund the acquirer abandons later, by webhook, and the amount is refundable again", async () => {
    const payment = await paidPayment(2000n);
    faultsFor(payment.paymentNo, { refundDelayMs: 100, refundFails: true });
    const pending = await refund(payment.id, 1500n);
    expect(pending.status).toBe(RefundStatus.PROCESSING);
    const failed = await waitForRefund(pending.id, RefundStatus.FAILED);
    expect(failed.status).toBe(RefundStatus.FAILED);
    expect(failed.failureReason).toContain("expired_or_canceled_card");
    expect(await journalEntries({ refundId: pending.id }, "refund_failed")).toBe(1);

    t.simulator.clearFaults();
    expect((await refund(payment.id, 2000n)).status).toBe(RefundStatus.SUCCEEDED);
  });

  it("applies refund webhooks delivered three times each and in reverse order exactly once", async () => {
    const payment = await paidPayment(2000n);
    // refund.created (pending) and refund.updated (succeeded) both wait out the delay, then go newest first.
    faultsFor(payment.paymentNo, { refundDelayMs: 50, notifyDelayMs: 400, outOfOrder: true, duplicateNotifies: 3 });
    const pending = await refund(payment.id, 2000n);
    expect(pending.status).toBe(RefundStatus.PROCESSING);

    const logs = await eventually(
      () =>
        t.app.db.em().find(CallbackLog, { paymentId: payment.id, notificationId: { $ne: null } }, { orderBy: { receivedAt: "asc", id: "asc" } }),
      (rows) => rows.filter((row) => JSON.parse(Buffer.from(row.rawBody).toString("utf8")).type.startsWith("refund.")).length >= 6,
    );
    const refundLogs = logs.filter((row) => JSON.parse(Buffer.from(row.rawBody).toString("utf8")).type.startsWith("refund."));
    const types = refundLogs.map((row) => JSON.parse(Buffer.from(row.rawBody).toString("utf8")).type);
    expect(types.slice(0, 3)).toEqual(["refund.updated", "refund.updated", "refund.updated"]);
    expect(types.slice(3)).toEqual(["refund.created", "refund.created", "refund.created"]);
    expect(refundLogs.filter((row) => row.verdict === "applied").map((row) => row.effect)).toEqual([
      `refund ${pending.id} PROCESSING->SUCCEEDED`,
      "unchanged",
    ]);
    expect(refundLogs.filter((row) => row.verdict === "duplicate")).toHaveLength(4);

    expect((await getRefund(pending.id)).status).toBe(RefundStatus.SUCCEEDED);
    expect(await journalEntries({ refundId: pending.id }, "refund_succeeded")).toBe(1);
    expect(await t.app.db.em().count(OutboxEvent, { aggregateId: payment.id, eventType: "refund.succeeded" })).toBe(1);
    const after = await getPayment(payment.id);
    expect(after.status).toBe(PaymentStatus.REFUNDED);
    expect(after.refundedAmount).toBe(2000n);
  });

  it("lists the day's card payments and refunds in the acquirer's bill, with the acquirer's fee", async () => {
    const payment = await paidPayment(2000n);
    const done = await refund(payment.id, 300n);
    const billDate = t.simulator.getTrade("card", payment.paymentNo)!.paidAt!.slice(0, 10);
    const channel = createCardChannel(t.config.card!);
    const records = (await billRecords(channel.fetchBill(billDate))).filter((record) => record.paymentNo === payment.paymentNo);
    expect(records).toEqual([
      expect.objectContaining({ kind: "refund", refundNo: done.refundNo, channelTradeNo: payment.channelTradeNo, amountMinor: 300n, currency: "USD" }),
      // 2.9 % of 20.00 is 0.58, plus 0.30.
      expect.objectContaining({ kind: "payment", channelTradeNo: payment.channelTradeNo, amountMinor: 2000n, feeMinor: 88n, currency: "USD" }),
    ]);
  });
});
