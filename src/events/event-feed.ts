/**
 * The event feed of one replica: a loop that, every `pollIntervalMs`, numbers committed events (the
 * sequencer), reads the newly numbered ones from the database after the feed's position and hands
 * them to this replica's subscribers (the open WatchPayment and StreamEvents streams), and, at
 * most once an hour, deletes events past the retention that every reader has passed.
 *
 * The feed reads the database, not this process's writes, so events committed through any replica
 * reach the streams of every replica. A subscriber starts at the feed's position when it subscribes:
 * every event numbered after that place reaches it live; the ones at or before it are in the
 * database (a stream reads them there first, then drains what arrived meanwhile: no gap, no
 * duplicate). A subscriber's queue is bounded: one that falls too far behind is ended with
 * {@link FeedSubscriptionEnded} (`STREAM_QUEUE_FULL`) instead of growing without bound, and
 * resumes from the last event it took.
 */
import type { EventsConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { deleteEventsBefore, type EventFilter, eventsAfter, lastSequenced, type SequencedEvent } from "../outbox/outbox-store.js";
import { type CursorName, lowestPosition } from "./event-cursor-store.js";
import { createEventSequencer } from "./event-sequencer.js";

/** Events a subscriber may have waiting before it is ended (default of {@link EventFeedOptions.queueLimit}). */
export const SUBSCRIBER_QUEUE_LIMIT = 1000;
/** Events read per query when handing new events out, and queries per pass at most. */
const DISPATCH_PAGE = 500;
const DISPATCH_PAGES_PER_PASS = 20;
/** Retention: how often a replica deletes old events at most, and how many per statement and per run. */
const RETENTION_INTERVAL_MS = 3600_000;
const RETENTION_BATCH = 1000;
const RETENTION_BATCHES_PER_RUN = 100;
const DAY_MS = 86_400_000;

/** Why a subscription ended before its consumer closed it. */
export type SubscriptionEndReason =
  /** The consumer fell more than the queue limit behind. */
  | "STREAM_QUEUE_FULL"
  /** The replica is stopping. */
  | "SERVER_STOPPING";

/** A subscription ended by the feed; the consumer resumes from the last event it took. */
export class FeedSubscriptionEnded extends Error {
  constructor(readonly reason: SubscriptionEndReason) {
    super(
      reason === "STREAM_QUEUE_FULL"
        ? "the stream fell too far behind the event feed"
        : "the server is stopping",
    );
  }
}

/** Which events a subscriber gets: one merchant's, or one object's (a payment with its refunds). */
export type SubscriptionFilter = Pick<EventFilter, "merchantId" | "aggregateId">;

/**
 * New events for one consumer, in feed order. Iterating ends when the consumer closes it or its
 * signal aborts, and throws {@link FeedSubscriptionEnded} when the feed ends it.
 */
export interface FeedSubscription extends AsyncIterable<SequencedEvent> {
  /** The feed's place when it subscribed: every event numbered after it arrives here. */
  readonly position: bigint;
  /** Events received and not taken yet. */
  readonly buffered: number;
  /** Ends the subscription; a pending read finishes. */
  close(): void;
}

export interface EventFeed {
  /** One pass now (after the one in progress, if any): number new events, hand them to subscribers, delete old ones when due. */
  runOnce(): Promise<void>;
  /** Subscribes to the events numbered from now on that match `filter`. */
  subscribe(filter: SubscriptionFilter, options?: { signal?: AbortSignal }): Promise<FeedSubscription>;
  /** Open subscriptions on this replica. */
  readonly subscriberCount: number;
  /** Starts the loop (every `pollIntervalMs`). */
  start(): void;
  /** Stops the loop, ends every subscription (`SERVER_STOPPING`) and waits for the pass in progress. */
  stop(): Promise<void>;
}

export interface EventFeedOptions {
  uow: UnitOfWork;
  config: EventsConfig;
  /**
   * The readers whose cursors an event must be behind before retention deletes it (`webhooks`,
   * and `nats` when the bus relay is configured); default `webhooks`.
   */
  retainUntilReadBy?: readonly CursorName[];
  /** Events a subscriber may have waiting (default {@link SUBSCRIBER_QUEUE_LIMIT}). */
  queueLimit?: number;
  /** The clock retention reads (tests move it). */
  now?: () => Date;
  log: (message: string) => void;
  logError: (message: string, error: unknown) => void;
}

class Subscription implements FeedSubscription {
  private readonly queue: SequencedEvent[] = [];
  private waiting: { resolve: (result: IteratorResult<SequencedEvent>) => void; reject: (error: unknown) => void } | undefined;
  private ended: { error?: FeedSubscriptionEnded } | undefined;

  constructor(
    readonly position: bigint,
    private readonly filter: SubscriptionFilter,
    private readonly queueLimit: number,
    private readonly onEnd: (subscription: Subscription) => void,
  ) {}

  get buffered(): number {
    return this.queue.length;
  }

  matches(event: SequencedEvent): boolean {
    return (
      (this.filter.merchantId === undefined || event.merchantId === this.filter.merchantId) &&
      (this.filter.aggregateId === undefined || event.aggregateId === this.filter.aggregateId)
    );
  }

  offer(event: SequencedEvent): void {
    if (this.ended) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value: event, done: false });
    } else if (this.queue.length >= this.queueLimit) {
      this.end(new FeedSubscriptionEnded("STREAM_QUEUE_FULL"));
    } else {
      this.queue.push(event);
    }
  }

  /** Ends it: with an error the waiting events are dropped (the consumer resumes from its last one). */
  end(error?: FeedSubscriptionEnded): void {
    if (this.ended) return;
    this.ended = { error };
    if (error) this.queue.length = 0;
    this.onEnd(this);
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting && error) waiting.reject(error);
    else waiting?.resolve({ value: undefined, done: true });
  }

  close(): void {
    this.end();
  }

  next(): Promise<IteratorResult<SequencedEvent>> {
    const event = this.queue.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.ended?.error) return Promise.reject(this.ended.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<SequencedEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }
}

export function createEventFeed(options: EventFeedOptions): EventFeed {
  const { uow, config } = options;
  const sequencer = createEventSequencer({ uow });
  const queueLimit = options.queueLimit ?? SUBSCRIBER_QUEUE_LIMIT;
  const retainUntilReadBy = options.retainUntilReadBy ?? ["webhooks"];
  const clock = options.now ?? (() => new Date());
  const subscribers = new Set<Subscription>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  // The last place handed out to subscribers: read from the database once, then moved by passes only.
  let position: bigint | undefined;
  let positionRead: Promise<void> | undefined;
  let lastRetentionAt: number | undefined;
  // Passes run one after another: the sequencer never runs twice at once in this process, and the
  // position moves in one order.
  let passes: Promise<void> = Promise.resolve();

  const readPosition = (): Promise<void> => {
    positionRead ??= lastSequenced(uow.session()).then(
      (last) => {
        position ??= last;
      },
      (error: unknown) => {
        positionRead = undefined;
        throw error;
      },
    );
    return positionRead;
  };

  async function dispatch(): Promise<void> {
    await readPosition();
    const from = position!;
    const session = uow.session();
    if (subscribers.size === 0) {
      // Nobody to hand events to: skip ahead without reading them. Not when someone subscribed
      // meanwhile: they start at `from`, and the next pass hands them what follows it.
      const last = await lastSequenced(session);
      if (subscribers.size === 0 && position === from && last > from) position = last;
      return;
    }
    for (let page = 0; page < DISPATCH_PAGES_PER_PASS; page++) {
      const events = await eventsAfter(session, position!, DISPATCH_PAGE);
      // Handed out and the position moved in one synchronous step: a subscriber joining at any
      // moment gets either this page live or a position after it.
      for (const event of events) {
        for (const subscriber of subscribers) if (subscriber.matches(event)) subscriber.offer(event);
      }
      if (events.length > 0) position = events[events.length - 1]!.seq;
      if (events.length < DISPATCH_PAGE) break;
    }
  }

  async function retainIfDue(): Promise<void> {
    const now = clock().getTime();
    if (lastRetentionAt !== undefined && now - lastRetentionAt < RETENTION_INTERVAL_MS) return;
    lastRetentionAt = now;
    const session = uow.session();
    const passedByAll = await lowestPosition(session, retainUntilReadBy);
    const before = new Date(now - config.retentionDays * DAY_MS);
    let deleted = 0;
    for (let batch = 0; batch < RETENTION_BATCHES_PER_RUN && !stopped; batch++) {
      const count = await deleteEventsBefore(session, before, passedByAll, RETENTION_BATCH);
      deleted += count;
      if (count < RETENTION_BATCH) break;
    }
    if (deleted > 0) options.log(`event retention: deleted ${deleted} events created before ${before.toISOString()}`);
  }

  const runOnce = (): Promise<void> => {
    const pass = passes.then(async () => {
      await sequencer.runOnce();
      await dispatch();
      await retainIfDue();
    });
    passes = pass.catch(() => {});
    return pass;
  };

  const tick = () => {
    runOnce()
      .catch((error) => options.logError("event feed pass failed", error))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, config.pollIntervalMs);
      });
  };

  return {
    runOnce,
    async subscribe(filter, subscribeOptions = {}) {
      if (stopped) throw new FeedSubscriptionEnded("SERVER_STOPPING");
      await readPosition();
      if (stopped) throw new FeedSubscriptionEnded("SERVER_STOPPING");
      const subscription = new Subscription(position!, filter, queueLimit, (ended) => subscribers.delete(ended));
      subscribers.add(subscription);
      const { signal } = subscribeOptions;
      if (signal) {
        if (signal.aborted) subscription.close();
        else signal.addEventListener("abort", () => subscription.close(), { once: true });
      }
      return subscription;
    },
    get subscriberCount() {
      return subscribers.size;
    },
    start() {
      stopped = false;
      timer = setTimeout(tick, config.pollIntervalMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      for (const subscriber of [...subscribers]) subscriber.end(new FeedSubscriptionEnded("SERVER_STOPPING"));
      await passes;
    },
  };
}
