/**
 * For stores only: the pieces of hand-written SQL that work the same way on both drivers (raw
 * datetime values both ways, the `in (...)` list, retention's oldest-first delete, the keyset walk
 * over a day that reconciliation reads a channel's rows with).
 * The payment and refund stores keep their own statements' columns; what is the same lives here.
 */
import { entityManager, isMysql } from "./store-access.js";
import type { Session } from "./unit-of-work.js";

/** A datetime column as the driver returns it in raw rows: MySQL a UTC `YYYY-MM-DD HH:MM:SS.mmm` string, SQLite epoch milliseconds. */
export function rawDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === "string") return new Date(/^\d+$/.test(value) ? Number(value) : `${value.replace(" ", "T")}Z`);
  return new Date(Number(value));
}

/** A datetime as a hand-written statement's value, as each driver stores it: MySQL UTC `DATETIME(3)` text, SQLite epoch milliseconds. */
export function rawDateValue(session: Session, date: Date): string | number {
  return isMysql(session) ? date.toISOString().replace("T", " ").replace("Z", "") : date.getTime();
}

/**
 * Deletes at most `limit` rows of `table` whose `column` is before `before`, oldest first;
 * resolves with how many (retention). MySQL: `DELETE ... ORDER BY ... LIMIT`; SQLite (no LIMIT on
 * DELETE in every build): the ids from a limited sub-select. `table` and `column` are the caller's
 * constants, never input.
 */
export async function deleteOldestRows(session: Session, table: string, column: string, before: Date, limit: number): Promise<number> {
  const rows = Math.max(1, Math.floor(limit));
  const sql = isMysql(session)
    ? `delete from \`${table}\` where \`${column}\` < ? order by \`${column}\` limit ${rows}`
    : `delete from \`${table}\` where \`id\` in (select \`id\` from \`${table}\` where \`${column}\` < ? order by \`${column}\` limit ${rows})`;
  const result = await entityManager(session).execute<{ affectedRows: number }>(sql, [rawDateValue(session, before)], "run");
  return Number(result.affectedRows ?? 0);
}

/** A nullable text column of a raw row (undefined where the driver leaves it out). */
export function rawNullableText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** `in (...)` of `values`: one `?` that the MySQL driver expands (1,000 placeholders cost the query builder twice the query), one per value elsewhere. */
export function inList(session: Session, values: readonly unknown[]): { sql: string; params: unknown[] } {
  return isMysql(session) ? { sql: "in (?)", params: [values] } : { sql: `in (${values.map(() => "?").join(", ")})`, params: [...values] };
}

/** A position in a keyset walk over (time column, id): `at` is the column's raw value, passed back as it came. */
export interface RawKeyset {
  readonly at: unknown;
  readonly id: string;
}

/**
 * One page of the ids of `table`'s rows of `channel` whose `column` is in [from, to), ordered by
 * (column, id), after `after`: an index-only range scan of the table's (channel, column) index
 * starting where the last page ended. `table` and `column` are the caller's constants, never input.
 */
export async function channelIdsInWindow(
  session: Session,
  source: { table: "payment" | "refund"; column: "paid_at" | "succeeded_at" },
  channel: string,
  window: { from: Date; to: Date },
  after: RawKeyset | undefined,
  limit: number,
): Promise<RawKeyset[]> {
  const { table, column } = source;
  const params: unknown[] = [channel, after ? after.at : window.from, window.to];
  let keyset = "";
  if (after) {
    keyset = ` and (${column} > ? or id > ?)`;
    params.push(after.at, after.id);
  }
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select id, ${column} from ${table} where channel = ? and ${column} >= ? and ${column} < ?${keyset} order by ${column}, id limit ${Math.floor(limit)}`,
    params,
  );
  return rows.map((row) => ({ id: String(row.id), at: row[column] }));
}
