/**
 * Database errors made safe to log. A driver's error carries the statement it ran and often the
 * values in it: MikroORM writes values into MySQL statements, and MySQL quotes the offending value
 * in messages such as `Duplicate entry '...' for key '...'`. Logs get the statement's shape
 * instead: every quoted literal and number becomes `?`, identifiers and keywords stay.
 */
import { DriverException } from "@mikro-orm/core";

/** What a database error looks like in a log: its class, codes and a message without values. */
export interface RedactedDatabaseError {
  name: string;
  message: string;
  code?: string;
  errno?: number;
  sqlState?: string;
  /** Stack frames only: an error's stack starts with its message. */
  stack?: string;
}

// MySQL/MariaDB messages that quote a value without escaping it: everything up to the last
// closing quote before the key or column name is the value.
const UNESCAPED_VALUE_MESSAGES: ReadonlyArray<[RegExp, string]> = [
  [/Duplicate entry '[\s\S]*' for key /g, "Duplicate entry ? for key "],
  [/ value: '[\s\S]*' for column /g, " value: ? for column "],
  [/ value: '[\s\S]*'/g, " value: ?"],
];

/**
 * The text with every SQL literal replaced by `?`: quoted strings (either quote; backslash escapes
 * and doubled quotes both understood), hex and bit literals, and numbers that are not part of a
 * name. An unterminated quote hides everything after it. Backquoted identifiers are kept.
 */
export function redactSqlLiterals(text: string): string {
  let source = text;
  for (const [pattern, replacement] of UNESCAPED_VALUE_MESSAGES) source = source.replace(pattern, replacement);
  let out = "";
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === "`") {
      const end = source.indexOf("`", i + 1);
      const stop = end === -1 ? source.length : end + 1;
      out += source.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= source.length) break;
        const c = source[j]!;
        if (c === "\\") {
          j += 2;
          continue;
        }
        if (c === ch) {
          if (source[j + 1] === ch) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      out += "?";
      i = j + 1;
      continue;
    }
    if (/[0-9]/.test(ch) && !/[A-Za-z0-9_$.]/.test(source[i - 1] ?? " ")) {
      let j = i;
      while (j < source.length && /[0-9A-Za-z_.]/.test(source[j]!)) j++;
      // `2abc` is part of a name (MySQL allows names starting with digits); digits alone are a value.
      const token = source.slice(i, j);
      out += /^[0-9]+(\.[0-9]+)?([eE][0-9]+)?$/.test(token) || /^0[xXbB]/.test(token) ? "?" : token;
      i = j;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

/** True for errors from the database driver (MikroORM's DriverException, or a raw mysql2/libSQL error). */
export function isDatabaseError(error: unknown): error is Error {
  if (error instanceof DriverException) return true;
  if (!(error instanceof Error)) return false;
  const fields = error as Error & { sql?: unknown; sqlMessage?: unknown; sqlState?: unknown; code?: unknown };
  return (
    typeof fields.sql === "string" ||
    typeof fields.sqlMessage === "string" ||
    typeof fields.sqlState === "string" ||
    (typeof fields.code === "string" && /^(SQLITE_|ER_)/.test(fields.code))
  );
}

/** A database error as it may be logged: class, codes, the message without values, stack frames. */
export function redactDatabaseError(error: Error): RedactedDatabaseError {
  const fields = error as Error & { code?: unknown; errno?: unknown; sqlState?: unknown };
  const redacted: RedactedDatabaseError = { name: error.name, message: redactSqlLiterals(error.message) };
  if (typeof fields.code === "string") redacted.code = fields.code;
  if (typeof fields.errno === "number") redacted.errno = fields.errno;
  if (typeof fields.sqlState === "string") redacted.sqlState = fields.sqlState;
  const frames = (error.stack ?? "").split("\n").filter((line) => /^\s+at /.test(line));
  if (frames.length > 0) redacted.stack = frames.join("\n");
  return redacted;
}

/**
 * What to log for any error: database errors (also as the `cause` of another error) redacted by
 * {@link redactDatabaseError}; anything else as it is.
 */
export function loggableError(error: unknown): unknown {
  if (isDatabaseError(error)) return redactDatabaseError(error);
  if (error instanceof Error && error.cause !== undefined && isDatabaseError(error.cause)) {
    return { name: error.name, message: error.message, stack: error.stack, cause: redactDatabaseError(error.cause) };
  }
  return error;
}

/** An error's message for a log line or a stored reason, with database values removed. */
export function loggableMessage(error: unknown): string {
  if (isDatabaseError(error)) {
    const redacted = redactDatabaseError(error);
    return `${redacted.name}${redacted.code ? ` ${redacted.code}` : ""}: ${redacted.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}
