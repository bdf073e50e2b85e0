/**
 * The settlement store: every statement on `settlement`, `settlement_line` and `settlement_hold`.
 *
 * The one deliberate cross-table read. A scheduled order's payment and refund lines are DERIVED,
 * not copied: the merchant's payments and refunds in the order's currency that became final
 * (`succeeded_at`, our clock) in its period, less the payments held from it. So this store reads
 * `payment` and `refund` (and `discrepancy`, for the OPEN ones that hold a payment back), read-only:
 * for an order's totals (aggregates over `payment_settlement_idx`, index-only), for its pages of
 * lines, for which merchants to settle, and for the ledger check. Measured with
 * bench/settlement-scale.ts (1,000,000 payments over 1,000 merchants): copying a line per payment
 * cost 9.8x the baseline aggregate in writes alone; reading the derived lines costs one index range
 * per order. Every write on those tables stays with their own stores. What a status means (which
 * payments count as paid, which refunds are final, which discrepancies are open) comes from the
 * callers, taken from the state tables; no status rule is written into a statement here (line
 * kinds and order statuses are this aggregate's own values).
 */
import { findRow, insertRow, isMysqlExecutor, runStatement } from "../db/rows.js";
import { rawDate } from "../db/raw-sql.js";
import { entityManager, rowExecutor, toBigInt } from "../db/store-access.js";
import type { RowScope, Session, Tx } from "../db/unit-of-work.js";
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

/** What an order is built for. */
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

/** As {@link at}, in either kind of transaction (a row transaction is no EntityManager). */
function atRow(scope: RowScope, date: Date): unknown {
  return isMysqlExecutor(rowExecutor(scope)) ? date : date.getTime();
}

async function rowsOf(session: Session, sql: string, params: readonly unknown[]): Promise<Array<Record<string, unknown>>> {
  return entityManager(session).execute(sql, [...params]);
}

/**
 * `insert into <rest>` skipping rows whose unique key exists: a released payment already on a
 * stored line, a carried order carried already, a payment held already. MySQL's IGNORE has no
 * other error to swallow here (values computed from columns of the same types). SQLite's form is
 * ON CONFLICT DO NOTHING (its SELECTs here all have a WHERE, as that form needs), not `insert or
 * ignore`, whose changed-row count the libSQL driver does not report.
 */
function insertSkippingDuplicates(rows: ReturnType<typeof rowExecutor>, rest: string): string {
  return isMysqlExecutor(rows) ? `insert ignore into ${rest}` : `insert into ${rest} on conflict do nothing`;
}

const LINE_COLUMNS = "settlement_line (id, settlement_id, merchant_id, kind, payment_id, refund_id, gross, fee, net, occurred_at)";

const NO_OPEN_DISCREPANCY = `not exists (select 1 from discrepancy d where d.payment_id = p.id and d.status = ?)`;

/**
 * An order's derived payments (alias `p`): the merchant's paid payments in the currency that
 * succeeded in the period. Parameters: merchant, currency, start, end, then the paid statuses.
 * Held payments are taken off by the caller (they are few; the rest reads the index alone).
 */
function derivedPayments(paid: readonly string[]): string {
  return `p.merchant_id = ? and p.currency = ? and p.succeeded_at >= ? and p.succeeded_at < ? and p.status in (${placeholders(paid)})`;
}

/** An order's derived refunds (alias `r`). Parameters: merchant, currency, start, end, the succeeded status. */
const DERIVED_REFUNDS = "r.merchant_id = ? and r.currency = ? and r.succeeded_at >= ? and r.succeeded_at < ? and r.status = ?";

function scopeParams(session: Session, order: Pick<OrderScope, "merchantId" | "currency" | "start" | "end">): unknown[] {
  return [order.merchantId, order.currency, at(session, order.start), at(session, order.end)];
}

function scopeRowParams(scope: RowScope, order: Pick<OrderScope, "merchantId" | "currency" | "start" | "end">): unknown[] {
  return [order.merchantId, order.currency, atRow(scope, order.start), atRow(scope, order.end)];
}

/** Hold rows written per statement. */
const HOLDS_PER_INSERT = 500;

/**
 * What a run's orders may have to do besides their derived lines, read once at its start (a round
 * trip per order each cost more than the order's own totals): merchants with an OPEN discrepancy
 * (few: OPEN ones are a person's to-do list), merchant currencies with unreleased holds or with a
 * negative order not carried yet, and the orders of the date built already.
 */
export interface RunHints {
  merchantsWithOpenDiscrepancy: Set<string>;
  /**
   * Merchants with a payout account row (`settlement_account`, read-only: whether one exists, so
   * an order of a merchant without one skips the payout service's locking read and runs as a row
   * transaction). An account set up after the run began is used from the merchant's next order on;
   * its settled money meanwhile stays available (SubmitSettlement pays it out).
   */
  merchantsWithPayoutAccount: Set<string>;
  /** `merchant currency` keys. */
  pairsWithHolds: Set<string>;
  pairsToCarry: Set<string>;
  pairsBuilt: Set<string>;
}

/** The key of a merchant currency in {@link RunHints}. */
export function pairKey(merchantId: string, currency: string): string {
  return `${merchantId} ${currency}`;
}

export async function runHints(session: Session, run: RunScope, statuses: SettleableStatuses): Promise<RunHints> {
  const only = (column: string) => (run.merchantId === undefined ? "" : ` and ${column} = ?`);
  const merchant = run.merchantId === undefined ? [] : [run.merchantId];
  const open = await rowsOf(
    session,
    `select distinct p.merchant_id from discrepancy d join payment p on p.id = d.payment_id where d.status = ?${only("p.merchant_id")}`,
    [statuses.discrepancyOpen, ...merchant],
  );
  const pairs = async (sql: string, params: unknown[]) => new Set((await rowsOf(session, sql, params)).map((row) => pairKey(String(row.merchant_id), String(row.currency))));
  const accounts = await rowsOf(session, `select distinct merchant_id from settlement_account where 1 = 1${only("merchant_id")}`, merchant);
  return {
    merchantsWithOpenDiscrepancy: new Set(open.map((row) => String(row.merchant_id))),
    merchantsWithPayoutAccount: new Set(accounts.map((row) => String(row.merchant_id))),
    pairsWithHolds: await pairs(
      `select distinct merchant_id, currency from settlement_hold where released_into_id is null${only("merchant_id")}`,
      merchant,
    ),
    pairsToCarry: await pairs(
      `select distinct merchant_id, currency from settlement where status = 'CARRIED_FORWARD' and carried_into_id is null${only("merchant_id")}`,
      merchant,
    ),
    pairsBuilt: await pairs(
      `select merchant_id, currency from settlement where kind = 'SCHEDULED' and settlement_date = ?${only("merchant_id")}`,
      [run.settlementDate, ...merchant],
    ),
  };
}

/**
 * Holds back the order's derived payments that have an OPEN discrepancy: a `settlement_hold` row
 * each, naming the order, written in its transaction (so the order's derived set is frozen without
 * them). Found with a plain (non-locking) read of the OPEN discrepancies, so the period's payment
 * rows are not locked. Resolves with the payments held from this order.
 */
export async function holdPayments(tx: Tx, order: OrderScope, settlementDate: string, statuses: SettleableStatuses, now: Date): Promise<number> {
  const held = await rowsOf(
    tx,
    `select distinct p.id from discrepancy d join payment p on p.id = d.payment_id where d.status = ? and ${derivedPayments(statuses.paid)}`,
    [statuses.discrepancyOpen, ...scopeParams(tx, order), ...statuses.paid],
  );
  const rows = rowExecutor(tx);
  let written = 0;
  for (let from = 0; from < held.length; from += HOLDS_PER_INSERT) {
    const chunk = held.slice(from, from + HOLDS_PER_INSERT);
    written += await runStatement(
      rows,
      insertSkippingDuplicates(
        rows,
        `settlement_hold (payment_id, settlement_id, merchant_id, currency, settlement_date, created_at, released_into_id, released_at)
         values ${chunk.map(() => "(?, ?, ?, ?, ?, ?, null, null)").join(", ")}`,
      ),
      chunk.flatMap((row) => [String(row.id), order.settlementId, order.merchantId, order.currency, settlementDate, at(tx, now)]),
    );
  }
  return written;
}

/**
 * Settles the merchant's held payments in the currency whose discrepancies are all resolved as
 * explicit PAYMENT lines of this order, and records this order on their hold rows. A payment on a
 * stored line already (a racing run released it first) is skipped. Resolves with the lines written.
 */
export async function releaseHolds(tx: Tx, order: OrderScope, statuses: SettleableStatuses, now: Date): Promise<number> {
  const rows = rowExecutor(tx);
  const written = await runStatement(
    rows,
    insertSkippingDuplicates(
      rows,
      `${LINE_COLUMNS}
       select p.id, ?, p.merchant_id, 'PAYMENT', p.id, null, p.amount, p.fee, p.amount - p.fee, p.succeeded_at
       from settlement_hold h join payment p on p.id = h.payment_id
       where h.merchant_id = ? and h.currency = ? and h.released_into_id is null and h.settlement_id <> ?
         and p.status in (${placeholders(statuses.paid)}) and ${NO_OPEN_DISCREPANCY}`,
    ),
    [order.settlementId, order.merchantId, order.currency, order.settlementId, ...statuses.paid, statuses.discrepancyOpen],
  );
  if (written > 0) {
    await runStatement(
      rows,
      `update settlement_hold set released_into_id = ?, released_at = ?
       where merchant_id = ? and currency = ? and released_into_id is null
         and payment_id in (select l.id from settlement_line l where l.settlement_id = ? and l.kind = 'PAYMENT')`,
      [order.settlementId, at(tx, now), order.merchantId, order.currency, order.settlementId],
    );
  }
  return written;
}

/**
 * The (merchant, currency) pairs that may have something to settle for the run, in merchant order:
 * those with payments or refunds that succeeded in the period, found by a loose index scan (one
 * seek per pair on the settlement indexes, not a read of the period's rows: 0.1 s against 0.9 s
 * for 1,000,000 payments), and those with held payments whose discrepancies are all resolved.
 * Candidates only: an order of a pair with nothing to settle is rolled back by the service.
 */
export async function pairsToSettle(session: Session, run: RunScope, statuses: SettleableStatuses): Promise<Array<{ merchantId: string; currency: string }>> {
  const only = (column: string) => (run.merchantId === undefined ? "" : ` and ${column} = ?`);
  const merchant = run.merchantId === undefined ? [] : [run.merchantId];
  const rows = await rowsOf(
    session,
    `select merchant_id, currency from (
       select p.merchant_id, p.currency, min(p.succeeded_at) as first_at from payment p
       where p.succeeded_at >= ? and p.succeeded_at < ?${only("p.merchant_id")} group by p.merchant_id, p.currency
       union
       select r.merchant_id, r.currency, min(r.succeeded_at) as first_at from refund r
       where r.succeeded_at >= ? and r.succeeded_at < ?${only("r.merchant_id")} group by r.merchant_id, r.currency
       union
       select h.merchant_id, h.currency, min(h.created_at) as first_at from settlement_hold h join payment p on p.id = h.payment_id
       where h.released_into_id is null and p.status in (${placeholders(statuses.paid)})${only("h.merchant_id")} and ${NO_OPEN_DISCREPANCY}
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

/**
 * Scheduled orders of other dates whose period overlaps this one (a changed cut-off, delay or
 * time zone): their derived lines would overlap this date's. At most `limit` dates.
 */
export async function overlappingDates(session: Session, run: RunScope, limit: number): Promise<string[]> {
  const rows = await rowsOf(
    session,
    `select distinct settlement_date from settlement
     where kind = 'SCHEDULED' and settlement_date <> ? and period_start < ? and period_end > ? order by settlement_date limit ${Math.floor(limit)}`,
    [run.settlementDate, at(session, run.end), at(session, run.start)],
  );
  return rows.map((row) => String(row.settlement_date));
}

/** The merchant's scheduled order of a settlement date in a currency, if built. */
export function findScheduledOrder(session: Session, merchantId: string, currency: string, settlementDate: string): Promise<SettlementRow | undefined> {
  return findRow<SettlementRow>(rowExecutor(session), Settlement, { merchantId, currency, kind: "SCHEDULED", settlementDate });
}

/**
 * Inserts an order row (with its totals); a second order for the same merchant, currency and date
 * fails on its unique key (a racing run's insert waits for the first one's transaction, then fails).
 */
export async function insertOrder(tx: Tx, order: SettlementRow): Promise<void> {
  await insertRow(rowExecutor(tx), Settlement, order);
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

/**
 * Inserts a scheduled order with its totals, summed in the same statement from its derived lines
 * (aggregates over the settlement indexes, less what was held from it: index-only) and its stored
 * lines; its status CARRIED_FORWARD when the net is negative. Nothing is inserted when it has no
 * payment or refund line and holds nothing (`heldHere` payments held from it in this transaction).
 * One statement on the driver's prepared path: the order's totals were a round trip and a parse of
 * their own. A second order of the same merchant, currency and date fails on its unique key (a
 * racing run's insert waits for the first one's transaction, then fails). Resolves with whether
 * it was inserted. `gross = net + fee` holds by construction: every line's net is its gross less
 * its fee.
 */
export async function insertScheduledOrder(
  tx: RowScope,
  order: Pick<SettlementRow, "id" | "settlementNo" | "settlementDate" | "createdAt">,
  scope: OrderScope,
  statuses: SettleableStatuses,
  heldHere: number,
): Promise<boolean> {
  const inserted = await runStatement(
    rowExecutor(tx),
    `insert into settlement (id, settlement_no, merchant_id, currency, kind, settlement_date, period_start, period_end,
       payments_amount, refunds_amount, fee_amount, carried_amount, gross_amount, net_amount, line_count, status,
       carried_into_id, idempotency_key, request_hash, created_at)
     select ?, ?, ?, ?, 'SCHEDULED', ?, ?, ?, t.payments, t.refunds, t.fee, t.carried, t.gross, t.net, t.line_total,
       case when t.net < 0 then 'CARRIED_FORWARD' else 'SETTLED' end, null, null, null, ?
     from (
       select pay.payment_gross - held.held_gross + stored.payments as payments,
         stored.refunds - ref.refund_amount as refunds,
         pay.payment_fee - held.held_fee - ref.refund_fee + stored.fee as fee,
         stored.carried as carried,
         pay.payment_gross - held.held_gross - ref.refund_amount + stored.gross as gross,
         pay.payment_gross - pay.payment_fee - held.held_gross + held.held_fee - ref.refund_amount + ref.refund_fee + stored.net as net,
         pay.payment_count - held.held_count + ref.refund_count + stored.line_total as line_total,
         pay.payment_count - held.held_count + ref.refund_count + stored.settled_lines as settled_lines
       from (select count(*) as payment_count, coalesce(sum(p.amount), 0) as payment_gross, coalesce(sum(p.fee), 0) as payment_fee
             from payment p where ${derivedPayments(statuses.paid)}) pay
       cross join (select count(*) as held_count, coalesce(sum(p.amount), 0) as held_gross, coalesce(sum(p.fee), 0) as held_fee
             from settlement_hold h join payment p on p.id = h.payment_id where h.settlement_id = ?) held
       cross join (select count(*) as refund_count, coalesce(sum(r.amount), 0) as refund_amount, coalesce(sum(r.fee_returned), 0) as refund_fee
             from refund r where ${DERIVED_REFUNDS}) ref
       cross join (select coalesce(sum(case when kind = 'PAYMENT' then gross else 0 end), 0) as payments,
               coalesce(sum(case when kind = 'REFUND' then gross else 0 end), 0) as refunds, coalesce(sum(fee), 0) as fee,
               coalesce(sum(case when kind = 'CARRIED' then gross else 0 end), 0) as carried, coalesce(sum(gross), 0) as gross,
               coalesce(sum(net), 0) as net, count(*) as line_total,
               coalesce(sum(case when kind in ('PAYMENT', 'REFUND') then 1 else 0 end), 0) as settled_lines
             from settlement_line where settlement_id = ?) stored
     ) t
     where t.settled_lines > 0 or ? > 0`,
    [
      order.id,
      order.settlementNo,
      scope.merchantId,
      scope.currency,
      order.settlementDate,
      atRow(tx, scope.start),
      atRow(tx, scope.end),
      atRow(tx, order.createdAt),
      ...scopeRowParams(tx, scope),
      ...statuses.paid,
      order.id,
      ...scopeRowParams(tx, scope),
      statuses.refundSucceeded,
      order.id,
      heldHere,
    ],
  );
  return inserted > 0;
}

/** The order as its transaction sees it (by the driver's prepared path). */
export function reloadOrder(tx: RowScope, id: string): Promise<SettlementRow | undefined> {
  return findRow<SettlementRow>(rowExecutor(tx), Settlement, { id });
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

/**
 * A page of an order's lines, newest source first: for a scheduled order its derived lines (the
 * period's payments not held from it, and refunds) with its stored ones, read in one statement.
 */
export async function listLines(session: Session, order: SettlementRow, statuses: SettleableStatuses, page: PageRequest): Promise<SettlementLineRow[]> {
  const after = (column: string) => (page.afterId ? ` and ${column} < ?` : "");
  const afterParams = page.afterId ? [page.afterId] : [];
  const branches: string[] = [];
  const params: unknown[] = [];
  if (order.kind === "SCHEDULED") {
    const scope = { merchantId: order.merchantId, currency: order.currency, start: order.periodStart, end: order.periodEnd };
    branches.push(
      `select p.id as id, 'PAYMENT' as kind, p.id as payment_id, null as refund_id, p.amount as gross, p.fee as fee,
         p.amount - p.fee as net, p.succeeded_at as occurred_at
       from payment p where ${derivedPayments(statuses.paid)}${after("p.id")}
         and not exists (select 1 from settlement_hold h where h.payment_id = p.id and h.settlement_id = ?)`,
      `select r.id as id, 'REFUND' as kind, r.payment_id as payment_id, r.id as refund_id, -r.amount as gross, -r.fee_returned as fee,
         r.fee_returned - r.amount as net, r.succeeded_at as occurred_at
       from refund r where ${DERIVED_REFUNDS}${after("r.id")}`,
    );
    params.push(...scopeParams(session, scope), ...statuses.paid, ...afterParams, order.id);
    params.push(...scopeParams(session, scope), statuses.refundSucceeded, ...afterParams);
  }
  branches.push(
    `select l.id as id, l.kind as kind, l.payment_id as payment_id, l.refund_id as refund_id, l.gross as gross, l.fee as fee,
       l.net as net, l.occurred_at as occurred_at
     from settlement_line l where l.settlement_id = ?${after("l.id")}`,
  );
  params.push(order.id, ...afterParams);
  const rows = await rowsOf(
    session,
    `select id, kind, payment_id, refund_id, gross, fee, net, occurred_at from (${branches.join(" union all ")}) order_lines
     order by id desc limit ${Math.floor(page.limit)}`,
    params,
  );
  return rows.map((row) => ({
    settlementId: order.id,
    id: String(row.id),
    merchantId: order.merchantId,
    kind: String(row.kind),
    paymentId: row.payment_id === null || row.payment_id === undefined ? null : String(row.payment_id),
    refundId: row.refund_id === null || row.refund_id === undefined ? null : String(row.refund_id),
    gross: toBigInt(row.gross),
    fee: toBigInt(row.fee),
    net: toBigInt(row.net),
    occurredAt: rawDate(row.occurred_at),
  }));
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

/** How many payments are held from a settlement date (of one merchant, when given), released since or not. */
export async function countHoldsOfDate(session: Session, settlementDate: string, merchantId?: string): Promise<number> {
  const rows = await rowsOf(
    session,
    `select count(*) as n from settlement_hold where settlement_date = ?${merchantId === undefined ? "" : " and merchant_id = ?"}`,
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

/** A (merchant, currency) with orders, for the ledger check. */
export interface OrderPair {
  merchantId: string;
  currency: string;
}

/**
 * The (merchant, currency) pairs with orders, in that order, a page of at most `limit` after
 * `after` (keyset on the unique key's prefix: a loose index scan).
 */
export async function orderPairsPage(session: Session, after: OrderPair | undefined, limit: number): Promise<OrderPair[]> {
  const rows = await rowsOf(
    session,
    `select distinct merchant_id, currency from settlement
     ${after === undefined ? "" : "where merchant_id > ? or (merchant_id = ? and currency > ?)"}
     order by merchant_id, currency limit ${Math.floor(limit)}`,
    after === undefined ? [] : [after.merchantId, after.merchantId, after.currency],
  );
  return rows.map((row) => ({ merchantId: String(row.merchant_id), currency: String(row.currency) }));
}

/** When the earliest scheduled order's period starts (settlement began on this database), if any. */
export async function firstScheduledPeriodStart(session: Session): Promise<Date | undefined> {
  const rows = await rowsOf(session, "select min(period_start) as first_start from settlement where kind = 'SCHEDULED'", []);
  const first = rows[0]?.first_start;
  return first === null || first === undefined ? undefined : rawDate(first);
}

/** An order's kind, period and stored totals, as the ledger check compares them. */
export interface CheckedOrder {
  id: string;
  kind: string;
  periodStart: Date;
  periodEnd: Date;
  paymentsAmount: bigint;
  refundsAmount: bigint;
  feeAmount: bigint;
  carriedAmount: bigint;
  grossAmount: bigint;
  netAmount: bigint;
  lineCount: bigint;
}

/** Every order of a merchant currency (both kinds; on the unique key's prefix). */
export async function ordersOfPair(session: Session, pair: OrderPair): Promise<CheckedOrder[]> {
  const rows = await rowsOf(
    session,
    `select id, kind, period_start, period_end, payments_amount, refunds_amount, fee_amount, carried_amount, gross_amount, net_amount, line_count
     from settlement where merchant_id = ? and currency = ?`,
    [pair.merchantId, pair.currency],
  );
  return rows.map((row) => ({
    id: String(row.id),
    kind: String(row.kind),
    periodStart: rawDate(row.period_start),
    periodEnd: rawDate(row.period_end),
    paymentsAmount: toBigInt(row.payments_amount),
    refundsAmount: toBigInt(row.refunds_amount),
    feeAmount: toBigInt(row.fee_amount),
    carriedAmount: toBigInt(row.carried_amount),
    grossAmount: toBigInt(row.gross_amount),
    netAmount: toBigInt(row.net_amount),
    lineCount: toBigInt(row.line_count),
  }));
}

/** What an order's stored lines add up to. */
export interface StoredTotals {
  payments: bigint;
  refunds: bigint;
  fee: bigint;
  carried: bigint;
  gross: bigint;
  net: bigint;
  lineTotal: bigint;
}

/** The stored lines' totals of each order of a merchant currency that has any, by order id. */
export async function storedTotalsOfPair(session: Session, pair: OrderPair): Promise<Map<string, StoredTotals>> {
  const rows = await rowsOf(
    session,
    `select l.settlement_id, sum(case when l.kind = 'PAYMENT' then l.gross else 0 end) as payments,
       sum(case when l.kind = 'REFUND' then l.gross else 0 end) as refunds, sum(l.fee) as fee,
       sum(case when l.kind = 'CARRIED' then l.gross else 0 end) as carried, sum(l.gross) as gross, sum(l.net) as net, count(*) as line_total
     from settlement s join settlement_line l on l.settlement_id = s.id where s.merchant_id = ? and s.currency = ? group by l.settlement_id`,
    [pair.merchantId, pair.currency],
  );
  return new Map(
    rows.map((row) => [
      String(row.settlement_id),
      {
        payments: toBigInt(row.payments),
        refunds: toBigInt(row.refunds),
        fee: toBigInt(row.fee),
        carried: toBigInt(row.carried),
        gross: toBigInt(row.gross),
        net: toBigInt(row.net),
        lineTotal: toBigInt(row.line_total),
      },
    ]),
  );
}

/** A paid payment (or a refund) of the merchant currency that a hold row or a stored line names. */
export interface NamedSource {
  /** The payment or refund. */
  id: string;
  /** The order holding it back (a hold) or the order it is stored on (a stored line). */
  settlementId: string;
  /** Of the source: may differ from the order's only in a damaged database. */
  merchantId: string;
  currency: string;
  succeededAt: Date | null;
  amount: bigint;
  fee: bigint;
}

function namedSources(rows: Array<Record<string, unknown>>): NamedSource[] {
  return rows.map((row) => ({
    id: String(row.id),
    settlementId: String(row.settlement_id),
    merchantId: String(row.merchant_id),
    currency: String(row.currency),
    succeededAt: row.succeeded_at === null || row.succeeded_at === undefined ? null : rawDate(row.succeeded_at),
    amount: toBigInt(row.amount),
    fee: toBigInt(row.fee),
  }));
}

/** The paid payments held from the orders of a merchant currency (holds are few: OPEN discrepancies). */
export async function paidHoldsOfPair(session: Session, pair: OrderPair, statuses: SettleableStatuses): Promise<NamedSource[]> {
  const rows = await rowsOf(
    session,
    `select p.id, h.settlement_id, p.merchant_id, p.currency, p.succeeded_at, p.amount, p.fee
     from settlement s join settlement_hold h on h.settlement_id = s.id join payment p on p.id = h.payment_id
     where s.merchant_id = ? and s.currency = ? and p.status in (${placeholders(statuses.paid)})`,
    [pair.merchantId, pair.currency, ...statuses.paid],
  );
  return namedSources(rows);
}

/**
 * The paid payments and succeeded refunds on stored PAYMENT / REFUND lines of the orders of a
 * merchant currency (released holds: few), `kind` telling which.
 */
export async function storedSourcesOfPair(session: Session, pair: OrderPair, statuses: SettleableStatuses): Promise<Array<NamedSource & { kind: "PAYMENT" | "REFUND" }>> {
  const rows = await rowsOf(
    session,
    `select 'PAYMENT' as kind, p.id, l.settlement_id, p.merchant_id, p.currency, p.succeeded_at, p.amount, p.fee
     from settlement s join settlement_line l on l.settlement_id = s.id join payment p on p.id = l.payment_id
     where s.merchant_id = ? and s.currency = ? and l.kind = 'PAYMENT' and p.status in (${placeholders(statuses.paid)})
     union all
     select 'REFUND' as kind, r.id, l.settlement_id, r.merchant_id, r.currency, r.succeeded_at, r.amount, r.fee_returned as fee
     from settlement s join settlement_line l on l.settlement_id = s.id join refund r on r.id = l.refund_id
     where s.merchant_id = ? and s.currency = ? and l.kind = 'REFUND' and r.status = ?`,
    [pair.merchantId, pair.currency, ...statuses.paid, pair.merchantId, pair.currency, statuses.refundSucceeded],
  );
  return namedSources(rows).map((source, index) => ({ ...source, kind: rows[index]!.kind === "REFUND" ? "REFUND" : "PAYMENT" }));
}

/**
 * The scheduled orders of the payment's own merchant and currency whose period holds its success
 * and that did not hold it back (for a stored line on an order of another merchant or currency:
 * only in a damaged database).
 */
export async function ordersDerivingPayment(session: Session, paymentId: string, statuses: SettleableStatuses): Promise<string[]> {
  const rows = await rowsOf(
    session,
    `select s.id from payment p join settlement s on s.merchant_id = p.merchant_id and s.currency = p.currency and s.kind = 'SCHEDULED'
       and p.succeeded_at >= s.period_start and p.succeeded_at < s.period_end
     where p.id = ? and p.status in (${placeholders(statuses.paid)})
       and not exists (select 1 from settlement_hold h where h.payment_id = p.id and h.settlement_id = s.id)`,
    [paymentId, ...statuses.paid],
  );
  return rows.map((row) => String(row.id));
}

/** The payments (or refunds) of a merchant currency that succeeded at one instant: count and sums. */
export interface SuccessInstant {
  at: Date;
  count: bigint;
  amount: bigint;
  fee: bigint;
}

/**
 * A page of a merchant currency's paid payments (or succeeded refunds) that succeeded in
 * [from, to) (after `after` when given, exclusive), grouped by their success instant, in time
 * order: a range of the settlement index read in its order (index-only for payments), so every
 * row is read once over all pages; the instant is the keyset, unique per group.
 */
export async function successInstantsPage(
  session: Session,
  source: "payment" | "refund",
  pair: OrderPair,
  range: { from: Date; to: Date; after?: Date },
  statuses: SettleableStatuses,
  limit: number,
): Promise<SuccessInstant[]> {
  const [table, fee, status] =
    source === "payment" ? ["payment", "fee", `status in (${placeholders(statuses.paid)})`] : ["refund", "fee_returned", "status = ?"];
  const statusParams = source === "payment" ? statuses.paid : [statuses.refundSucceeded];
  const rows = await rowsOf(
    session,
    `select succeeded_at, count(*) as n, sum(amount) as amount, sum(${fee}) as fee from ${table}
     where merchant_id = ? and currency = ? and succeeded_at ${range.after === undefined ? ">=" : ">"} ? and succeeded_at < ? and ${status}
     group by succeeded_at order by succeeded_at limit ${Math.floor(limit)}`,
    [pair.merchantId, pair.currency, at(session, range.after ?? range.from), at(session, range.to), ...statusParams],
  );
  return rows.map((row) => ({ at: rawDate(row.succeeded_at), count: toBigInt(row.n), amount: toBigInt(row.amount), fee: toBigInt(row.fee) }));
}

/** Stored lines whose gross is not net + fee (for the ledger check; derived lines are so by construction). */
export async function linesNotBalanced(session: Session): Promise<Array<{ id: string; gross: bigint; fee: bigint; net: bigint }>> {
  const rows = await rowsOf(session, "select id, gross, fee, net from settlement_line where gross <> net + fee", []);
  return rows.map((row) => ({ id: String(row.id), gross: toBigInt(row.gross), fee: toBigInt(row.fee), net: toBigInt(row.net) }));
}

/**
 * Payments and refunds on two stored lines (for the ledger check; stored lines are few: released
 * holds, carried orders, withdrawals). Their being derived too, and overlapping periods, are found
 * per merchant currency by src/settlement/settlement-check.ts.
 */
export async function onTwoStoredLines(session: Session): Promise<Array<{ subject: string; lines: bigint }>> {
  const twice = await rowsOf(
    session,
    `select payment_id as subject, count(*) as n from settlement_line where kind = 'PAYMENT' group by payment_id having count(*) > 1
     union all
     select refund_id as subject, count(*) as n from settlement_line where kind = 'REFUND' group by refund_id having count(*) > 1`,
    [],
  );
  return twice.map((row) => ({ subject: String(row.subject), lines: toBigInt(row.n) }));
}

/**
 * A merchant currency's paid payments (or succeeded refunds) that succeeded in [from, to), summed
 * per bucket of `bucketMs` counted from `origin`, in time order (a window of the settlement index;
 * the caller keeps it to a bounded number of buckets). Each bucket's `at` is its start.
 */
export async function successBuckets(
  session: Session,
  source: "payment" | "refund",
  pair: OrderPair,
  window: { origin: Date; from: Date; to: Date },
  bucketMs: number,
  statuses: SettleableStatuses,
): Promise<SuccessInstant[]> {
  const [table, fee, status] =
    source === "payment" ? ["payment", "fee", `status in (${placeholders(statuses.paid)})`] : ["refund", "fee_returned", "status = ?"];
  const statusParams = source === "payment" ? statuses.paid : [statuses.refundSucceeded];
  const origin = at(session, window.origin);
  // MySQL holds datetime(3) (microseconds between them, exact); the embedded database epoch milliseconds.
  const bucket = origin instanceof Date ? "timestampdiff(microsecond, ?, succeeded_at) div ?" : "(succeeded_at - ?) / ?";
  const rows = await rowsOf(
    session,
    `select ${bucket} as bucket, count(*) as n, sum(amount) as amount, sum(${fee}) as fee from ${table}
     where merchant_id = ? and currency = ? and succeeded_at >= ? and succeeded_at < ? and ${status}
     group by bucket order by bucket`,
    [origin, origin instanceof Date ? bucketMs * 1000 : bucketMs, pair.merchantId, pair.currency, at(session, window.from), at(session, window.to), ...statusParams],
  );
  return rows.map((row) => ({
    at: new Date(window.origin.getTime() + Number(row.bucket) * bucketMs),
    count: toBigInt(row.n),
    amount: toBigInt(row.amount),
    fee: toBigInt(row.fee),
  }));
}
