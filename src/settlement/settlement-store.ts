/**
 * The settlement store: every statement on `settlement`, `settlement_line` and `settlement_hold`.
 *
 * The one deliberate cross-table read: the daily run writes an order's lines with
 * `INSERT ... SELECT` straight from `payment`, `refund` (and `discrepancy`, for the OPEN ones that
 * hold a payment back), read-only, instead of reading the rows into the process and writing them
 * back. Measured with bench/settlement-scale.ts (1,000,000 payments over 1,000 merchants): the
 * rows never leave the database, so memory stays flat whatever a merchant's volume. Every other
 * statement on those tables stays in their own stores. What a status means (which payments count
 * as paid, which refunds are final, which discrepancies are open) comes from the callers, taken
 * from the state tables; no status rule is written into a statement here (line kinds and order
 * statuses are this aggregate's own values).
 */
import { findRow, insertRow, isMysqlExecutor, runStatement } from "../db/rows.js";
import { entityManager, rowExecutor, toBigInt } from "../db/store-access.js";
import type { Session, Tx } from "../db/unit-of-work.js";
import type { PageRequest } from "../pagination.js";
import { Settlement, SettlementHold, SettlementLine, type SettlementLineRow, type SettlementRow } from "./settlement-entity.js";

/** The statuses the daily run reads rows by, from the state tables of their owners. */
export interface SettleableStatuses {
  /** Payment statuses that count as paid. */
  paid: readonly string[];
  /** The final status of a refund whose money went back. */
  refundSucceeded: string;
  /** The status of a discrepancy that holds its payment back. */
  discrepancyOpen: string;
}

/** The period and scope of a run. */
export interface RunScope {
  settlementDate: string;
  start: Date;
  end: Date;
  merchantId?: string;
}

/** What a line and its order are built for. */
export interface OrderScope {
  settlementId: string;
  merchantId: string;
  currency: string;
  start: Date;
  end: Date;
}

function placeholders(values: readonly unknown[]): string {
  return values.map(() => "?").join(", ");
}

/** A date as the driver binds it (a Date on MySQL, epoch milliseconds on the embedded database). */
function at(session: Session, date: Date): unknown {
  return entityManager(session).getPlatform().processDateProperty(date);
}

async function rowsOf(session: Session, sql: string, params: readonly unknown[]): Promise<Array<Record<string, unknown>>> {
  return entityManager(session).execute(sql, [...params]);
}

const PAYMENT_IN_PERIOD = `p.paid_at >= ? and p.paid_at < ?`;

/**
 * `insert into <rest>` skipping rows whose unique key exists: lines skip a payment, refund or
 * carried order already on a line (an earlier order, or a racing run's, once it commits), so
 * nothing is settled twice. Measured on 1,000-line orders: 18 ms against 33 ms for a NOT EXISTS on
 * the line table, which also makes the server buffer the rows in a temporary table. MySQL's IGNORE
 * has no other error to swallow here (values computed from columns of the same types). SQLite's
 * form is ON CONFLICT DO NOTHING (its SELECTs here all have a WHERE, as that form needs), not
 * `insert or ignore`, whose changed-row count the libSQL driver does not report.
 */
function insertSkippingDuplicates(rows: ReturnType<typeof rowExecutor>, rest: string): string {
  return isMysqlExecutor(rows) ? `insert ignore into ${rest}` : `insert into ${rest} on conflict do nothing`;
}

const LINE_COLUMNS = "settlement_line (id, settlement_id, merchant_id, kind, payment_id, refund_id, gross, fee, net, occurred_at)";

const NOT_SETTLED = (alias: string) => `not exists (select 1 from settlement_line l where l.id = ${alias}.id)`;
const NO_OPEN_DISCREPANCY = `not exists (select 1 from discrepancy d where d.payment_id = p.id and d.status = ?)`;

/** Hold rows written per statement. */
const HOLDS_PER_INSERT = 500;

/**
 * Records the period's paid, unsettled payments that have an OPEN discrepancy as held from
 * `settlementDate` (once: a payment held already keeps its first row). Read from the OPEN
 * discrepancies with a plain (non-locking) read, then written: the period's payment rows are not
 * locked. Resolves with how many are held from this date now.
 */
export async function recordHolds(session: Session, run: RunScope, statuses: SettleableStatuses, now: Date): Promise<number> {
  const merchant = run.merchantId === undefined ? [] : [run.merchantId];
  const held = await rowsOf(
    session,
    `select distinct p.id, p.merchant_id, p.currency from discrepancy d join payment p on p.id = d.payment_id
     where d.status = ? and ${PAYMENT_IN_PERIOD} and p.status in (${placeholders(statuses.paid)})${merchant.length ? " and p.merchant_id = ?" : ""}
       and ${NOT_SETTLED("p")}`,
    [statuses.discrepancyOpen, at(session, run.start), at(session, run.end), ...statuses.paid, ...merchant],
  );
  const rows = rowExecutor(session);
  for (let from = 0; from < held.length; from += HOLDS_PER_INSERT) {
    const chunk = held.slice(from, from + HOLDS_PER_INSERT);
    await runStatement(
      rows,
      insertSkippingDuplicates(
        rows,
        `settlement_hold (payment_id, merchant_id, currency, settlement_date, created_at) values ${chunk.map(() => "(?, ?, ?, ?, ?)").join(", ")}`,
      ),
      chunk.flatMap((row) => [String(row.id), String(row.merchant_id), String(row.currency), run.settlementDate, at(session, now)]),
    );
  }
  const counted = await rowsOf(
    session,
    `select count(*) as n from settlement_hold where settlement_date = ?${merchant.length ? " and merchant_id = ?" : ""}`,
    [run.settlementDate, ...merchant],
  );
  return Number(toBigInt(counted[0]?.n));
}

/**
 * The (merchant, currency) pairs that may have something to settle for the run, in merchant order:
 * those with payments paid or refunds succeeded in the period, found by a loose index scan (one
 * seek per pair on the settlement indexes, not a read of the period's rows: 0.1 s against 0.9 s
 * for 1,000,000 payments), and those with held payments whose discrepancies are all resolved.
 * Candidates only: an order of a pair with nothing left to settle (all settled, held, or not in a
 * paid status) is rolled back by the service.
 */
export async function pairsToSettle(session: Session, run: RunScope, statuses: SettleableStatuses): Promise<Array<{ merchantId: string; currency: string }>> {
  const only = (column: string) => (run.merchantId === undefined ? "" : ` and ${column} = ?`);
  const merchant = run.merchantId === undefined ? [] : [run.merchantId];
  const rows = await rowsOf(
    session,
    `select merchant_id, currency from (
       select p.merchant_id, p.currency, min(p.paid_at) as first_at from payment p
       where ${PAYMENT_IN_PERIOD}${only("p.merchant_id")} group by p.merchant_id, p.currency
       union
       select r.merchant_id, r.currency, min(r.succeeded_at) as first_at from refund r
       where r.succeeded_at >= ? and r.succeeded_at < ?${only("r.merchant_id")} group by r.merchant_id, r.currency
       union
       select h.merchant_id, h.currency, min(h.created_at) as first_at from settlement_hold h join payment p on p.id = h.payment_id
       where p.status in (${placeholders(statuses.paid)})${only("h.merchant_id")} and ${NO_OPEN_DISCREPANCY}
       group by h.merchant_id, h.currency
     ) pairs group by merchant_id, currency order by merchant_id, currency`,
    [
      at(session, run.start),
      at(session, run.end),
      ...merchant,
      at(session, run.start),
      at(session, run.end),
      ...merchant,
      ...statuses.paid,
      ...merchant,
      statuses.discrepancyOpen,
    ],
  );
  return rows.map((row) => ({ merchantId: String(row.merchant_id), currency: String(row.currency) }));
}

/** The merchant's scheduled order of a settlement date in a currency, if built. */
export function findScheduledOrder(session: Session, merchantId: string, currency: string, settlementDate: string): Promise<SettlementRow | undefined> {
  return findRow<SettlementRow>(rowExecutor(session), Settlement, { merchantId, currency, kind: "SCHEDULED", settlementDate });
}

/** Inserts an order row; a second order for the same merchant, currency and date fails on its unique key. */
export async function insertOrder(tx: Tx, order: SettlementRow): Promise<void> {
  await insertRow(rowExecutor(tx), Settlement, order);
}

/**
 * Writes the order's payment lines: the period's paid payments of the merchant and currency that
 * are not held and not settled, then the held ones whose discrepancies are all resolved (their
 * hold rows deleted). Resolves with the number of lines written. The per-payment discrepancy check
 * and the hold statements run only for a merchant with an OPEN discrepancy or a hold (a few rows
 * read first): the check cost 8 of 30 ms per 1,000-line order on the 1M-payment bench.
 */
export async function insertPaymentLines(tx: Tx, order: OrderScope, statuses: SettleableStatuses): Promise<number> {
  const rows = rowExecutor(tx);
  const select = `select p.id, ?, p.merchant_id, 'PAYMENT', p.id, null, p.amount, p.fee, p.amount - p.fee, p.paid_at from payment p`;
  const hasOpen =
    (
      await rowsOf(
        tx,
        "select 1 as found from discrepancy d join payment p on p.id = d.payment_id where d.status = ? and p.merchant_id = ? limit 1",
        [statuses.discrepancyOpen, order.merchantId],
      )
    ).length > 0;
  let written = await runStatement(
    rows,
    insertSkippingDuplicates(
      rows,
      `${LINE_COLUMNS} ${select}
       where p.merchant_id = ? and p.currency = ? and ${PAYMENT_IN_PERIOD} and p.status in (${placeholders(statuses.paid)})
         ${hasOpen ? `and ${NO_OPEN_DISCREPANCY}` : ""}`,
    ),
    [
      order.settlementId,
      order.merchantId,
      order.currency,
      at(tx, order.start),
      at(tx, order.end),
      ...statuses.paid,
      ...(hasOpen ? [statuses.discrepancyOpen] : []),
    ],
  );
  const hasHolds =
    (await rowsOf(tx, "select 1 as found from settlement_hold where merchant_id = ? and currency = ? limit 1", [order.merchantId, order.currency]))
      .length > 0;
  if (!hasHolds) return written;
  written += await runStatement(
    rows,
    insertSkippingDuplicates(
      rows,
      `${LINE_COLUMNS} ${select} join settlement_hold h on h.payment_id = p.id
       where h.merchant_id = ? and h.currency = ? and p.status in (${placeholders(statuses.paid)})
         and ${NO_OPEN_DISCREPANCY}`,
    ),
    [order.settlementId, order.merchantId, order.currency, ...statuses.paid, statuses.discrepancyOpen],
  );
  await runStatement(
    rows,
    `delete from settlement_hold where merchant_id = ? and currency = ?
       and exists (select 1 from settlement_line l where l.id = settlement_hold.payment_id)`,
    [order.merchantId, order.currency],
  );
  return written;
}

/** Writes the order's refund lines: the period's succeeded, unsettled refunds of the merchant and currency. */
export async function insertRefundLines(tx: Tx, order: OrderScope, statuses: SettleableStatuses): Promise<number> {
  const rows = rowExecutor(tx);
  return runStatement(
    rows,
    insertSkippingDuplicates(
      rows,
      `${LINE_COLUMNS}
       select r.id, ?, r.merchant_id, 'REFUND', r.payment_id, r.id, -r.amount, -r.fee_returned, r.fee_returned - r.amount, r.succeeded_at
       from refund r
       where r.merchant_id = ? and r.currency = ? and r.succeeded_at >= ? and r.succeeded_at < ? and r.status = ?`,
    ),
    [order.settlementId, order.merchantId, order.currency, at(tx, order.start), at(tx, order.end), statuses.refundSucceeded],
  );
}

/**
 * Carries the merchant's CARRIED_FORWARD orders in the currency not carried yet into this order:
 * a CARRIED line each (gross = net = their negative net), and their `carried_into_id` set.
 */
export async function carryForwardInto(tx: Tx, order: OrderScope): Promise<number> {
  const rows = rowExecutor(tx);
  const carried = await runStatement(
    rows,
    insertSkippingDuplicates(
      rows,
      `${LINE_COLUMNS}
       select s.id, ?, s.merchant_id, 'CARRIED', null, null, s.net_amount, 0, s.net_amount, s.created_at from settlement s
       where s.merchant_id = ? and s.currency = ? and s.status = 'CARRIED_FORWARD' and s.carried_into_id is null and s.id <> ?`,
    ),
    [order.settlementId, order.merchantId, order.currency, order.settlementId],
  );
  if (carried > 0) {
    await runStatement(
      rows,
      `update settlement set carried_into_id = ?
       where merchant_id = ? and currency = ? and carried_into_id is null
         and id in (select l.id from settlement_line l where l.settlement_id = ? and l.kind = 'CARRIED')`,
      [order.settlementId, order.merchantId, order.currency, order.settlementId],
    );
  }
  return carried;
}

/** Writes one line (a withdrawal). */
export async function insertLine(tx: Tx, line: SettlementLineRow): Promise<void> {
  await insertRow(rowExecutor(tx), SettlementLine, line);
}

/** An order's totals, summed over its lines. */
export interface OrderTotals {
  paymentsAmount: bigint;
  refundsAmount: bigint;
  feeAmount: bigint;
  carriedAmount: bigint;
  grossAmount: bigint;
  netAmount: bigint;
  lineCount: bigint;
}

const TOTALS_SELECT = `sum(case when kind = 'PAYMENT' then gross else 0 end) as payments,
  sum(case when kind = 'REFUND' then gross else 0 end) as refunds, sum(fee) as fee,
  sum(case when kind = 'CARRIED' then gross else 0 end) as carried, sum(gross) as gross, sum(net) as net, count(*) as line_total`;

function totalsOf(row: Record<string, unknown> | undefined): OrderTotals {
  return {
    paymentsAmount: toBigInt(row?.payments),
    refundsAmount: toBigInt(row?.refunds),
    feeAmount: toBigInt(row?.fee),
    carriedAmount: toBigInt(row?.carried),
    grossAmount: toBigInt(row?.gross),
    netAmount: toBigInt(row?.net),
    lineCount: toBigInt(row?.line_total),
  };
}

/** Sums the order's lines into its totals and sets its status; resolves with the totals. */
export async function writeTotals(tx: Tx, settlementId: string, status: (totals: OrderTotals) => string): Promise<OrderTotals> {
  const totals = totalsOf((await rowsOf(tx, `select ${TOTALS_SELECT} from settlement_line where settlement_id = ?`, [settlementId]))[0]);
  await runStatement(
    rowExecutor(tx),
    `update settlement set payments_amount = ?, refunds_amount = ?, fee_amount = ?, carried_amount = ?, gross_amount = ?,
       net_amount = ?, line_count = ?, status = ? where id = ?`,
    [
      totals.paymentsAmount,
      totals.refundsAmount,
      totals.feeAmount,
      totals.carriedAmount,
      totals.grossAmount,
      totals.netAmount,
      totals.lineCount,
      status(totals),
      settlementId,
    ],
  );
  return totals;
}

/** The merchant's order, or undefined (also for another merchant's order). */
export function findMerchantOrder(session: Session, merchantId: string, id: string): Promise<SettlementRow | undefined> {
  return findRow<SettlementRow>(rowExecutor(session), Settlement, { id, merchantId });
}

/** The merchant's order created with an `idempotency-key`, if any. */
export function findByIdempotencyKey(session: Session, merchantId: string, idempotencyKey: string): Promise<SettlementRow | undefined> {
  return findRow<SettlementRow>(rowExecutor(session), Settlement, { merchantId, idempotencyKey });
}

/** A page of the merchant's orders, newest first. */
export function listMerchantOrders(
  session: Session,
  merchantId: string,
  filter: { currency?: string; settlementDate?: string },
  page: PageRequest,
): Promise<SettlementRow[]> {
  const where: Record<string, unknown> = { merchantId };
  if (filter.currency) where.currency = filter.currency;
  if (filter.settlementDate) where.settlementDate = filter.settlementDate;
  if (page.afterId) where.id = { $lt: page.afterId };
  return entityManager(session).find(Settlement, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

/** A page of an order's lines, newest source first. */
export function listLines(session: Session, settlementId: string, page: PageRequest): Promise<SettlementLineRow[]> {
  const where: Record<string, unknown> = { settlementId };
  if (page.afterId) where.id = { $lt: page.afterId };
  return entityManager(session).find(SettlementLine, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

/** The scheduled orders of a settlement date (of one merchant, when given), by merchant and currency. */
export function ordersOfDate(session: Session, settlementDate: string, merchantId?: string): Promise<SettlementRow[]> {
  const where: Record<string, unknown> = { kind: "SCHEDULED", settlementDate };
  if (merchantId !== undefined) where.merchantId = merchantId;
  return entityManager(session).find(Settlement, where, { orderBy: { merchantId: "asc", currency: "asc" }, disableIdentityMap: true });
}

/** How many scheduled orders a settlement date has (of one merchant, when given). */
export async function countOrdersOfDate(session: Session, settlementDate: string, merchantId?: string): Promise<number> {
  const rows = await rowsOf(
    session,
    `select count(*) as n from settlement where kind = 'SCHEDULED' and settlement_date = ?${merchantId === undefined ? "" : " and merchant_id = ?"}`,
    merchantId === undefined ? [settlementDate] : [settlementDate, merchantId],
  );
  return Number(toBigInt(rows[0]?.n));
}

/** The payments held from a settlement date (of one merchant, when given), at most `limit`. */
export function holdsOfDate(session: Session, settlementDate: string, merchantId: string | undefined, limit: number) {
  const where: Record<string, unknown> = { settlementDate };
  if (merchantId !== undefined) where.merchantId = merchantId;
  return entityManager(session).find(SettlementHold, where, { orderBy: { paymentId: "asc" }, limit, disableIdentityMap: true });
}

/** Orders whose totals are not the sums of their lines (for the ledger check). */
export async function ordersNotMatchingLines(session: Session): Promise<Array<{ id: string; detail: string }>> {
  const rows = await rowsOf(
    session,
    `select s.id, s.payments_amount, s.refunds_amount, s.fee_amount, s.carried_amount, s.gross_amount, s.net_amount, s.line_count,
       t.payments, t.refunds, t.fee, t.carried, t.gross, t.net, t.line_total
     from settlement s left join (select settlement_id, ${TOTALS_SELECT} from settlement_line group by settlement_id) t
       on t.settlement_id = s.id
     where s.payments_amount <> coalesce(t.payments, 0) or s.refunds_amount <> coalesce(t.refunds, 0)
       or s.fee_amount <> coalesce(t.fee, 0) or s.carried_amount <> coalesce(t.carried, 0)
       or s.gross_amount <> coalesce(t.gross, 0) or s.net_amount <> coalesce(t.net, 0) or s.line_count <> coalesce(t.line_total, 0)
       or s.gross_amount <> s.net_amount + s.fee_amount`,
    [],
  );
  return rows.map((row) => {
    const lines = totalsOf(row);
    return {
      id: String(row.id),
      detail:
        `order gross ${toBigInt(row.gross_amount)}, fee ${toBigInt(row.fee_amount)}, net ${toBigInt(row.net_amount)}, lines ${toBigInt(row.line_count)}; ` +
        `its lines sum to gross ${lines.grossAmount}, fee ${lines.feeAmount}, net ${lines.netAmount} over ${lines.lineCount} lines`,
    };
  });
}

/** Lines whose gross is not net + fee (for the ledger check). */
export async function linesNotBalanced(session: Session): Promise<Array<{ id: string; gross: bigint; fee: bigint; net: bigint }>> {
  const rows = await rowsOf(session, "select id, gross, fee, net from settlement_line where gross <> net + fee", []);
  return rows.map((row) => ({ id: String(row.id), gross: toBigInt(row.gross), fee: toBigInt(row.fee), net: toBigInt(row.net) }));
}

/** Payments or refunds on more than one line (for the ledger check). */
export async function settledTwice(session: Session): Promise<Array<{ subject: string; lines: bigint }>> {
  const rows = await rowsOf(
    session,
    `select payment_id as subject, count(*) as n from settlement_line where kind = 'PAYMENT' group by payment_id having count(*) > 1
     union all
     select refund_id as subject, count(*) as n from settlement_line where kind = 'REFUND' group by refund_id having count(*) > 1`,
    [],
  );
  return rows.map((row) => ({ subject: String(row.subject), lines: toBigInt(row.n) }));
}
