import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * One balanced journal entry: a movement of money. Append-only; a correction is a new entry.
 * `ref` is unique, so an effect applied twice (a re-sent callback, a retried job) posts once.
 */
export const JournalEntry = defineEntity({
  name: "JournalEntry",
  tableName: "journal_entry",
  indexes: [
    { name: "journal_entry_payment_idx", properties: ["paymentId"] },
    { name: "journal_entry_merchant_idx", properties: ["merchantId", "entryType"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    /** E.g. `payment_succeeded:01J...`: what the entry is for, unique. */
    ref: p.string().length(96).unique(),
    entryType: p.string().length(32),
    merchantId: p.string().length(26),
    paymentId: p.string().length(26).nullable(),
    refundId: p.string().length(26).nullable(),
    currency: p.string().length(3),
    createdAt: p.datetime(3),
  },
});
export type JournalEntryRow = InferEntity<typeof JournalEntry>;

/** One line of an entry. Signed: debit positive, credit negative; each entry sums to zero. */
export const JournalPosting = defineEntity({
  name: "JournalPosting",
  tableName: "journal_posting",
  indexes: [
    { name: "journal_posting_entry_idx", properties: ["entryId"] },
    { name: "journal_posting_account_idx", properties: ["account", "currency"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    entryId: p.string().length(26),
    merchantId: p.string().length(26),
    account: p.string().length(64),
    currency: p.string().length(3),
    amount: p.bigint(),
  },
});
export type JournalPostingRow = InferEntity<typeof JournalPosting>;

/**
 * Cached balance of a merchant account, split over a few slots: each posting adds to one slot
 * chosen at random by an atomic `balance = balance + ?` in the same transaction as its postings,
 * and the balance is the sum of the slots. One row per account would serialize every concurrent
 * payment of a merchant on its row lock until commit; with slots they rarely meet. Only merchant
 * accounts are cached: system accounts such as `fee_revenue` are summed when needed.
 */
export const AccountBalance = defineEntity({
  name: "AccountBalance",
  tableName: "account_balance",
  uniques: [{ name: "account_balance_uq", properties: ["account", "currency", "slot"] }],
  properties: {
    id: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    account: p.string().length(64),
    currency: p.string().length(3),
    slot: p.smallint().default(0),
    balance: p.bigint(),
    updatedAt: p.datetime(3),
  },
});
export type AccountBalanceRow = InferEntity<typeof AccountBalance>;
