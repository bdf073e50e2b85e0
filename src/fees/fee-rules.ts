/** Merchants' fee rules: set by admins, read when a payment succeeds or a refund is accepted. */
import { CHANNEL_NAMES, type ChannelName } from "../channels/channel.js";
import { Violations } from "../errors.js";
import type { RowScope, Session } from "../db/unit-of-work.js";
import { currencyExponent, isKnownCurrency } from "../money/currency.js";
import type { RefundFeePolicy } from "./fee-calculator.js";
import type { FeeRuleRow } from "./fee-rule-entity.js";
import { type FeeRuleValues, findFeeRuleValues, upsertFeeRule } from "./fee-rule-store.js";

export interface FeeRuleInput {
  merchantId: string;
  channel: ChannelName | undefined;
  currency: string;
  rateBps: number;
  fixedFee: bigint;
  minFee: bigint;
  refundFeePolicy: RefundFeePolicy | undefined;
}

/** No rule for a merchant, channel and currency means no fee, and nothing to return on refunds. */
export const NO_FEE = { rateBps: 0, fixedFee: 0n, minFee: 0n, refundFeePolicy: "RETAIN" as RefundFeePolicy };

export function findFeeRule(
  session: RowScope,
  merchantId: string,
  channel: string,
  currency: string,
): Promise<Pick<FeeRuleRow, "rateBps" | "fixedFee" | "minFee"> & { refundFeePolicy: RefundFeePolicy }> {
  // The stored policy is one of the two: setFeeRule checks it before writing.
  return findFeeRuleValues(session, { merchantId, channel, currency }).then(
    (rule) => (rule as (FeeRuleValues & { refundFeePolicy: RefundFeePolicy }) | undefined) ?? NO_FEE,
  );
}

/** Creates or replaces the rule. Applies to payments that succeed from now on. */
export async function setFeeRule(session: Session, input: FeeRuleInput): Promise<FeeRuleRow> {
  const v = new Violations();
  if (input.merchantId === "") v.add("merchant_id", "REQUIRED", "is required");
  if (input.channel === undefined || !CHANNEL_NAMES.includes(input.channel)) v.add("channel", "REQUIRED", "is required");
  if (!isKnownCurrency(input.currency)) v.add("currency", "UNKNOWN_CURRENCY", "must be a supported ISO 4217 code");
  if (!Number.isInteger(input.rateBps) || input.rateBps < 0 || input.rateBps > 10_000) {
    v.add("rate_bps", "OUT_OF_RANGE", "must be 0-10000 basis points");
  }
  const cap = isKnownCurrency(input.currency) ? 10n ** BigInt(9 + currencyExponent(input.currency)) : 0n;
  if (input.fixedFee < 0n || input.fixedFee > cap) v.add("fixed_fee", "OUT_OF_RANGE", "must be 0 or more minor units");
  if (input.minFee < 0n || input.minFee > cap) v.add("min_fee", "OUT_OF_RANGE", "must be 0 or more minor units");
  v.throwIfAny();

  const values = {
    rateBps: input.rateBps,
    fixedFee: input.fixedFee,
    minFee: input.minFee,
    refundFeePolicy: input.refundFeePolicy ?? "RETAIN",
  };
  return upsertFeeRule(session, { merchantId: input.merchantId, channel: input.channel!, currency: input.currency }, values, new Date());
}
