import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/** A merchant's fee for one channel and currency; see fee-calculator.ts for the arithmetic. */
export const FeeRule = defineEntity({
  name: "FeeRule",
  tableName: "fee_rule",
  uniques: [{ name: "fee_rule_uq", properties: ["merchantId", "channel", "currency"] }],
  properties: {
    id: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    channel: p.string().length(16),
    currency: p.string().length(3),
    rateBps: p.integer(),
    fixedFee: p.bigint(),
    minFee: p.bigint(),
    /** `RETAIN`: a refund does not return the fee; `PRORATE`: it returns the refunded share. */
    refundFeePolicy: p.string().length(16),
    updatedAt: p.datetime(3),
  },
});
export type FeeRuleRow = InferEntity<typeof FeeRule>;
