/**
 * The settlement orders' part of the ledger's invariants (check-ledger), in one pass over each
 * merchant currency's payments and refunds, so it grows with payments + orders, not with orders x
 * history (a set-based join of orders to payments on the time range made MariaDB read a merchant's
 * whole history for each of its orders: 10.7 s for 50 merchants x 366 orders over only 20,000
 * payments). Per (merchant, currency) that has orders, in pages of pairs:
 *  - its orders (one a day: held in memory), scheduled ones sorted by period start;
 *  - its paid payments, then its succeeded refunds, that succeeded from the first scheduled period
 *    of the database up to its latest period end, grouped by success instant and read in pages in
 *    the settlement index's order (index-only for payments), swept against the orders' periods:
 *    each instant adds to the order(s) whose period holds it, or to what slipped past settlement;
 *  - the payments held from its orders (few: OPEN discrepancies) taken off the order they were held
 *    from, and its stored lines' totals (one aggregate grouped by order).
 * Findings: SETTLEMENT_LINES_MISMATCH for an order whose stored totals are not what its lines add
 * up to now (or whose gross is not net + fee), and for a merchant currency with payments or refunds
 * that succeeded before its latest period end in no order's period, neither held nor on a stored
 * line (from the start of the database's first scheduled period: earlier history predates
 * settlement); SETTLED_TWICE for a payment on a stored line that is also derived into the order of
 * its period (not held from it) and for two scheduled orders whose periods overlap.
 */
import type { Session } from "../db/unit-of-work.js";
import * as settlementStore from "./settlement-store.js";
import type { CheckedOrder, NamedSource, OrderPair, SettleableStatuses, StoredTotals } from "./settlement-store.js";

export interface SettlementViolation {
  check: "SETTLEMENT_LINES_MISMATCH" | "SETTLED_TWICE";
  subject: string;
  detail: string;
}

/** Merchant currencies read per page. */
const PAIRS_PER_PAGE = 1_000;
/** Merchant currencies checked at once (each holds its orders in memory meanwhile). */
const PAIRS_AT_ONCE = 4;
/** Success instants (or buckets) read per page (one row each: the time, a count and two sums). */
export const INSTANTS_PER_PAGE = 10_000;
/** Windows of buckets read at most per merchant currency and source before reading by instant instead. */
const MAX_BUCKET_WINDOWS = 8;

interface Sum {
  count: bigint;
  amount: bigint;
  fee: bigint;
}

const NO_STORED_LINES: StoredTotals = { payments: 0n, refunds: 0n, fee: 0n, carried: 0n, gross: 0n, net: 0n, lineTotal: 0n };

function emptySum(): Sum {
  return { count: 0n, amount: 0n, fee: 0n };
}

function sumOf(sums: Map<string, Sum>, key: string): Sum {
  let sum = sums.get(key);
  if (sum === undefined) {
    sum = emptySum();
    sums.set(key, sum);
  }
  return sum;
}

function holds(order: CheckedOrder, at: number): boolean {
  return order.periodStart.getTime() <= at && at < order.periodEnd.getTime();
}

/**
 * Checks every order (the options are for tests: a smaller page shows the keyset or the windows at
 * work; `byInstant` reads by instant even where buckets would do).
 */
export async function checkSettlementOrders(
  session: Session,
  statuses: SettleableStatuses,
  options: { instantsPerPage?: number; byInstant?: boolean } = {},
): Promise<SettlementViolation[]> {
  const violations: SettlementViolation[] = [];
  const firstStart = await settlementStore.firstScheduledPeriodStart(session);
  const instantsPerPage = options.instantsPerPage ?? INSTANTS_PER_PAGE;
  const byInstant = options.byInstant ?? false;
  let after: OrderPair | undefined;
  for (;;) {
    const pairs = await settlementStore.orderPairsPage(session, after, PAIRS_PER_PAGE);
    // A few merchant currencies at once: each is mostly round trips (violations kept in pair order).
    const found = pairs.map((): SettlementViolation[] => []);
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < pairs.length; index = next++) {
        await checkPair(session, pairs[index]!, statuses, firstStart, { instantsPerPage, byInstant }, found[index]!);
      }
    };
    await Promise.all(Array.from({ length: PAIRS_AT_ONCE }, worker));
    for (const each of found) violations.push(...each);
    if (pairs.length < PAIRS_PER_PAGE) break;
    after = pairs[pairs.length - 1];
  }
  for (const twice of await settlementStore.onTwoStoredLines(session)) {
    violations.push({ check: "SETTLED_TWICE", subject: twice.subject, detail: `on ${twice.lines} stored settlement lines` });
  }
  return violations;
}

async function checkPair(
  session: Session,
  pair: OrderPair,
  statuses: SettleableStatuses,
  firstStart: Date | undefined,
  { instantsPerPage, byInstant }: { instantsPerPage: number; byInstant: boolean },
  violations: SettlementViolation[],
): Promise<void> {
  const orders = await settlementStore.ordersOfPair(session, pair);
  const scheduled = orders
    .filter((order) => order.kind === "SCHEDULED")
    .sort((a, b) => a.periodStart.getTime() - b.periodStart.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const ordersById = new Map(orders.map((order) => [order.id, order]));
  const derivedPayments = new Map<string, Sum>();
  const derivedRefunds = new Map<string, Sum>();
  const slippedPayments = emptySum();
  const slippedRefunds = emptySum();

  let range: { from: Date; to: Date } | undefined;
  if (scheduled.length > 0) {
    const to = new Date(Math.max(...scheduled.map((order) => order.periodEnd.getTime())));
    const from = new Date(Math.min(firstStart?.getTime() ?? Number.POSITIVE_INFINITY, scheduled[0]!.periodStart.getTime()));
    range = { from, to };
    const bucketMs = byInstant ? undefined : bucketWidth(range, scheduled, instantsPerPage);
    const page = { session, pair, statuses, range, scheduled, instantsPerPage, bucketMs };
    await sweep({ ...page, source: "payment" }, derivedPayments, slippedPayments);
    await sweep({ ...page, source: "refund" }, derivedRefunds, slippedRefunds);
  }
  const inNoPeriod = (at: number) => range !== undefined && range.from.getTime() <= at && at < range.to.getTime() && !scheduled.some((order) => holds(order, at));
  const ofPair = (source: NamedSource) => source.merchantId === pair.merchantId && source.currency === pair.currency;

  // Held payments: off the order they were held from; not slipped either.
  const heldFrom = new Set<string>();
  const notSlipped = new Set<string>();
  for (const hold of await settlementStore.paidHoldsOfPair(session, pair, statuses)) {
    heldFrom.add(`${hold.id} ${hold.settlementId}`);
    if (!ofPair(hold) || hold.succeededAt === null) continue;
    const at = hold.succeededAt.getTime();
    const order = ordersById.get(hold.settlementId);
    if (order !== undefined && holds(order, at)) {
      const derived = sumOf(derivedPayments, order.id);
      derived.count -= 1n;
      derived.amount -= hold.amount;
      derived.fee -= hold.fee;
    }
    if (inNoPeriod(at) && !notSlipped.has(`PAYMENT ${hold.id}`)) {
      notSlipped.add(`PAYMENT ${hold.id}`);
      slippedPayments.count -= 1n;
      slippedPayments.amount -= hold.amount;
    }
  }

  // Stored payment and refund lines (released holds): settled, so not slipped; a stored payment
  // must not also be derived into the order of its period.
  for (const stored of await settlementStore.storedSourcesOfPair(session, pair, statuses)) {
    if (!ofPair(stored)) {
      if (stored.kind === "PAYMENT") {
        for (const derivedIn of await settlementStore.ordersDerivingPayment(session, stored.id, statuses)) {
          violations.push(settledTwice(stored, derivedIn));
        }
      }
      continue;
    }
    if (stored.succeededAt === null) continue;
    const at = stored.succeededAt.getTime();
    if (stored.kind === "PAYMENT") {
      for (const order of scheduled) {
        if (holds(order, at) && !heldFrom.has(`${stored.id} ${order.id}`)) violations.push(settledTwice(stored, order.id));
      }
    }
    const key = `${stored.kind} ${stored.id}`;
    if (inNoPeriod(at) && !notSlipped.has(key)) {
      notSlipped.add(key);
      const slipped = stored.kind === "PAYMENT" ? slippedPayments : slippedRefunds;
      slipped.count -= 1n;
      slipped.amount -= stored.amount;
    }
  }

  const stored = await settlementStore.storedTotalsOfPair(session, pair);
  for (const order of orders) {
    const payments = derivedPayments.get(order.id) ?? emptySum();
    const refunds = derivedRefunds.get(order.id) ?? emptySum();
    const lines = stored.get(order.id) ?? NO_STORED_LINES;
    const gross = payments.amount - refunds.amount + lines.gross;
    const fee = payments.fee - refunds.fee + lines.fee;
    const net = payments.amount - payments.fee - refunds.amount + refunds.fee + lines.net;
    const lineTotal = payments.count + refunds.count + lines.lineTotal;
    if (
      order.paymentsAmount !== payments.amount + lines.payments ||
      order.refundsAmount !== lines.refunds - refunds.amount ||
      order.feeAmount !== fee ||
      order.carriedAmount !== lines.carried ||
      order.grossAmount !== gross ||
      order.netAmount !== net ||
      order.lineCount !== lineTotal ||
      order.grossAmount !== order.netAmount + order.feeAmount
    ) {
      violations.push({
        check: "SETTLEMENT_LINES_MISMATCH",
        subject: order.id,
        detail:
          `order gross ${order.grossAmount}, fee ${order.feeAmount}, net ${order.netAmount}, lines ${order.lineCount}; ` +
          `its lines add up to gross ${gross}, fee ${fee}, net ${net} over ${lineTotal} lines`,
      });
    }
  }

  if (range !== undefined && (slippedPayments.count > 0n || slippedRefunds.count > 0n)) {
    violations.push({
      check: "SETTLEMENT_LINES_MISMATCH",
      subject: `${pair.merchantId} ${pair.currency}`,
      detail:
        `${slippedPayments.count} payments (amount ${slippedPayments.amount}) and ${slippedRefunds.count} refunds (amount ${slippedRefunds.amount}) ` +
        `succeeded between ${range.from.toISOString()} and the latest settled period end ${range.to.toISOString()} in no order's period, ` +
        "neither held nor on a stored line: not settled (a date not run for it, or a success time changed)",
    });
  }

  // Overlapping periods: an order against those that started before it and have not ended yet.
  const open: CheckedOrder[] = [];
  for (const order of scheduled) {
    const start = order.periodStart.getTime();
    const stillOpen = open.filter((earlier) => earlier.periodEnd.getTime() > start);
    open.length = 0;
    open.push(...stillOpen);
    for (const earlier of open) {
      if (earlier.periodStart.getTime() < order.periodEnd.getTime()) {
        const [first, second] = earlier.id < order.id ? [earlier, order] : [order, earlier];
        violations.push({
          check: "SETTLED_TWICE",
          subject: second.id,
          detail: `its period overlaps that of order ${first.id} of the same merchant and currency`,
        });
      }
    }
    open.push(order);
  }
}

function settledTwice(stored: NamedSource, derivedIn: string): SettlementViolation {
  return {
    check: "SETTLED_TWICE",
    subject: stored.id,
    detail: `on a stored line of order ${stored.settlementId} and derived into order ${derivedIn} of its period`,
  };
}

/**
 * Adds each success instant of the range to the scheduled orders whose period holds it (one, as
 * periods never overlap; each of them if they do), or to `slipped` when none does. Instants come
 * in time order and the orders by period start, so the orders whose period may hold the next
 * instant are those started and not yet ended: a merge, each instant and order visited once.
 */
async function sweep(
  read: {
    session: Session;
    source: "payment" | "refund";
    pair: OrderPair;
    statuses: SettleableStatuses;
    range: { from: Date; to: Date };
    scheduled: CheckedOrder[];
    instantsPerPage: number;
    bucketMs: number | undefined;
  },
  derived: Map<string, Sum>,
  slipped: Sum,
): Promise<void> {
  const open: CheckedOrder[] = [];
  let next = 0;
  for await (const page of pages(read)) {
    for (const instant of page) {
      const at = instant.at.getTime();
      while (next < read.scheduled.length && read.scheduled[next]!.periodStart.getTime() <= at) open.push(read.scheduled[next++]!);
      let kept = 0;
      for (const order of open) if (order.periodEnd.getTime() > at) open[kept++] = order;
      open.length = kept;
      const into = open.length === 0 ? [slipped] : open.map((order) => sumOf(derived, order.id));
      for (const sum of into) {
        sum.count += instant.count;
        sum.amount += instant.amount;
        sum.fee += instant.fee;
      }
    }
  }
}

/**
 * The range's successes in time order, a page at a time: by bucket when every period boundary is
 * a multiple of `bucketMs` from the range's start (a bucket then lies wholly inside or outside
 * each period), in windows of `instantsPerPage` buckets; else by instant, keyset-paged.
 */
async function* pages(read: Parameters<typeof sweep>[0]): AsyncGenerator<settlementStore.SuccessInstant[]> {
  const { session, source, pair, statuses, range, instantsPerPage, bucketMs } = read;
  if (bucketMs !== undefined) {
    for (let from = range.from.getTime(); from < range.to.getTime(); from += bucketMs * instantsPerPage) {
      const window = { origin: range.from, from: new Date(from), to: new Date(Math.min(range.to.getTime(), from + bucketMs * instantsPerPage)) };
      yield await settlementStore.successBuckets(session, source, pair, window, bucketMs, statuses);
    }
    return;
  }
  let after: Date | undefined;
  for (;;) {
    const page = await settlementStore.successInstantsPage(session, source, pair, { ...range, after }, statuses, instantsPerPage);
    yield page;
    if (page.length < instantsPerPage) return;
    after = page[page.length - 1]!.at;
  }
}

function gcd(a: number, b: number): number {
  let [x, y] = [Math.abs(a), Math.abs(b)];
  while (y !== 0) [x, y] = [y, x % y];
  return x;
}

/**
 * The bucket width for grouping a merchant currency's successes: the gcd of its period boundaries'
 * distances from the range's start (a day for daily periods all at midnight China time), when the range
 * takes at most {@link MAX_BUCKET_WINDOWS} windows of buckets; else undefined (read by instant).
 */
function bucketWidth(range: { from: Date; to: Date }, scheduled: CheckedOrder[], bucketsPerWindow: number): number | undefined {
  const origin = range.from.getTime();
  let width = range.to.getTime() - origin;
  for (const order of scheduled) width = gcd(gcd(width, order.periodStart.getTime() - origin), order.periodEnd.getTime() - origin);
  if (width <= 0) return undefined;
  return (range.to.getTime() - origin) / width <= bucketsPerWindow * MAX_BUCKET_WINDOWS ? width : undefined;
}
