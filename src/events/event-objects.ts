/**
 * The objects an event's `data` carries: a payment, refund, settlement order or payout as it was
 * after the change, in the public JSON format (snake_case keys, amounts as strings of minor units,
 * times in ISO 8601 UTC, statuses and channels as the API names them). A webhook or stream
 * consumer reads the object from the event and needs no call back to us.
 *
 * Each is built from the row (and the columns the change set) that the writing transaction already
 * has in hand: no extra query on the create and callback paths. Secrets stay out: no payment
 * action (a card `client_secret`), no payee.
 */
import type { PaymentRow } from "../payments/payment-entity.js";
import type { PayoutRow } from "../payouts/payout-entities.js";
import type { RefundRow } from "../refunds/refund-entity.js";
import type { SettlementRow } from "../settlement/settlement-entity.js";

/** The API's channel names (the `Channel` enum without its prefix). */
const CHANNEL_NAMES: Readonly<Record<string, string>> = { alipay: "ALIPAY", wechatpay: "WECHAT_PAY", card: "CARD" };

function channelName(channel: string): string {
  return CHANNEL_NAMES[channel] ?? channel.toUpperCase();
}

function time(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}

/** The payment columns an event shows. */
export type PaymentEventFields = Pick<
  PaymentRow,
  | "id"
  | "paymentNo"
  | "merchantOrderNo"
  | "status"
  | "amount"
  | "currency"
  | "refundedAmount"
  | "fee"
  | "channel"
  | "channelTradeNo"
  | "subject"
  | "statusReason"
  | "metadata"
  | "createdAt"
  | "paidAt"
  | "closedAt"
  | "expiresAt"
>;

/** A payment as events show it. */
export function paymentObject(payment: PaymentEventFields): Record<string, unknown> {
  return {
    id: payment.id,
    payment_no: payment.paymentNo,
    merchant_order_no: payment.merchantOrderNo,
    status: payment.status,
    amount: payment.amount.toString(),
    currency: payment.currency,
    refunded_amount: payment.refundedAmount.toString(),
    fee: payment.fee.toString(),
    channel: channelName(payment.channel),
    channel_trade_no: payment.channelTradeNo ?? null,
    subject: payment.subject,
    status_reason: payment.statusReason ?? null,
    metadata: payment.metadata,
    created_at: time(payment.createdAt),
    paid_at: time(payment.paidAt),
    closed_at: time(payment.closedAt),
    expires_at: time(payment.expiresAt),
  };
}

/** The refund columns an event shows. */
export type RefundEventFields = Pick<
  RefundRow,
  | "id"
  | "refundNo"
  | "paymentId"
  | "merchantRefundNo"
  | "status"
  | "amount"
  | "currency"
  | "feeReturned"
  | "reason"
  | "channel"
  | "channelRefundNo"
  | "failureReason"
  | "createdAt"
  | "succeededAt"
>;

/** A refund as events show it, with the payment it refunds. */
export function refundObject(refund: RefundEventFields): Record<string, unknown> {
  return {
    id: refund.id,
    refund_no: refund.refundNo,
    payment_id: refund.paymentId,
    merchant_refund_no: refund.merchantRefundNo,
    status: refund.status,
    amount: refund.amount.toString(),
    currency: refund.currency,
    fee_returned: refund.feeReturned.toString(),
    reason: refund.reason,
    channel: channelName(refund.channel),
    channel_refund_no: refund.channelRefundNo ?? null,
    failure_reason: refund.failureReason ?? null,
    created_at: time(refund.createdAt),
    succeeded_at: time(refund.succeededAt),
  };
}

/** A settlement order as events show it (totals only; its lines are read with GetSettlement). */
export function settlementObject(order: SettlementRow): Record<string, unknown> {
  return {
    id: order.id,
    settlement_no: order.settlementNo,
    kind: order.kind,
    settlement_date: order.settlementDate ?? null,
    currency: order.currency,
    status: order.status,
    period_start: time(order.periodStart),
    period_end: time(order.periodEnd),
    payments_amount: order.paymentsAmount.toString(),
    refunds_amount: order.refundsAmount.toString(),
    fee_amount: order.feeAmount.toString(),
    carried_amount: order.carriedAmount.toString(),
    gross_amount: order.grossAmount.toString(),
    net_amount: order.netAmount.toString(),
    line_count: order.lineCount.toString(),
    created_at: time(order.createdAt),
  };
}

/** The payout columns an event shows (never the payee). */
export type PayoutEventFields = Pick<
  PayoutRow,
  | "id"
  | "payoutNo"
  | "settlementId"
  | "settlementNo"
  | "channel"
  | "amount"
  | "currency"
  | "status"
  | "channelPayoutNo"
  | "failureReason"
  | "createdAt"
  | "finishedAt"
>;

/** A payout as events show it. */
export function payoutObject(payout: PayoutEventFields): Record<string, unknown> {
  return {
    id: payout.id,
    payout_no: payout.payoutNo,
    settlement_id: payout.settlementId,
    settlement_no: payout.settlementNo,
    channel: channelName(payout.channel),
    amount: payout.amount.toString(),
    currency: payout.currency,
    status: payout.status,
    channel_payout_no: payout.channelPayoutNo ?? null,
    failure_reason: payout.failureReason ?? null,
    created_at: time(payout.createdAt),
    finished_at: time(payout.finishedAt),
  };
}
