/**
 * The reconciliation engine with bills fed from arrays (a BillFile over records in memory), on
 * MySQL and on the embedded database: what the simulator's bills cannot easily show. A bill refused
 * in its validation pass stores nothing; the item cap keeps the first items and counts the rest;
 * two runs of the same day racing raise each discrepancy once and post the day's channel fee once;
 * our paid payment of the day is matched by its line, or missing on the channel's side without one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { BillFormatError, type BillFile, type BillRecord, type ChannelName, type PaymentChannel } from "../../src/channels/channel.js";
import { ChannelRegistry } from "../../src/channels/registry.js";
import { ValidationError } from "../../src/errors.js";
import { billDateOf, billDayWindow } from "../../src/reconciliation/bill-days.js";
import { createReconciliationService } from "../../src/reconciliation/reconciliation-service.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

const CHANNEL: ChannelName = "card";
let t: TestApp;
const bills = new Map<string, Array<BillRecord | Error>>();

/** A bill of the given records (an Error in the list is thrown when the reader reaches it). */
function arrayBill(billDate: string, entries: Array<BillRecord | Error>): BillFile {
  return {
    channel: CHANNEL,
    billDate,
    async *records() {
      for (const entry of entries) {
        if (entry instanceof Error) throw entry;
        yield entry;
      }
    },
    dispose: async () => {},
  };
}

const channel = {
  name: CHANNEL,
  fetchBill: async (billDate: string) => arrayBill(billDate, bills.get(billDate) ?? []),
} as unknown as PaymentChannel;

function service(options: { itemCap?: number; now?: () => Date } = {}) {
  return createReconciliationService({
    uow: t.app.uow,
    channels: new ChannelRegistry([channel]),
    payments: { queryPayment: () => Promise.reject(new Error("no payment of these bills is ours")) },
    feeRates: {},
    log: () => {},
    itemCap: options.itemCap,
    now: options.now,
  });
}

function foreignLine(billDate: string, n: number, overrides: Partial<BillRecord> = {}): BillRecord {
  return {
    kind: "payment",
    paymentNo: `P-FOREIGN-${billDate}-${n}`,
    amountMinor: 1_000n + BigInt(n),
    feeMinor: 30n,
    currency: "USD",
    occurredAt: new Date(billDayWindow(CHANNEL, billDate).from.getTime() + n * 1000),
    line: n,
    ...overrides,
  };
}

async function countOf(sql: string, params: unknown[] = []): Promise<number> {
  const [row] = (await t.app.db.em().getConnection().execute(sql, params)) as Array<{ n: unknown }>;
  return Number(row?.n ?? 0);
}

async function stored(billDate: string) {
  return {
    runs: await countOf("select count(*) as n from reconciliation_run where bill_date = ?", [billDate]),
    discrepancies: await countOf("select count(*) as n from discrepancy where subject_ref like ?", [`card:p:P-FOREIGN-${billDate}-%`]),
    entries: await countOf("select count(*) as n from journal_entry where ref like ?", [`channel_fee:card:${billDate}:%`]),
  };
}

async function rejection(promise: Promise<unknown>): Promise<ValidationError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("expected the bill to be refused");
}

describe.each(["mysql", "sqlite"] as const)("on %s", (driver) => {
  beforeAll(async () => {
    t = await startTestApp({ database: driver });
    bills.clear();
  });
  afterAll(() => t?.stop());

  describe("the validation pass", () => {
    it.each([
      ["a currency we do not know", (d: string) => [foreignLine(d, 1), foreignLine(d, 2, { currency: "XXQ" })], /line 2: unknown currency/],
      ["a line dated outside the bill day", (d: string) => [foreignLine(d, 1), foreignLine(d, 2, { occurredAt: new Date(billDayWindow(CHANNEL, d).to) })], /line 2: dated .* outside/],
      ["a second currency", (d: string) => [foreignLine(d, 1), foreignLine(d, 2, { currency: "EUR" })], /line 2: a second currency EUR/],
      ["a malformed line the reader reports", (d: string) => [foreignLine(d, 1), foreignLine(d, 2), new BillFormatError(CHANNEL, "bad amount", 3)], /line 3: bad amount/],
    ])("refuses %s naming the line, and stores nothing", async (_name, lines, message) => {
      const billDate = "2026-10-01";
      bills.set(billDate, lines(billDate));
      const before = await stored(billDate);
      const error = await rejection(service().reconcileChannel(CHANNEL, billDate));
      expect(error.reason).toBe("BILL_INVALID");
      expect(error.violations[0]!.field).toBe("bill");
      expect(error.violations[0]!.description).toMatch(message);
      expect(await stored(billDate)).toEqual(before);
    });
  });

  describe("bounds and races", () => {
    it("keeps the first items of a run up to the cap, counts the rest, and says it was capped", async () => {
      const billDate = "2026-10-02";
      bills.set(billDate, [1, 2, 3, 4, 5].map((n) => foreignLine(billDate, n)));
      const run = await service({ itemCap: 2 }).reconcileChannel(CHANNEL, billDate);
      expect(run.missingOnOurSide).toBe(5n);
      expect(run.itemsCapped).toBe(true);
      expect(await countOf("select count(*) as n from reconciliation_item where run_id = ?", [run.id])).toBe(2);
      expect((await stored(billDate)).discrepancies).toBe(2);
    });

    it("two runs of the same day at once raise each discrepancy once and post the channel fee once", async () => {
      const billDate = "2026-10-03";
      bills.set(billDate, [1, 2, 3].map((n) => foreignLine(billDate, n)));
      const engine = service();
      const runs = await Promise.all([engine.reconcileChannel(CHANNEL, billDate), engine.reconcileChannel(CHANNEL, billDate)]);
      expect(runs.map((run) => run.channelFee)).toEqual([90n, 90n]);
      expect(runs[0]!.channelFeePosted + runs[1]!.channelFeePosted).toBe(90n);
      expect((await stored(billDate)).discrepancies).toBe(3);
      const [posted] = (await t.app.db.em().getConnection().execute(
        `select coalesce(sum(p.amount), 0) as total from journal_posting p join journal_entry e on e.id = p.entry_id
         where e.ref like ? and p.account = 'channel_fee_expense:card'`,
        [`channel_fee:card:${billDate}:%`],
      )) as Array<{ total: unknown }>;
      expect(BigInt(String(posted!.total))).toBe(90n);
    });

    it("a corrected bill posts only the difference to what the day's earlier runs posted", async () => {
      const billDate = "2026-10-04";
      bills.set(billDate, [foreignLine(billDate, 1)]);
      const engine = service();
      expect((await engine.reconcileChannel(CHANNEL, billDate)).channelFeePosted).toBe(30n);
      bills.set(billDate, [foreignLine(billDate, 1), foreignLine(billDate, 2, { feeMinor: 45n })]);
      expect((await engine.reconcileChannel(CHANNEL, billDate)).channelFeePosted).toBe(45n);
      expect((await engine.reconcileChannel(CHANNEL, billDate)).channelFeePosted).toBe(0n);
      expect((await stored(billDate)).entries).toBe(2);
    });
  });

  describe("our side of the day", () => {
    it("matches our paid payment by its line, and without one reports it missing on the channel's side", async () => {
      await t.registerCardWebhook();
      const merchant = await t.createMerchant();
      const created = (
        await t.grpc.payments.createPayment(
          { merchantOrderNo: `engine-${driver}`, currency: "USD", amount: 1_234n, channel: Channel.CARD, subject: "tea", paymentMethod: "pm_card_visa" },
          merchant.headers,
        )
      ).payment!;
      t.simulator.pay("card", created.paymentNo);
      const paid = await eventually(
        async () => (await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.id } } }, merchant.headers)).payment!,
        (p) => p.status === PaymentStatus.SUCCEEDED,
      );
      expect(paid.status).toBe(PaymentStatus.SUCCEEDED);
      const billDate = billDateOf(CHANNEL, new Date());
      const later = () => new Date(Date.now() + 2 * 86_400_000);
      bills.set(billDate, [{ ...foreignLine(billDate, 1), paymentNo: created.paymentNo, amountMinor: 1_234n }]);
      const matched = await service({ now: later }).reconcileChannel(CHANNEL, billDate);
      expect([matched.matched, matched.missingOnChannelSide]).toEqual([1n, 0n]);
      bills.set(billDate, []);
      const missing = await service({ now: later }).reconcileChannel(CHANNEL, billDate);
      expect([missing.matched, missing.missingOnChannelSide]).toEqual([0n, 1n]);
    });
  });

});
