/**
 * Callback log retention on both drivers: rows older than the retention go, in batches; newer ones
 * stay; inbox (de-duplication) rows are never deleted inside the channels' re-send windows.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CallbackInbox, CallbackLog } from "../../src/callbacks/callback-entities.js";
import { createUnitOfWork } from "../../src/db/unit-of-work.js";
import { createCallbackRetention, RETENTION_INTERVAL_MS } from "../../src/callbacks/callback-retention.js";
import type { Database } from "../../src/db/database.js";
import { newId } from "../../src/ids.js";
import { driverDatabases } from "../support/driver-databases.js";

const DAY = 24 * 60 * 60 * 1000;
const now = new Date();
const daysAgo = (days: number) => new Date(now.getTime() - days * DAY);

async function addLogRows(db: Database, receivedAt: Date, count: number, tag: string) {
  for (let i = 0; i < count; i++) {
    await db.em().insert(CallbackLog, {
      id: newId(receivedAt.getTime()),
      channel: "card",
      receivedAt,
      headers: {},
      rawBody: Buffer.from(tag),
      bodySha256: "0".repeat(64),
      bodyBytes: tag.length,
      bodyForm: "excerpt",
      verdict: "rejected",
      reason: tag,
      answerStatus: 400,
    });
  }
}

async function addInboxRow(db: Database, createdAt: Date, notificationId: string) {
  await db.em().insert(CallbackInbox, { id: newId(createdAt.getTime()), channel: "card", notificationId, createdAt });
}

async function reasons(db: Database): Promise<string[]> {
  return (await db.em().find(CallbackLog, {}, { orderBy: { receivedAt: "asc" } })).map((row) => row.reason!);
}

async function inboxIds(db: Database): Promise<string[]> {
  return (await db.em().find(CallbackInbox, {}, { orderBy: { createdAt: "asc" } })).map((row) => row.notificationId);
}

describe("callback retention", () => {
  const databases = driverDatabases("payments-retention-");
  afterAll(() => databases.close());

  for (const driver of ["mysql", "sqlite"] as const) {
    it(`deletes only rows past retention, in batches, and keeps inbox rows inside the re-send windows (${driver})`, async () => {
      const db = await databases.open(driver);
      await addLogRows(db, daysAgo(200), 12, "old");
      await addLogRows(db, daysAgo(91), 11, "old");
      await addLogRows(db, daysAgo(89), 3, "kept");
      await addLogRows(db, now, 2, "new");
      await addInboxRow(db, daysAgo(120), "evt_old");
      await addInboxRow(db, daysAgo(10), "evt_10d");
      await addInboxRow(db, daysAgo(3.5), "evt_3_5d");
      await addInboxRow(db, daysAgo(1), "evt_1d");

      // Batches of 5: 23 old rows take five statements.
      const retention = createCallbackRetention({ uow: createUnitOfWork(db), retentionDays: 90, batchRows: 5 });
      expect(await retention.runOnce(now)).toEqual({ callbackLogRows: 23, callbackInboxRows: 1 });
      expect(await reasons(db)).toEqual(["kept", "kept", "kept", "new", "new"]);
      expect(await inboxIds(db)).toEqual(["evt_10d", "evt_3_5d", "evt_1d"]);

      // A one-day retention still keeps the card acquirer's three-day re-send window (plus a day).
      const short = createCallbackRetention({ uow: createUnitOfWork(db), retentionDays: 1, batchRows: 1000 });
      expect(await short.runOnce(now)).toEqual({ callbackLogRows: 3, callbackInboxRows: 1 });
      expect(await reasons(db)).toEqual(["new", "new"]);
      expect(await inboxIds(db)).toEqual(["evt_3_5d", "evt_1d"]);
    });
  }

  it("runs at most once an hour per process", async () => {
    const db = await databases.open("sqlite");
    const retention = createCallbackRetention({ uow: createUnitOfWork(db), retentionDays: 90 });
    expect(await retention.runIfDue(now)).toBeDefined();
    await addLogRows(db, daysAgo(100), 1, "old");
    expect(await retention.runIfDue(new Date(now.getTime() + RETENTION_INTERVAL_MS - 1))).toBeUndefined();
    expect(await reasons(db)).toEqual(["old"]);
    expect(await retention.runIfDue(new Date(now.getTime() + RETENTION_INTERVAL_MS))).toEqual({
      callbackLogRows: 1,
      callbackInboxRows: 0,
    });
  });
});
