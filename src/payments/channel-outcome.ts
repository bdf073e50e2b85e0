/**
 * Applies what a channel says about a payment (from a callback, an active query or a close) to
 * our record. The one place where channel states become payment transitions, so callbacks, the
 * sweeper and QueryPayment cannot disagree.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import type { ChannelTradeStatus } from "../channels/channel.js";
import { Discrepancy } from "../discrepancies/discrepancy-entity.js";
import { paymentFee } from "../fees/fee-calculator.js";
import { findFeeRule } from "../fees/fee-rules.js";
import { newId } from "../ids.js";
import { accounts, postEntry } from "../ledger/ledger.js";
import { Payment, type PaymentRow } from "./payment-entity.js";
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

/**
 * Must run inside a transaction (`tx`), together with whatever else the caller records (inbox
 * row, callback log), so a crash leaves neither half.
 */
export async function applyChannelStatus(
  tx: SqlEntityManager,
  payment: PaymentRow,
  status: ChannelTradeStatus,
  cause: string,
): Promise<OutcomeResult> {
  if (
    status.amountMinor !== undefined &&
    (status.amountMinor !== payment.amount || (status.currency !== undefined && status.currency !== payment.currency))
  ) {
    await recordPaymentEvent(tx, payment, "payment.amount_mismatch", {
      cause,
      channelAmount: status.amountMinor.toString(),
      channelCurrency: status.currency ?? null,
      amount: payment.amount.toString(),
    });
    return { effect: "amount_mismatch" };
  }

  switch (status.state) {
    case "succeeded": {
      if (payment.status === "CLOSED") return recordPaidAfterClose(tx, payment, status, cause);
      // The fee is fixed now, from the rule in force when the money arrived.
      const fee = paymentFee(payment.amount, await findFeeRule(tx, payment.merchantId, payment.channel, payment.currency));
      const applied = await transitionPayment(
        tx,
        payment,
        "SUCCEEDED",
        {
          channelTradeNo: status.channelTradeNo ?? payment.channelTradeNo,
          paidAt: status.paidAt ?? new Date(),
          fee,
          nextQueryAt: null,
          statusReason: null,
        },
        cause,
      );
      if (!applied) {
        // Read as PENDING, closed since by a close that committed first: the money still arrived.
        if (await isClosedNow(tx, payment.id)) return recordPaidAfterClose(tx, { ...payment, status: "CLOSED" }, status, cause);
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
    case "failed": {
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
    case "closed": {
      const applied = await transitionPayment(
        tx,
        payment,
        "CLOSED",
        { closedAt: new Date(), statusReason: status.detail?.slice(0, 255) ?? "closed at the channel", nextQueryAt: null },
        cause,
      );
      return applied ? { effect: "applied", transition: `${payment.status}->CLOSED` } : { effect: "unchanged" };
    }
    case "pending":
    case "not_found":
      return { effect: "unchanged" };
  }
}

/**
 * Whether the payment is CLOSED as of the latest commit. An UPDATE reads (and locks) the current
 * row; a SELECT could answer from the transaction's older snapshot under REPEATABLE READ.
 */
async function isClosedNow(tx: SqlEntityManager, paymentId: string): Promise<boolean> {
  return (await tx.nativeUpdate(Payment, { id: paymentId, status: "CLOSED" }, { updatedAt: new Date() })) === 1;
}

/**
 * The channel took the shopper's money for a payment we had already closed. The payment stays
 * CLOSED (the order is gone); the money is booked as an unapplied receipt and raised once as a
 * PAID_AFTER_CLOSE discrepancy, with the channel's trade number, to be refunded.
 */
async function recordPaidAfterClose(
  tx: SqlEntityManager,
  payment: PaymentRow,
  status: ChannelTradeStatus,
  cause: string,
): Promise<OutcomeResult> {
  // findOne, not count(): the ORM's count() fails on the embedded driver, whose integers are bigint.
  const existing = await tx.findOne(
    Discrepancy,
    { kind: "PAID_AFTER_CLOSE", subjectRef: payment.id },
    { fields: ["id"], disableIdentityMap: true },
  );
  if (existing) return { effect: "unchanged" };
  const now = new Date();
  await tx.insert(Discrepancy, {
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
  if (status.channelTradeNo && !payment.channelTradeNo) {
    await tx.nativeUpdate(Payment, { id: payment.id }, { channelTradeNo: status.channelTradeNo, updatedAt: now });
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
    cause,
    channelTradeNo: status.channelTradeNo ?? null,
  });
  return { effect: "paid_after_close" };
}
