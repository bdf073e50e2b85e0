import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * A refund of (part of) a payment. Its amount is reserved on the payment when it is accepted
 * (payment.refund_pending_amount) so concurrent refunds can never exceed what was paid.
 */
export const Refund = defineEntity({
  name: "Refund",
  tableName: "refund",
  uniques: [{ name: "refund_payment_merchant_no_uq", properties: ["paymentId", "merchantRefundNo"] }],
  indexes: [
    { name: "refund_merchant_list_idx", properties: ["merchantId", "id"] },
    { name: "refund_sweep_idx", properties: ["status", "nextQueryAt"] },
    // Settlement (settlement-store.ts): the refunds that became final in a period.
    { name: "refund_settlement_idx", properties: ["merchantId", "currency", "succeededAt"] },
    // Reconciliation (refund-store.ts): a channel's refunds that succeeded in a bill's day, in pages.
    { name: "refund_channel_succeeded_idx", properties: ["channel", "succeededAt"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    /** Our number sent to the channel (`out_request_no` / `out_refund_no`); unique. */
    refundNo: p.string().length(32).unique(),
    paymentId: p.string().length(26),
    merchantId: p.string().length(26),
    /** Compared byte for byte: binary NO PAD collation on MySQL (migration 20261202040000), SQLite's BINARY. */
    merchantRefundNo: p.string().length(64),
    channel: p.string().length(16),
    amount: p.bigint(),
    currency: p.string().length(3),
    /** `PROCESSING`, `SUCCEEDED`, `FAILED`. */
    status: p.string().length(16),
    reason: p.string().length(256),
    channelRefundNo: p.string().length(64).nullable(),
    /** The part of the payment's fee returned to the merchant with this refund. */
    feeReturned: p.bigint(),
    failureReason: p.string().length(255).nullable(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    succeededAt: p.datetime(3).nullable(),
    nextQueryAt: p.datetime(3).nullable(),
    queryAttempts: p.integer().default(0),
    sweepLeaseUntil: p.datetime(3).nullable(),
  },
});
export type RefundRow = InferEntity<typeof Refund>;
