import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * One reconciliation of a channel's bill for one day: how many lines came out in each class, the
 * bill's channel fee and our fee on the matched lines. Written when the matching pass starts
 * (`finished_at` empty until it ends: a run without one was cut off), completed in the transaction
 * that posts its channel fee.
 */
export const ReconciliationRun = defineEntity({
  name: "ReconciliationRun",
  tableName: "reconciliation_run",
  indexes: [
    { name: "reconciliation_run_list_idx", properties: ["channel", "id"] },
    { name: "reconciliation_run_day_idx", properties: ["channel", "billDate", "currency"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    channel: p.string().length(16),
    /** `YYYY-MM-DD`, in the channel's bill time zone. */
    billDate: p.string().length(10),
    /** `DOWNLOAD` (ReconcileChannel) or `IMPORT` (ImportStatement). */
    source: p.string().length(16),
    /** The bill's currency; empty for a bill without lines. */
    currency: p.string().length(3),
    linesTotal: p.bigint().default(0),
    matched: p.bigint().default(0),
    missingOnOurSide: p.bigint().default(0),
    missingOnChannelSide: p.bigint().default(0),
    amountMismatch: p.bigint().default(0),
    statusMismatch: p.bigint().default(0),
    feeMismatch: p.bigint().default(0),
    /** Sum of the bill's fees (payments positive, fees returned on refunds negative). */
    channelFee: p.bigint().default(0),
    /** What this run posted to the ledger: the bill's channel fee minus what earlier runs of the day posted. */
    channelFeePosted: p.bigint().default(0),
    /** Our fees on the matched payments minus the fees returned on the matched refunds. */
    merchantFee: p.bigint().default(0),
    /** Whether the channel has a contracted rate (config CHANNEL_FEE_RATES) the line fees were checked against. */
    feeChecked: p.boolean(),
    /** More non-matched lines than items kept (RECONCILIATION_ITEM_CAP): the rest were only counted. */
    itemsCapped: p.boolean().default(false),
    startedAt: p.datetime(3),
    finishedAt: p.datetime(3).nullable(),
  },
});
export type ReconciliationRunRow = InferEntity<typeof ReconciliationRun>;

/** One bill line (or one of our payments or refunds) a run could not match, with both sides' figures. */
export const ReconciliationItem = defineEntity({
  name: "ReconciliationItem",
  tableName: "reconciliation_item",
  indexes: [{ name: "reconciliation_item_run_idx", properties: ["runId", "id"] }],
  properties: {
    id: p.string().length(26).primary(),
    runId: p.string().length(26),
    /** `MISSING_ON_OUR_SIDE`, `MISSING_ON_CHANNEL_SIDE`, `BILL_AMOUNT_MISMATCH`, `STATUS_MISMATCH`, `FEE_MISMATCH`. */
    kind: p.string().length(32),
    /** The bill's line number; null for MISSING_ON_CHANNEL_SIDE (no line). */
    line: p.bigint().nullable(),
    paymentId: p.string().length(26).nullable(),
    refundId: p.string().length(26).nullable(),
    paymentNo: p.string().length(64).nullable(),
    refundNo: p.string().length(64).nullable(),
    channelTradeNo: p.string().length(64).nullable(),
    currency: p.string().length(3).nullable(),
    ourAmount: p.bigint().nullable(),
    channelAmount: p.bigint().nullable(),
    ourFee: p.bigint().nullable(),
    channelFee: p.bigint().nullable(),
    detail: p.string().length(512),
  },
});
export type ReconciliationItemRow = InferEntity<typeof ReconciliationItem>;
