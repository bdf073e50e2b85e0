import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * Where a merchant's settlements are paid out through one payout channel: one row per merchant and
 * channel; the row set (or set again) most recently is the merchant's payout account. The payee
 * (account type, account, name) is sealed with the service's SecretBox; only `accountHint` is shown.
 */
export const SettlementAccount = defineEntity({
  name: "SettlementAccount",
  tableName: "settlement_account",
  uniques: [{ name: "settlement_account_merchant_channel_uq", properties: ["merchantId", "channel"] }],
  indexes: [{ name: "settlement_account_current_idx", properties: ["merchantId", "updatedAt"] }],
  properties: {
    id: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    channel: p.string().length(16),
    /** `ALIPAY_USER_ID`, `ALIPAY_LOGON_ID`, `WECHAT_OPENID`, `BANK_ACCOUNT`. */
    accountType: p.string().length(16),
    /** The payee as sealed JSON `{type, account, name}` (payee.ts); never stored or logged in clear. */
    payeeSealed: p.string().length(1024),
    /** The account with all but its last four characters masked. */
    accountHint: p.string().length(32),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
});
export type SettlementAccountRow = InferEntity<typeof SettlementAccount>;

/**
 * A transfer of a settlement order's net amount to the merchant's payee. The payee is a sealed
 * snapshot of the account at creation, so changing the settlement account never redirects a payout
 * in flight. Swept like refunds: due at `nextAttemptAt`, claimed until `leaseUntil`.
 */
export const Payout = defineEntity({
  name: "Payout",
  tableName: "payout",
  indexes: [
    { name: "payout_sweep_idx", properties: ["status", "nextAttemptAt"] },
    { name: "payout_merchant_idx", properties: ["merchantId", "id"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    /** Our transfer number (`T...`): the channel's out_biz_no / out_batch_no / idempotency key, the same on every attempt. */
    payoutNo: p.string().length(32).unique(),
    /** One payout per settlement order. */
    settlementId: p.string().length(26).unique(),
    settlementNo: p.string().length(32),
    merchantId: p.string().length(26),
    channel: p.string().length(16),
    amount: p.bigint(),
    currency: p.string().length(3),
    /** The payee at creation, sealed like the settlement account's. */
    payeeSealed: p.string().length(1024),
    /** `PENDING`, `PROCESSING`, `PAID`, `FAILED` (payout-status.ts). */
    status: p.string().length(16),
    channelPayoutNo: p.string().length(64).nullable(),
    failureReason: p.string().length(255).nullable(),
    /** Channel calls made so far (sends and queries); drives the back-off. */
    attempts: p.integer().default(0),
    /** When the sweeper next sends or asks; null once final. */
    nextAttemptAt: p.datetime(3).nullable(),
    leaseUntil: p.datetime(3).nullable(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    finishedAt: p.datetime(3).nullable(),
  },
});
export type PayoutRow = InferEntity<typeof Payout>;
