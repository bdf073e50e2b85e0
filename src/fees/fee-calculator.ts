/**
 * Fee arithmetic, in integer minor units only. The one rounding rule: half-up on the minor unit.
 *
 *   fee = max(min_fee, round_half_up(amount × rate_bps / 10000) + fixed_fee), at most the amount
 *
 * A refund under the `PRORATE` policy returns round_half_up(fee × refund / amount) of the fee, and
 * the refund that completes the payment returns whatever fee is left, so the returned parts always
 * add up to exactly the fee. Under `RETAIN` (the default) the fee is kept.
 */

export type RefundFeePolicy = "RETAIN" | "PRORATE";

export interface FeeTerms {
  rateBps: number;
  fixedFee: bigint;
  minFee: bigint;
}

/** round(numerator / denominator), halves away from zero; both non-negative. */
export function divideRoundHalfUp(numerator: bigint, denominator: bigint): bigint {
  if (numerator < 0n || denominator <= 0n) throw new RangeError("divideRoundHalfUp takes a non-negative numerator");
  return (numerator * 2n + denominator) / (denominator * 2n);
}

export function paymentFee(amount: bigint, terms: FeeTerms): bigint {
  const proportional = divideRoundHalfUp(amount * BigInt(terms.rateBps), 10_000n);
  let fee = proportional + terms.fixedFee;
  if (fee < terms.minFee) fee = terms.minFee;
  return fee > amount ? amount : fee;
}

/**
 * The fee returned with a refund of `refundAmount`, given what earlier refunds already took:
 * `refundedBefore` of the amount and `feeReturnedBefore` of the fee.
 */
export function refundedFee(args: {
  policy: RefundFeePolicy;
  amount: bigint;
  fee: bigint;
  refundAmount: bigint;
  refundedBefore: bigint;
  feeReturnedBefore: bigint;
}): bigint {
  if (args.policy === "RETAIN" || args.fee === 0n) return 0n;
  if (args.refundedBefore + args.refundAmount >= args.amount) return args.fee - args.feeReturnedBefore;
  const share = divideRoundHalfUp(args.fee * args.refundAmount, args.amount);
  const left = args.fee - args.feeReturnedBefore;
  return share > left ? left : share;
}
