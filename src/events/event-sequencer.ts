/**
 * Gives committed events their place in the feed. An event's id is made before its transaction
 * commits, so ids do not arrive in commit order across connections and replicas: a reader walking
 * by id could pass an id whose transaction has not committed yet and never see it. The sequencer
 * numbers only events already committed, in a transaction that locks the `sequence` cursor, so
 * numbers are handed out one batch at a time across every replica, each batch committed before the
 * next is numbered: a reader that has seen `seq` n has seen everything at or below n, for good.
 *
 * Any replica may run it at any time; the lock makes them take turns (and within one process, one
 * sequencer's passes never overlap). Events of one object keep
 * their order (their transactions are serialised by the object's row lock, so an earlier one is
 * committed, and numbered, no later than a later one) except across replicas whose clocks disagree
 * by more than the time between two changes, where a batch can hold both and order them by id.
 */
import type { UnitOfWork } from "../db/unit-of-work.js";
import { assignSequence, unsequencedEventIds } from "../outbox/outbox-store.js";
import { lockCursor, moveCursor } from "./event-cursor-store.js";

export interface EventSequencer {
  /** Numbers the committed events that have no place yet (up to a few batches); resolves with the last number handed out, or undefined when none was. */
  runOnce(): Promise<bigint | undefined>;
}

export interface EventSequencerOptions {
  uow: UnitOfWork;
  /** Events numbered per transaction (default 500). */
  batchSize?: number;
  /** Transactions per pass at most, so one pass stays short (default 20). */
  maxBatches?: number;
}

export function createEventSequencer(options: EventSequencerOptions): EventSequencer {
  const { uow } = options;
  const batchSize = options.batchSize ?? 500;
  const maxBatches = options.maxBatches ?? 20;
  // Passes of one sequencer run one after another: another would only wait for the cursor's lock
  // and hold a connection meanwhile.
  let passes: Promise<unknown> = Promise.resolve();
  return {
    runOnce() {
      const pass = passes.then(numberCommitted);
      passes = pass.catch(() => {});
      return pass;
    },
  };

  async function numberCommitted(): Promise<bigint | undefined> {
      let last: bigint | undefined;
      for (let batch = 0; batch < maxBatches; batch++) {
        const numbered = await uow.transaction(
          uow.session(),
          async (tx) => {
            const position = await lockCursor(tx, "sequence");
            const ids = await unsequencedEventIds(tx, batchSize);
            if (ids.length === 0) return undefined;
            const count = await assignSequence(tx, ids, position + 1n);
            // Numbers of ids another sequencer took meanwhile stay unused: gaps are harmless, reuse is not.
            const next = position + BigInt(ids.length);
            await moveCursor(tx, "sequence", next);
            return { next, count, full: ids.length === batchSize };
          },
          { deadlockAttempts: 3, readCommitted: true },
        );
        if (!numbered) break;
        last = numbered.next;
        if (!numbered.full) break;
      }
      return last;
  }
}
