/**
 * The service's logger: JSON lines through pino (pretty when stdout is a terminal), one line per
 * RPC, callback, channel call, sweep pass and webhook delivery, each with the ids it concerns.
 *
 * Secrets are kept out by configuration, not by care at each call site: every field whose name is
 * in {@link REDACTED_FIELDS} is replaced with `[redacted]` at any of the first three levels of a
 * line, and `LOG_REDACT` adds paths. Messages themselves never carry secrets: call sites put values
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

/** pino redaction paths for {@link REDACTED_FIELDS} at the top level and two levels down, plus `extra`. */
export function redactionPaths(extra: readonly string[] = []): string[] {
  const paths: string[] = [];
  for (const field of REDACTED_FIELDS) paths.push(field, `*.${field}`, `*.*.${field}`);
  return [...paths, ...extra];
}

export interface LoggerOptions {
  level: ObservabilityConfig["logLevel"];
  format: ObservabilityConfig["logFormat"];
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
  const prettyOutput = !options.destination && wantsPretty(options.format, process.stdout.isTTY === true);
  const destination =
    options.destination ??
    (prettyOutput
      ? pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" })
      : pino.destination({ dest: 1, sync: false }));
  return pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      redact: { paths: redactionPaths(options.redact), censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
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
