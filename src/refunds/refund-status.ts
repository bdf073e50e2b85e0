/**
 * The refund state machine: one transition table, like payments' (payment-status.ts). Every
 * status change is a conditional UPDATE `... WHERE status IN (allowedRefundSources(to))`, so
 * concurrent callbacks, queries and sweeps finish a refund exactly once.
 */
export type RefundStatus = "PROCESSING" | "SUCCEEDED" | "FAILED";

const TRANSITIONS: Readonly<Record<RefundStatus, readonly RefundStatus[]>> = {
  PROCESSING: ["SUCCEEDED", "FAILED"],
  SUCCEEDED: [],
  // A failed refund's amount is refundable again; a new refund number is a new refund.
  FAILED: [],
};

export function canTransitionRefund(from: RefundStatus, to: RefundStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses a refund may be in for a change to `to`: the WHERE clause of the guarded UPDATE. */
export function allowedRefundSources(to: RefundStatus): RefundStatus[] {
  return (Object.keys(TRANSITIONS) as RefundStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

/** The status of a refund the channel is still working on: the sweeper asks about these. */
export const REFUND_IN_FLIGHT: RefundStatus = "PROCESSING";

/**
 * Statuses whose amount counts against the payment (reserved or paid back) and whose fee share was
 * returned to the merchant: every refund that has not failed.
 */
export const REFUND_HOLDS_AMOUNT: readonly RefundStatus[] = ["PROCESSING", "SUCCEEDED"];

export function holdsAmount(status: string): boolean {
  return (REFUND_HOLDS_AMOUNT as readonly string[]).includes(status);
}
