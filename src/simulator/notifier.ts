/**
 * Delivers channel notifications over HTTP the way channels do: POST, check for the channel's
 * acknowledgement, re-send on the channel's schedule (scaled by the time scale) until acknowledged
 * or the schedule runs out. Notify faults (delay, drop, duplicates, order) are applied here.
 */
import type { ChannelName } from "../channels/channel.js";
import { sendHttpRequest } from "../channels/http-client.js";
import type { FaultRegistry } from "./faults.js";
import type { SimNotificationRecord, SimTrade } from "./trade-store.js";

/** What a channel side hands over to be delivered. */
export interface NotificationSpec {
  /** The channel's notification id (constant across re-sends). */
  id: string;
  kind: string;
  url: string;
  /** Gaps before each re-send, in real channel milliseconds; multiplied by the time scale. */
  retryGapsMs: readonly number[];
  /** Builds the request for an attempt (1-based); called again for every re-send. */
  build(attempt: number): { headers: Record<string, string>; body: string | Buffer };
  /** Whether the receiver's answer is the channel's acknowledgement. */
  isAcknowledged(status: number, body: Buffer): boolean;
}

interface QueuedNotification {
  trade: SimTrade;
  spec: NotificationSpec;
  record: SimNotificationRecord;
  firstAttemptDone: () => void;
}

/** How long one delivery may take before it counts as failed (channels give up after a few seconds). */
const DELIVERY_TIMEOUT_MS = 5_000;

/** Tracks timers so the simulator can stop cleanly. */
export class TimerSet {
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  /** Runs `task` after `delayMs`, unless the set is stopped first. Delays beyond Node's limit are not scheduled. */
  schedule(delayMs: number, task: () => void): void {
    if (this.#stopped || delayMs > 2 ** 31 - 1) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      task();
    }, Math.max(0, Math.round(delayMs)));
    this.#timers.add(timer);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** Per-trade notify queues and their re-send timers. */
export class Notifier {
  readonly #queues = new Map<string, QueuedNotification[]>();
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly faults: FaultRegistry,
    private readonly timers: TimerSet,
    private readonly timeScale: number,
  ) {}

  /**
   * Queues a notification for `trade` and records it there. Resolves once its first delivery
   * attempt finished (or at once when notifies are dropped); re-sends continue in the background.
   */
  enqueue(trade: SimTrade, spec: NotificationSpec): Promise<void> {
    const faults = this.faults.resolve(trade.channel, trade.outTradeNo);
    const record: SimNotificationRecord = { id: spec.id, kind: spec.kind, url: spec.url, state: "queued", attempts: [] };
    trade.notifications.push(record);
    if (faults.dropNotifies || this.timers.stopped) {
      record.state = "dropped";
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const key = queueKey(trade.channel, trade.outTradeNo);
      const queue = this.#queues.get(key);
      const item = { trade, spec, record, firstAttemptDone: resolve };
      if (queue) {
        queue.push(item);
        return;
      }
      this.#queues.set(key, [item]);
      this.timers.schedule(faults.notifyDelayMs ?? 0, () => void this.#track(this.#drain(key)));
    });
  }

  /** Waits for deliveries under way (each bounded by the delivery timeout). */
  async settle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async #drain(key: string): Promise<void> {
    const queue = this.#queues.get(key);
    while (queue && queue.length > 0 && !this.timers.stopped) {
      const first = queue[0] as QueuedNotification;
      const { outOfOrder } = this.faults.resolve(first.trade.channel, first.trade.outTradeNo);
      const item = (outOfOrder ? queue.pop() : queue.shift()) as QueuedNotification;
      await this.#attempt(item, 1);
      item.firstAttemptDone();
    }
    this.#queues.delete(key);
    for (const item of queue ?? []) item.firstAttemptDone();
  }

  async #attempt(item: QueuedNotification, attempt: number): Promise<void> {
    const { trade, spec, record } = item;
    const copies = this.faults.resolve(trade.channel, trade.outTradeNo).duplicateNotifies ?? 1;
    const request = spec.build(attempt);
    const results = await Promise.all(
      Array.from({ length: copies }, async (_, index) => {
        const at = new Date();
        try {
          const response = await sendHttpRequest({
            method: "POST",
            url: spec.url,
            headers: request.headers,
            body: request.body,
            timeoutMs: DELIVERY_TIMEOUT_MS,
          });
          const acknowledged = spec.isAcknowledged(response.status, response.body);
          record.attempts.push({
            attempt,
            copy: index + 1,
            at,
            status: response.status,
            body: response.body.toString("utf8").slice(0, 200),
            acknowledged,
          });
          return acknowledged;
        } catch (error) {
          record.attempts.push({ attempt, copy: index + 1, at, error: (error as Error).message, acknowledged: false });
          return false;
        }
      }),
    );
    if (results.some(Boolean)) {
      record.state = "acknowledged";
      return;
    }
    const gap = spec.retryGapsMs[attempt - 1];
    if (gap === undefined) {
      record.state = "gave_up";
      return;
    }
    record.state = "retrying";
    this.timers.schedule(gap * this.timeScale, () => void this.#track(this.#attempt(item, attempt + 1)));
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise
      .catch((error: unknown) => console.error("simulator: notify delivery failed unexpectedly", error))
      .finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }
}

function queueKey(channel: ChannelName, outTradeNo: string): string {
  return `${channel}\u0000${outTradeNo}`;
}
