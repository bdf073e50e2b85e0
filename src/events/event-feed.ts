/**
 * The event feed of one replica: a loop that numbers committed events (the sequencer) and hands
 * new ones to this replica's open streams. PLACEHOLDER: only the sequencing loop so far.
 */
import type { EventsConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { createEventSequencer } from "./event-sequencer.js";

export interface EventFeed {
  /** One pass now: number new events, hand them to subscribers. */
  runOnce(): Promise<void>;
  /** Starts the loop (every `pollIntervalMs`). */
  start(): void;
  /** Stops the loop and waits for the pass in progress. */
  stop(): Promise<void>;
}

export interface EventFeedOptions {
  uow: UnitOfWork;
  config: EventsConfig;
  log: (message: string) => void;
  logError: (message: string, error: unknown) => void;
}

export function createEventFeed(options: EventFeedOptions): EventFeed {
  const sequencer = createEventSequencer({ uow: options.uow });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const runOnce = async () => {
    await sequencer.runOnce();
  };
  const tick = () => {
    running = runOnce()
      .catch((error) => options.logError("event feed pass failed", error))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, options.config.pollIntervalMs);
      });
  };
  return {
    runOnce,
    start() {
      stopped = false;
      timer = setTimeout(tick, options.config.pollIntervalMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
