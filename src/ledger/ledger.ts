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
 *   payout_in_transit:{channel}  liability: payouts sent to the channel, not yet confirmed paid or failed
 *   channel_fee_expense:{channel} expense: the channel's fees from its bills (the platform's cost)
 *
 * Entries that belong to no merchant (channel fees) carry {@link PLATFORM_LEDGER_ID} as their merchant.
 */
import type { RowScope, Session } from "../db/unit-of-work.js";
import * as ledgerStore from "./ledger-store.js";

export const accounts = {
  channelClearing: (channel: string) => `channel_clearing:${channel}`,
  refundClearing: (channel: string) => `refund_clearing:${channel}`,
  merchantPending: (merchantId: string) => `merchant_pending:${merchantId}`,
  merchantAvailable: (merchantId: string) => `merchant_available:${merchantId}`,
  feeRevenue: "fee_revenue",
  unappliedReceipts: (channel: string) => `unapplied_receipts:${channel}`,
  payoutInTransit: (channel: string) => `payout_in_transit:${channel}`,
  channelFeeExpense: (channel: string) => `channel_fee_expense:${channel}`,
};

/** The merchant id of entries that belong to the platform itself (channel fees). */
export const PLATFORM_LEDGER_ID = "platform";

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

/**
 * Writes a balanced entry in the caller's transaction (either kind: the statements are prepared
 * row statements). Zero postings are dropped.
 */
export async function postEntry(tx: RowScope, entry: NewEntry): Promise<void> {
  const postings = entry.postings.filter((posting) => posting.amount !== 0n);
  const sum = postings.reduce((total, posting) => total + posting.amount, 0n);
  if (sum !== 0n) throw new UnbalancedEntryError(entry.ref, sum);
  if (postings.length === 0) return;

  const now = new Date();
  await ledgerStore.insertEntry(
    tx,
    {
      ref: entry.ref,
      entryType: entry.entryType,
      merchantId: entry.merchantId,
      paymentId: entry.paymentId ?? null,
      refundId: entry.refundId ?? null,
      currency: entry.currency,
      postings,
    },
    now,
  );
  for (const posting of postings) {
    if (isMerchantAccount(posting.account)) {
      await ledgerStore.addToBalance(tx, entry.merchantId, posting.account, entry.currency, posting.amount, now);
    }
  }
}

export interface MerchantBalance {
  /** Paid and not yet settled, net of fees and refunds. */
  pending: bigint;
  /** Settled and not yet paid out. */
  available: bigint;
  /**
   * Paid out so far (proto `paid_out`): what payouts took out of the available balance (entries
   * `payout`) less what failed payouts gave back (`payout_failed`), so a failed payout is not counted
   * and one in flight is.
   */
  paidOut: bigint;
}

/** A merchant's balances in one currency, from the cached rows (positive = we owe the merchant). */
export async function merchantBalance(session: Session, merchantId: string, currency: string): Promise<MerchantBalance> {
  const pendingAccount = accounts.merchantPending(merchantId);
  const availableAccount = accounts.merchantAvailable(merchantId);
  const cached = await ledgerStore.cachedBalances(session, [pendingAccount, availableAccount], currency);
  return {
    // Liabilities carry credit (negative) balances: flip the sign for the merchant's view.
    pending: -(cached.get(pendingAccount) ?? 0n),
    available: -(cached.get(availableAccount) ?? 0n),
    // Debits of available: `payout` postings are positive there, `payout_failed` ones negative.
    paidOut:
      (await ledgerStore.sumPostingsOfEntryType(session, availableAccount, currency, "payout")) +
      (await ledgerStore.sumPostingsOfEntryType(session, availableAccount, currency, "payout_failed")),
  };
}
