/**
 * Retention for the callback tables. `callback_log` rows older than CALLBACK_LOG_RETENTION_DAYS
 * (default 90) are deleted; `callback_inbox` rows (the de-duplication keys) after the same time,
 * but never before the channels stop re-sending (card 3 days, Alipay 25 h, WeChat Pay 24 h) plus
 * a day. A notification re-sent after its inbox row is gone changes nothing anyway: transitions are
 * conditional updates, so an already applied state is not applied again.
 *
 * Deletes run in batches of at most 1,000 rows per statement, so no statement holds locks for
 * long, from the sweeper tick at most once an hour per process. No lease: two processes deleting
 * the same old rows is harmless.
 */
import type { UnitOfWork } from "../db/unit-of-work.js";
import { type AgedCallbackTable, deleteOldestBefore } from "./callback-store.js";

/** Rows deleted per statement. */
export const RETENTION_BATCH_ROWS = 1000;
/** How often a process runs the retention pass. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
/** The longest time a channel re-sends a notification: the card acquirer's 3 days. */
export const LONGEST_RESEND_WINDOW_MS = 3 * DAY_MS;
/** Inbox rows are kept at least this long. */
export const MIN_INBOX_RETENTION_MS = LONGEST_RESEND_WINDOW_MS + DAY_MS;

export interface RetentionResult {
  callbackLogRows: number;
  callbackInboxRows: number;
}

export interface CallbackRetentionOptions {
  uow: UnitOfWork;
  /** CALLBACK_LOG_RETENTION_DAYS. */
  retentionDays: number;
  batchRows?: number;
  intervalMs?: number;
  /** Checked between batches: false stops the pass (e.g. while draining). */
  shouldContinue?: () => boolean;
  log?: (message: string) => void;
}

/**
 * Deletes rows of `table` older than `cutoff`, oldest first, at most `batchRows` per statement,
 * until none are left or `shouldContinue` says stop; resolves with the number deleted.
 */
export async function deleteOlderThan(
  uow: UnitOfWork,
  table: AgedCallbackTable,
  cutoff: Date,
  batchRows: number,
  shouldContinue: () => boolean = () => true,
): Promise<number> {
  const limit = Math.max(1, Math.floor(batchRows));
  let deleted = 0;
  for (;;) {
    const affected = await deleteOldestBefore(uow.session(), table, cutoff, limit);
    deleted += affected;
    if (affected < limit || !shouldContinue()) return deleted;
  }
}

/** The retention job: `runOnce` deletes what is due; `runIfDue` does so at most once per interval. */
export function createCallbackRetention(options: CallbackRetentionOptions) {
  const batchRows = options.batchRows ?? RETENTION_BATCH_ROWS;
  const intervalMs = options.intervalMs ?? RETENTION_INTERVAL_MS;
  const shouldContinue = options.shouldContinue ?? (() => true);
  let lastRunAt = Number.NEGATIVE_INFINITY;

  async function runOnce(now: Date = new Date()): Promise<RetentionResult> {
    const logCutoff = new Date(now.getTime() - options.retentionDays * DAY_MS);
    const inboxCutoff = new Date(now.getTime() - Math.max(options.retentionDays * DAY_MS, MIN_INBOX_RETENTION_MS));
    const callbackLogRows = await deleteOlderThan(options.uow, "callback_log", logCutoff, batchRows, shouldContinue);
    const callbackInboxRows = shouldContinue()
      ? await deleteOlderThan(options.uow, "callback_inbox", inboxCutoff, batchRows, shouldContinue)
      : 0;
    if (callbackLogRows + callbackInboxRows > 0) {
      options.log?.(`retention: deleted ${callbackLogRows} callback_log and ${callbackInboxRows} callback_inbox rows`);
    }
    return { callbackLogRows, callbackInboxRows };
  }

  return {
    runOnce,
    /** Runs the pass if the last one started at least an interval ago; otherwise resolves with undefined. */
    async runIfDue(now: Date = new Date()): Promise<RetentionResult | undefined> {
      if (now.getTime() - lastRunAt < intervalMs) return undefined;
      lastRunAt = now.getTime();
      return runOnce(now);
    },
  };
}

export type CallbackRetention = ReturnType<typeof createCallbackRetention>;
