/** The channel call store: every statement on `channel_call`. */
import { entityManager, isMysql } from "../db/store-access.js";
import type { Session } from "../db/unit-of-work.js";
import { ChannelCall, type ChannelCallRow } from "./channel-call-entity.js";

/**
 * Inserts the rows in one multi-row INSERT. Through the ORM's query builder rather than the
 * prepared row statements of db/rows.ts: batches have any size up to the recorder's batch, and a
 * prepared statement per size would pile up on every pooled connection (and against the server's
 * `max_prepared_stmt_count`). It runs off the request path, once per batch.
 */
export async function insertChannelCalls(session: Session, rows: readonly ChannelCallRow[]): Promise<void> {
  if (rows.length === 0) return;
  await entityManager(session).insertMany(ChannelCall, [...rows]);
}

/**
 * The oldest `limit` calls about the payment (its own and its refunds', which carry its number),
 * oldest first (the admin timeline).
 */
export function channelCallsOfPayment(session: Session, paymentNo: string, limit: number): Promise<ChannelCallRow[]> {
  return entityManager(session).find(
    ChannelCall,
    { paymentNo },
    { orderBy: { startedAt: "asc", id: "asc" }, limit: Math.max(1, Math.floor(limit)), disableIdentityMap: true },
  );
}

/**
 * Deletes at most `limit` calls started before `before`, oldest first; resolves with how many.
 * MySQL: `DELETE ... ORDER BY ... LIMIT`; SQLite (no LIMIT on DELETE in every build): the ids
 * from a limited sub-select.
 */
export async function deleteChannelCallsBefore(session: Session, before: Date, limit: number): Promise<number> {
  const rows = Math.max(1, Math.floor(limit));
  const mysql = isMysql(session);
  const sql = mysql
    ? `delete from \`channel_call\` where \`started_at\` < ? order by \`started_at\` limit ${rows}`
    : `delete from \`channel_call\` where \`id\` in (select \`id\` from \`channel_call\` where \`started_at\` < ? order by \`started_at\` limit ${rows})`;
  // Datetimes are stored as UTC DATETIME(3) on MySQL and as epoch milliseconds on SQLite.
  const bound = mysql ? before.toISOString().replace("T", " ").replace("Z", "") : before.getTime();
  const result = await entityManager(session).execute<{ affectedRows: number }>(sql, [bound], "run");
  return Number(result.affectedRows ?? 0);
}
