/**
 * The statements a payment callback runs in its row transaction, on both drivers: the payment read
 * with only the columns its outcome needs, the guarded UPDATE with a list of allowed statuses
 * (`status in (...)`), the balance upsert written by hand, and a duplicate inbox row rolling back
 * everything written before it in the same transaction.
 */
import { afterAll, describe, expect, it } from "vitest";
import { insertInboxRow } from "../../src/callbacks/callback-store.js";
import type { Database } from "../../src/db/database.js";
import { findRows, updateRows } from "../../src/db/rows.js";
import { createUnitOfWork, isDuplicateKey } from "../../src/db/unit-of-work.js";
import { Discrepancy, type DiscrepancyRow } from "../../src/discrepancies/discrepancy-entity.js";
import { discrepancyExists, insertDiscrepancy } from "../../src/discrepancies/discrepancy-store.js";
import { newId } from "../../src/ids.js";
import { AccountBalance } from "../../src/ledger/ledger-entities.js";
import { addToBalance } from "../../src/ledger/ledger-store.js";
import type { PaymentRow } from "../../src/payments/payment-entity.js";
import { findByPaymentNo, insertPayment, reloadPayment } from "../../src/payments/payment-store.js";
import { driverDatabases } from "../support/driver-databases.js";

function discrepancy(status: string, merchantId: string): DiscrepancyRow {
  const id = newId();
  return {
    id,
    kind: "PAID_AFTER_CLOSE",
    subjectRef: id,
    channel: "card",
    merchantId,
    paymentId: id,
    channelTradeNo: null,
    amount: 100n,
    currency: "USD",
    detail: "test",
    status,
    resolution: null,
    createdAt: new Date(),
    resolvedAt: null,
    resolvedBy: null,
    reconciliationRunId: null,
    refundId: null,
  };
}

/** A payment with every column set, nothing left to a default, so a wrong column shows. */
function paymentRow(): PaymentRow {
  const id = newId();
  return {
    id,
    paymentNo: `P${id}`,
    merchantId: newId(),
    merchantOrderNo: `order-${id}`,
    amount: 9_007_199_254_740_993n,
    currency: "USD",
    channel: "card",
    status: "PENDING",
    statusReason: "waiting",
    subject: "Tea",
    channelTradeNo: `pi_${id}`,
    actionKind: "CLIENT_SECRET",
    actionValue: `pi_${id}_secret_x`,
    refundedAmount: 7n,
    refundPendingAmount: 5n,
    fee: 3n,
    notifyUrl: "https://shop.example/notify",
    metadata: { cart: "42", note: "π" },
    paymentMethodToken: "pm_card_visa",
    requestHash: "a".repeat(64),
    createdAt: new Date("2026-12-01T10:00:00.123Z"),
    updatedAt: new Date("2026-12-01T10:00:01.456Z"),
    paidAt: new Date("2026-12-01T10:00:02.789Z"),
    succeededAt: null,
    closedAt: new Date("2026-12-01T10:00:03.001Z"),
    expiresAt: new Date("2026-12-01T10:30:00.000Z"),
    nextQueryAt: new Date("2026-12-01T10:01:00.000Z"),
    queryAttempts: 2,
    finalChannelQueries: 1,
    sweepLeaseUntil: null,
  };
}

describe("callback row statements", () => {
  const databases = driverDatabases("payments-callback-rows-");
  afterAll(() => databases.close());

  async function open(driver: "mysql" | "sqlite"): Promise<Database> {
    const db = await databases.open(driver);
    return db;
  }

  for (const driver of ["mysql", "sqlite"] as const) {
    it(`reads a callback's payment with only the columns its outcome needs, converted as a full read (${driver})`, async () => {
      const db = await open(driver);
      const uow = createUnitOfWork(db);
      const payment = paymentRow();
      await uow.rowTransaction(uow.session(), (tx) => insertPayment(tx, payment, [], undefined));

      const full = await reloadPayment(uow.session(), payment.id);
      const read = await uow.rowTransaction(uow.session(), (tx) => findByPaymentNo(tx, "card", payment.paymentNo));
      const outcomeKeys = [
        "id", "paymentNo", "merchantId", "merchantOrderNo", "status", "amount", "currency", "refundedAmount", "fee", "channel",
        "channelTradeNo", "subject", "statusReason", "metadata", "createdAt", "paidAt", "closedAt", "expiresAt",
      ];
      expect(Object.keys(read!).sort()).toEqual([...outcomeKeys].sort());
      expect(read).toEqual(Object.fromEntries(outcomeKeys.map((key) => [key, full[key as keyof PaymentRow]])));
      expect(read!.amount).toBe(payment.amount);
      expect(read!.metadata).toEqual(payment.metadata);
      expect(read!.createdAt).toEqual(payment.createdAt);
      // No secret or token comes along: the client secret, the payment-method token, the notify URL.
      expect(read).not.toHaveProperty("actionValue");
      expect(read).not.toHaveProperty("paymentMethodToken");
      expect(await findByPaymentNo(uow.session(), "alipay", payment.paymentNo)).toBeUndefined();
    });

    it(`updates only rows whose status is in the list, for lists of any length (${driver})`, async () => {
      const db = await open(driver);
      const em = db.em();
      const session = createUnitOfWork(db).session();
      const merchantId = newId();
      for (const status of ["OPEN", "HELD", "RESOLVED"]) await insertDiscrepancy(session, discrepancy(status, merchantId));

      expect(await updateRows(em, Discrepancy, { merchantId, status: ["OPEN", "HELD"] }, { resolution: "two" })).toBe(2);
      expect(await updateRows(em, Discrepancy, { merchantId, status: ["RESOLVED"] }, { resolution: "one" })).toBe(1);
      expect(await updateRows(em, Discrepancy, { merchantId, status: ["NONE", "OTHER", "THIRD"] }, { resolution: "x" })).toBe(0);
      expect(await updateRows(em, Discrepancy, { merchantId, status: [] }, { resolution: "x" })).toBe(0);

      const after = await findRows<DiscrepancyRow>(db.em(), Discrepancy, { merchantId });
      expect(Object.fromEntries(after.map((row) => [row.status, row.resolution]))).toEqual({ OPEN: "two", HELD: "two", RESOLVED: "one" });
    });

    it(`adds to a balance slot with the hand-written upsert, exact above 2^53 (${driver})`, async () => {
      const db = await open(driver);
      const uow = createUnitOfWork(db);
      const merchantId = newId();
      const big = 9_007_199_254_740_993n;
      await uow.rowTransaction(uow.session(), async (tx) => {
        for (let i = 0; i < 20; i++) await addToBalance(tx, merchantId, `merchant_pending:${merchantId}`, "USD", big, new Date());
      });
      const slots = await findRows<{ balance: bigint; slot: number }>(db.em(), AccountBalance, { merchantId });
      expect(slots.reduce((sum, row) => sum + row.balance, 0n)).toBe(20n * big);
      expect(slots.length).toBeLessThan(20);
    });

    it(`rolls back the whole row transaction when the inbox row is a duplicate (${driver})`, async () => {
      const db = await open(driver);
      const uow = createUnitOfWork(db);
      const inbox = { id: newId(), channel: "card", notificationId: `evt_${newId()}`, paymentId: newId(), createdAt: new Date() };
      await insertInboxRow(uow.session(), inbox);
      const row = discrepancy("OPEN", newId());
      const failure = await uow
        .rowTransaction(uow.session(), async (tx) => {
          await insertDiscrepancy(tx, row);
          await insertInboxRow(tx, { ...inbox, id: newId() });
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(isDuplicateKey(failure)).toBe(true);
      expect(await discrepancyExists(uow.session(), row.kind, row.subjectRef)).toBe(false);
    });
  }
});
