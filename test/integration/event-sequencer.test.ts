/**
 * The sequencer on MySQL with two app instances on one database: transactions of both append
 * events and commit out of id order (an earlier id commits later) while both instances' sequencers
 * run; a reader walking the feed by `seq` (never looking back) sees every event exactly once. And
 * one sequencer's passes never overlap in its process.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UnitOfWork } from "../../src/db/unit-of-work.js";
import { createEventSequencer } from "../../src/events/event-sequencer.js";
import { newId } from "../../src/ids.js";
import { appendEvent, eventsAfter } from "../../src/outbox/outbox-store.js";
import { startReplica, startTestApp, type TestApp } from "../support/test-app.js";

let first: TestApp;
let second: TestApp;

beforeAll(async () => {
  first = await startTestApp();
  second = await startReplica(first);
});
afterAll(async () => {
  await second?.stop();
  await first?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Appends `events` events in one transaction that stays open a while after the first one got its id. */
async function slowAppend(t: TestApp, merchantId: string, events: number, holdMs: number): Promise<string[]> {
  const { uow } = t.app;
  await uow.transaction(uow.session(), async (tx) => {
    for (let n = 0; n < events; n++) {
      await appendEvent(tx, { merchantId, aggregateId: newId(), eventType: "test.appended", payload: { n } });
      if (n === 0) await sleep(holdMs);
    }
  });
  const rows: Array<{ id: string }> = await t.app.db
    .em()
    .getConnection()
    .execute("select id from outbox_event where merchant_id = ? order by id", [merchantId]);
  return rows.map((row) => row.id);
}

describe("the event sequencer", () => {
  it("gives every event committed through two instances, out of id order, one place a forward-only reader sees exactly once", async () => {
    const sequencers = [createEventSequencer({ uow: first.app.uow, batchSize: 7 }), createEventSequencer({ uow: second.app.uow, batchSize: 7 })];
    const appended: string[] = [];
    let producing = true;
    const producers = [first, second].flatMap((t, instance) =>
      Array.from({ length: 4 }, async (_, worker) => {
        for (let round = 0; round < 12; round++) {
          const merchantId = newId().slice(0, 20) + String(instance) + String(worker) + String(round).padStart(4, "0");
          // Long holds and short ones interleave: ids taken early commit late.
          appended.push(...(await slowAppend(t, merchantId, 1 + (round % 3), (round * 7 + worker * 13) % 40)));
        }
      }),
    );
    const sequencing = (async () => {
      while (producing) {
        await Promise.all(sequencers.map((sequencer) => sequencer.runOnce()));
        await sleep(5);
      }
    })();

    const seen: string[] = [];
    let walked = 0n;
    const session = first.app.uow.session();
    const walk = async () => {
      for (;;) {
        const page = await eventsAfter(session, walked, 50);
        for (const event of page) seen.push(event.id);
        if (page.length > 0) walked = page[page.length - 1]!.seq;
        if (page.length < 50) return;
      }
    };
    const reading = (async () => {
      while (producing) {
        await walk();
        await sleep(3);
      }
    })();

    await Promise.all(producers);
    await sequencers[0]!.runOnce();
    producing = false;
    await Promise.all([sequencing, reading]);
    await walk();

    expect(appended.length).toBe(8 * 12 * 2);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...appended].sort());
  });

  it("runs one pass at a time in one process however often it is asked", async () => {
    let open = 0;
    let mostOpen = 0;
    const real = first.app.uow;
    const counting: UnitOfWork = {
      ...real,
      transaction: (async (session: Parameters<UnitOfWork["transaction"]>[0], work: Parameters<UnitOfWork["transaction"]>[1], options?: Parameters<UnitOfWork["transaction"]>[2]) => {
        open++;
        mostOpen = Math.max(mostOpen, open);
        try {
          return await real.transaction(session, work, options);
        } finally {
          open--;
        }
      }) as UnitOfWork["transaction"],
    };
    const sequencer = createEventSequencer({ uow: counting, batchSize: 2 });
    for (let n = 0; n < 6; n++) await slowAppend(first, `${newId().slice(0, 19)}serial${n}`, 1, 0);
    const results = await Promise.all(Array.from({ length: 5 }, () => sequencer.runOnce()));
    expect(mostOpen).toBe(1);
    expect(results.filter((last) => last !== undefined).length).toBeGreaterThanOrEqual(1);
  });
});
