/**
 * The payout state machine: one transition table, like payments' and refunds'. Every status change
 * is a conditional UPDATE `... WHERE status IN (allowedPayoutSources(to))` in the transaction that
 * posts its ledger entry, so webhooks, queries and racing sweepers finish a payout exactly once.
 *
 *   PENDING ──▶ PROCESSING ──▶ PAID | FAILED
 *      └──────────────────────▶ PAID | FAILED   (the send already answered so)
 */
export type PayoutStatus = "PENDING" | "PROCESSING" | "PAID" | "FAILED";

const TRANSITIONS: Readonly<Record<PayoutStatus, readonly PayoutStatus[]>> = {
  PENDING: ["PROCESSING", "PAID", "FAILED"],
  PROCESSING: ["PAID", "FAILED"],
  PAID: [],
  // The money went back to the available balance; a new settlement order pays it out again.
  FAILED: [],
};

export function canTransitionPayout(from: PayoutStatus, to: PayoutStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses a payout may be in for a change to `to`: the WHERE clause of the guarded UPDATE. */
export function allowedPayoutSources(to: PayoutStatus): PayoutStatus[] {
  return (Object.keys(TRANSITIONS) as PayoutStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

/** Payouts the sweeper still works on: PENDING ones are sent (or asked about), PROCESSING ones asked about. */
export const PAYOUT_IN_FLIGHT: readonly PayoutStatus[] = ["PENDING", "PROCESSING"];

export function isFinalPayout(status: string): boolean {
  return status === "PAID" || status === "FAILED";
}
