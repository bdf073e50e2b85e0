/**
 * Finishes a refund with what the channel said, in the caller's transaction: the guarded UPDATE
 * of the refund (from the transition table, refund-status.ts), the payment's refund totals (and
 * REFUNDED once fully refunded), the ledger entry and the outbox event. Applied once however many
 * callbacks, queries and retries report it. Every statement is a prepared row statement in its
 * owning store, so it runs in a row transaction (refund callbacks, the refund call's answer, the
 * sweeper) as well as in an ORM one.
 */
import type { ChannelRefundStatus } from "../channels/channel.js";
import type { RowScope } from "../db/unit-of-work.js";
import { refundObject } from "../events/event-objects.js";
import { accounts, postEntry } from "../ledger/ledger.js";
import { releaseRefundAmount, reloadPayment } from "../payments/payment-store.js";
import { recordPaymentEvent, transitionPayment } from "../payments/payment-transitions.js";
import type { RefundRow } from "./refund-entity.js";
import { allowedRefundSources, canTransitionRefund, type RefundStatus } from "./refund-status.js";
import { setChannelRefundNo, transitionRefundStatus } from "./refund-store.js";

/** What the channel's word means for a refund as read, decided before anything is written. */
export type RefundOutcomeDecision =
  | { kind: "transition"; from: RefundStatus; to: "SUCCEEDED" | "FAILED" }
  /** Still under way, unknown, or already final: at most the channel's refund number is kept. */
  | { kind: "unchanged"; recordChannelRefundNo: boolean };

/**
 * The decision of {@link applyRefundStatus}, without the database: refund status → refund
 * transition, by the transition table. A stale read is caught later by the guarded UPDATE.
 */
export function decideRefundOutcome(
  refund: Pick<RefundRow, "status" | "channelRefundNo">,
  status: Pick<ChannelRefundStatus, "state" | "channelRefundNo">,
): RefundOutcomeDecision {
  if (status.state === "processing" || status.state === "not_found") {
    return { kind: "unchanged", recordChannelRefundNo: !!status.channelRefundNo && !refund.channelRefundNo };
  }
  const from = refund.status as RefundStatus;
  const to = status.state === "succeeded" ? "SUCCEEDED" : "FAILED";
  return canTransitionRefund(from, to) ? { kind: "transition", from, to } : { kind: "unchanged", recordChannelRefundNo: false };
}

/**
 * Whether a payment's refunds now add up to all of it: the refund that makes them do turns the
 * payment REFUNDED.
 */
export function isFullyRefunded(totals: { amount: bigint; refundedAmount: bigint }): boolean {
  return totals.refundedAmount === totals.amount;
}

/**
 * Attempts per transaction that writes a refund's effects, when the database rolls it back as a
 * deadlock victim: concurrent refunds of one payment lock its row and its status index entry, and
 * MySQL may take the two in either order (it reads by the status index when the table is small).
 * The victim's work was rolled back, so running it again is safe.
 */
export const REFUND_DEADLOCK_ATTEMPTS = 3;

/**
 * Applies the channel's word about a refund in the caller's transaction (either kind); resolves
 * with whether it finished the refund (false: unchanged, or another report finished it first).
 */
export async function applyRefundStatus(
  tx: RowScope,
  refund: RefundRow,
  status: ChannelRefundStatus,
  cause: string,
): Promise<boolean> {
  const decision = decideRefundOutcome(refund, status);
  if (decision.kind === "unchanged") {
    if (decision.recordChannelRefundNo && status.channelRefundNo) {
      await setChannelRefundNo(tx, refund.id, status.channelRefundNo, new Date());
    }
    return false;
  }
  const now = new Date();
  const to: RefundStatus = decision.to;
  const changes = {
    channelRefundNo: status.channelRefundNo ?? refund.channelRefundNo,
    failureReason: to === "FAILED" ? (status.detail ?? "rejected by the channel").slice(0, 255) : null,
    succeededAt: to === "SUCCEEDED" ? now : null,
    nextQueryAt: null,
  };
  const changed = await transitionRefundStatus(tx, refund.id, allowedRefundSources(to), to, changes, now);
  if (!changed) return false;
  // The refund as the UPDATE left it, for its event (no read back).
  const after = { ...refund, ...changes, status: to };

  // The payment's own columns are only changed by atomic arithmetic below; events need just its ids.
  const payment = { id: refund.paymentId, merchantId: refund.merchantId };
  const merchantShare = refund.amount - refund.feeReturned;
  if (to === "SUCCEEDED") {
    await releaseRefundAmount(tx, payment.id, refund.amount, true, now);
    await postEntry(tx, {
      ref: `refund_succeeded:${refund.id}`,
      entryType: "refund_succeeded",
      merchantId: refund.merchantId,
      paymentId: refund.paymentId,
      refundId: refund.id,
      currency: refund.currency,
      postings: [
        { account: accounts.refundClearing(refund.channel), amount: refund.amount },
        { account: accounts.channelClearing(refund.channel), amount: -refund.amount },
      ],
    });
    // Before the payment's own event, so a watcher sees the refund, then the payment it completed.
    await recordPaymentEvent(tx, payment, "refund.succeeded", { refund: refundObject(after), cause }, now);
    // Read back under our row lock: another refund may have finished just before this one.
    const totals = await reloadPayment(tx, payment.id);
    if (isFullyRefunded(totals)) {
      await transitionPayment(tx, totals, "REFUNDED", {}, `refund ${refund.id}`);
    }
  } else {
    await releaseRefundAmount(tx, payment.id, refund.amount, false, now);
    // The reversal of the entry made when the refund was accepted: the amount is the merchant's again.
    await postEntry(tx, {
      ref: `refund_failed:${refund.id}`,
      entryType: "refund_failed",
      merchantId: refund.merchantId,
      paymentId: refund.paymentId,
      refundId: refund.id,
      currency: refund.currency,
      postings: [
        { account: accounts.refundClearing(refund.channel), amount: refund.amount },
        { account: accounts.merchantPending(refund.merchantId), amount: -merchantShare },
        { account: accounts.feeRevenue, amount: -refund.feeReturned },
      ],
    });
    await recordPaymentEvent(tx, payment, "refund.failed", { refund: refundObject(after), cause }, now);
  }
  return true;
}
