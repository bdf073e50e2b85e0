import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * A payment. `status` changes only through the transition table (payment-status.ts) by
 * conditional UPDATEs; `next_query_at`/`sweep_lease_until` drive the sweeper.
 */
export const Payment = defineEntity({
  name: "Payment",
  tableName: "payment",
  uniques: [{ name: "payment_merchant_order_uq", properties: ["merchantId", "merchantOrderNo"] }],
  indexes: [
    { name: "payment_merchant_list_idx", properties: ["merchantId", "id"] },
    { name: "payment_sweep_idx", properties: ["status", "nextQueryAt"] },
    // Settlement (settlement-store.ts): an order's derived lines and totals, read from the index alone.
    { name: "payment_settlement_idx", properties: ["merchantId", "currency", "succeededAt", "status", "amount", "fee"] },
    // Reconciliation (payment-store.ts): a channel's payments paid in a bill's day, in pages.
    { name: "payment_channel_paid_idx", properties: ["channel", "paidAt"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    paymentNo: p.string().length(32).unique(),
    merchantId: p.string().length(26),
    /** Compared byte for byte: binary NO PAD collation on MySQL (migration 20261202040000), SQLite's BINARY. */
    merchantOrderNo: p.string().length(64),
    amount: p.bigint(),
    currency: p.string().length(3),
    channel: p.string().length(16),
    status: p.string().length(16),
    statusReason: p.string().length(255).nullable(),
    subject: p.string().length(256),
    channelTradeNo: p.string().length(64).nullable(),
    actionKind: p.string().length(16).nullable(),
    actionValue: p.text().nullable(),
    /** Sum of succeeded refunds. */
    refundedAmount: p.bigint().default(0),
    /** Sum of refunds accepted but not yet finished: reserved, so refunds never exceed the amount. */
    refundPendingAmount: p.bigint().default(0),
    fee: p.bigint().default(0),
    notifyUrl: p.string().length(512),
    metadata: p.json<Record<string, string>>(),
    paymentMethodToken: p.string().length(255).nullable(),
    /** SHA-256 of the canonical create request: a retry with the same order number must match it. */
    requestHash: p.string().length(64),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    /** The channel's payment time, as it reported it (the API's paid_at). */
    paidAt: p.datetime(3).nullable(),
    /** When OUR records made the payment SUCCEEDED; set once by that transition, never changed (settlement settles by it). */
    succeededAt: p.datetime(3).nullable(),
    closedAt: p.datetime(3).nullable(),
    expiresAt: p.datetime(3),
    /** When the sweeper should next ask the channel; null once the payment is final. */
    nextQueryAt: p.datetime(3).nullable(),
    queryAttempts: p.integer().default(0),
    /** Times QueryPayment asked the channel after the payment was final; capped by FINAL_PAYMENT_CHANNEL_QUERIES. */
    finalChannelQueries: p.integer().default(0),
    /** A sweeping process holds the payment until then; other processes skip it. */
    sweepLeaseUntil: p.datetime(3).nullable(),
  },
});
export type PaymentRow = InferEntity<typeof Payment>;

/** One order line of a payment. */
export const PaymentItem = defineEntity({
  name: "PaymentItem",
  tableName: "payment_item",
  indexes: [{ name: "payment_item_payment_idx", properties: ["paymentId"] }],
  properties: {
    id: p.string().length(26).primary(),
    paymentId: p.string().length(26),
    merchantId: p.string().length(26),
    position: p.integer(),
    sku: p.string().length(64),
    name: p.string().length(256),
    quantity: p.bigint(),
    unitAmount: p.bigint(),
  },
});
export type PaymentItemRow = InferEntity<typeof PaymentItem>;

/** A merchant's `idempotency-key` for one operation, with the hash of the request it came with. */
export const IdempotencyRecord = defineEntity({
  name: "IdempotencyRecord",
  tableName: "idempotency_record",
  uniques: [{ name: "idempotency_key_uq", properties: ["merchantId", "operation", "idempotencyKey"] }],
  properties: {
    id: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    operation: p.string().length(32),
    /** Compared byte for byte: binary NO PAD collation on MySQL (migration 20261202040000), SQLite's BINARY. */
    idempotencyKey: p.string().length(255),
    requestHash: p.string().length(64),
    resourceId: p.string().length(26),
    createdAt: p.datetime(3),
  },
});
export type IdempotencyRecordRow = InferEntity<typeof IdempotencyRecord>;
