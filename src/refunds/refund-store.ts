/**
 * The refund store: every statement on `refund`. Which statuses may change to which, and which
 * refunds still hold their amount, come from refund-status.ts: callers pass the statuses. The
 * statements of a refund's outcome (the guarded transition, the channel's refund number) are
 * prepared row statements (db/rows.ts), so they run in a row transaction as well as an ORM one;
 * acceptance, listings and leases use the ORM.
 */
import { claimDue } from "../db/leases.js";
import { channelIdsInWindow, inList, rawDate, rawNullableText } from "../db/raw-sql.js";
import { updateRows } from "../db/rows.js";
import { transitionRowStatus } from "../db/status-transition.js";
import { entityManager, rowExecutor, toBigInt } from "../db/store-access.js";
import type { RowScope, Session, Tx } from "../db/unit-of-work.js";
import type { PageRequest } from "../pagination.js";
import { Refund, type RefundRow } from "./refund-entity.js";
import type { RefundStatus } from "./refund-status.js";

export type RefundLookup = { refundId: string } | { paymentId: string; merchantRefundNo: string };

/** Columns a refund's transition sets besides the status. */
export type RefundChanges = Partial<Pick<RefundRow, "channelRefundNo" | "failureReason" | "succeededAt" | "nextQueryAt">>;

export async function insertRefund(tx: Tx, refund: RefundRow): Promise<void> {
  await entityManager(tx).insert(Refund, refund);
}

/** The merchant's refund, or undefined (also for another merchant's refund). */
export async function findMerchantRefund(session: Session, merchantId: string, lookup: RefundLookup): Promise<RefundRow | undefined> {
  const where =
    "refundId" in lookup
      ? { id: lookup.refundId, merchantId }
      : { paymentId: lookup.paymentId, merchantRefundNo: lookup.merchantRefundNo, merchantId };
  return (await entityManager(session).findOne(Refund, where, { disableIdentityMap: true })) ?? undefined;
}

/** The payment's refund with this merchant refund number, or undefined. */
export async function findByMerchantRefundNo(session: Session, paymentId: string, merchantRefundNo: string): Promise<RefundRow | undefined> {
  return (await entityManager(session).findOne(Refund, { paymentId, merchantRefundNo }, { disableIdentityMap: true })) ?? undefined;
}

/** The refund with our refund number on a channel (what callbacks name), or undefined. */
export async function findByRefundNo(session: Session, channel: string, refundNo: string): Promise<RefundRow | undefined> {
  return (await entityManager(session).findOne(Refund, { refundNo, channel }, { disableIdentityMap: true })) ?? undefined;
}

/** The refund as it is now. */
export async function reloadRefund(session: Session, refundId: string): Promise<RefundRow | undefined> {
  return (await entityManager(session).findOne(Refund, { id: refundId }, { disableIdentityMap: true })) ?? undefined;
}

/** Amount and fee returned of the payment's refunds in the given statuses. */
export function refundAmountsInStatus(
  tx: Tx,
  paymentId: string,
  statuses: readonly RefundStatus[],
): Promise<Array<Pick<RefundRow, "amount" | "feeReturned">>> {
  return entityManager(tx).find(
    Refund,
    { paymentId, status: { $in: [...statuses] } },
    { disableIdentityMap: true, fields: ["feeReturned", "amount"] },
  );
}

/**
 * The guarded UPDATE of a transition: `status = to` (with `changes`) only while the status is one
 * of `from`. Resolves with whether it applied; false means another report finished it first.
 */
export async function transitionRefundStatus(
  tx: RowScope,
  refundId: string,
  from: readonly RefundStatus[],
  to: RefundStatus,
  changes: RefundChanges,
  now: Date,
): Promise<boolean> {
  return transitionRowStatus(tx, Refund, refundId, from, to, changes, now);
}

/** Records the channel's refund number (not a status change). */
export async function setChannelRefundNo(scope: RowScope, refundId: string, channelRefundNo: string, now: Date): Promise<void> {
  await updateRows(rowExecutor(scope), Refund, { id: refundId }, { channelRefundNo, updatedAt: now });
}

/** A page of the merchant's refunds (of one payment, when given), newest first. */
export function listRefundRows(session: Session, merchantId: string, paymentId: string | undefined, page: PageRequest): Promise<RefundRow[]> {
  const where: Record<string, unknown> = { merchantId };
  if (paymentId) where.paymentId = paymentId;
  if (page.afterId) where.id = { $lt: page.afterId };
  return entityManager(session).find(Refund, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

/** The payment's first `limit` refunds, oldest first (the admin timeline). */
export function refundsOfPayment(session: Session, paymentId: string, limit: number): Promise<RefundRow[]> {
  return entityManager(session).find(Refund, { paymentId }, { orderBy: { id: "asc" }, limit, disableIdentityMap: true });
}

/** The refunds in `status` due for a channel query, each yielded once this process holds its lease. */
export function claimDueRefunds(
  session: Session,
  status: RefundStatus,
  options: { batchSize: number; leaseMs: number },
): AsyncGenerator<RefundRow> {
  return claimDue<RefundRow>(entityManager(session), Refund, status, options);
}

/** Schedules the next channel query of a refund still in `status` and drops its lease. */
export async function rescheduleRefundQuery(
  session: Session,
  refundId: string,
  status: RefundStatus,
  schedule: { nextQueryAt: Date; queryAttempts: number },
): Promise<void> {
  await entityManager(session).nativeUpdate(Refund, { id: refundId, status }, { ...schedule, sweepLeaseUntil: null });
}

/** Every refund's amounts summed per payment and status, for the ledger check. */
export async function totalsByPaymentAndStatus(
  session: Session,
): Promise<Array<{ paymentId: string; status: string; amount: bigint; feeReturned: bigint }>> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select payment_id, status, coalesce(sum(amount), 0) as amount, coalesce(sum(fee_returned), 0) as fee_returned
     from refund group by payment_id, status`,
  );
  return rows.map((row) => ({
    paymentId: String(row.payment_id),
    status: String(row.status),
    amount: toBigInt(row.amount),
    feeReturned: toBigInt(row.fee_returned),
  }));
}

/** What reconciliation compares of a refund with a bill line. */
export type RefundForBill = Pick<
  RefundRow,
  "id" | "refundNo" | "paymentId" | "merchantId" | "amount" | "currency" | "status" | "feeReturned" | "channelRefundNo"
>;

/** A position in a keyset walk over (succeeded_at, id): opaque to callers, passed back as it came. */
export interface SucceededCursor {
  readonly succeededAt: unknown;
  readonly id: string;
}

const BILL_COLUMNS = "id, refund_no, payment_id, merchant_id, amount, currency, status, fee_returned, channel_refund_no";

function refundForBill(row: Record<string, unknown>): RefundForBill {
  return {
    id: String(row.id),
    refundNo: String(row.refund_no),
    paymentId: String(row.payment_id),
    merchantId: String(row.merchant_id),
    amount: toBigInt(row.amount),
    currency: String(row.currency),
    status: String(row.status),
    feeReturned: toBigInt(row.fee_returned),
    channelRefundNo: rawNullableText(row.channel_refund_no),
  };
}

/** The channel's refunds with these refund numbers (a bill batch), only the columns reconciliation reads, in one query (hand SQL, as payment-store's findPaymentsByNos). */
export async function findRefundsByNos(session: Session, channel: string, refundNos: readonly string[]): Promise<RefundForBill[]> {
  if (refundNos.length === 0) return [];
  const list = inList(session, refundNos);
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select ${BILL_COLUMNS} from refund where channel = ? and refund_no ${list.sql}`,
    [channel, ...list.params],
  );
  return rows.map(refundForBill);
}

/**
 * One page of the ids of the channel's refunds that succeeded in [from, to), ordered by
 * (succeeded_at, id), after `after`: an index-only range scan of `refund_channel_succeeded_idx`.
 */
export async function listSucceededIdsInWindow(
  session: Session,
  channel: string,
  window: { from: Date; to: Date },
  after: SucceededCursor | undefined,
  limit: number,
): Promise<Array<{ id: string; cursor: SucceededCursor }>> {
  const keyset = after ? { at: after.succeededAt, id: after.id } : undefined;
  const rows = await channelIdsInWindow(session, { table: "refund", column: "succeeded_at" }, channel, window, keyset, limit);
  return rows.map((row) => ({ id: row.id, cursor: { succeededAt: row.at, id: row.id } }));
}

/** Of these refunds, the ones in `status`, with the columns reconciliation reports and their success time. */
export async function findRefundsByIds(
  session: Session,
  ids: readonly string[],
  status: RefundStatus,
): Promise<Array<RefundForBill & { succeededAt: Date }>> {
  if (ids.length === 0) return [];
  const list = inList(session, ids);
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select ${BILL_COLUMNS}, succeeded_at from refund where id ${list.sql} and status = ? order by succeeded_at, id`,
    [...list.params, status],
  );
  return rows.map((row) => ({ ...refundForBill(row), succeededAt: rawDate(row.succeeded_at) }));
}

/**
 * The refunds in `status` overdue for a channel query at `now` (the sweeper's due condition, as
 * {@link claimDueRefunds} reads it, leased ones included): how many, and the earliest due time.
 * For the backlog metrics: one range of `refund_sweep_idx` (status, next_query_at), index only.
 */
export async function overdueRefunds(session: Session, status: RefundStatus, now: Date): Promise<{ count: number; oldestDueAt: Date | undefined }> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    "select count(*) as n, min(next_query_at) as oldest from refund where status = ? and next_query_at <= ?",
    [status, now],
  );
  const row = rows[0] ?? {};
  return { count: Number(row.n ?? 0), oldestDueAt: row.oldest === null || row.oldest === undefined ? undefined : rawDate(row.oldest) };
}
