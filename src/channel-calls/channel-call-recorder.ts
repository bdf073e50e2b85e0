/**
 * The batched writer of channel call records (table `channel_call`).
 *
 * The channel observer hands every call to {@link ChannelCallRecorder.record} on the request path,
 * so recording must cost next to nothing and can never fail the call: a record goes into a bounded
 * in-memory queue and a background loop writes what is queued, one multi-row INSERT per batch,
 * every {@link FLUSH_INTERVAL_MS} or as soon as a full batch is waiting. The records are for
 * operators (the payment timeline), not for money: when the queue is full (the database is slow or
 * down) a record is dropped, and when a write fails its batch is dropped; both are counted in
 * `payments_channel_call_records_dropped_total`, and a failed write is logged once, its database
 * error without the values. The loop goes on after a failure. `stop()` writes what is left.
 *
 * Retention: rows older than CHANNEL_CALL_RETENTION_DAYS are deleted in batches of
 * {@link RETENTION_BATCH_ROWS}, from the sweeper tick, at most once per
 * {@link RETENTION_INTERVAL_MS} per replica. No lease: two replicas deleting the same old rows is
 * harmless.
 */
import type { ChannelCallRow } from "./channel-call-entity.js";
import { deleteChannelCallsBefore, insertChannelCalls } from "./channel-call-store.js";
import { loggableError } from "../db/database-errors.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { newId } from "../ids.js";
import type { ChannelCallRecord, ChannelCallSink } from "../observability/channel-observer.js";
import type { Logger } from "../observability/logger.js";
import type { ServiceMetrics } from "../observability/metrics.js";

/** Records held in memory at most; beyond it new records are dropped (and counted). */
export const QUEUE_LIMIT = 10_000;
/** Records per INSERT; a full batch waiting is written without waiting for the interval. */
export const BATCH_ROWS = 500;
/** How long a record waits at most before the loop writes it (without a full batch). */
export const FLUSH_INTERVAL_MS = 200;
/** Rows deleted per retention statement, so none holds locks for long. */
export const RETENTION_BATCH_ROWS = 1000;
/** How often a replica runs the retention pass. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Column widths of `channel_call` (channel-call-entity.ts): longer values are cut, not refused. */
const WIDTH = { channel: 16, operation: 32, number: 32, code: 64, detail: 256, traceId: 32 } as const;

export interface ChannelCallRecorderOptions {
  uow: UnitOfWork;
  logger: Logger;
  metrics: ServiceMetrics;
  /** `CHANNEL_CALL_RETENTION_DAYS`. */
  retentionDays: number;
  /** Default {@link QUEUE_LIMIT}. */
  queueLimit?: number;
  /** Default {@link BATCH_ROWS}. */
  batchRows?: number;
  /** Default {@link FLUSH_INTERVAL_MS}. */
  flushIntervalMs?: number;
  /** Default {@link RETENTION_BATCH_ROWS}. */
  retentionBatchRows?: number;
  /** Default {@link RETENTION_INTERVAL_MS}. */
  retentionIntervalMs?: number;
}

export interface ChannelCallRecorder extends ChannelCallSink {
  /** Writes what is queued now (in batches); a failed batch is dropped and counted, never thrown. */
  flush(): Promise<void>;
  /** Starts the background flush loop. */
  start(): void;
  /**
   * Deletes records older than the retention, at most once an hour per replica (the sweeper tick
   * calls it); resolves with the rows deleted (0 when not due). Failures are logged, not thrown.
   */
  retainIfDue(now?: Date): Promise<number>;
  /** Deletes records older than the retention now; resolves with the rows deleted. */
  retainOnce(now?: Date): Promise<number>;
  /** Records queued and not yet written. */
  queued(): number;
  /** Stops the loop and writes what is left; records arriving afterwards are dropped (and counted). */
  stop(): Promise<void>;
}

function clip(value: string | undefined, width: number): string | null {
  if (value === undefined || value === "") return null;
  return value.length > width ? value.slice(0, width) : value;
}

/** The row of a record, every column present (one INSERT needs the same columns for every row). */
function toRow(call: ChannelCallRecord): ChannelCallRow {
  return {
    id: newId(call.startedAt.getTime()),
    startedAt: call.startedAt,
    channel: call.channel.slice(0, WIDTH.channel),
    operation: call.operation,
    paymentNo: clip(call.paymentNo, WIDTH.number),
    refundNo: clip(call.refundNo, WIDTH.number),
    payoutNo: clip(call.payoutNo, WIDTH.number),
    outcome: call.outcome,
    code: clip(call.code, WIDTH.code),
    detail: call.detail.slice(0, WIDTH.detail),
    latencyMs: Math.max(0, Math.round(call.latencyMs)),
    traceId: clip(call.traceId, WIDTH.traceId),
  };
}

/** The recorder app.ts hands to the channel observer as its sink. */
export function createChannelCallRecorder(options: ChannelCallRecorderOptions): ChannelCallRecorder {
  const { uow, metrics } = options;
  const logger = options.logger.child({ component: "channel-calls" });
  const queueLimit = Math.max(1, Math.floor(options.queueLimit ?? QUEUE_LIMIT));
  const batchRows = Math.max(1, Math.floor(options.batchRows ?? BATCH_ROWS));
  const flushIntervalMs = Math.max(1, options.flushIntervalMs ?? FLUSH_INTERVAL_MS);
  const retentionBatchRows = Math.max(1, Math.floor(options.retentionBatchRows ?? RETENTION_BATCH_ROWS));
  const retentionIntervalMs = options.retentionIntervalMs ?? RETENTION_INTERVAL_MS;

  let queue: ChannelCallRow[] = [];
  let running = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** The write in progress (writes run one at a time, in order). */
  let writing: Promise<void> = Promise.resolve();
  let lastRetentionAt = Number.NEGATIVE_INFINITY;

  function dropped(count: number): void {
    metrics.channelCallRecordsDropped.inc(count);
  }

  async function writeBatch(batch: ChannelCallRow[]): Promise<void> {
    try {
      await insertChannelCalls(uow.session(), batch);
    } catch (error) {
      // Dropped, not retried: a batch the database refused (or could not take) would otherwise
      // be refused again while the queue fills behind it.
      dropped(batch.length);
      logger.error({ err: loggableError(error), records: batch.length }, "channel call records dropped: write failed");
    }
  }

  async function writeQueued(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.length <= batchRows ? queue : queue.slice(0, batchRows);
      queue = queue.length <= batchRows ? [] : queue.slice(batchRows);
      await writeBatch(batch);
    }
  }

  function flush(): Promise<void> {
    writing = writing.then(writeQueued);
    return writing;
  }

  function schedule(delayMs: number): void {
    clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
    // The loop alone must not keep the process alive.
    timer.unref();
  }

  function tick(): void {
    timer = undefined;
    void flush().finally(() => {
      if (running && timer === undefined) schedule(flushIntervalMs);
    });
  }

  async function retainOnce(now: Date = new Date()): Promise<number> {
    const before = new Date(now.getTime() - options.retentionDays * DAY_MS);
    let deleted = 0;
    for (;;) {
      const affected = await deleteChannelCallsBefore(uow.session(), before, retentionBatchRows);
      deleted += affected;
      if (affected < retentionBatchRows || stopped) break;
    }
    if (deleted > 0) logger.info({ deleted, retention_days: options.retentionDays }, "channel call records deleted after retention");
    return deleted;
  }

  return {
    record(call) {
      try {
        if (stopped || queue.length >= queueLimit) {
          dropped(1);
          return;
        }
        queue.push(toRow(call));
        // A full batch waiting: write it now rather than at the next interval.
        if (running && queue.length === batchRows) schedule(0);
      } catch {
        // Recording must never fail the channel call it describes.
        dropped(1);
      }
    },
    flush,
    start() {
      if (running || stopped) return;
      running = true;
      schedule(flushIntervalMs);
    },
    async retainIfDue(now: Date = new Date()) {
      if (stopped || now.getTime() - lastRetentionAt < retentionIntervalMs) return 0;
      lastRetentionAt = now.getTime();
      try {
        return await retainOnce(now);
      } catch (error) {
        logger.error({ err: loggableError(error) }, "channel call retention failed");
        return 0;
      }
    },
    retainOnce,
    queued: () => queue.length,
    async stop() {
      running = false;
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}
