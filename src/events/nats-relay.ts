/**
 * Publishes the event feed to NATS JetStream, one replica at a time.
 *
 * The replica holding the `nats` cursor lease reads the events after the cursor in feed order
 * (`seq`), publishes each on `<prefix>.<event type>` with the event id as `Nats-Msg-Id`, waits for
 * every PubAck of the batch, and only then moves the cursor (guarded by the holder). A crash or a
 * lost ack between publish and cursor move makes the next holder publish the batch again; the
 * stream's duplicate window (at least {@link MIN_DUPLICATE_WINDOW_MS}, longer than a lease expiry
 * plus the longest back-off) drops the repeats, so each event is stored once. The limit: an event
 * stored whose ack never came back, followed by an outage longer than the window, is stored again
 * when NATS returns; consumers deduplicate by event id (examples/nats-consumer.mjs).
 *
 * NATS down: the pass fails, the lease is released (a replica that can reach NATS may take it),
 * and this replica tries again after a back-off growing to {@link MAX_BACKOFF_MS}, logging once per
 * outage. The relay runs on its own timer, so an outage never holds up the API or the other loops.
 */
import { randomUUID } from "node:crypto";
import { type JetStreamClient, JetStreamApiCodes, JetStreamApiError, type JetStreamManager, jetstream, jetstreamManager, type StreamConfig, DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos, type NodeConnectionOptions } from "@nats-io/transport-node";
import type { NatsConfig } from "../config.js";
import { loggableMessage } from "../db/database-errors.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { eventsAfter, type SequencedEvent } from "../outbox/outbox-store.js";
import { moveCursor, releaseCursorLease, takeCursorLease } from "./event-cursor-store.js";
import { eventBody } from "./event-envelope.js";

export interface NatsRelay {
  /**
   * One pass now, back-off or not (when this replica holds or takes the relay's lease): publishes
   * the events after the cursor, a few batches at most. Resolves with the number of events
   * published (0 when another replica holds the lease); rejects when NATS or the database failed.
   */
  runOnce(): Promise<number>;
  start(): void;
  /** Stops the loop, waits for the pass in progress, frees the lease and closes the connection. */
  stop(): Promise<void>;
}

export interface NatsRelayOptions {
  uow: UnitOfWork;
  config: NatsConfig;
  log: (message: string) => void;
  logError: (message: string, error: unknown) => void;
  /** Time between passes while there is nothing to do (default 200 ms; the app passes `EVENT_POLL_INTERVAL_MS`). */
  pollIntervalMs?: number;
  /** Events read, published and acknowledged per cursor move (default 500). */
  batchSize?: number;
  /** Publishes waiting for their PubAck at once (default 64). */
  maxInFlight?: number;
  /** Batches per pass at most, so a pass stays short (default 20). */
  maxBatchesPerPass?: number;
  /** How long the lease holds without renewal (default 10 s); renewed before every batch. */
  leaseMs?: number;
  /** Longest wait for one PubAck, and for the connection to open (default 5 s). */
  ackTimeoutMs?: number;
  /** Who this replica is in the cursor row (default a random id). */
  holder?: string;
  /** Limits of the stream when the relay creates it (defaults: {@link DEFAULT_STREAM_LIMITS}). */
  streamLimits?: Partial<StreamLimits>;
}

/** What bounds the stream the relay creates. */
export interface StreamLimits {
  /** Messages older than this are discarded (oldest first). */
  maxAgeMs: number;
  /** The stream's size on disk at most; past it the oldest messages go. */
  maxBytes: number;
  /** How long JetStream remembers a `Nats-Msg-Id` to drop a repeat. */
  duplicateWindowMs: number;
  /** Largest message accepted (events are a few KiB). */
  maxMessageBytes: number;
}

/** The longest wait between two tries while NATS cannot be reached. */
export const MAX_BACKOFF_MS = 30_000;
/** The shortest duplicate window that covers a lease expiry, a connection timeout and the longest back-off. */
export const MIN_DUPLICATE_WINDOW_MS = 60_000;

export const DEFAULT_STREAM_LIMITS: StreamLimits = Object.freeze({
  maxAgeMs: 7 * 24 * 3_600_000,
  maxBytes: 1024 * 1024 * 1024,
  duplicateWindowMs: 120_000,
  maxMessageBytes: 1024 * 1024,
});

const CURSOR = "nats";
/** Connection-level reconnects before the client gives up; the relay then connects again after its back-off. */
const MAX_RECONNECT_ATTEMPTS = 10;
const RECONNECT_WAIT_MS = 1_000;
const CLOSE_TIMEOUT_MS = 5_000;

interface Link {
  connection: NatsConnection;
  js: JetStreamClient;
}

export function createNatsRelay(options: NatsRelayOptions): NatsRelay {
  const { uow, config, log, logError } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 200;
  const batchSize = positive("batchSize", options.batchSize ?? 500);
  const maxInFlight = positive("maxInFlight", options.maxInFlight ?? 64);
  const maxBatchesPerPass = positive("maxBatchesPerPass", options.maxBatchesPerPass ?? 20);
  const leaseMs = options.leaseMs ?? 10_000;
  const ackTimeoutMs = options.ackTimeoutMs ?? 5_000;
  const holder = options.holder ?? randomUUID();
  const limits: StreamLimits = { ...DEFAULT_STREAM_LIMITS, ...options.streamLimits };
  if (limits.duplicateWindowMs < MIN_DUPLICATE_WINDOW_MS) {
    throw new Error(`the NATS relay's duplicate window must be at least ${MIN_DUPLICATE_WINDOW_MS} ms`);
  }
  const server = serverName(config.url);
  const secrets = urlSecrets(config.url);

  let link: Link | undefined;
  let failures = 0;
  let retryAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let passing: Promise<unknown> = Promise.resolve();

  async function openLink(): Promise<Link> {
    if (link && !link.connection.isClosed()) return link;
    link = undefined;
    const connection = await connect({
      ...connectionOptions(config.url),
      name: `payments-relay-${holder}`,
      timeout: ackTimeoutMs,
      reconnect: true,
      maxReconnectAttempts: MAX_RECONNECT_ATTEMPTS,
      reconnectTimeWait: RECONNECT_WAIT_MS,
    });
    try {
      const jsm = await jetstreamManager(connection, { timeout: ackTimeoutMs });
      await ensureStream(jsm);
      link = { connection, js: jetstream(connection, { timeout: ackTimeoutMs }) };
      return link;
    } catch (error) {
      await closeQuietly(connection);
      throw error;
    }
  }

  async function dropLink(): Promise<void> {
    const dropped = link;
    link = undefined;
    if (dropped) await closeQuietly(dropped.connection);
  }

  /** Creates the stream, or checks that the one there takes every subject the relay publishes on. */
  async function ensureStream(jsm: JetStreamManager): Promise<void> {
    const wanted = `${config.subjectPrefix}.>`;
    let existing: StreamConfig | undefined;
    try {
      existing = (await jsm.streams.info(config.stream)).config;
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    }
    if (existing === undefined) {
      await jsm.streams.add({
        name: config.stream,
        subjects: [wanted],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: nanos(limits.maxAgeMs),
        max_bytes: limits.maxBytes,
        max_msg_size: limits.maxMessageBytes,
        duplicate_window: nanos(limits.duplicateWindowMs),
        num_replicas: 1,
      });
      log(`NATS relay: created stream ${config.stream} for ${wanted} on ${server}`);
      return;
    }
    if (!(existing.subjects ?? []).some((pattern) => subjectCovers(pattern, wanted))) {
      throw new Error(
        `NATS stream ${config.stream} exists but its subjects ${JSON.stringify(existing.subjects ?? [])} do not take ${wanted}: ` +
          "add the subject to the stream or set EVENTS_NATS_STREAM / EVENTS_NATS_SUBJECT_PREFIX",
      );
    }
    const windowMs = Number(existing.duplicate_window ?? 0) / 1e6;
    if (windowMs < MIN_DUPLICATE_WINDOW_MS) {
      log(
        `NATS relay: stream ${config.stream} has a duplicate window of ${windowMs} ms, under ${MIN_DUPLICATE_WINDOW_MS} ms: ` +
          "an event republished after a crash may be stored twice",
      );
    }
  }

  /** Publishes the events in order, at most `maxInFlight` awaiting their ack; rejects with the first failure once all have settled. */
  async function publishAll(js: JetStreamClient, events: readonly SequencedEvent[]): Promise<void> {
    let next = 0;
    let failure: unknown;
    const sender = async () => {
      while (next < events.length && failure === undefined) {
        const event = events[next++]!;
        try {
          await js.publish(`${config.subjectPrefix}.${event.eventType}`, eventBody(event), { msgID: event.id, timeout: ackTimeoutMs });
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(maxInFlight, events.length) }, sender));
    if (failure !== undefined) throw failure;
  }

  async function pass(): Promise<number> {
    const session = uow.session();
    const lease = () => {
      const now = new Date();
      return takeCursorLease(session, CURSOR, holder, now, new Date(now.getTime() + leaseMs));
    };
    const cursor = await lease();
    if (!cursor) return 0;
    let position = cursor.position;
    let published = 0;
    try {
      // Connected (and the stream ensured) before there is anything to send: an outage shows at once.
      const { js } = await openLink();
      for (let batch = 0; batch < maxBatchesPerPass; batch++) {
        if (batch > 0 && !(await lease())) break;
        const events = await eventsAfter(session, position, batchSize);
        if (events.length === 0) break;
        await publishAll(js, events);
        const last = events[events.length - 1]!.seq;
        // Lost to another replica (our lease expired): it republishes from the cursor, the duplicate window drops repeats.
        if (!(await moveCursor(session, CURSOR, last, holder))) break;
        position = last;
        published += events.length;
        if (events.length < batchSize) break;
      }
    } catch (error) {
      // A fresh connection next time checks the stream again (it may have been deleted or the server replaced).
      await dropLink();
      // Let a replica that can reach NATS take over at once instead of after the lease expires.
      await releaseCursorLease(session, CURSOR, holder).catch(() => {});
      throw error;
    }
    return published;
  }

  function runOnce(): Promise<number> {
    const run = passing.then(pass).then(
      (published) => {
        if (failures > 0) log(`NATS relay: publishing to ${server} again after ${failures} failed attempt(s)`);
        failures = 0;
        retryAt = 0;
        return published;
      },
      (error: unknown) => {
        failures++;
        const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures - 1, 10));
        retryAt = Date.now() + backoff * (0.8 + Math.random() * 0.4);
        if (failures === 1) {
          logError(`NATS relay to ${server} failed; retrying with back-off up to ${MAX_BACKOFF_MS / 1000} s:`, scrub(loggableMessage(error), secrets));
        }
        throw error;
      },
    );
    passing = run.catch(() => {});
    return run;
  }

  const tick = () => {
    const due = Date.now() >= retryAt;
    passing = (due ? runOnce().catch(() => 0) : Promise.resolve(0)).then((published) => {
      if (stopped) return;
      // A pass that published something may have left more behind: go on at once.
      timer = setTimeout(tick, published > 0 ? 0 : Math.max(pollIntervalMs, retryAt - Date.now()));
    });
  };

  return {
    runOnce,
    start() {
      if (!stopped) return;
      stopped = false;
      timer = setTimeout(tick, pollIntervalMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await passing;
      clearTimeout(timer);
      await releaseCursorLease(uow.session(), CURSOR, holder).catch((error: unknown) => logError("NATS relay: could not free its lease", loggableMessage(error)));
      await dropLink();
    },
  };
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`the NATS relay's ${name} must be a positive integer, got ${value}`);
  return value;
}

/** Client options from `EVENTS_NATS_URL`: user and password (or a token as the user part) go to the authenticator, not the server list. */
export function connectionOptions(url: string): NodeConnectionOptions {
  const parsed = new URL(url);
  const options: NodeConnectionOptions = { servers: parsed.port ? parsed.host : `${parsed.host}:4222` };
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  if (user && pass) Object.assign(options, { user, pass });
  else if (user) options.token = user;
  if (parsed.protocol === "tls:") options.tls = {};
  return options;
}

/** The server as logs may show it: scheme, host and port, never the credentials. */
export function serverName(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}

function urlSecrets(url: string): string[] {
  const parsed = new URL(url);
  return [parsed.username, parsed.password, decodeURIComponent(parsed.username), decodeURIComponent(parsed.password)].filter((part) => part.length > 0);
}

function scrub(message: string, secrets: readonly string[]): string {
  let scrubbed = message;
  for (const secret of secrets) scrubbed = scrubbed.split(secret).join("***");
  return scrubbed;
}

/** Whether a stream subject (with `*` and `>` wildcards) takes every subject that `wanted` (ending in `>`) does. */
export function subjectCovers(pattern: string, wanted: string): boolean {
  const have = pattern.split(".");
  const want = wanted.split(".");
  for (let index = 0; index < have.length; index++) {
    if (have[index] === ">") return true;
    if (index >= want.length || want[index] === ">") return false;
    if (have[index] !== "*" && have[index] !== want[index]) return false;
  }
  return false;
}

async function closeQuietly(connection: NatsConnection): Promise<void> {
  let timeout: NodeJS.Timeout | undefined;
  await Promise.race([
    connection.close().catch(() => {}),
    new Promise<void>((resolve) => {
      timeout = setTimeout(resolve, CLOSE_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timeout);
}
