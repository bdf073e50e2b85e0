/**
 * The payment store: every statement on `payment`, `payment_item` and `idempotency_record`. The
 * single-row reads, the create path and the status transitions (the callback path) use the
 * prepared row statements of db/rows.ts (same rows, a fraction of the CPU); listings use the ORM. What a status
 * may change to, and what may be refunded, comes from payment-status.ts: callers pass the
 * statuses, no rule is written into a statement here.
 */
import { claimDue } from "../db/leases.js";
import { channelIdsInWindow, inList, rawDate, rawNullableText } from "../db/raw-sql.js";
import { findRow, findRows, insertRow, insertRows, runStatement, updateRows } from "../db/rows.js";
import { transitionRowStatus } from "../db/status-transition.js";
import { entityManager, rowExecutor, toBigInt } from "../db/store-access.js";
import type { RowScope, RowTx, Session, Tx } from "../db/unit-of-work.js";
import { NotFoundError } from "../errors.js";
import type { PaymentEventFields } from "../events/event-objects.js";
import type { PageRequest } from "../pagination.js";
import {
  IdempotencyRecord,
  type IdempotencyRecordRow,
  Payment,
  PaymentItem,
  type PaymentItemRow,
  type PaymentRow,
} from "./payment-entity.js";
import type { PaymentStatus } from "./payment-status.js";

/** A payment with its order lines, as the API shows it. */
export interface PaymentView {
  payment: PaymentRow;
  items: PaymentItemRow[];
}

export type PaymentLookup = { paymentId: string } | { merchantOrderNo: string };

/** Columns a status change may set besides the status. */
export type PaymentChanges = Partial<
  Pick<
    PaymentRow,
    "statusReason" | "channelTradeNo" | "paidAt" | "succeededAt" | "closedAt" | "fee" | "nextQueryAt" | "sweepLeaseUntil"
  >
>;

/**
 * Inserts a new payment with its order lines and, when given, its idempotency record. Unique keys
 * catch a repeat. (A promise chain: this is on the create hot path; see docs/performance.md.)
 */
export function insertPayment(
  tx: RowTx,
  payment: PaymentRow,
  items: readonly PaymentItemRow[],
  idempotency: IdempotencyRecordRow | undefined,
): Promise<void> {
  const rows = rowExecutor(tx);
  const lines = () => insertRows(rows, PaymentItem, items);
  const record = () => (idempotency ? insertRow(rows, IdempotencyRecord, idempotency) : undefined);
  return insertRow(rows, Payment, payment).then(lines).then(record);
}

/** The merchant's idempotency record for an operation and key, if any. */
export function findIdempotencyRecord(
  session: Session,
  merchantId: string,
  operation: string,
  idempotencyKey: string,
): Promise<IdempotencyRecordRow | undefined> {
  return findRow<IdempotencyRecordRow>(rowExecutor(session), IdempotencyRecord, { merchantId, operation, idempotencyKey });
}

/** The merchant's payment, or PAYMENT_NOT_FOUND (also for another merchant's payment). */
export async function findMerchantPayment(scope: RowScope, merchantId: string, lookup: PaymentLookup): Promise<PaymentRow> {
  const where =
    "paymentId" in lookup
      ? { id: lookup.paymentId, merchantId }
      : { merchantOrderNo: lookup.merchantOrderNo, merchantId };
  const payment = await findRow<PaymentRow>(rowExecutor(scope), Payment, where);
  if (!payment) {
    const key = "paymentId" in lookup ? lookup.paymentId : `order ${lookup.merchantOrderNo}`;
    throw new NotFoundError("PAYMENT_NOT_FOUND", `payment ${key} not found`);
  }
  return payment;
}

/** The merchant's payment for an order number, or undefined. */
export function findByMerchantOrderNo(scope: RowScope, merchantId: string, merchantOrderNo: string): Promise<PaymentRow | undefined> {
  return findRow<PaymentRow>(rowExecutor(scope), Payment, { merchantId, merchantOrderNo });
}

/**
 * What applying a channel's word needs of a payment: the columns its events show, and whose
 * payment it is (channel-outcome.ts).
 */
export type PaymentForOutcome = PaymentEventFields & Pick<PaymentRow, "merchantId">;

/** The columns of {@link PaymentForOutcome}: a callback reads 18 of the row's 31 (no secrets, tokens or sweep state). */
const OUTCOME_COLUMNS: ReadonlyArray<keyof PaymentForOutcome> = [
  "id",
  "paymentNo",
  "merchantId",
  "merchantOrderNo",
  "status",
  "amount",
  "currency",
  "refundedAmount",
  "fee",
  "channel",
  "channelTradeNo",
  "subject",
  "statusReason",
  "metadata",
  "createdAt",
  "paidAt",
  "closedAt",
  "expiresAt",
];

/** The payment with our payment number on a channel (what callbacks name), with what its outcome needs, or undefined. */
export function findByPaymentNo(scope: RowScope, channel: string, paymentNo: string): Promise<PaymentForOutcome | undefined> {
  return findRow<PaymentForOutcome>(rowExecutor(scope), Payment, { paymentNo, channel }, OUTCOME_COLUMNS);
}

/** The payment as it is now, or PAYMENT_NOT_FOUND. */
export async function reloadPayment(scope: RowScope, paymentId: string): Promise<PaymentRow> {
  const payment = await findRow<PaymentRow>(rowExecutor(scope), Payment, { id: paymentId });
  if (!payment) throw new NotFoundError("PAYMENT_NOT_FOUND", `payment ${paymentId} not found`);
  return payment;
}

/** The payment with its order lines. */
export async function withItems(scope: RowScope, payment: PaymentRow): Promise<PaymentView> {
  const items = await findRows<PaymentItemRow>(rowExecutor(scope), PaymentItem, { paymentId: payment.id }, { orderBy: [["position", "asc"]] });
  return { payment, items };
}

/** The payments with their order lines, in one query for all the lines. */
export async function withItemsMany(session: Session, payments: PaymentRow[]): Promise<PaymentView[]> {
  if (payments.length === 0) return [];
  const items = await entityManager(session).find(
    PaymentItem,
    { paymentId: { $in: payments.map((p) => p.id) } },
    { orderBy: { paymentId: "asc", position: "asc" }, disableIdentityMap: true },
  );
  const byPayment = new Map<string, PaymentItemRow[]>();
  for (const item of items) {
    const lines = byPayment.get(item.paymentId);
    if (lines) lines.push(item);
    else byPayment.set(item.paymentId, [item]);
  }
  return payments.map((payment) => ({ payment, items: byPayment.get(payment.id) ?? [] }));
}

/** Sets columns that are not the status, only while the payment is in `status`; resolves with whether it was. */
export function updateWhileInStatus(
  scope: RowScope,
  paymentId: string,
  status: PaymentStatus,
  changes: Partial<PaymentRow>,
): Promise<boolean> {
  return updateRows(rowExecutor(scope), Payment, { id: paymentId, status }, changes).then((changed) => changed === 1);
}

/** Sets columns that are not the status, whatever the status. */
export function updatePayment(scope: RowScope, paymentId: string, changes: Partial<PaymentRow>): Promise<void> {
  return updateRows(rowExecutor(scope), Payment, { id: paymentId }, changes).then(() => undefined);
}

/**
 * The guarded UPDATE of a transition: `status = to` (with `changes`) only while the status is one
 * of `from`. Resolves with whether it applied; false means another change won.
 */
export function transitionStatus(
  tx: RowScope,
  paymentId: string,
  from: readonly PaymentStatus[],
  to: PaymentStatus,
  changes: PaymentChanges,
  now: Date,
): Promise<boolean> {
  return transitionRowStatus(tx, Payment, paymentId, from, to, changes, now);
}

/**
 * Whether the payment is in `status` as of the latest commit, locking its row. An UPDATE reads the
 * current row; a SELECT could answer from the transaction's older snapshot under REPEATABLE READ.
 */
export async function isInStatusNow(tx: RowScope, paymentId: string, status: PaymentStatus): Promise<boolean> {
  return (await updateRows(rowExecutor(tx), Payment, { id: paymentId, status }, { updatedAt: new Date() })) === 1;
}

/**
 * Takes one of the payment's channel queries after final while it is still in `status`, if fewer
 * than `limit` were taken: a conditional UPDATE of the counter, so concurrent queries on any number
 * of replicas never take more than the limit.
 */
export async function takeFinalChannelQuery(session: Session, paymentId: string, status: PaymentStatus, limit: number): Promise<boolean> {
  const claimed: { affectedRows?: number } = await entityManager(session).execute(
    "update payment set final_channel_queries = final_channel_queries + 1 where id = ? and status = ? and final_channel_queries < ?",
    [paymentId, status, limit],
    "run",
  );
  return claimed.affectedRows === 1;
}

/**
 * Reserves `amount` for a refund: one guarded UPDATE, `refunded + pending + amount <= amount` while
 * the status is one of `refundable`, so concurrent refunds can never exceed the payment.
 */
export async function reserveRefundAmount(
  tx: Tx,
  paymentId: string,
  amount: bigint,
  refundable: readonly PaymentStatus[],
  now: Date,
): Promise<boolean> {
  const reserved: { affectedRows?: number } = await entityManager(tx).execute(
    `update payment set refund_pending_amount = refund_pending_amount + ?, updated_at = ?
     where id = ? and status in (${refundable.map(() => "?").join(", ")}) and refunded_amount + refund_pending_amount + ? <= amount`,
    [amount, now, paymentId, ...refundable, amount],
    "run",
  );
  return reserved.affectedRows === 1;
}

/**
 * Releases a refund's reservation: moved to the refunded total when the refund succeeded, freed
 * when it failed. Atomic column arithmetic, so concurrent refunds never overwrite each other.
 */
export async function releaseRefundAmount(tx: RowScope, paymentId: string, amount: bigint, refunded: boolean, now: Date): Promise<void> {
  // Prepared row statements, so a refund's outcome runs in a row transaction as well as an ORM one.
  const rows = rowExecutor(tx);
  if (refunded) {
    await runStatement(
      rows,
      "update payment set refund_pending_amount = refund_pending_amount - ?, refunded_amount = refunded_amount + ?, updated_at = ? where id = ?",
      [amount, amount, now, paymentId],
    );
  } else {
    await runStatement(rows, "update payment set refund_pending_amount = refund_pending_amount - ?, updated_at = ? where id = ?", [
      amount,
      now,
      paymentId,
    ]);
  }
}

export interface PaymentListFilter {
  status?: PaymentStatus;
  channel?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

/** The ORM conditions of a list filter's status, channel and creation window. */
function listFilterWhere(filter: PaymentListFilter): Record<string, unknown> {
  const where: Record<string, unknown> = {};
  if (filter.status) where.status = filter.status;
  if (filter.channel) where.channel = filter.channel;
  if (filter.createdAfter || filter.createdBefore) {
    where.createdAt = {
      ...(filter.createdAfter ? { $gte: filter.createdAfter } : {}),
      ...(filter.createdBefore ? { $lt: filter.createdBefore } : {}),
    };
  }
  return where;
}

/** A page of the merchant's payments, newest first. */
export function listPayments(session: Session, merchantId: string, filter: PaymentListFilter, page: PageRequest): Promise<PaymentRow[]> {
  const where: Record<string, unknown> = { merchantId, ...listFilterWhere(filter) };
  if (page.afterId) where.id = { $lt: page.afterId };
  return entityManager(session).find(Payment, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

/** What an admin search matches: {@link PaymentListFilter} across merchants, plus the payment's identifiers. */
export interface PaymentSearchFilter extends PaymentListFilter {
  paymentId?: string;
  paymentNo?: string;
  merchantOrderNo?: string;
  merchantId?: string;
}

/** A page of any merchant's payments matching every filter set, newest first (the admin console's search). */
export function searchPayments(session: Session, filter: PaymentSearchFilter, page: PageRequest): Promise<PaymentRow[]> {
  const where: Record<string, unknown> = listFilterWhere(filter);
  if (filter.merchantId) where.merchantId = filter.merchantId;
  if (filter.paymentNo) where.paymentNo = filter.paymentNo;
  if (filter.merchantOrderNo) where.merchantOrderNo = filter.merchantOrderNo;
  const id: Record<string, string> = {};
  if (filter.paymentId) id.$eq = filter.paymentId;
  if (page.afterId) id.$lt = page.afterId;
  if (Object.keys(id).length > 0) where.id = id;
  return entityManager(session).find(Payment, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

/** The payments in `status` due for a channel query, each yielded once this process holds its lease. */
export function claimDuePayments(
  session: Session,
  status: PaymentStatus,
  options: { batchSize: number; leaseMs: number },
): AsyncGenerator<PaymentRow> {
  return claimDue<PaymentRow>(entityManager(session), Payment, status, options);
}

/** Schedules the next channel query of a payment still in `status` and drops its lease. */
export async function rescheduleQuery(
  session: Session,
  paymentId: string,
  status: PaymentStatus,
  schedule: { nextQueryAt: Date; queryAttempts: number },
): Promise<void> {
  await entityManager(session).nativeUpdate(Payment, { id: paymentId, status }, { ...schedule, sweepLeaseUntil: null });
}

/** Every payment's money columns, for the ledger check. */
export function allForLedgerCheck(
  session: Session,
): Promise<Array<Pick<PaymentRow, "id" | "merchantId" | "channel" | "status" | "amount" | "fee" | "refundedAmount" | "refundPendingAmount">>> {
  return entityManager(session).find(
    Payment,
    {},
    { fields: ["id", "merchantId", "channel", "status", "amount", "fee", "refundedAmount", "refundPendingAmount"], disableIdentityMap: true },
  );
}

/** What reconciliation compares of a payment with a bill line. */
export type PaymentForBill = Pick<PaymentRow, "id" | "paymentNo" | "merchantId" | "amount" | "currency" | "status" | "fee" | "channelTradeNo">;

/** A position in a keyset walk over (paid_at, id): opaque to callers, passed back as it came. */
export interface PaidCursor {
  readonly paidAt: unknown;
  readonly id: string;
}

const BILL_COLUMNS = "id, payment_no, merchant_id, amount, currency, status, fee, channel_trade_no";

function paymentForBill(row: Record<string, unknown>): PaymentForBill {
  return {
    id: String(row.id),
    paymentNo: String(row.payment_no),
    merchantId: String(row.merchant_id),
    amount: toBigInt(row.amount),
    currency: String(row.currency),
    status: String(row.status),
    fee: toBigInt(row.fee),
    channelTradeNo: rawNullableText(row.channel_trade_no),
  };
}

/**
 * The channel's payments with these payment numbers (a bill batch), only the columns reconciliation
 * reads, in one query. Hand SQL: the ORM's find and hydration cost about 100 ms per 1,000 rows here
 * (bench/reconcile-scale.ts), several times the query itself.
 */
export async function findPaymentsByNos(session: Session, channel: string, paymentNos: readonly string[]): Promise<PaymentForBill[]> {
  if (paymentNos.length === 0) return [];
  const list = inList(session, paymentNos);
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select ${BILL_COLUMNS} from payment where channel = ? and payment_no ${list.sql}`,
    [channel, ...list.params],
  );
  return rows.map(paymentForBill);
}

/**
 * One page of the ids of the channel's payments paid in [from, to), ordered by (paid_at, id), after
 * `after`: an index-only range scan of `payment_channel_paid_idx` starting where the last page ended.
 */
export async function listPaidIdsInWindow(
  session: Session,
  channel: string,
  window: { from: Date; to: Date },
  after: PaidCursor | undefined,
  limit: number,
): Promise<Array<{ id: string; cursor: PaidCursor }>> {
  const keyset = after ? { at: after.paidAt, id: after.id } : undefined;
  const rows = await channelIdsInWindow(session, { table: "payment", column: "paid_at" }, channel, window, keyset, limit);
  return rows.map((row) => ({ id: row.id, cursor: { paidAt: row.at, id: row.id } }));
}

/** Of these payments, the ones in `statuses`, with the columns reconciliation reports and their paid time. */
export async function findPaymentsByIds(
  session: Session,
  ids: readonly string[],
  statuses: readonly PaymentStatus[],
): Promise<Array<PaymentForBill & { paidAt: Date }>> {
  if (ids.length === 0) return [];
  const list = inList(session, ids);
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select ${BILL_COLUMNS}, paid_at from payment where id ${list.sql} and status in (${statuses.map(() => "?").join(", ")}) order by paid_at, id`,
    [...list.params, ...statuses],
  );
  return rows.map((row) => ({ ...paymentForBill(row), paidAt: rawDate(row.paid_at) }));
}

/**
 * The payments in `status` overdue for a channel query at `now` (the sweeper's due condition, as
 * {@link claimDuePayments} reads it, leased ones included): how many, and the earliest due time.
 * For the backlog metrics: one range of `payment_sweep_idx` (status, next_query_at), read from the
 * index alone, so its cost grows with the backlog, never with the table.
 */
export async function overdueForQuery(session: Session, status: PaymentStatus, now: Date): Promise<{ count: number; oldestDueAt: Date | undefined }> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    "select count(*) as n, min(next_query_at) as oldest from payment where status = ? and next_query_at <= ?",
    [status, now],
  );
  const row = rows[0] ?? {};
  return { count: Number(row.n ?? 0), oldestDueAt: row.oldest === null || row.oldest === undefined ? undefined : rawDate(row.oldest) };
}
