/**
 * The double-entry ledger. Every movement of money is one journal entry whose postings sum to
 * zero in its currency, written in the same transaction as the state change it records.
 * Postings are signed: debit positive, credit negative.
 *
 * Accounts:
 *   channel_clearing:{channel}   asset: what the channel holds for us
 *   refund_clearing:{channel}    asset contra: refunds sent to the channel, not yet confirmed
 *   merchant_pending:{merchant}  liability: owed to the merchant, not yet settled
 *   merchant_available:{merchant} liability: settled, waiting for payout
 *   fee_revenue                  income: our fees
 *   unapplied_receipts:{channel} liability: money received that no open payment can take
 *                                (paid after close), to be refunded
 */
import { randomInt } from "node:crypto";
import { MySqlPlatform, type SqlEntityManager } from "@mikro-orm/knex";
import { newId } from "../ids.js";
import { AccountBalance, JournalEntry, JournalPosting } from "./ledger-entities.js";

export const accounts = {
  channelClearing: (channel: string) => `channel_clearing:${channel}`,
  refundClearing: (channel: string) => `refund_clearing:${channel}`,
  merchantPending: (merchantId: string) => `merchant_pending:${merchantId}`,
  merchantAvailable: (merchantId: string) => `merchant_available:${merchantId}`,
  feeRevenue: "fee_revenue",
  unappliedReceipts: (channel: string) => `unapplied_receipts:${channel}`,
};

/** Balances of these accounts are cached in slot rows; see AccountBalance. */
function isMerchantAccount(account: string): boolean {
  return account.startsWith("merchant_");
}

export interface Posting {
  account: string;
  /** Debit positive, credit negative. */
  amount: bigint;
}

export interface NewEntry {
  /** Unique: the same ref is posted once, whatever retries happen. */
  ref: string;
  entryType: string;
  merchantId: string;
  paymentId?: string;
  refundId?: string;
  currency: string;
  postings: Posting[];
}

export class UnbalancedEntryError extends Error {
  constructor(ref: string, sum: bigint) {
    super(`journal entry ${ref} does not balance: postings sum to ${sum}`);
  }
}

/** Writes a balanced entry in the caller's transaction. Zero postings are dropped. */
export async function postEntry(tx: SqlEntityManager, entry: NewEntry): Promise<void> {
  const postings = entry.postings.filter((posting) => posting.amount !== 0n);
  const sum = postings.reduce((total, posting) => total + posting.amount, 0n);
  if (sum !== 0n) throw new UnbalancedEntryError(entry.ref, sum);
  if (postings.length === 0) return;

  const now = new Date();
  const entryId = newId(now.getTime());
  await tx.insert(JournalEntry, {
    id: entryId,
    ref: entry.ref,
    entryType: entry.entryType,
    merchantId: entry.merchantId,
    paymentId: entry.paymentId ?? null,
    refundId: entry.refundId ?? null,
    currency: entry.currency,
    createdAt: now,
  });
  await tx.insertMany(
    JournalPosting,
    postings.map((posting) => ({
      id: newId(now.getTime()),
      entryId,
      merchantId: entry.merchantId,
      account: posting.account,
      currency: entry.currency,
      amount: posting.amount,
    })),
  );
  for (const posting of postings) {
    if (isMerchantAccount(posting.account)) {
      await addToBalance(tx, entry.merchantId, posting.account, entry.currency, posting.amount, now);
    }
  }
}

/** Slots per cached account: enough that concurrent payments of one merchant rarely wait on each other. */
export const BALANCE_SLOTS = 16;

/** An atomic increment of a random slot (inserted on first use), so concurrent entries never lose an update. */
async function addToBalance(
  tx: SqlEntityManager,
  merchantId: string,
  account: string,
  currency: string,
  amount: bigint,
  now: Date,
): Promise<void> {
  // The two dialects spell an upsert differently; the increment itself is the same.
  const conflict = tx.getPlatform() instanceof MySqlPlatform
    ? "on duplicate key update balance = balance + values(balance), updated_at = values(updated_at)"
    : "on conflict (account, currency, slot) do update set balance = balance + excluded.balance, updated_at = excluded.updated_at";
  const slot = randomInt(BALANCE_SLOTS);
  await tx.execute(
    `insert into account_balance (id, merchant_id, account, currency, slot, balance, updated_at) values (?, ?, ?, ?, ?, ?, ?) ${conflict}`,
    [newId(now.getTime()), merchantId, account, currency, slot, amount, now],
  );
}

/** Sum of raw SQL aggregates as bigint, whatever the driver returns (string, number, bigint). */
export function toBigInt(value: unknown): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === "bigint") return value;
  return BigInt(String(value).replace(/\.0+$/, ""));
}

export interface MerchantBalance {
  /** Paid and not yet settled, net of fees and refunds. */
  pending: bigint;
  /** Settled and not yet paid out. */
  available: bigint;
  /** Paid out so far. */
  paidOut: bigint;
}

/** A merchant's balances in one currency, from the cached rows (positive = we owe the merchant). */
export async function merchantBalance(em: SqlEntityManager, merchantId: string, currency: string): Promise<MerchantBalance> {
  const rows = await em.find(
    AccountBalance,
    { account: { $in: [accounts.merchantPending(merchantId), accounts.merchantAvailable(merchantId)] }, currency },
    { disableIdentityMap: true },
  );
  const balanceOf = (account: string) =>
    rows.filter((row) => row.account === account).reduce((sum, row) => sum + row.balance, 0n);
  const paidOut = await em.execute(
    `select sum(p.amount) as total from journal_posting p join journal_entry e on e.id = p.entry_id
     where p.account = ? and p.currency = ? and e.entry_type = 'payout'`,
    [accounts.merchantAvailable(merchantId), currency],
  );
  return {
    // Liabilities carry credit (negative) balances: flip the sign for the merchant's view.
    pending: -balanceOf(accounts.merchantPending(merchantId)),
    available: -balanceOf(accounts.merchantAvailable(merchantId)),
    paidOut: toBigInt(paidOut[0]?.total),
  };
}
