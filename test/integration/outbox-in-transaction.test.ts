/**
 * Outbox events are written with the row helpers inside whatever transaction the caller holds (the
 * unit of work's ORM transaction or its row transaction): a rolled-back change leaves no event behind, on both drivers.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { createUnitOfWork } from "../../src/db/unit-of-work.js";
import { newId } from "../../src/ids.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { recordPaymentEvent } from "../../src/payments/payment-transitions.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

let mysql: TestDatabase;
const opened: Database[] = [];
beforeAll(async () => {
  mysql = await createTestDatabase();
});
afterAll(async () => {
  for (const db of opened) await db.close();
  await mysql?.drop();
});

for (const driver of ["mysql", "sqlite"] as const) {
  describe(`outbox events on ${driver}`, () => {
    async function open(): Promise<Database> {
      const db = await openDatabase({
        url: driver === "mysql" ? mysql.url : undefined,
        dataDir: mkdtempSync(join(tmpdir(), "payments-outbox-")),
      });
      opened.push(db);
      return db;
    }

    it("commit and roll back with an ORM transaction", async () => {
      const db = await open();
      const kept = { id: newId(), merchantId: newId() };
      const dropped = { id: newId(), merchantId: newId() };
      const uow = createUnitOfWork(db);
      await uow.transaction(uow.session(), (tx) => recordPaymentEvent(tx, kept, "test.kept", {}));
      await expect(
        uow.transaction(uow.session(), async (tx) => {
          await recordPaymentEvent(tx, dropped, "test.dropped", {});
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await db.em().find(OutboxEvent, { aggregateId: kept.id })).toHaveLength(1);
      expect(await db.em().find(OutboxEvent, { aggregateId: dropped.id })).toHaveLength(0);
    });

    it("commit and roll back with a row transaction", async () => {
      const db = await open();
      const kept = { id: newId(), merchantId: newId() };
      const dropped = { id: newId(), merchantId: newId() };
      const uow = createUnitOfWork(db);
      await uow.rowTransaction(uow.session(), (tx) => recordPaymentEvent(tx, kept, "test.kept", {}));
      await expect(
        uow.rowTransaction(uow.session(), async (tx) => {
          await recordPaymentEvent(tx, dropped, "test.dropped", {});
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await db.em().find(OutboxEvent, { aggregateId: kept.id })).toHaveLength(1);
      expect(await db.em().find(OutboxEvent, { aggregateId: dropped.id })).toHaveLength(0);
    });
  });
}
