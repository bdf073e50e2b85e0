/** The channel call store: every statement on `channel_call`. */
import { entityManager, isMysql } from "../db/store-access.js";
import type { Session } from "../db/unit-of-work.js";
import { ChannelCall, type ChannelCallRow } from "./channel-call-entity.js";

const COLUMNS =
  "`id`, `started_at`, `channel`, `operation`, `payment_no`, `refund_no`, `payout_no`, `outcome`, `code`, `detail`, `latency_ms`, `trace_id`";

/**
 * Inserts the rows in one multi-row INSERT, written by hand: the ORM's `insertMany` maps every row
 * through the entity's properties, which measured as a visible share of a CreatePayment's CPU
 * (each create queues one record). Not a prepared statement either: batches have any size up to the
 * recorder's, and a prepared statement per size would pile up on every pooled connection (and
 * against the server's `max_prepared_stmt_count`). MySQL: one `?` the driver expands into the rows;
 * SQLite: a placeholder per value. Datetimes as each driver stores them (UTC DATETIME(3) text, epoch
 * milliseconds).
 */
export async function insertChannelCalls(session: Session, rows: readonly ChannelCallRow[]): Promise<void> {
  if (rows.length === 0) return;
  const mysql = isMysql(session);
  const values = rows.map((row) => [
    row.id,
    mysql ? row.startedAt.toISOString().replace("T", " ").replace("Z", "") : row.startedAt.getTime(),
    row.channel,
    row.operation,
    row.paymentNo ?? null,
    row.refundNo ?? null,
    row.payoutNo ?? null,
    row.outcome,
    row.code ?? null,
    row.detail,
    row.latencyMs,
    row.traceId ?? null,
  ]);
  const sql = mysql
    ? `insert into \`channel_call\` (${COLUMNS}) values ?`
    : `insert into \`channel_call\` (${COLUMNS}) values ${values.map((row) => `(${row.map(() => "?").join(", ")})`).join(", ")}`;
  await entityManager(session).execute(sql, mysql ? [values] : values.flat(), "run");
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
