/**
 * The ledger's invariants, checked against the database with aggregate queries:
 *  1. every journal entry balances (its postings sum to zero);
 *  2. all accounts together sum to zero per currency;
 *  3. each payment's ledger matches its amount, fee and refunds;
 *  4. no payment's refunds exceed it, and its refund totals match its refunds;
 *  5. every cached merchant balance equals the sum of its postings.
 * Used by `npm run check-ledger` and the CheckLedger admin RPC.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import { accounts, toBigInt } from "./ledger.js";

export interface LedgerViolation {
  check:
    | "ENTRY_UNBALANCED"
    | "CURRENCY_NOT_ZERO"
    | "PAYMENT_LEDGER_MISMATCH"
    | "REFUNDS_EXCEED_PAYMENT"
    | "REFUND_TOTALS_MISMATCH"
    | "BALANCE_CACHE_MISMATCH";
  subject: string;
  detail: string;
}

export interface LedgerCheckResult {
  ok: boolean;
  violations: LedgerViolation[];
  entriesChecked: number;
  paymentsChecked: number;
}

type Row = Record<string, unknown>;

export async function checkLedger(em: SqlEntityManager): Promise<LedgerCheckResult> {
  const violations: LedgerViolation[] = [];

  const unbalanced: Row[] = await em.execute(
    `select e.id as id, sum(p.amount) as total, count(p.id) as postings
     from journal_entry e left join journal_posting p on p.entry_id = e.id and p.currency = e.currency
     group by e.id having count(p.id) = 0 or sum(p.amount) <> 0`,
  );
  for (const row of unbalanced) {
    violations.push({
      check: "ENTRY_UNBALANCED",
      subject: String(row.id),
      detail: `postings sum to ${toBigInt(row.total)} over ${toBigInt(row.postings)} postings`,
    });
  }
  const foreign: Row[] = await em.execute(
    `select p.entry_id as id, p.currency as currency from journal_posting p join journal_entry e on e.id = p.entry_id
     where p.currency <> e.currency`,
  );
  for (const row of foreign) {
    violations.push({ check: "ENTRY_UNBALANCED", subject: String(row.id), detail: `posting in ${row.currency}` });
  }

  const currencies: Row[] = await em.execute(
    "select currency, sum(amount) as total from journal_posting group by currency having sum(amount) <> 0",
  );
  for (const row of currencies) {
    violations.push({
      check: "CURRENCY_NOT_ZERO",
      subject: String(row.currency),
      detail: `all accounts sum to ${toBigInt(row.total)}`,
    });
  }

  const paymentsChecked = await checkPayments(em, violations);

  const cached: Row[] = await em.execute(
    `select b.account as account, b.currency as currency, sum(b.balance) as balance,
       (select coalesce(sum(p.amount), 0) from journal_posting p where p.account = b.account and p.currency = b.currency) as actual
     from account_balance b group by b.account, b.currency`,
  );
  for (const row of cached) {
    if (toBigInt(row.balance) !== toBigInt(row.actual)) {
      violations.push({
        check: "BALANCE_CACHE_MISMATCH",
        subject: `${row.account} ${row.currency}`,
        detail: `cached ${toBigInt(row.balance)}, postings sum to ${toBigInt(row.actual)}`,
      });
    }
  }
  const uncached: Row[] = await em.execute(
    `select p.account as account, p.currency as currency, sum(p.amount) as total from journal_posting p
     where substr(p.account, 1, 9) = 'merchant_' and not exists
       (select 1 from account_balance b where b.account = p.account and b.currency = p.currency)
     group by p.account, p.currency`,
  );
  for (const row of uncached) {
    violations.push({
      check: "BALANCE_CACHE_MISMATCH",
      subject: `${row.account} ${row.currency}`,
      detail: `no cached balance for postings summing to ${toBigInt(row.total)}`,
    });
  }

  const entries: Row[] = await em.execute("select count(*) as n from journal_entry");
  return {
    ok: violations.length === 0,
    violations,
    entriesChecked: Number(toBigInt(entries[0]?.n)),
    paymentsChecked,
  };
}

/**
 * Recomputes what each payment's postings must be from the payment and its refunds, and compares
 * with what the journal holds, per account:
 *   channel_clearing   +amount (if paid) − succeeded refunds
 *   merchant_pending   −(amount − fee) (if paid) + (refund − fee returned) for every refund not failed
 *   fee_revenue        −fee (if paid) + fee returned for every refund not failed
 *   refund_clearing    −(refunds processing)
 */
async function checkPayments(em: SqlEntityManager, violations: LedgerViolation[]): Promise<number> {
  const payments: Row[] = await em.execute(
    `select id, merchant_id, channel, status, amount, fee, refunded_amount, refund_pending_amount from payment`,
  );
  const refundTotals: Row[] = await em.execute(
    `select payment_id,
       coalesce(sum(case when status = 'SUCCEEDED' then amount else 0 end), 0) as succeeded,
       coalesce(sum(case when status = 'PROCESSING' then amount else 0 end), 0) as processing,
       coalesce(sum(case when status <> 'FAILED' then amount - fee_returned else 0 end), 0) as merchant_share,
       coalesce(sum(case when status <> 'FAILED' then fee_returned else 0 end), 0) as fee_returned
     from refund group by payment_id`,
  );
  const postings: Row[] = await em.execute(
    `select e.payment_id as payment_id, p.account as account, sum(p.amount) as total
     from journal_posting p join journal_entry e on e.id = p.entry_id
     where e.payment_id is not null and e.entry_type <> 'paid_after_close'
     group by e.payment_id, p.account`,
  );
  const refundsByPayment = new Map(refundTotals.map((row) => [String(row.payment_id), row]));
  const postingsByPayment = new Map<string, Map<string, bigint>>();
  for (const row of postings) {
    const id = String(row.payment_id);
    if (!postingsByPayment.has(id)) postingsByPayment.set(id, new Map());
    postingsByPayment.get(id)!.set(String(row.account), toBigInt(row.total));
  }

  for (const payment of payments) {
    const id = String(payment.id);
    const amount = toBigInt(payment.amount);
    const fee = toBigInt(payment.fee);
    const refunded = toBigInt(payment.refunded_amount);
    const pending = toBigInt(payment.refund_pending_amount);
    const paid = payment.status === "SUCCEEDED" || payment.status === "REFUNDED";
    const refunds = refundsByPayment.get(id);
    const succeeded = toBigInt(refunds?.succeeded);
    const processing = toBigInt(refunds?.processing);

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

    const channel = String(payment.channel);
    const merchantId = String(payment.merchant_id);
    const expected = new Map<string, bigint>([
      [accounts.channelClearing(channel), (paid ? amount : 0n) - succeeded],
      [accounts.merchantPending(merchantId), (paid ? -(amount - fee) : 0n) + toBigInt(refunds?.merchant_share)],
      [accounts.feeRevenue, (paid ? -fee : 0n) + toBigInt(refunds?.fee_returned)],
      [accounts.refundClearing(channel), -processing],
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
