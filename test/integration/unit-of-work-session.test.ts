/**
 * A unit-of-work session forks an EntityManager only when a store makes an ORM call or an ORM
 * transaction is opened on it; row statements and row transactions run without one
 * (docs/performance.md). On both drivers: what each use forks, and that a session's row
 * statements still run outside an ORM transaction opened on the same session, as before. And ORM
 * transactions (commit, rollback, savepoints) run without MikroORM's AsyncLocalStorage.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { afterAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.js";
import { createUnitOfWork } from "../../src/db/unit-of-work.js";
import type { DiscrepancyRow } from "../../src/discrepancies/discrepancy-entity.js";
import { discrepancyExists, findDiscrepancy, insertDiscrepancies, insertDiscrepancy } from "../../src/discrepancies/discrepancy-store.js";
import { newId } from "../../src/ids.js";
import { DRIVERS, driverDatabases } from "../support/driver-databases.js";

function discrepancy(): DiscrepancyRow {
  const id = newId();
  return {
    id,
    kind: "PAID_AFTER_CLOSE",
    subjectRef: id,
    channel: "card",
    merchantId: newId(),
    paymentId: id,
    channelTradeNo: null,
    amount: 100n,
    currency: "USD",
    detail: "test",
    status: "OPEN",
    resolution: null,
    createdAt: new Date(),
    resolvedAt: null,
    resolvedBy: null,
    reconciliationRunId: null,
    refundId: null,
  };
}

/** A unit of work over `db` that counts the EntityManagers it forks. */
function countingUnitOfWork(db: Database) {
  const forks = { count: 0 };
  const uow = createUnitOfWork({
    em: () => {
      forks.count++;
      return db.em();
    },
    system: db.system,
  });
  return { uow, forks };
}

describe("unit-of-work sessions", () => {
  const databases = driverDatabases("payments-uow-session-");
  afterAll(() => databases.close());

  for (const driver of DRIVERS) {
    it(`row statements and row transactions on a session fork no EntityManager (${driver})`, async () => {
      const { uow, forks } = countingUnitOfWork(await databases.open(driver));
      const before = forks.count;
      const session = uow.session();
      const row = discrepancy();
      await uow.rowTransaction(session, (tx) => insertDiscrepancy(tx, row));
      const other = discrepancy();
      await insertDiscrepancy(session, other);
      expect(await discrepancyExists(session, row.kind, row.subjectRef)).toBe(true);
      expect(await discrepancyExists(uow.session(), other.kind, other.subjectRef)).toBe(true);
      expect(forks.count - before).toBe(0);
    });

    it(`an ORM call forks the session once, and its later ORM calls reuse that fork (${driver})`, async () => {
      const { uow, forks } = countingUnitOfWork(await databases.open(driver));
      const session = uow.session();
      const row = discrepancy();
      await insertDiscrepancy(session, row);
      const before = forks.count;
      expect((await findDiscrepancy(session, row.id))?.subjectRef).toBe(row.subjectRef);
      expect(await findDiscrepancy(session, newId())).toBeUndefined();
      expect(forks.count - before).toBe(1);
    });
  }

  for (const driver of DRIVERS) {
    it(`ORM transactions commit, roll back, nest as savepoints, and never enter an AsyncLocalStorage (${driver})`, async () => {
      const { uow } = countingUnitOfWork(await databases.open(driver));
      // MikroORM's em.transactional would run the work in one; the first run switches Node's promise
      // hooks on for the whole process, and every promise pays from then on (docs/performance.md).
      const entered: string[] = [];
      const run = AsyncLocalStorage.prototype.run;
      const enterWith = AsyncLocalStorage.prototype.enterWith;
      AsyncLocalStorage.prototype.run = function (this: AsyncLocalStorage<unknown>, ...args: Parameters<typeof run>) {
        entered.push("run");
        return run.apply(this, args);
      } as typeof run;
      AsyncLocalStorage.prototype.enterWith = function (this: AsyncLocalStorage<unknown>, store: unknown) {
        entered.push("enterWith");
        return enterWith.call(this, store);
      };
      try {
        const session = uow.session();
        const [committed, rolledBack, outer, inner] = [discrepancy(), discrepancy(), discrepancy(), discrepancy()];
        await uow.transaction(session, (tx) => insertDiscrepancies(tx, [committed]));
        await expect(
          uow.transaction(session, async (tx) => {
            await insertDiscrepancies(tx, [rolledBack]);
            throw new Error("abandon");
          }),
        ).rejects.toThrow("abandon");
        await uow.transaction(session, async (tx) => {
          await insertDiscrepancies(tx, [outer]);
          await expect(
            uow.transaction(tx, async (nested) => {
              await insertDiscrepancies(nested, [inner]);
              expect(await discrepancyExists(nested, inner.kind, inner.subjectRef)).toBe(true);
              throw new Error("abandon the savepoint");
            }),
          ).rejects.toThrow("abandon the savepoint");
          expect(await discrepancyExists(tx, outer.kind, outer.subjectRef)).toBe(true);
        });
        const check = uow.session();
        expect(await discrepancyExists(check, committed.kind, committed.subjectRef)).toBe(true);
        expect(await discrepancyExists(check, rolledBack.kind, rolledBack.subjectRef)).toBe(false);
        expect(await discrepancyExists(check, outer.kind, outer.subjectRef)).toBe(true);
        expect(await discrepancyExists(check, inner.kind, inner.subjectRef)).toBe(false);
      } finally {
        AsyncLocalStorage.prototype.run = run;
        AsyncLocalStorage.prototype.enterWith = enterWith;
      }
      expect(entered).toEqual([]);
    });
  }

  it("a session's row statements stay outside an ORM transaction opened on the same session (mysql)", async () => {
    const { uow } = countingUnitOfWork(await databases.open("mysql"));
    const session = uow.session();
    const row = discrepancy();
    const seen = await uow.transaction(session, async (tx) => {
      await insertDiscrepancies(tx, [row]);
      return {
        inside: await discrepancyExists(tx, row.kind, row.subjectRef),
        outside: await discrepancyExists(session, row.kind, row.subjectRef),
      };
    });
    expect(seen).toEqual({ inside: true, outside: false });
    expect(await discrepancyExists(session, row.kind, row.subjectRef)).toBe(true);
  });
});
