/**
 * Writers of events are never failed by the sequencer: with sequencers of two instances running
 * flat out, transactions appending 20 events each, with no deadlock retry of their own, all commit,
 * and every event gets a number. The sequencer runs at READ COMMITTED (no gap locks; rows not yet
 * committed are read past rather than waited on). On this machine the same test also passed at
 * REPEATABLE READ with single-row inserts; a deadlock was seen there only against a multi-row
 * INSERT (the NATS crash test's bulk load), which the service itself does not issue.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createEventSequencer } from "../../src/events/event-sequencer.js";
import { newId } from "../../src/ids.js";
import { appendEvent } from "../../src/outbox/outbox-store.js";
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

it("lets writers of many events per transaction commit while two sequencers run", async () => {
  const sequencers = [createEventSequencer({ uow: first.app.uow, batchSize: 50 }), createEventSequencer({ uow: second.app.uow, batchSize: 50 })];
  let writing = true;
  const sequencing = Promise.all(
    sequencers.map(async (sequencer) => {
      while (writing) await sequencer.runOnce();
    }),
  );
  const failures: unknown[] = [];
  let committed = 0;
  await Promise.all(
    [first, second].flatMap((t) =>
      Array.from({ length: 4 }, async () => {
        for (let round = 0; round < 40; round++) {
          const { uow } = t.app;
          try {
            // No deadlockAttempts: a deadlock here fails the test.
            await uow.transaction(uow.session(), async (tx) => {
              const merchantId = newId();
              for (let n = 0; n < 20; n++) {
                await appendEvent(tx, { merchantId, aggregateId: newId(), eventType: "test.appended", payload: { n } });
              }
            });
            committed++;
          } catch (error) {
            failures.push(error);
          }
        }
      }),
    ),
  );
  writing = false;
  await sequencing;
  while ((await sequencers[0]!.runOnce()) !== undefined) {
    // Number what is left.
  }
  expect(failures.map(String)).toEqual([]);
  expect(committed).toBe(320);
  const rows: Array<{ unnumbered: unknown; total: unknown }> = await first.app.db
    .em()
    .getConnection()
    .execute("select sum(seq is null) as unnumbered, count(*) as total from outbox_event where event_type = 'test.appended'");
  expect(Number(rows[0]!.total)).toBe(6400);
  expect(Number(rows[0]!.unnumbered)).toBe(0);
}, 120_000);
