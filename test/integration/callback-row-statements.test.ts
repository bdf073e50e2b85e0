/**
 * The statements a payment callback runs in its row transaction, on both drivers: the guarded
 * UPDATE with a list of allowed statuses (`status in (...)`), the balance upsert written by hand,
 * and a duplicate inbox row rolling back everything written before it in the same transaction.
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

describe("callback row statements", () => {
  const databases = driverDatabases("payments-callback-rows-");
  afterAll(() => databases.close());

  async function open(driver: "mysql" | "sqlite"): Promise<Database> {
    const db = await databases.open(driver);
    return db;
  }

  for (const driver of ["mysql", "sqlite"] as const) {
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
