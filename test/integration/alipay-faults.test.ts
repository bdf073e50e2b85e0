/**
 * Alipay-only faults through the whole service on MySQL: a QR code closed before anyone scanned it
 * stays payable at Alipay, so its payment arrives after close; and a success read while PENDING
 * but applied after a close committed. The faults every channel shares (duplicated, early, late,
 * reordered, dropped, forged and altered notifies; gateway 5xx, timeouts and unsigned answers;
 * paid after a confirmed close) are in channel-contract.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { applyChannelStatus } from "../../src/payments/channel-outcome.js";
import { Payment as PaymentEntity } from "../../src/payments/payment-entity.js";
import type { SimTradeView } from "../../src/simulator/simulator.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Fault Tolerant Tea");
});
afterEach(async () => {
  t.simulator.clearFaults();
  const ledger = await checkLedger(t.app.uow.session());
  expect(ledger.violations).toEqual([]);
  expect(ledger.ok).toBe(true);
});
afterAll(() => t?.stop());

function alipayPayment(overrides: Record<string, unknown> = {}) {
  return {
    merchantOrderNo: `fault-${Date.now()}-${++orderSeq}`,
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
    expect(await t.app.db.em().count(OutboxEvent, { aggregateId: paymentId, eventType: "payment.succeeded" })).toBe(0);
    expect(await journalEntries(paymentId)).toEqual(["paid_after_close"]);

    // Asking Alipay again sees the same money: no second discrepancy, no state change.
    const queried = await t.grpc.payments.queryPayment(lookup(paymentId), merchant.headers);
    expect(queried.payment?.status).toBe(PaymentStatus.CLOSED);

    const resolved = await t.grpc.settlement.resolveDiscrepancy(
      { discrepancyId: raised[0]!.id, resolution: `refunded the shopper on Alipay trade ${channelTradeNo}`, resolvedBy: "ops" },
      t.adminHeaders,
    );
    expect(resolved.discrepancy).toMatchObject({ status: "RESOLVED", resolution: `refunded the shopper on Alipay trade ${channelTradeNo}` });
    const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
    expect(open.discrepancies.filter((d) => d.paymentId === paymentId)).toEqual([]);
  }

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
