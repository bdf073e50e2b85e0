/**
 * A refund's outcome on the row layer: the refund store's guarded transition and the channel's
 * refund number as row statements in a `uow.rowTransaction`, on both drivers; and the row
 * transaction's deadlock retries (`deadlockAttempts`), which refund outcomes racing on one payment
 * need on MySQL: a deadlock is forced between two row transactions, and the victim is run again.
 */
import { DeadlockException } from "@mikro-orm/core";
import { afterAll, describe, expect, it } from "vitest";
import { insertInboxRow } from "../../src/callbacks/callback-store.js";
import { createUnitOfWork, isDuplicateKey, type UnitOfWork } from "../../src/db/unit-of-work.js";
import { newId } from "../../src/ids.js";
import type { RefundRow } from "../../src/refunds/refund-entity.js";
import { allowedRefundSources } from "../../src/refunds/refund-status.js";
import { insertRefund, reloadRefund, setChannelRefundNo, transitionRefundStatus } from "../../src/refunds/refund-store.js";
import { driverDatabases } from "../support/driver-databases.js";

function refundRow(paymentId: string): RefundRow {
  const now = new Date();
  const id = newId(now.getTime());
  return {
    id,
    refundNo: `R${id}`,
    paymentId,
    merchantId: newId(),
    merchantRefundNo: id,
    channel: "card",
    amount: 9_007_199_254_740_993n,
    currency: "USD",
    status: "PROCESSING",
    reason: "",
    channelRefundNo: null,
    feeReturned: 0n,
    failureReason: null,
    createdAt: now,
    updatedAt: now,
    succeededAt: null,
    nextQueryAt: now,
    queryAttempts: 0,
    sweepLeaseUntil: null,
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("refund outcome row statements", () => {
  const databases = driverDatabases("payments-refund-rows-");
  afterAll(() => databases.close());

  async function open(driver: "mysql" | "sqlite"): Promise<UnitOfWork> {
    const db = await databases.open(driver);
    return createUnitOfWork(db);
  }

  async function insertRefunds(uow: UnitOfWork, count: number): Promise<RefundRow[]> {
    const paymentId = newId();
    const rows = Array.from({ length: count }, () => refundRow(paymentId));
    await uow.transaction(uow.session(), async (tx) => {
      for (const row of rows) await insertRefund(tx, row);
    });
    return rows;
  }

  for (const driver of ["mysql", "sqlite"] as const) {
    it(`finishes a refund once with the guarded UPDATE in a row transaction, and rolls it back with the transaction (${driver})`, async () => {
      const uow = await open(driver);
      const [refund, rolledBack] = await insertRefunds(uow, 2);
      const succeededAt = new Date(Date.UTC(2026, 11, 2, 3, 4, 5, 678));
      const finish = (id: string) =>
        uow.rowTransaction(uow.session(), (tx) =>
          transitionRefundStatus(tx, id, allowedRefundSources("SUCCEEDED"), "SUCCEEDED", { channelRefundNo: "re_1", succeededAt, nextQueryAt: null }, succeededAt),
        );

      expect(await finish(refund!.id)).toBe(true);
      // A second report of the same outcome finds it no longer PROCESSING.
      expect(await finish(refund!.id)).toBe(false);
      const after = await reloadRefund(uow.session(), refund!.id);
      expect(after).toMatchObject({ status: "SUCCEEDED", channelRefundNo: "re_1", succeededAt, nextQueryAt: null, failureReason: null });
      expect(after!.amount).toBe(9_007_199_254_740_993n);

      // A later statement failing rolls the transition back with everything else in the transaction.
      await expect(
        uow.rowTransaction(uow.session(), async (tx) => {
          expect(await transitionRefundStatus(tx, rolledBack!.id, ["PROCESSING"], "FAILED", { failureReason: "x" }, new Date())).toBe(true);
          await setChannelRefundNo(tx, rolledBack!.id, "re_2", new Date());
          throw new Error("a later statement failed");
        }),
      ).rejects.toThrow("a later statement failed");
      expect(await reloadRefund(uow.session(), rolledBack!.id)).toMatchObject({ status: "PROCESSING", channelRefundNo: null, failureReason: null });
    });

    it(`runs a row transaction's work once when it fails with anything but a deadlock, whatever deadlockAttempts says (${driver})`, async () => {
      const uow = await open(driver);
      const [refund] = await insertRefunds(uow, 1);
      let runs = 0;
      const error = await uow
        .rowTransaction(
          uow.session(),
          async (tx) => {
            runs++;
            await setChannelRefundNo(tx, refund!.id, "re_3", new Date());
            // The same notification twice: the second fails on the inbox's unique key.
            const inbox = { channel: "card", notificationId: `evt_${refund!.id}`, paymentId: refund!.paymentId, createdAt: new Date() };
            await insertInboxRow(tx, { id: newId(), ...inbox });
            await insertInboxRow(tx, { id: newId(), ...inbox });
          },
          { deadlockAttempts: 3 },
        )
        .catch((e: unknown) => e);
      expect(isDuplicateKey(error)).toBe(true);
      expect(runs).toBe(1);
      expect((await reloadRefund(uow.session(), refund!.id))!.channelRefundNo).toBeNull();
    });
  }

  /**
   * T1 locks A and four more refunds (the heavier transaction), T2 locks B; then each asks for the
   * other's row. MySQL/MariaDB roll back the lighter one, T2.
   */
  async function forceDeadlock(uow: UnitOfWork, deadlockAttempts: number) {
    const [a, b, ...more] = await insertRefunds(uow, 6);
    const t1Locked = deferred();
    const t2Locked = deferred();
    let t2Runs = 0;
    const t1 = uow.rowTransaction(uow.session(), async (tx) => {
      for (const row of [a!, ...more]) await setChannelRefundNo(tx, row.id, "t1", new Date());
      t1Locked.resolve();
      await t2Locked.promise;
      await setChannelRefundNo(tx, b!.id, "t1", new Date());
    });
    const t2 = uow.rowTransaction(
      uow.session(),
      async (tx) => {
        const run = ++t2Runs;
        await setChannelRefundNo(tx, b!.id, `t2-${run}`, new Date());
        if (run === 1) {
          t2Locked.resolve();
          await t1Locked.promise;
        }
        await setChannelRefundNo(tx, a!.id, `t2-${run}`, new Date());
      },
      { deadlockAttempts },
    );
    const [t1Result, t2Result] = await Promise.allSettled([t1, t2]);
    const session = uow.session();
    return {
      t1Result,
      t2Result,
      t2Runs,
      a: (await reloadRefund(session, a!.id))!.channelRefundNo,
      b: (await reloadRefund(session, b!.id))!.channelRefundNo,
    };
  }

  it("gives up on the deadlock victim by default (mysql)", async () => {
    const uow = await open("mysql");
    const outcome = await forceDeadlock(uow, 1);
    expect(outcome.t1Result.status).toBe("fulfilled");
    expect(outcome.t2Result.status).toBe("rejected");
    expect((outcome.t2Result as PromiseRejectedResult).reason).toBeInstanceOf(DeadlockException);
    expect(outcome.t2Runs).toBe(1);
    expect([outcome.a, outcome.b]).toEqual(["t1", "t1"]);
  });

  it("runs the deadlock victim again with deadlockAttempts, after the other transaction commits (mysql)", async () => {
    const uow = await open("mysql");
    const outcome = await forceDeadlock(uow, 2);
    expect(outcome.t1Result.status).toBe("fulfilled");
    expect(outcome.t2Result.status).toBe("fulfilled");
    expect(outcome.t2Runs).toBe(2);
    expect([outcome.a, outcome.b]).toEqual(["t2-2", "t2-2"]);
  });
});
