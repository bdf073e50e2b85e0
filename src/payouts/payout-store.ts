/**
 * The payout store: every statement on `payout`. Which statuses may change to which comes from
 * payout-status.ts: callers pass the statuses. The statements of a payout's outcome (reads by id or
 * number, the guarded transition) are prepared row statements, so they run in a row transaction
 * (webhooks) as well as in an ORM one (the sweeper, settlement orders); listings and leases use the ORM.
 */
import { rawDate } from "../db/raw-sql.js";
import { findRow, insertRow, updateRows } from "../db/rows.js";
import { transitionRowStatus } from "../db/status-transition.js";
import { entityManager, rowExecutor, toBigInt } from "../db/store-access.js";
import type { RowScope, Session } from "../db/unit-of-work.js";
import { Payout, type PayoutRow } from "./payout-entities.js";
import type { PayoutStatus } from "./payout-status.js";

/** The row with its counter as a number: the embedded driver reads every integer column as a bigint. */
function normalized(row: PayoutRow): PayoutRow {
  return typeof row.attempts === "number" ? row : { ...row, attempts: Number(row.attempts) };
}

/** Columns a payout's transition sets besides the status. */
export type PayoutChanges = Partial<Pick<PayoutRow, "channelPayoutNo" | "failureReason" | "finishedAt" | "nextAttemptAt" | "leaseUntil">>;

/** Inserts a payout; a second payout for the same settlement order fails on its unique key. */
export async function insertPayout(tx: RowScope, row: PayoutRow): Promise<void> {
  await insertRow(rowExecutor(tx), Payout, row);
}

/** The payout with our transfer number, or undefined. */
export async function findPayoutByNo(scope: RowScope, payoutNo: string): Promise<PayoutRow | undefined> {
  const row = await findRow<PayoutRow>(rowExecutor(scope), Payout, { payoutNo });
  return row && normalized(row);
}

/** The payouts of these settlement orders (at most one each). */
export async function payoutsOfSettlementIds(session: Session, settlementIds: readonly string[]): Promise<PayoutRow[]> {
  if (settlementIds.length === 0) return [];
  const rows = await entityManager(session).find(Payout, { settlementId: { $in: [...settlementIds] } }, { disableIdentityMap: true });
  return rows.map(normalized);
}

/**
 * The guarded UPDATE of a transition: `status = to` (with `changes`) only while the status is one of
 * `from`. Resolves with whether it applied; false means another report finished it first.
 */
export async function transitionPayoutStatus(
  tx: RowScope,
  payoutId: string,
  from: readonly PayoutStatus[],
  to: PayoutStatus,
  changes: PayoutChanges,
  now: Date,
): Promise<boolean> {
  return transitionRowStatus(tx, Payout, payoutId, from, to, changes, now);
}

/** Records the channel's transfer id (not a status change). */
export async function setChannelPayoutNo(scope: RowScope, payoutId: string, channelPayoutNo: string, now: Date): Promise<void> {
  await updateRows(rowExecutor(scope), Payout, { id: payoutId }, { channelPayoutNo, updatedAt: now });
}

/**
 * Payouts in one of `statuses` due by now (oldest due first, at most `batchSize`), each yielded only
 * after this process claimed it by a conditional UPDATE: held for `leaseMs` from the moment of the
 * claim, and its attempt counted (`attempts + 1`) before any channel call, so a process that dies
 * mid-send leaves a payout that the next sweeper asks about before sending again. Rows another
 * process holds or took first are skipped. The row is yielded as read, with the attempts made before.
 */
export async function* claimDuePayouts(
  session: Session,
  statuses: readonly PayoutStatus[],
  options: { batchSize: number; leaseMs: number },
): AsyncGenerator<PayoutRow> {
  const em = entityManager(session);
  const due = await em.find(
    Payout,
    { status: { $in: [...statuses] }, nextAttemptAt: { $lte: new Date() } },
    { orderBy: { nextAttemptAt: "asc" }, limit: options.batchSize, disableIdentityMap: true },
  );
  for (const read of due) {
    const row = normalized(read);
    // Claimed one at a time as the caller gets to it: the lease runs from the claim, not from the read.
    const now = new Date();
    const claimed = await em.nativeUpdate(
      Payout,
      {
        id: row.id,
        status: row.status,
        attempts: row.attempts,
        nextAttemptAt: { $lte: now },
        $or: [{ leaseUntil: null }, { leaseUntil: { $lt: now } }],
      },
      { leaseUntil: new Date(now.getTime() + options.leaseMs), attempts: row.attempts + 1 },
    );
    if (claimed === 1) yield row;
  }
}

/** Schedules the next attempt of a payout still in `status` and drops its lease. */
export async function reschedulePayout(session: Session, payoutId: string, status: PayoutStatus, nextAttemptAt: Date): Promise<void> {
  await entityManager(session).nativeUpdate(Payout, { id: payoutId, status }, { nextAttemptAt, leaseUntil: null, updatedAt: new Date() });
}

/**
 * Per channel and currency, the amounts of payouts in each status (for the payout ledger check): the
 * sum of the amounts of payouts still in flight (status in `inFlight`) and of all payouts.
 */
export async function payoutTotalsByChannel(
  session: Session,
  inFlight: readonly PayoutStatus[],
): Promise<Array<{ channel: string; currency: string; inFlight: bigint; count: bigint }>> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select channel, currency, coalesce(sum(case when status in (${inFlight.map(() => "?").join(", ")}) then amount else 0 end), 0) as in_flight,
       count(*) as n
     from payout group by channel, currency`,
    [...inFlight],
  );
  return rows.map((row) => ({
    channel: String(row.channel),
    currency: String(row.currency),
    inFlight: toBigInt(row.in_flight),
    count: toBigInt(row.n),
  }));
}

/**
 * The payouts in one of `statuses` overdue for an attempt at `now` (the sweeper's due condition, as
 * {@link claimDuePayouts} reads it, leased ones included): how many, and the earliest due time.
 * For the backlog metrics: one range per status of `payout_sweep_idx` (status, next_attempt_at), index only.
 */
export async function overduePayouts(
  session: Session,
  statuses: readonly PayoutStatus[],
  now: Date,
): Promise<{ count: number; oldestDueAt: Date | undefined }> {
  if (statuses.length === 0) return { count: 0, oldestDueAt: undefined };
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select count(*) as n, min(next_attempt_at) as oldest from payout where status in (${statuses.map(() => "?").join(", ")}) and next_attempt_at <= ?`,
    [...statuses, now],
  );
  const row = rows[0] ?? {};
  return { count: Number(row.n ?? 0), oldestDueAt: row.oldest === null || row.oldest === undefined ? undefined : rawDate(row.oldest) };
}
