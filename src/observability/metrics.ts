/**
 * The service's Prometheus metrics (prom-client), in a registry of its own per app so two
 * instances in one process (tests, replicas) do not share counters.
 *
 * Counters and histograms are updated where things happen (the RPC interceptor, the channel
 * observer, the callback shim, the sweeper tick, webhook attempts, settlement and reconciliation
 * runs). Backlogs are read from the database when scraped ({@link BacklogSource}), at most once per
 * {@link BACKLOG_CACHE_MS}, so scrapes cannot load the database.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { droppedLogLines, LOG_MAX_WAITING_BYTES } from "./logger.js";

/** Latency buckets (seconds) from 1 ms to 30 s: RPCs, channel calls, callbacks, deliveries. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A backlog read from the database: how many items wait and how old the oldest is. */
export interface Backlog {
  count: number;
  /** Age of the oldest waiting item in seconds; 0 when none. */
  oldestAgeSeconds: number;
}

/** What the backlog gauges read at scrape time. */
export interface Backlogs {
  /** Payments and refunds (and payouts) overdue for an active query by the sweepers. */
  sweep: { payment: Backlog; refund: Backlog; payout: Backlog };
  /** Events committed but not yet numbered by the sequencer. */
  outbox: Backlog;
  /** Webhook deliveries waiting for an attempt; `failed` = deliveries given up on (still kept). */
  webhooks: Backlog & { failed: number };
  /** Open reconciliation discrepancies. */
  openDiscrepancies: number;
}

export type BacklogSource = () => Promise<Backlogs>;

/** The database pool as the metrics see it (knex/tarn on MySQL; one connection embedded). */
export interface PoolUse {
  used: number;
  free: number;
  pending: number;
  max: number;
}

/** How long a scrape reuses the backlogs read by the previous one. */
export const BACKLOG_CACHE_MS = 5_000;

export interface ServiceMetrics {
  readonly registry: Registry;
  readonly rpcRequests: Counter<"method" | "code">;
  readonly rpcDuration: Histogram<"method">;
  readonly channelCalls: Counter<"channel" | "operation" | "outcome">;
  readonly channelCallDuration: Histogram<"channel" | "operation">;
  readonly callbacks: Counter<"channel" | "verdict">;
  readonly callbackDuration: Histogram<"channel">;
  readonly sweepPasses: Counter<"sweeper" | "outcome">;
  readonly sweepItems: Counter<"sweeper" | "result">;
  readonly webhookAttempts: Counter<"outcome">;
  readonly webhookAttemptDuration: Histogram;
  readonly settlementRuns: Counter<"outcome">;
  readonly reconciliationRuns: Counter<"channel" | "outcome">;
  readonly reconciliationDiscrepancies: Counter<"channel">;
  readonly channelCallRecordsDropped: Counter;
  readonly logLinesDropped: Counter;
  /** Sets where the backlog gauges read from (the app, once its database is open). */
  setBacklogSource(source: BacklogSource): void;
  /** Makes the next scrape read the backlogs again instead of reusing a read younger than {@link BACKLOG_CACHE_MS} (tests). */
  clearBacklogCache(): void;
  /** Sets where the pool gauges read from. */
  setPoolSource(source: () => PoolUse): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

export function createMetrics(): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Dropped log lines already counted into this registry (they are counted process-wide).
  let logDropsSeen = 0;

  const backlogReadFailures = new Counter({
    name: "payments_backlog_read_failures_total",
    help: "Backlog reads that failed (the database unreachable or failing); the backlog gauges then show the last values read.",
    registers: [registry],
    async collect() {
      // Waits for this scrape's read, so a failure shows in the same scrape.
      await backlogs();
    },
  });
  let backlogSource: BacklogSource | undefined;
  let cached: { at: number; value: Promise<Backlogs | undefined> } | undefined;
  /**
   * The backlogs for this scrape: read at most once per BACKLOG_CACHE_MS and shared by every gauge.
   * undefined when there is no source or the read failed: a database outage must not take the other
   * metrics with it (they are what shows it), so the scrape goes on, the backlog gauges keep the
   * last values read, and payments_backlog_read_failures_total counts the failure.
   */
  const backlogs = (): Promise<Backlogs | undefined> => {
    if (!backlogSource) return Promise.resolve(undefined);
    const now = Date.now();
    if (!cached || now - cached.at >= BACKLOG_CACHE_MS) {
      const value = backlogSource().catch(() => {
        backlogReadFailures.inc();
        // A failed read is not cached: the next scrape tries again.
        if (cached?.value === value) cached = undefined;
        return undefined;
      });
      cached = { at: now, value };
    }
    return cached.value;
  };

  /** A gauge of one figure of the backlogs, set when scraped (left as it was when the read failed). */
  const backlogGauge = (name: string, help: string, figure: (read: Backlogs) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const read = await backlogs();
        if (read) this.set(figure(read));
      },
    });
  /** A gauge of a figure of each sweep backlog, labelled by kind. */
  const sweepGauge = (name: string, help: string, figure: (backlog: Backlog) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["kind"] as const,
      registers: [registry],
      async collect() {
        const read = await backlogs();
        if (!read) return;
        for (const kind of ["payment", "refund", "payout"] as const) this.set({ kind }, figure(read.sweep[kind]));
      },
    });
  sweepGauge("payments_sweep_backlog", "Items overdue for an active query by the sweepers, by kind (payment, refund, payout).", (b) => b.count);
  sweepGauge(
    "payments_sweep_backlog_oldest_age_seconds",
    "How long the oldest item overdue for an active query has been due, by kind.",
    (b) => b.oldestAgeSeconds,
  );
  backlogGauge("payments_outbox_backlog", "Committed events not yet numbered for the readers (streams, webhooks, the bus).", (r) => r.outbox.count);
  backlogGauge("payments_outbox_oldest_age_seconds", "Age of the oldest event not yet numbered.", (r) => r.outbox.oldestAgeSeconds);
  backlogGauge("payments_webhook_backlog", "Webhook deliveries waiting for an attempt (new or retrying).", (r) => r.webhooks.count);
  backlogGauge("payments_webhook_backlog_oldest_age_seconds", "Age of the oldest webhook delivery still waiting to succeed.", (r) => r.webhooks.oldestAgeSeconds);
  backlogGauge(
    "payments_webhook_deliveries_failed",
    "Webhook deliveries given up on after the whole retry schedule (kept until retention).",
    (r) => r.webhooks.failed,
  );
  backlogGauge("payments_discrepancies_open", "Open reconciliation discrepancies.", (r) => r.openDiscrepancies);

  let poolSource: (() => PoolUse) | undefined;
  new Gauge({
    name: "payments_db_pool_connections",
    help: "Database pool connections by state: used, free, pending (callers waiting for one), max.",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      if (!poolSource) return;
      const pool = poolSource();
      this.set({ state: "used" }, pool.used);
      this.set({ state: "free" }, pool.free);
      this.set({ state: "pending" }, pool.pending);
      this.set({ state: "max" }, pool.max);
    },
  });

  return {
    registry,
    rpcRequests: new Counter({
      name: "payments_rpc_requests_total",
      help: "RPCs finished, by method (Service/Method) and status code (OK, INVALID_ARGUMENT, ...).",
      labelNames: ["method", "code"] as const,
      registers: [registry],
    }),
    rpcDuration: new Histogram({
      name: "payments_rpc_duration_seconds",
      help: "RPC latency from the interceptors to the answer (streams: to their end).",
      labelNames: ["method"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    channelCalls: new Counter({
      name: "payments_channel_calls_total",
      help: "Calls to the channels by channel, operation and outcome: answer, rejection (the channel said no), unknown (no usable answer: timeout, 5xx, bad signature).",
      labelNames: ["channel", "operation", "outcome"] as const,
      registers: [registry],
    }),
    channelCallDuration: new Histogram({
      name: "payments_channel_call_duration_seconds",
      help: "Channel call latency by channel and operation.",
      labelNames: ["channel", "operation"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    callbacks: new Counter({
      name: "payments_callbacks_total",
      help: "Channel callbacks by channel and verdict (applied, duplicate, ignored, rejected, error, ...).",
      labelNames: ["channel", "verdict"] as const,
      registers: [registry],
    }),
    callbackDuration: new Histogram({
      name: "payments_callback_duration_seconds",
      help: "Callback handling latency, body read to answer.",
      labelNames: ["channel"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    sweepPasses: new Counter({
      name: "payments_sweep_passes_total",
      help: "Sweeper passes by sweeper (payments, refunds, payouts) and outcome (ok, error).",
      labelNames: ["sweeper", "outcome"] as const,
      registers: [registry],
    }),
    sweepItems: new Counter({
      name: "payments_sweep_items_total",
      help: "Items the sweepers handled, by sweeper and result (settled, closed, retried, ...).",
      labelNames: ["sweeper", "result"] as const,
      registers: [registry],
    }),
    webhookAttempts: new Counter({
      name: "payments_webhook_attempts_total",
      help: "Webhook delivery attempts by outcome: delivered, retry (will be tried again), failed (given up).",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    webhookAttemptDuration: new Histogram({
      name: "payments_webhook_attempt_duration_seconds",
      help: "Webhook attempt latency, connect to the last byte of the answer.",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    settlementRuns: new Counter({
      name: "payments_settlement_runs_total",
      help: "Daily settlement runs by outcome (ok, error).",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    reconciliationRuns: new Counter({
      name: "payments_reconciliation_runs_total",
      help: "Reconciliation runs by channel and outcome: ok (the run finished; its discrepancies are counted apart) or error (refused or failed, nothing stored).",
      labelNames: ["channel", "outcome"] as const,
      registers: [registry],
    }),
    reconciliationDiscrepancies: new Counter({
      name: "payments_reconciliation_discrepancies_total",
      help: "Discrepancies raised by reconciliation runs, by channel.",
      labelNames: ["channel"] as const,
      registers: [registry],
    }),
    channelCallRecordsDropped: new Counter({
      name: "payments_channel_call_records_dropped_total",
      help: "Channel call records not stored because the write queue was full or the write failed.",
      registers: [registry],
    }),
    logLinesDropped: new Counter({
      name: "payments_log_lines_dropped_total",
      help: `Log lines dropped because stdout took none while ${LOG_MAX_WAITING_BYTES / 1024 / 1024} MiB of lines waited.`,
      registers: [registry],
      collect() {
        // Counted by the logger (made before any registry); this registry catches up at each scrape.
        const total = droppedLogLines();
        if (total > logDropsSeen) {
          this.inc(total - logDropsSeen);
          logDropsSeen = total;
        }
      },
    }),
    setBacklogSource(source) {
      backlogSource = source;
      cached = undefined;
    },
    clearBacklogCache() {
      cached = undefined;
    },
    setPoolSource(source) {
      poolSource = source;
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
