/**
 * Finishes a refund with what the channel said, in the caller's transaction: the guarded UPDATE
 * of the refund (PROCESSING → SUCCEEDED | FAILED), the payment's refund totals (and REFUNDED
 * once fully refunded), and the ledger entry. Applied once however many callbacks, queries and
 * retries report it.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import type { ChannelRefundStatus } from "../channels/channel.js";
import { accounts, postEntry } from "../ledger/ledger.js";
import { reloadPayment } from "../payments/payment-repository.js";
import { recordPaymentEvent, transitionPayment } from "../payments/payment-transitions.js";
import { Refund, type RefundRow } from "./refund-entity.js";

export async function applyRefundStatus(
  tx: SqlEntityManager,
  refund: RefundRow,
  status: ChannelRefundStatus,
  cause: string,
): Promise<boolean> {
  if (status.state === "processing" || status.state === "not_found") {
    if (status.channelRefundNo && !refund.channelRefundNo) {
      await tx.nativeUpdate(Refund, { id: refund.id }, { channelRefundNo: status.channelRefundNo, updatedAt: new Date() });
    }
    return false;
  }
  const now = new Date();
  const to = status.state === "succeeded" ? "SUCCEEDED" : "FAILED";
  const changed = await tx.nativeUpdate(
    Refund,
    { id: refund.id, status: "PROCESSING" },
    {
      status: to,
      channelRefundNo: status.channelRefundNo ?? refund.channelRefundNo,
      failureReason: to === "FAILED" ? (status.detail ?? "rejected by the channel").slice(0, 255) : null,
      succeededAt: to === "SUCCEEDED" ? now : null,
      nextQueryAt: null,
      updatedAt: now,
    },
  );
  if (changed === 0) return false;

  // The payment's own columns are only changed by atomic arithmetic below; events need just its ids.
  const payment = { id: refund.paymentId, merchantId: refund.merchantId };
  const merchantShare = refund.amount - refund.feeReturned;
  if (to === "SUCCEEDED") {
    // Atomic column arithmetic: concurrent refunds of one payment never overwrite each other.
    await tx.execute(
      "update payment set refund_pending_amount = refund_pending_amount - ?, refunded_amount = refunded_amount + ?, updated_at = ? where id = ?",
      [refund.amount, refund.amount, now, payment.id],
    );
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
    // Read back under our row lock: another refund may have finished just before this one.
    const totals = await reloadPayment(tx, payment.id);
    if (totals.refundedAmount === totals.amount) {
      await transitionPayment(tx, totals, "REFUNDED", {}, `refund ${refund.id}`);
    }
    await recordPaymentEvent(tx, payment, "refund.succeeded", { refundId: refund.id, amount: refund.amount.toString(), cause });
  } else {
    await tx.execute("update payment set refund_pending_amount = refund_pending_amount - ?, updated_at = ? where id = ?", [
      refund.amount,
      now,
      payment.id,
    ]);
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
    await recordPaymentEvent(tx, payment, "refund.failed", { refundId: refund.id, reason: status.detail ?? null, cause });
  }
  return true;
}
