/**
 * The service's logger: JSON lines through pino (pretty when stdout is a terminal), one line per
 * RPC, callback, channel call, sweep pass and webhook delivery, each with the ids it concerns.
 *
 * Secrets are kept out by configuration, not by care at each call site: every field whose name is
 * in {@link REDACTED_FIELDS}, or in `LOG_REDACT`, is replaced with `[redacted]` at any of the first
 * three levels of a line. Messages themselves never carry secrets: call sites put values
 * in fields, and database errors pass through `loggableError` (statement shape, no values).
 */
import { pino, type Logger as PinoLogger, type DestinationStream } from "pino";
import pretty from "pino-pretty";
import type { ObservabilityConfig } from "../config.js";

export type Logger = PinoLogger;

/**
 * Field names never written out, whatever object they are in: credentials, keys, tokens, shoppers'
 * and merchants' account details. Both spellings, since lines carry domain objects (camelCase)
 * and wire or proto shapes (snake_case).
 */
export const REDACTED_FIELDS: readonly string[] = Object.freeze([
  "apiKey",
  "api_key",
  "webhookSecret",
  "webhook_secret",
  "secret",
  "secrets",
  "secretKey",
  "clientSecret",
  "client_secret",
  "password",
  "token",
  "adminToken",
  "authorization",
  "cookie",
  "privateKey",
  "privateKeyPem",
  "appPrivateKeyPem",
  "mchPrivateKeyPem",
  "apiV3Key",
  "dataEncryptionKey",
  "payee",
  "payeeAccount",
  "payee_account",
  "account",
  "accountNo",
  "account_no",
  "paymentMethodToken",
  "payment_method",
]);

const CENSOR = "[redacted]";
/** How deep lines are searched: the line, its objects, and theirs. */
const REDACT_DEPTH = 3;

/**
 * The value with every field named in `fields` replaced by `[redacted]`, down to `depth` levels
 * (arrays count as a level). Copies only what it changes; errors pass as they are (their fields
 * are the error's own, and their messages are made safe where they are logged).
 *
 * Hand-written rather than pino's path redaction: with wildcard paths for every field at three
 * levels, pino's took about 140 µs a line; this takes about 1 µs.
 */
export function redactFields(value: unknown, fields: ReadonlySet<string>, depth = REDACT_DEPTH): unknown {
  if (depth === 0 || value === null || typeof value !== "object" || value instanceof Error || value instanceof Date) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const redacted = redactFields(value[i], fields, depth - 1);
      if (redacted !== value[i]) {
        copy ??= [...value];
        copy[i] = redacted;
      }
    }
    return copy ?? value;
  }
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    const field = record[key];
    const redacted = fields.has(key) ? CENSOR : redactFields(field, fields, depth - 1);
    if (redacted !== field) {
      copy ??= { ...record };
      copy[key] = redacted;
    }
  }
  return copy ?? value;
}

export interface LoggerOptions {
  level: ObservabilityConfig["logLevel"];
  format: ObservabilityConfig["logFormat"];
  /** More field names to redact (`LOG_REDACT`). */
  redact?: readonly string[];
  /** Where lines go (default stdout); tests pass a stream to read them back. */
  destination?: DestinationStream;
  /** Fields on every line (e.g. the replica's pid is there already). */
  base?: Record<string, unknown>;
}

/** Whether lines are pretty-printed: `pretty`, or `auto` on a terminal; JSON otherwise. */
export function wantsPretty(format: LoggerOptions["format"], isTerminal: boolean): boolean {
  return format === "pretty" || (format === "auto" && isTerminal);
}

export function createLogger(options: LoggerOptions): Logger {
  const fields: ReadonlySet<string> = new Set([...REDACTED_FIELDS, ...(options.redact ?? [])]);
  const prettyOutput = !options.destination && wantsPretty(options.format, process.stdout.isTTY === true);
  const destination =
    options.destination ??
    (prettyOutput
      ? pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" })
      : stdoutDestination(1));
  return pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      timestamp: isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (line) => redactFields(line, fields) as Record<string, unknown>,
      },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

let timeMs = Number.NaN;
let timeField = "";

/** pino's ISO `time` field, formatted once per millisecond: a busy call writes several lines in one. */
function isoTime(): string {
  const now = Date.now();
  if (now !== timeMs) {
    timeMs = now;
    timeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return timeField;
}

/**
 * Lines are collected and written in batches of at least {@link LOG_BATCH_BYTES}, and whatever is
 * waiting at most {@link LOG_FLUSH_MS} later. One write per line cost the busiest paths more than
 * building the line: each asynchronous write is a trip through libuv's thread pool, about 200 µs
 * of the main thread's CPU on the bench machine (docs/performance.md). On a normal exit, a signal
 * handled by main.ts, or an uncaught error, pino writes what is waiting before the process ends;
 * only a process killed outright (SIGKILL, the OOM killer) loses its last {@link LOG_FLUSH_MS} of
 * lines.
 */
export const LOG_BATCH_BYTES = 32 * 1024;
/** The longest a line waits in the batch (ms). */
export const LOG_FLUSH_MS = 250;
/**
 * The most that may wait to be written. When stdout stops taking lines (a log shipper that hangs, a
 * pipe nobody reads), lines past this are dropped and counted instead of growing the process's
 * memory without end; the service keeps serving.
 */
export const LOG_MAX_WAITING_BYTES = 16 * 1024 * 1024;

/** The batching destination under the service's logger. */
export interface BatchedDestination extends DestinationStream {
  /** pino's `logger.flush()`. */
  flush(cb?: (error?: Error) => void): void;
  /** The stream under it. */
  readonly output: ReturnType<typeof pino.destination>;
}

/** Lines dropped because the bound was already waiting, by every batching destination of the process. */
let droppedLines = 0;

/** What the metric `payments_log_lines_dropped_total` reports. */
export function droppedLogLines(): number {
  return droppedLines;
}

/** The batching destination for a file descriptor (stdout in the service). */
export function stdoutDestination(fd: number, maxWaitingBytes = LOG_MAX_WAITING_BYTES): BatchedDestination {
  // Buffers, not text: in text mode sonic-boom appends each line to one growing string and measures
  // its byte length on every write, which copies the whole batch each time (about 20 KiB of garbage
  // per CreatePayment with 32 KiB batches).
  const output = pino.destination({
    dest: fd,
    sync: false,
    contentMode: "buffer",
    minLength: LOG_BATCH_BYTES,
    maxWrite: 2 * LOG_BATCH_BYTES,
    periodicFlush: LOG_FLUSH_MS,
    maxLength: maxWaitingBytes,
  });
  output.on("drop", () => droppedLines++);
  return {
    output,
    write: (line: string) => void output.write(Buffer.from(line) as unknown as string),
    // The exit handler pino registered flushes `output` itself.
    flush: (cb) => output.flush(cb),
  };
}

/** A logger that writes nothing (tests that do not read logs). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** The old `log(message)` callback shape some modules take, bound to a logger. */
export function logFunctions(logger: Logger): { log: (message: string) => void; logError: (message: string, error: unknown) => void } {
  return {
    log: (message) => logger.info(message),
    logError: (message, error) => logger.error({ err: error }, message),
  };
}
