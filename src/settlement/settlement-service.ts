/**
 * Settlement orders. The daily run (RunSettlement, the scheduler, `npm run settle`) builds, per
 * merchant and currency, one order of everything that became final by OUR clock (payment and
 * refund `succeeded_at`) in the settlement date's period (settlement-period.ts); SubmitSettlement
 * builds an order on request from the available balance. A scheduled order's payment and refund
 * lines are derived from its period, not copied (settlement-store.ts); stored lines are only a
 * held payment released into a later order, a carried order and a withdrawal. Each order is built
 * in ONE transaction: its row (unique per merchant, currency and date), its holds (which freeze
 * its derived set), its stored lines (keyed by their source), its totals (aggregates over the
 * derived rows and stored lines), its ledger entry and its payout. A crash leaves no half order; a
 * rerun builds the missing ones and leaves the others.
 *
 * No payment is settled twice because each succeeded_at lies in one period, a period has one
 * scheduled order per merchant and currency (its unique key; a run refuses a date whose period
 * overlaps another date's orders), a payment has one hold row, and a stored line's source is unique.
 *
 *   settled (net > 0)  `settlement`  debit merchant_pending:{m} net, credit merchant_available:{m} net
 *
 * A negative net moves nothing: the order is CARRIED_FORWARD into the merchant's next order in the
 * currency as a CARRIED line. A paid payment with an OPEN discrepancy is held out (settlement_hold)
 * until its discrepancies are resolved; the merchant's next run then includes it.
 */
import { createHash } from "node:crypto";
import type { SettlementSchedule } from "../config.js";
import { isDuplicateKey, type RowScope, type Session, type Tx, type UnitOfWork } from "../db/unit-of-work.js";
import { ConflictError, NotFoundError, PreconditionError, Violations } from "../errors.js";
import { settlementObject } from "../events/event-objects.js";
import { newId, newTradeNo } from "../ids.js";
import { checkLookupId } from "../input-text.js";
import { accounts, merchantBalance, postEntry } from "../ledger/ledger.js";
import { formatMinor, isKnownCurrency } from "../money/currency.js";
import { type PageRequest, readPageRequest, toPage } from "../pagination.js";
import { appendEvent } from "../outbox/outbox-store.js";
import { PAID } from "../payments/payment-status.js";
import type { PayoutView } from "../payouts/payout-service.js";
import type { RefundStatus } from "../refunds/refund-status.js";
import type { SettlementLineRow, SettlementRow } from "./settlement-entity.js";
import { isSettlementDate, settlementPeriod } from "./settlement-period.js";
import * as store from "./settlement-store.js";

/** A payout account as the payout service hands it out; only its channel matters here. */
export interface SettlementPayoutAccount {
  channel: string;
}

/** A settlement order's payout, as the payout service shows it. */
export type SettlementPayout = PayoutView;

/**
 * What settlement needs of the payout service (src/payouts/payout-service.ts): lock the merchant's
 * payout account in the order's transaction, create the order's payout there, and read payouts.
 */
export interface SettlementPayouts {
  lockPayoutAccount(tx: Tx, merchantId: string): Promise<SettlementPayoutAccount | undefined>;
  createPayout(
    tx: Tx,
    account: SettlementPayoutAccount,
    order: { settlementId: string; settlementNo: string; merchantId: string; currency: string; amount: bigint },
  ): Promise<unknown>;
  payoutsOfSettlements(session: Session, settlementIds: readonly string[]): Promise<Map<string, SettlementPayout>>;
}

/** Payouts for a service without payout accounts: orders settle to the available balance and stay there. */
export const NO_PAYOUT_ACCOUNTS: SettlementPayouts = {
  lockPayoutAccount: async () => undefined,
  createPayout: async () => {
    throw new Error("no payout accounts");
  },
  payoutsOfSettlements: async () => new Map(),
};

/** Where an order stands, with its payout's progress. */
export type SettlementStatus = "SETTLED" | "CARRIED_FORWARD" | "PAYING_OUT" | "PAID_OUT" | "PAYOUT_FAILED";

/** An order as the API shows it. */
export interface SettlementView {
  order: SettlementRow;
  status: SettlementStatus;
  payout?: SettlementPayout;
  /** One page of lines, when asked for. */
  lines: SettlementLineRow[];
  nextLinesPageToken: string;
}

/** What a run did. */
export interface SettlementRunResult {
  settlementDate: string;
  periodStart: Date;
  periodEnd: Date;
  ordersCreated: number;
  ordersExisting: number;
  linesSettled: number;
  paymentsHeld: number;
}

export interface RunOptions {
  merchantId?: string;
  /** Called after each merchant and currency is done (the CLI's progress bar). */
  onProgress?: (done: number, total: number) => void;
  /** Checked between orders: false stops the run (every order built so far is whole). */
  shouldContinue?: () => boolean;
}

/** Orders a run builds at once (each on its own connection). */
export const RUN_CONCURRENCY = 4;

export interface SettlementServiceDeps {
  uow: UnitOfWork;
  payouts: SettlementPayouts;
  schedule: SettlementSchedule;
  /** The clock (tests move it). */
  now?: () => Date;
  /** Orders a run builds at once (default {@link RUN_CONCURRENCY}). */
  concurrency?: number;
}

/** Lines per page of GetSettlement: 0 means this many. */
export const DEFAULT_LINES_PAGE_SIZE = 100;
/** Largest page of lines. */
export const MAX_LINES_PAGE_SIZE = 1000;
/** Lines ListSettlements returns with each order when asked to. */
const LISTED_LINES = 100;
/** Attempts at one order when its insert fails on a unique key (a racing run of the same date built it). */
const ORDER_ATTEMPTS = 3;
const DEADLOCK_ATTEMPTS = 3;
const SUBMIT_OPERATION = "submit_settlement";

const SUCCEEDED_REFUND: RefundStatus = "SUCCEEDED";
/** From the discrepancy lifecycle (OPEN → RESOLVED). */
const OPEN_DISCREPANCY = "OPEN";
/** The statuses settlement reads payments, refunds and discrepancies by (the ledger check uses them too). */
export const SETTLEABLE_STATUSES: store.SettleableStatuses = { paid: PAID, refundSucceeded: SUCCEEDED_REFUND, discrepancyOpen: OPEN_DISCREPANCY };
const STATUSES = SETTLEABLE_STATUSES;

/**
 * How long after its period ends a date may be settled. A success is stamped with our clock just
 * before its UPDATE and becomes visible at its commit; no transaction holds a row longer than
 * InnoDB's lock wait (50 s) per statement, so after 5 minutes every success stamped inside the
 * period has committed and the period's derived set no longer changes.
 */
export const SETTLEMENT_GRACE_MS = 5 * 60_000;

/** The order's lines took nothing (a racing run settled its items): roll the order back. */
class NothingToSettle extends Error {}

/** The API status of an order: its payout's progress when it has one, else its own. */
function settlementStatus(order: SettlementRow, payout: SettlementPayout | undefined): SettlementStatus {
  switch (payout?.status) {
    case "PENDING":
    case "PROCESSING":
      return "PAYING_OUT";
    case "PAID":
      return "PAID_OUT";
    case "FAILED":
      return "PAYOUT_FAILED";
    default:
      return order.status === "CARRIED_FORWARD" ? "CARRIED_FORWARD" : "SETTLED";
  }
}

function requestHash(currency: string, amount: bigint): string {
  return createHash("sha256").update(JSON.stringify([SUBMIT_OPERATION, currency, amount.toString()])).digest("hex");
}

/** The order's `settlement.created` event, in the transaction that built it. */
function recordSettlementCreated(tx: RowScope, order: SettlementRow): Promise<void> {
  return appendEvent(tx, {
    merchantId: order.merchantId,
    aggregateId: order.id,
    eventType: "settlement.created",
    payload: { settlement: settlementObject(order) },
  });
}

export function createSettlementService(deps: SettlementServiceDeps) {
  const { uow, payouts, schedule } = deps;
  const clock = deps.now ?? (() => new Date());
  const concurrency = Math.max(1, deps.concurrency ?? RUN_CONCURRENCY);

  /** Builds one merchant's order in one currency; resolves with whether it was built and how many payment and refund lines it took. */
  async function buildOrder(
    session: Session,
    run: store.RunScope,
    hints: store.RunHints,
    pair: { merchantId: string; currency: string },
  ): Promise<{ created: boolean; lines: number }> {
    for (let attempt = 1; ; attempt++) {
      // Built before this run started (read once with the hints), or by a racing run (found on a retry).
      if (attempt === 1 ? hints.pairsBuilt.has(store.pairKey(pair.merchantId, pair.currency)) : await store.findScheduledOrder(session, pair.merchantId, pair.currency, run.settlementDate)) {
        return { created: false, lines: 0 };
      }
      try {
        const key = store.pairKey(pair.merchantId, pair.currency);
        const plain =
          !hints.merchantsWithOpenDiscrepancy.has(pair.merchantId) &&
          !hints.merchantsWithPayoutAccount.has(pair.merchantId) &&
          !hints.pairsWithHolds.has(key) &&
          !hints.pairsToCarry.has(key);
        // Most orders are their derived lines and a ledger entry: a row transaction (about 0.5 ms of
        // CPU less than an ORM one, db/rows.ts) without the payout account's locking read.
        if (plain) return await uow.rowTransaction(session, (tx) => settleOrder(tx, run, pair, { held: 0, carried: 0 }), { deadlockAttempts: DEADLOCK_ATTEMPTS });
        return await uow.transaction(session, (tx) => buildOrderIn(tx, run, hints, pair), { deadlockAttempts: DEADLOCK_ATTEMPTS });
      } catch (error) {
        if (error instanceof NothingToSettle) return { created: false, lines: 0 };
        // The order's unique key: a racing run of the same date built it, and the loop finds it.
        // (Lines never collide: a source already on a line is skipped, settlement-store.ts.)
        if (!isDuplicateKey(error) || attempt >= ORDER_ATTEMPTS) throw error;
      }
    }
  }

  /** An order that may hold, release or carry, or be paid out: in an ORM transaction (the payout service's). */
  async function buildOrderIn(tx: Tx, run: store.RunScope, hints: store.RunHints, pair: { merchantId: string; currency: string }) {
    const now = clock();
    const id = newId(now.getTime());
    const scope = { settlementId: id, merchantId: pair.merchantId, currency: pair.currency, start: run.start, end: run.end };
    const key = store.pairKey(pair.merchantId, pair.currency);
    // Only for the merchants the run's hints name: a round trip per order each cost more than the
    // order's totals. A discrepancy opened after the run began holds from the next run on, as one
    // opened just after its order was built would.
    const held = hints.merchantsWithOpenDiscrepancy.has(pair.merchantId) ? await store.holdPayments(tx, scope, run.settlementDate, STATUSES, now) : 0;
    if (hints.pairsWithHolds.has(key)) await store.releaseHolds(tx, scope, STATUSES, now);
    const carried = hints.pairsToCarry.has(key) ? await store.carryForwardInto(tx, scope) : 0;
    return settleOrder(tx, run, pair, { held, carried, id, now }, async (net, order) => {
      const account = await payouts.lockPayoutAccount(tx, pair.merchantId);
      if (account) {
        await payouts.createPayout(tx, account, {
          settlementId: order.id,
          settlementNo: order.settlementNo,
          merchantId: pair.merchantId,
          currency: pair.currency,
          amount: net,
        });
      }
    });
  }

  /**
   * The order row with its totals (one statement), its ledger entry and, when given, its payout.
   * No row when it has nothing of its own (only a carried order, or a racing run released the
   * held payments); an order that holds payments is kept with what it has: its hold rows name it.
   * Its unique key makes a racing run of the same date wait at the insert, then fail and roll
   * back (its holds, releases and carries with it).
   */
  async function settleOrder(
    tx: RowScope,
    run: store.RunScope,
    pair: { merchantId: string; currency: string },
    done: { held: number; carried: number; id?: string; now?: Date },
    payOut?: (net: bigint, order: { id: string; settlementNo: string }) => Promise<void>,
  ): Promise<{ created: boolean; lines: number }> {
    const now = done.now ?? clock();
    const order = { id: done.id ?? newId(now.getTime()), settlementNo: newTradeNo("S", now), settlementDate: run.settlementDate, createdAt: now };
    const scope = { settlementId: order.id, merchantId: pair.merchantId, currency: pair.currency, start: run.start, end: run.end };
    if (!(await store.insertScheduledOrder(tx, order, scope, STATUSES, done.held))) throw new NothingToSettle();
    const built = (await store.reloadOrder(tx, order.id))!;
    await recordSettlementCreated(tx, built);
    const net = built.netAmount;
    if (net > 0n) {
      await postEntry(tx, {
        ref: `settlement:${order.id}`,
        entryType: "settlement",
        merchantId: pair.merchantId,
        currency: pair.currency,
        postings: [
          { account: accounts.merchantPending(pair.merchantId), amount: net },
          { account: accounts.merchantAvailable(pair.merchantId), amount: -net },
        ],
      });
      await payOut?.(net, order);
    }
    return { created: true, lines: Number(built.lineCount) - done.carried };
  }

  async function views(session: Session, orders: SettlementRow[]): Promise<SettlementView[]> {
    const byOrder = orders.length === 0 ? new Map<string, SettlementPayout>() : await payouts.payoutsOfSettlements(session, orders.map((o) => o.id));
    return orders.map((order) => {
      const payout = byOrder.get(order.id);
      return { order, status: settlementStatus(order, payout), payout, lines: [], nextLinesPageToken: "" };
    });
  }

  async function withLines(session: Session, view: SettlementView, page: PageRequest): Promise<SettlementView> {
    const { items, nextPageToken } = toPage(await store.listLines(session, view.order, STATUSES, page), page);
    return { ...view, lines: items, nextLinesPageToken: nextPageToken };
  }

  function linesPage(violations: Violations, pageSize: number, pageToken: string, settlementId: string): PageRequest {
    const size = pageSize === 0 ? DEFAULT_LINES_PAGE_SIZE : pageSize;
    if (!Number.isInteger(size) || size < 1 || size > MAX_LINES_PAGE_SIZE) {
      violations.add("lines_page_size", "OUT_OF_RANGE", `must be 0-${MAX_LINES_PAGE_SIZE}`);
    }
    const bounded = Math.min(Math.max(size, 1), MAX_LINES_PAGE_SIZE);
    // The shared token scheme; its page size rule (at most 100) is not the lines' one.
    const token = new Violations();
    const page = readPageRequest(token, { pageSize: 1, pageToken }, ["settlement_lines", settlementId]);
    if (!token.empty) violations.add("lines_page_token", "INVALID_PAGE_TOKEN", "is not a token of this order's lines");
    return { ...page, pageSize: bounded, limit: bounded + 1 };
  }

  return {
    /**
     * Builds the orders of a settlement date (of one merchant, when given). Refused for a malformed
     * date (INVALID_ARGUMENT naming `settlement_date`) and for a date whose period has not ended
     * (SETTLEMENT_PERIOD_OPEN). Safe to run again, also concurrently: each order is built once.
     */
    async runSettlement(session: Session, settlementDate: string, options: RunOptions = {}): Promise<SettlementRunResult> {
      const v = new Violations();
      if (!isSettlementDate(settlementDate)) v.add("settlement_date", "INVALID_DATE", "must be a date YYYY-MM-DD");
      if (options.merchantId !== undefined) checkLookupId(v, "merchant_id", options.merchantId);
      v.throwIfAny();
      const period = settlementPeriod(settlementDate, schedule);
      const now = clock();
      if (period.end.getTime() + SETTLEMENT_GRACE_MS > now.getTime()) {
        throw new PreconditionError(
          "SETTLEMENT_PERIOD_OPEN",
          `settlement date ${settlementDate} settles the period ending ${period.end.toISOString()}, which can be settled ` +
            `${SETTLEMENT_GRACE_MS / 60_000} minutes after it ended`,
        );
      }
      const run: store.RunScope = { settlementDate, start: period.start, end: period.end, merchantId: options.merchantId };
      const overlaps = await store.overlappingDates(session, run, 3);
      if (overlaps.length > 0) {
        // The cut-off, delay or time zone changed since those dates were settled: their derived
        // lines would share payments with this date's.
        throw new PreconditionError(
          "SETTLEMENT_PERIOD_OVERLAP",
          `the period of ${settlementDate} (${period.start.toISOString()} .. ${period.end.toISOString()}) overlaps the settled dates ${overlaps.join(", ")}`,
        );
      }
      const pairs = await store.pairsToSettle(session, run, STATUSES);
      const hints = await store.runHints(session, run, STATUSES);
      const result: SettlementRunResult = {
        settlementDate,
        periodStart: period.start,
        periodEnd: period.end,
        ordersCreated: 0,
        ordersExisting: 0,
        linesSettled: 0,
        paymentsHeld: 0,
      };
      let done = 0;
      let next = 0;
      options.onProgress?.(0, pairs.length);
      // A few orders at once, each in its own session and transaction: different merchants' orders
      // share no rows, and the commits' waits overlap. Pairs are taken in merchant order.
      const worker = async () => {
        const own = uow.session();
        while (next < pairs.length) {
          if (options.shouldContinue && !options.shouldContinue()) return;
          const pair = pairs[next++]!;
          const built = await buildOrder(own, run, hints, pair);
          if (built.created) result.ordersCreated++;
          result.linesSettled += built.lines;
          options.onProgress?.(++done, pairs.length);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, pairs.length) }, worker));
      // Orders of the date built before (an earlier or a racing run), whatever this run found to do.
      result.ordersExisting = (await store.countOrdersOfDate(session, settlementDate, options.merchantId)) - result.ordersCreated;
      result.paymentsHeld = await store.countHoldsOfDate(session, settlementDate, options.merchantId);
      return result;
    },

    /** The scheduled orders of a date (of one merchant, when given), by merchant and currency: the CLI's summary. */
    ordersOfDate(session: Session, settlementDate: string, merchantId?: string): Promise<SettlementRow[]> {
      return store.ordersOfDate(session, settlementDate, merchantId);
    },

    /** Payments held from a date (at most `limit`): the CLI lists them. */
    async holdsOfDate(session: Session, settlementDate: string, merchantId: string | undefined, limit: number) {
      return (await store.holdsOfDate(session, settlementDate, merchantId, limit)).map((hold) => ({
        paymentId: hold.paymentId,
        merchantId: hold.merchantId,
        currency: hold.currency,
        releasedIntoId: hold.releasedIntoId ?? null,
      }));
    },

    /** One of the merchant's orders with a page of its lines; SETTLEMENT_NOT_FOUND also for another merchant's. */
    async getSettlement(
      session: Session,
      merchantId: string,
      request: { settlementId: string; linesPageSize: number; linesPageToken: string },
    ): Promise<SettlementView> {
      const v = new Violations();
      checkLookupId(v, "settlement_id", request.settlementId);
      const page = linesPage(v, request.linesPageSize, request.linesPageToken, request.settlementId);
      v.throwIfAny();
      const order = await store.findMerchantOrder(session, merchantId, request.settlementId);
      if (!order) throw new NotFoundError("SETTLEMENT_NOT_FOUND", `settlement ${request.settlementId} not found`);
      const [view] = await views(session, [order]);
      return withLines(session, view!, page);
    },

    /** A page of the merchant's orders, newest first, optionally with each one's first 100 lines. */
    async listSettlements(
      session: Session,
      merchantId: string,
      filter: { currency: string; settlementDate: string; pageSize: number; pageToken: string; includeLines: boolean },
    ): Promise<{ settlements: SettlementView[]; nextPageToken: string }> {
      const v = new Violations();
      if (filter.currency !== "" && !isKnownCurrency(filter.currency)) v.add("currency", "UNKNOWN_CURRENCY", "must be a supported ISO 4217 code or empty");
      if (filter.settlementDate !== "" && !isSettlementDate(filter.settlementDate)) {
        v.add("settlement_date", "INVALID_DATE", "must be a date YYYY-MM-DD or empty");
      }
      const page = readPageRequest(v, filter, [filter.currency, filter.settlementDate, filter.includeLines]);
      v.throwIfAny();
      const rows = await store.listMerchantOrders(
        session,
        merchantId,
        { currency: filter.currency || undefined, settlementDate: filter.settlementDate || undefined },
        page,
      );
      const { items, nextPageToken } = toPage(rows, page);
      let settlements = await views(session, items);
      if (filter.includeLines) {
        const first: PageRequest = { limit: LISTED_LINES + 1, pageSize: LISTED_LINES, filterKey: "" };
        settlements = await Promise.all(
          settlements.map((view) => withLines(session, view, { ...first, filterKey: JSON.stringify(["settlement_lines", view.order.id]) })),
        );
      }
      return { settlements, nextPageToken };
    },

    /**
     * Settlement on request: `amount` of the merchant's available balance paid out now, as an
     * ON_REQUEST order with one WITHDRAWAL line and its payout, in one transaction that holds the
     * merchant's payout account locked (so one merchant's submits never overdraw together). An
     * `idempotency-key` returns the first answer for the same request and refuses another request.
     */
    async submitSettlement(
      session: Session,
      merchantId: string,
      request: { currency: string; amount: bigint },
      idempotencyKey?: string,
    ): Promise<SettlementView> {
      const v = new Violations();
      if (!isKnownCurrency(request.currency)) v.add("currency", "UNKNOWN_CURRENCY", "must be a supported ISO 4217 code, e.g. CNY");
      if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
        v.add("idempotency-key", "INVALID_LENGTH", "must be 1-255 characters");
      }
      v.throwIfAny();
      if (request.amount < schedule.minSubmitAmount) {
        const below = new Violations();
        below.add("amount", "AMOUNT_BELOW_MINIMUM", `must be at least ${formatMinor(schedule.minSubmitAmount, request.currency)} ${request.currency}`);
        below.throwIfAny("AMOUNT_BELOW_MINIMUM");
      }
      const hash = requestHash(request.currency, request.amount);
      const previous = async (): Promise<SettlementView | undefined> => {
        if (idempotencyKey === undefined) return undefined;
        const order = await store.findByIdempotencyKey(session, merchantId, idempotencyKey);
        if (!order) return undefined;
        if (order.requestHash !== hash) throw new ConflictError("IDEMPOTENCY_KEY_REUSED", "this idempotency-key was used with a different request");
        return (await views(session, [order]))[0]!;
      };
      const earlier = await previous();
      if (earlier) return withLines(session, earlier, { limit: 2, pageSize: 1, filterKey: "" });

      let order: SettlementRow;
      try {
        order = await uow.transaction(session, async (tx) => {
          const account = await payouts.lockPayoutAccount(tx, merchantId);
          if (!account) throw new PreconditionError("NO_SETTLEMENT_ACCOUNT", "the merchant has no settlement account to pay out to");
          const { available } = await merchantBalance(tx, merchantId, request.currency);
          if (request.amount > available) {
            throw new PreconditionError(
              "INSUFFICIENT_BALANCE",
              `the available balance is ${formatMinor(available, request.currency)} ${request.currency}, less than the ${formatMinor(request.amount, request.currency)} asked for`,
            );
          }
          const now = clock();
          const row: SettlementRow = {
            id: newId(now.getTime()),
            settlementNo: newTradeNo("S", now),
            merchantId,
            currency: request.currency,
            kind: "ON_REQUEST",
            settlementDate: null,
            periodStart: now,
            periodEnd: now,
            paymentsAmount: 0n,
            refundsAmount: 0n,
            feeAmount: 0n,
            carriedAmount: 0n,
            grossAmount: request.amount,
            netAmount: request.amount,
            lineCount: 1n,
            status: "SETTLED",
            carriedIntoId: null,
            idempotencyKey: idempotencyKey ?? null,
            requestHash: hash,
            createdAt: now,
          };
          await store.insertOrder(tx, row);
          await recordSettlementCreated(tx, row);
          await store.insertLine(tx, {
            id: row.id,
            settlementId: row.id,
            merchantId,
            kind: "WITHDRAWAL",
            paymentId: null,
            refundId: null,
            gross: request.amount,
            fee: 0n,
            net: request.amount,
            occurredAt: now,
          });
          await payouts.createPayout(tx, account, {
            settlementId: row.id,
            settlementNo: row.settlementNo,
            merchantId,
            currency: request.currency,
            amount: request.amount,
          });
          return row;
        });
      } catch (error) {
        // The same key sent twice at once: the first one's order is the answer.
        const raced = isDuplicateKey(error) ? await previous() : undefined;
        if (raced) return withLines(session, raced, { limit: 2, pageSize: 1, filterKey: "" });
        throw error;
      }
      const [view] = await views(session, [order]);
      return withLines(session, view!, { limit: 2, pageSize: 1, filterKey: "" });
    },
  };
}

export type SettlementService = ReturnType<typeof createSettlementService>;
