/**
 * The ledger's invariants, checked against the database with aggregate queries:
 *  1. every journal entry balances (its postings sum to zero);
 *  2. all accounts together sum to zero per currency;
 *  3. each payment's ledger matches its amount, fee and refunds;
 *  4. no payment's refunds exceed it, and its refund totals match its refunds;
 *  5. every cached merchant balance equals the sum of its postings;
 *  6. every settlement order's totals are what its lines add up to now: its derived lines (the
 *     period's payments less those held from it, and its refunds) and its stored lines; every
 *     stored line has gross = net + fee; no payment or refund slipped past settlement (succeeded
 *     before its merchant currency's latest period end in no order's period, neither held nor on
 *     a stored line); in one merge per merchant currency (src/settlement/settlement-check.ts);
 *  7. no payment is settled twice (on a stored line and derived into its period's order, on two
 *     stored lines, or in two orders whose periods overlap);
 *  8. per merchant and currency, payouts (less failed ones) never took more out of the available
 *     balance than settlements put in;
 *  9. per payout channel and currency, payout_in_transit holds exactly the payouts in flight
 *     (src/payouts/payout-check.ts).
 * Used by `npm run check-ledger` and the CheckLedger admin RPC.
 */
import type { Session, UnitOfWork } from "../db/unit-of-work.js";
import { isPaid } from "../payments/payment-status.js";
import * as paymentStore from "../payments/payment-store.js";
import * as refundStore from "../refunds/refund-store.js";
import { holdsAmount } from "../refunds/refund-status.js";
import { checkPayoutLedger } from "../payouts/payout-check.js";
import { checkSettlementOrders } from "../settlement/settlement-check.js";
import { SETTLEABLE_STATUSES } from "../settlement/settlement-service.js";
import * as settlementStore from "../settlement/settlement-store.js";
import { accounts } from "./ledger.js";
import * as ledgerStore from "./ledger-store.js";

export interface LedgerViolation {
  check:
    | "ENTRY_UNBALANCED"
    | "CURRENCY_NOT_ZERO"
    | "PAYMENT_LEDGER_MISMATCH"
    | "REFUNDS_EXCEED_PAYMENT"
    | "REFUND_TOTALS_MISMATCH"
    | "BALANCE_CACHE_MISMATCH"
    | "SETTLEMENT_LINES_MISMATCH"
    | "SETTLED_TWICE"
    | "PAID_OUT_EXCEEDS_SETTLED"
    | "PAYOUT_IN_TRANSIT_MISMATCH";
  subject: string;
  detail: string;
}

export interface LedgerCheckResult {
  ok: boolean;
  violations: LedgerViolation[];
  entriesChecked: number;
  paymentsChecked: number;
}

/**
 * {@link checkLedger} over one snapshot of the database: all its reads in one transaction (on MySQL
 * REPEATABLE READ, so every read after the first sees the same committed state). On separate
 * statements a callback committing between the read of the payments and the read of the postings
 * showed a PENDING payment with a success's postings, a violation that was not there (seen in CI).
 * What CheckLedger and `npm run check-ledger` run while traffic flows.
 */
export function checkLedgerSnapshot(uow: UnitOfWork): Promise<LedgerCheckResult> {
  return uow.transaction(uow.session(), (tx) => checkLedger(tx));
}

/** The ledger's invariants, read through `session` (statement by statement unless it is a transaction). */
export async function checkLedger(session: Session): Promise<LedgerCheckResult> {
  const violations: LedgerViolation[] = [];

  for (const entry of await ledgerStore.unbalancedEntries(session)) {
    violations.push({
      check: "ENTRY_UNBALANCED",
      subject: entry.id,
      detail: `postings sum to ${entry.total} over ${entry.postings} postings`,
    });
  }
  for (const posting of await ledgerStore.foreignCurrencyPostings(session)) {
    violations.push({ check: "ENTRY_UNBALANCED", subject: posting.entryId, detail: `posting in ${posting.currency}` });
  }

  for (const row of await ledgerStore.currenciesNotZero(session)) {
    violations.push({ check: "CURRENCY_NOT_ZERO", subject: row.currency, detail: `all accounts sum to ${row.total}` });
  }

  const paymentsChecked = await checkPayments(session, violations);

  for (const row of await ledgerStore.cachedBalancesWithPostings(session)) {
    if (row.cached !== row.postings) {
      violations.push({
        check: "BALANCE_CACHE_MISMATCH",
        subject: `${row.account} ${row.currency}`,
        detail: `cached ${row.cached}, postings sum to ${row.postings}`,
      });
    }
  }
  for (const row of await ledgerStore.uncachedMerchantAccounts(session)) {
    violations.push({
      check: "BALANCE_CACHE_MISMATCH",
      subject: `${row.account} ${row.currency}`,
      detail: `no cached balance for postings summing to ${row.total}`,
    });
  }

  await checkSettlements(session, violations);
  violations.push(...(await checkPayoutLedger(session)).violations);

  return {
    ok: violations.length === 0,
    violations,
    entriesChecked: await ledgerStore.countEntries(session),
    paymentsChecked,
  };
}

/** Entry types that move money into (settlement) and out of (payout, payout_failed back in) available balances. */
const SETTLEMENT_ENTRY = "settlement";
const PAYOUT_ENTRY = "payout";
const PAYOUT_FAILED_ENTRY = "payout_failed";

async function checkSettlements(session: Session, violations: LedgerViolation[]): Promise<void> {
  violations.push(...(await checkSettlementOrders(session, SETTLEABLE_STATUSES)));
  for (const line of await settlementStore.linesNotBalanced(session)) {
    violations.push({
      check: "SETTLEMENT_LINES_MISMATCH",
      subject: line.id,
      detail: `line gross ${line.gross} is not net ${line.net} + fee ${line.fee}`,
    });
  }
  // Available balances are liabilities: settlements credit them (negative postings), payouts debit them.
  const moved = new Map<string, { settledIn: bigint; paidOut: bigint }>();
  for (const row of await ledgerStore.availablePostingTotals(session, [SETTLEMENT_ENTRY, PAYOUT_ENTRY, PAYOUT_FAILED_ENTRY])) {
    const key = `${row.account} ${row.currency}`;
    const totals = moved.get(key) ?? { settledIn: 0n, paidOut: 0n };
    if (row.entryType === SETTLEMENT_ENTRY) totals.settledIn -= row.total;
    else totals.paidOut += row.total;
    moved.set(key, totals);
  }
  for (const [subject, totals] of moved) {
    if (totals.paidOut > totals.settledIn) {
      violations.push({
        check: "PAID_OUT_EXCEEDS_SETTLED",
        subject,
        detail: `payouts less failed ones took ${totals.paidOut} out, settlements put ${totals.settledIn} in`,
      });
    }
  }
}

interface RefundTotals {
  succeeded: bigint;
  processing: bigint;
  merchantShare: bigint;
  feeReturned: bigint;
}

/**
 * Recomputes what each payment's postings must be from the payment and its refunds, and compares
 * with what the journal holds, per account:
 *   channel_clearing   +amount (if paid) − succeeded refunds
 *   merchant_pending   −(amount − fee) (if paid) + (refund − fee returned) for every refund not failed
 *   fee_revenue        −fee (if paid) + fee returned for every refund not failed
 *   refund_clearing    −(refunds processing)
 */
async function checkPayments(session: Session, violations: LedgerViolation[]): Promise<number> {
  const payments = await paymentStore.allForLedgerCheck(session);
  const refundsByPayment = new Map<string, RefundTotals>();
  for (const row of await refundStore.totalsByPaymentAndStatus(session)) {
    const totals = refundsByPayment.get(row.paymentId) ?? { succeeded: 0n, processing: 0n, merchantShare: 0n, feeReturned: 0n };
    if (row.status === "SUCCEEDED") totals.succeeded += row.amount;
    if (row.status === "PROCESSING") totals.processing += row.amount;
    if (holdsAmount(row.status)) {
      totals.merchantShare += row.amount - row.feeReturned;
      totals.feeReturned += row.feeReturned;
    }
    refundsByPayment.set(row.paymentId, totals);
  }
  const postingsByPayment = new Map<string, Map<string, bigint>>();
  // A paid-after-close receipt belongs to no payment's own money: it is checked by the currency sum.
  for (const row of await ledgerStore.paymentPostingTotals(session, ["paid_after_close"])) {
    if (!postingsByPayment.has(row.paymentId)) postingsByPayment.set(row.paymentId, new Map());
    postingsByPayment.get(row.paymentId)!.set(row.account, row.total);
  }

  for (const payment of payments) {
    const { id, amount, fee } = payment;
    const refunded = payment.refundedAmount;
    const pending = payment.refundPendingAmount;
    const paid = isPaid(payment.status);
    const refunds = refundsByPayment.get(id);
    const succeeded = refunds?.succeeded ?? 0n;
    const processing = refunds?.processing ?? 0n;

    if (refunded + pending > amount) {
      violations.push({ check: "REFUNDS_EXCEED_PAYMENT", subject: id, detail: `refunds ${refunded + pending} > amount ${amount}` });
    }
    if (refunded !== succeeded || pending !== processing) {
      violations.push({
        check: "REFUND_TOTALS_MISMATCH",
        subject: id,
        detail: `payment says refunded ${refunded}, pending ${pending}; refunds say ${succeeded}, ${processing}`,
      });
    }

    const expected = new Map<string, bigint>([
      [accounts.channelClearing(payment.channel), (paid ? amount : 0n) - succeeded],
      [accounts.merchantPending(payment.merchantId), (paid ? -(amount - fee) : 0n) + (refunds?.merchantShare ?? 0n)],
      [accounts.feeRevenue, (paid ? -fee : 0n) + (refunds?.feeReturned ?? 0n)],
      [accounts.refundClearing(payment.channel), -processing],
    ]);
    const actual = postingsByPayment.get(id) ?? new Map<string, bigint>();
    for (const account of new Set([...expected.keys(), ...actual.keys()])) {
      const want = expected.get(account) ?? 0n;
      const have = actual.get(account) ?? 0n;
      if (want !== have) {
        violations.push({
          check: "PAYMENT_LEDGER_MISMATCH",
          subject: id,
          detail: `${account}: ledger ${have}, expected ${want} (status ${payment.status}, amount ${amount}, fee ${fee})`,
        });
      }
    }
  }
  return payments.length;
}
