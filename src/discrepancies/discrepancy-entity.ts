import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * Something the channel did that our records cannot simply absorb and a person must act on:
 * money received for a closed payment (refund it), an amount that disagrees, and later the
 * differences found by reconciliation. Unique per (kind, subject) so repeats raise it once.
 */
export const Discrepancy = defineEntity({
  name: "Discrepancy",
  tableName: "discrepancy",
  uniques: [{ name: "discrepancy_kind_subject_uq", properties: ["kind", "subjectRef"] }],
  indexes: [
    { name: "discrepancy_status_idx", properties: ["status", "id"] },
    // Settlement holds a payment back while it has an OPEN discrepancy.
    { name: "discrepancy_payment_idx", properties: ["paymentId", "status"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    /**
     * `PAID_AFTER_CLOSE`, `AMOUNT_MISMATCH` (a callback), or a reconciliation class: `MISSING_ON_OUR_SIDE`,
     * `MISSING_ON_CHANNEL_SIDE`, `BILL_AMOUNT_MISMATCH`, `STATUS_MISMATCH`, `FEE_MISMATCH`.
     */
    kind: p.string().length(32),
    /** What it is about, e.g. the payment id or `channel:trade_no`. */
    subjectRef: p.string().length(96),
    channel: p.string().length(16),
    merchantId: p.string().length(26).nullable(),
    paymentId: p.string().length(26).nullable(),
    channelTradeNo: p.string().length(64).nullable(),
    amount: p.bigint().nullable(),
    currency: p.string().length(3).nullable(),
    detail: p.string().length(512),
    /** `OPEN` or `RESOLVED`. */
    status: p.string().length(16),
    resolution: p.string().length(512).nullable(),
    createdAt: p.datetime(3),
    resolvedAt: p.datetime(3).nullable(),
    /** Who resolved it: a person's name or login, or `reconciliation` for a status repaired by its active query. */
    resolvedBy: p.string().length(128).nullable(),
    /** The reconciliation run that raised it (reconciliation classes only). */
    reconciliationRunId: p.string().length(26).nullable(),
    refundId: p.string().length(26).nullable(),
  },
});
export type DiscrepancyRow = InferEntity<typeof Discrepancy>;
