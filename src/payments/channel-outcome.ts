/**
 * Applies what a channel says about a payment (from a callback, an active query or a close) to
 * our record. The one place where channel states become payment transitions, so callbacks, the
 * sweeper and QueryPayment cannot disagree.
 */
import type { ChannelTradeStatus } from "../channels/channel.js";
import type { RowScope } from "../db/unit-of-work.js";
import { discrepancyExists, insertDiscrepancy } from "../discrepancies/discrepancy-store.js";
import { paymentFee } from "../fees/fee-calculator.js";
import { findFeeRule } from "../fees/fee-rules.js";
import { paymentObject } from "../events/event-objects.js";
import { newId } from "../ids.js";
import { accounts, postEntry } from "../ledger/ledger.js";
import type { PaymentRow } from "./payment-entity.js";
import { canTransition, type PaymentStatus } from "./payment-status.js";
import { isInStatusNow, type PaymentForOutcome, updatePayment } from "./payment-store.js";
import { recordPaymentEvent, transitionPayment } from "./payment-transitions.js";

export type OutcomeEffect =
  | "applied" // a transition happened
  | "unchanged" // nothing to do (still pending, or already in that state)
  | "amount_mismatch" // the channel's amount differs from ours: not applied, raised
  | "paid_after_close"; // money arrived for a closed payment: recorded, raised for refund

export interface OutcomeResult {
  effect: OutcomeEffect;
  /** E.g. `PENDING->SUCCEEDED` when applied. */
  transition?: string;
}

/** What the channel's word means for a payment as read, decided before anything is written. */
export type ChannelOutcomeDecision =
  | { kind: "amount_mismatch" } // the channel's amount or currency differs from ours
  | { kind: "transition"; from: PaymentStatus; to: "SUCCEEDED" | "FAILED" | "CLOSED" }
  | { kind: "paid_after_close" } // money for a payment we closed: recorded and raised, never re-opened
  | { kind: "unchanged" };

/**
 * The decision of {@link applyChannelStatus}, without the database: channel state → transition,
 * by the transition table. A stale read is caught later by the guarded UPDATE.
 */
export function decideChannelOutcome(
  payment: Pick<PaymentRow, "status" | "amount" | "currency">,
  status: Pick<ChannelTradeStatus, "state" | "amountMinor" | "currency">,
): ChannelOutcomeDecision {
  if (
    status.amountMinor !== undefined &&
    (status.amountMinor !== payment.amount || (status.currency !== undefined && status.currency !== payment.currency))
  ) {
    return { kind: "amount_mismatch" };
  }
  const from = payment.status as PaymentStatus;
  const to = ({ succeeded: "SUCCEEDED", failed: "FAILED", closed: "CLOSED", pending: undefined, not_found: undefined } as const)[status.state];
  if (to === "SUCCEEDED" && from === "CLOSED") return { kind: "paid_after_close" };
  return to !== undefined && canTransition(from, to) ? { kind: "transition", from, to } : { kind: "unchanged" };
}

/**
 * Must run inside a transaction (`tx`, either kind: every statement is a prepared row statement,
 * so callbacks run it in a row transaction), together with whatever else the caller records
 * (inbox row, callback log), so a crash leaves neither half.
 */
export async function applyChannelStatus(
  tx: RowScope,
  payment: PaymentForOutcome,
  status: ChannelTradeStatus,
  cause: string,
): Promise<OutcomeResult> {
  const decision = decideChannelOutcome(payment, status);
  if (decision.kind === "amount_mismatch") {
    await recordPaymentEvent(tx, payment, "payment.amount_mismatch", {
      payment: paymentObject(payment),
      channel_amount: String(status.amountMinor),
      channel_currency: status.currency ?? null,
      cause,
    });
    return { effect: "amount_mismatch" };
  }

  if (decision.kind === "paid_after_close") return recordPaidAfterClose(tx, payment, status, cause);
  if (decision.kind === "unchanged") return { effect: "unchanged" };
  switch (decision.to) {
    case "SUCCEEDED": {
      // The fee is fixed now, from the rule in force when the money arrived.
      const fee = paymentFee(payment.amount, await findFeeRule(tx, payment.merchantId, payment.channel, payment.currency));
      // Our clock, not the channel's: settlement settles by it, so a success recorded late lands in
      // a period not settled yet (the channel's time, which may lie in one that is, stays paid_at).
      const succeededAt = new Date();
      const applied = await transitionPayment(
        tx,
        payment,
        "SUCCEEDED",
        {
          channelTradeNo: status.channelTradeNo ?? payment.channelTradeNo,
          paidAt: status.paidAt ?? succeededAt,
          succeededAt,
          fee,
          nextQueryAt: null,
          statusReason: null,
        },
        cause,
      );
      if (!applied) {
        // Read as PENDING, closed since by a close that committed first: the money still arrived.
        if (await isInStatusNow(tx, payment.id, "CLOSED")) return recordPaidAfterClose(tx, { ...payment, status: "CLOSED" }, status, cause);
        return { effect: "unchanged" };
      }
      await postEntry(tx, {
        ref: `payment_succeeded:${payment.id}`,
        entryType: "payment_succeeded",
        merchantId: payment.merchantId,
        paymentId: payment.id,
        currency: payment.currency,
        postings: [
          { account: accounts.channelClearing(payment.channel), amount: payment.amount },
          { account: accounts.merchantPending(payment.merchantId), amount: -(payment.amount - fee) },
          { account: accounts.feeRevenue, amount: -fee },
        ],
      });
      return { effect: "applied", transition: `${payment.status}->SUCCEEDED` };
    }
    case "FAILED": {
      const applied = await transitionPayment(
        tx,
        payment,
        "FAILED",
        {
          channelTradeNo: status.channelTradeNo ?? payment.channelTradeNo,
          statusReason: status.detail?.slice(0, 255) ?? "failed at the channel",
          nextQueryAt: null,
        },
        cause,
      );
      return applied ? { effect: "applied", transition: `${payment.status}->FAILED` } : { effect: "unchanged" };
    }
    case "CLOSED": {
      const applied = await transitionPayment(
        tx,
        payment,
        "CLOSED",
        { closedAt: new Date(), statusReason: status.detail?.slice(0, 255) ?? "closed at the channel", nextQueryAt: null },
        cause,
      );
      return applied ? { effect: "applied", transition: `${payment.status}->CLOSED` } : { effect: "unchanged" };
    }
  }
}

/**
 * The channel took the shopper's money for a payment we had already closed. The payment stays
 * CLOSED (the order is gone); the money is booked as an unapplied receipt and raised once as a
 * PAID_AFTER_CLOSE discrepancy, with the channel's trade number, to be refunded.
 */
async function recordPaidAfterClose(
  tx: RowScope,
  payment: PaymentForOutcome,
  status: ChannelTradeStatus,
  cause: string,
): Promise<OutcomeResult> {
  if (await discrepancyExists(tx, "PAID_AFTER_CLOSE", payment.id)) return { effect: "unchanged" };
  const now = new Date();
  await insertDiscrepancy(tx, {
    id: newId(now.getTime()),
    kind: "PAID_AFTER_CLOSE",
    subjectRef: payment.id,
    channel: payment.channel,
    merchantId: payment.merchantId,
    paymentId: payment.id,
    channelTradeNo: status.channelTradeNo ?? payment.channelTradeNo ?? null,
    amount: payment.amount,
    currency: payment.currency,
    detail: `channel reported the payment paid${status.paidAt ? ` at ${status.paidAt.toISOString()}` : ""} after it was closed (${cause}); refund the shopper`,
    status: "OPEN",
    resolution: null,
    createdAt: now,
    resolvedAt: null,
  });
  const channelTradeNo = payment.channelTradeNo ?? status.channelTradeNo ?? null;
  if (status.channelTradeNo && !payment.channelTradeNo) {
    await updatePayment(tx, payment.id, { channelTradeNo: status.channelTradeNo, updatedAt: now });
  }
  await postEntry(tx, {
    ref: `paid_after_close:${payment.id}`,
    entryType: "paid_after_close",
    merchantId: payment.merchantId,
    paymentId: payment.id,
    currency: payment.currency,
    postings: [
      { account: accounts.channelClearing(payment.channel), amount: payment.amount },
      { account: accounts.unappliedReceipts(payment.channel), amount: -payment.amount },
    ],
  });
  await recordPaymentEvent(tx, payment, "payment.paid_after_close", {
    payment: paymentObject({ ...payment, channelTradeNo }),
    channel_trade_no: status.channelTradeNo ?? null,
    cause,
  });
  return { effect: "paid_after_close" };
}
