/**
 * Applies what a channel says about a payment (from a callback, an active query or a close) to
 * our record. The one place where channel states become payment transitions, so callbacks, the
 * sweeper and QueryPayment cannot disagree.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import type { ChannelTradeStatus } from "../channels/channel.js";
import type { PaymentRow } from "./payment-entity.js";
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
      if (payment.status === "CLOSED") {
        await recordPaymentEvent(tx, payment, "payment.paid_after_close", {
          cause,
          channelTradeNo: status.channelTradeNo ?? null,
          paidAt: status.paidAt?.toISOString() ?? null,
        });
        return { effect: "paid_after_close" };
      }
      const applied = await transitionPayment(
        tx,
        payment,
        "SUCCEEDED",
        {
          channelTradeNo: status.channelTradeNo ?? payment.channelTradeNo,
          paidAt: status.paidAt ?? new Date(),
          nextQueryAt: null,
          statusReason: null,
        },
        cause,
      );
      return applied ? { effect: "applied", transition: `${payment.status}->SUCCEEDED` } : { effect: "unchanged" };
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
