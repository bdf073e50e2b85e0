import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * A settlement order: one merchant's settled money in one currency, for one settlement date (kind
 * SCHEDULED, unique per merchant, currency and date, so a rerun finds it) or on request (kind
 * ON_REQUEST, no date). A scheduled order's payment and refund lines are derived, not stored: the
 * merchant's payments and refunds in its currency that became final (succeeded_at) in its period,
 * less the payments held from it (settlement_hold). Its totals are aggregates over those and its
 * stored lines, written in the transaction that built it.
 */
export const Settlement = defineEntity({
  name: "Settlement",
  tableName: "settlement",
  uniques: [
    { name: "settlement_order_uq", properties: ["merchantId", "currency", "kind", "settlementDate"] },
    { name: "settlement_idempotency_uq", properties: ["merchantId", "idempotencyKey"] },
  ],
  indexes: [
    { name: "settlement_merchant_list_idx", properties: ["merchantId", "id"] },
    { name: "settlement_carry_idx", properties: ["merchantId", "currency", "status", "carriedIntoId"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    /** `S` + UTC date-time + 16 random base32 characters, like payment numbers. */
    settlementNo: p.string().length(32).unique(),
    merchantId: p.string().length(26),
    currency: p.string().length(3),
    /** `SCHEDULED` or `ON_REQUEST`. */
    kind: p.string().length(16),
    /** `YYYY-MM-DD` of a scheduled order; null on request. */
    settlementDate: p.string().length(10).nullable(),
    periodStart: p.datetime(3),
    periodEnd: p.datetime(3),
    paymentsAmount: p.bigint(),
    refundsAmount: p.bigint(),
    feeAmount: p.bigint(),
    carriedAmount: p.bigint(),
    grossAmount: p.bigint(),
    netAmount: p.bigint(),
    lineCount: p.bigint(),
    /** `SETTLED` or `CARRIED_FORWARD` (payout progress is the payout's own status). */
    status: p.string().length(16),
    /** For a CARRIED_FORWARD order: the order its negative net was carried into. */
    carriedIntoId: p.string().length(26).nullable(),
    /** SubmitSettlement's `idempotency-key`; compared byte for byte on MySQL (binary NO PAD collation). */
    idempotencyKey: p.string().length(255).nullable(),
    /** SHA-256 of the SubmitSettlement request that came with the key. */
    requestHash: p.string().length(64).nullable(),
    createdAt: p.datetime(3),
  },
});
export type SettlementRow = InferEntity<typeof Settlement>;

/**
 * A stored line of a settlement order: only what does not follow from the order's period, namely
 * a held payment released into a later order (PAYMENT), a CARRIED order and a WITHDRAWAL. (Derived
 * lines are read from payment and refund with the same shape.) Its id IS its source's id: the
 * payment, the carried order or the order itself (WITHDRAWAL), and it is unique, so a source is on
 * one stored line at most, even with racing runs. The primary key is (order, id), so an order's
 * stored lines lie together.
 */
export const SettlementLine = defineEntity({
  name: "SettlementLine",
  tableName: "settlement_line",
  uniques: [{ name: "settlement_line_source_uq", properties: ["id"] }],
  properties: {
    settlementId: p.string().length(26).primary(),
    id: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    /** `PAYMENT`, `REFUND`, `CARRIED`, `WITHDRAWAL`. */
    kind: p.string().length(16),
    paymentId: p.string().length(26).nullable(),
    refundId: p.string().length(26).nullable(),
    gross: p.bigint(),
    fee: p.bigint(),
    net: p.bigint(),
    occurredAt: p.datetime(3),
  },
});
export type SettlementLineRow = InferEntity<typeof SettlementLine>;

/**
 * A paid payment left out of the order of its period because of an OPEN discrepancy, written in
 * that order's transaction: the order's derived lines (its period's payments) exclude it for good.
 * A later run of the merchant, once every discrepancy of it is resolved, settles it as an explicit
 * line of that later order and records the order here. The row is kept: it is the audit trail, and
 * it keeps the first order's derived set without the payment. One per payment (its key).
 */
export const SettlementHold = defineEntity({
  name: "SettlementHold",
  tableName: "settlement_hold",
  indexes: [
    { name: "settlement_hold_merchant_idx", properties: ["merchantId", "currency", "releasedIntoId"] },
    { name: "settlement_hold_date_idx", properties: ["settlementDate"] },
    { name: "settlement_hold_order_idx", properties: ["settlementId"] },
  ],
  properties: {
    paymentId: p.string().length(26).primary(),
    /** The order it was held from. */
    settlementId: p.string().length(26),
    merchantId: p.string().length(26),
    currency: p.string().length(3),
    /** The settlement date it was held from. */
    settlementDate: p.string().length(10),
    createdAt: p.datetime(3),
    /** The later order that settled it as an explicit line, once its discrepancies were resolved. */
    releasedIntoId: p.string().length(26).nullable(),
    releasedAt: p.datetime(3).nullable(),
  },
});
export type SettlementHoldRow = InferEntity<typeof SettlementHold>;
