import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * A settlement order: one merchant's settled money in one currency, for one settlement date (kind
 * SCHEDULED, unique per merchant, currency and date, so a rerun finds it) or on request (kind
 * ON_REQUEST, no date). Its totals are one aggregate over its lines, written in the transaction
 * that wrote the lines.
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
 * One amount of a settlement order. Its id IS its source's id: the payment (PAYMENT lines), the
 * refund (REFUND lines), the carried order (CARRIED lines) or the order itself (WITHDRAWAL), and it
 * is unique, which keeps anything from being settled twice, even by racing runs. The primary key
 * is (order, id), so an order's lines lie together: its totals and pages are one range read.
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
 * A paid payment left out of its settlement date's order because of an OPEN discrepancy. Later
 * runs of the merchant include it once every discrepancy of it is resolved, deleting this row in
 * the same transaction.
 */
export const SettlementHold = defineEntity({
  name: "SettlementHold",
  tableName: "settlement_hold",
  indexes: [
    { name: "settlement_hold_merchant_idx", properties: ["merchantId", "currency"] },
    { name: "settlement_hold_date_idx", properties: ["settlementDate"] },
  ],
  properties: {
    paymentId: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    currency: p.string().length(3),
    /** The settlement date it was held from. */
    settlementDate: p.string().length(10),
    createdAt: p.datetime(3),
  },
});
export type SettlementHoldRow = InferEntity<typeof SettlementHold>;
