/** The reconciliation store: every statement on `reconciliation_run` and `reconciliation_item`. */
import { entityManager, toBigInt } from "../db/store-access.js";
import type { Session, Tx } from "../db/unit-of-work.js";
import type { PageRequest } from "../pagination.js";
import {
  ReconciliationItem,
  type ReconciliationItemRow,
  ReconciliationRun,
  type ReconciliationRunRow,
} from "./reconciliation-entities.js";

/** Records a run as it starts its matching pass. */
export async function insertRun(session: Session, run: ReconciliationRunRow): Promise<void> {
  await entityManager(session).insert(ReconciliationRun, run);
}

/** The run's counts and fees once it finished, in the transaction that posts its channel fee. */
export async function finishRun(tx: Tx, runId: string, changes: Partial<ReconciliationRunRow>): Promise<void> {
  await entityManager(tx).nativeUpdate(ReconciliationRun, { id: runId }, changes);
}

/** Records a batch of unmatched items in the caller's transaction, in one statement. */
export async function insertItems(tx: Tx, items: readonly ReconciliationItemRow[]): Promise<void> {
  if (items.length > 0) await entityManager(tx).insertMany(ReconciliationItem, [...items]);
}

/**
 * What earlier finished runs of this channel, day and currency posted as channel fee, and how many
 * of them posted anything (the next posting's sequence number follows it).
 */
export async function channelFeePostedBefore(
  tx: Tx,
  channel: string,
  billDate: string,
  currency: string,
): Promise<{ total: bigint; postings: number }> {
  const rows: Array<Record<string, unknown>> = await entityManager(tx).execute(
    `select coalesce(sum(channel_fee_posted), 0) as total, count(case when channel_fee_posted <> 0 then 1 end) as postings
     from reconciliation_run where channel = ? and bill_date = ? and currency = ? and finished_at is not null`,
    [channel, billDate, currency],
  );
  return { total: toBigInt(rows[0]?.total), postings: Number(toBigInt(rows[0]?.postings)) };
}

/** A page of runs (of one channel, when given), newest first. */
export function listRunRows(session: Session, channel: string | undefined, page: PageRequest): Promise<ReconciliationRunRow[]> {
  const where: Record<string, unknown> = {};
  if (channel) where.channel = channel;
  if (page.afterId) where.id = { $lt: page.afterId };
  return entityManager(session).find(ReconciliationRun, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

