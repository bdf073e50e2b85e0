/**
 * The payment state machine: one transition table. Every status change in the service is a
 * conditional UPDATE `... WHERE status IN (allowedSources(to))`, so concurrent callbacks,
 * queries, closes and sweeps apply each transition exactly once.
 */
export type PaymentStatus = "PENDING" | "SUCCEEDED" | "FAILED" | "CLOSED" | "REFUNDED";

const TRANSITIONS: Readonly<Record<PaymentStatus, readonly PaymentStatus[]>> = {
  PENDING: ["SUCCEEDED", "FAILED", "CLOSED"],
  // A card decline marks the payment FAILED, but the shopper may retry on the same intent and the
  // acquirer may then report success: the channel's word on money wins.
  FAILED: ["SUCCEEDED"],
  SUCCEEDED: ["REFUNDED"],
  // Money arriving after close is not a transition: it is recorded as a discrepancy to refund.
  CLOSED: [],
  REFUNDED: [],
};

export function canTransition(from: PaymentStatus, to: PaymentStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses a payment may be in for a change to `to`: the WHERE clause of the guarded UPDATE. */
export function allowedSources(to: PaymentStatus): PaymentStatus[] {
  return (Object.keys(TRANSITIONS) as PaymentStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

/** Statuses in which a payment accepts a new refund: the reservation UPDATE's WHERE clause. */
export const REFUNDABLE: readonly PaymentStatus[] = ["SUCCEEDED"];

/** Statuses of a payment whose money arrived (it may have been refunded since). */
export const PAID: readonly PaymentStatus[] = ["SUCCEEDED", "REFUNDED"];

export function isRefundable(status: string): boolean {
  return (REFUNDABLE as readonly string[]).includes(status);
}

export function isPaid(status: string): boolean {
  return (PAID as readonly string[]).includes(status);
}

/** The status of a payment waiting for the channel's word: the sweeper asks about these. */
export const AWAITING_CHANNEL: PaymentStatus = "PENDING";

/**
 * Final statuses the channel may still contradict (a declined card that later succeeds, a closed
 * trade paid after close), so QueryPayment may ask the channel about them a few times.
 */
export const CHANNEL_MAY_CONTRADICT: readonly PaymentStatus[] = ["FAILED", "CLOSED"];
