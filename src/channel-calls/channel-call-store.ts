/** The channel call store: every statement on `channel_call`. */
import { deleteOldestRows, rawDateValue } from "../db/raw-sql.js";
import { queryChanges } from "../db/rows.js";
import { entityManager, isMysql, rowExecutor } from "../db/store-access.js";
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
 * milliseconds, {@link rawDateValue}).
 */
export async function insertChannelCalls(session: Session, rows: readonly ChannelCallRow[]): Promise<void> {
  if (rows.length === 0) return;
  const mysql = isMysql(session);
  const values = rows.map((row) => [
    row.id,
    rawDateValue(session, row.startedAt),
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
  await queryChanges(rowExecutor(session), sql, mysql ? [values] : values.flat());
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

/** Deletes at most `limit` calls started before `before`, oldest first; resolves with how many. */
export function deleteChannelCallsBefore(session: Session, before: Date, limit: number): Promise<number> {
  return deleteOldestRows(session, "channel_call", "started_at", before, limit);
}
