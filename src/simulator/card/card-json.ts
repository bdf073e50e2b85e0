/** The card side's wire objects: PaymentIntent, Charge, Refund and BalanceTransaction as Stripe writes them. */
import { formatMinor } from "../../money/currency.js";
import { refundedMinor, type SimTrade } from "../trade-store.js";
import { type BalanceTransaction, type CardBook, type CardIntent, type CardRefund, unixNow } from "./card-book.js";
import type { Json } from "./card-errors.js";

/** Amounts stay bigint here; within `MAX_AMOUNT_MINOR` they convert to JSON numbers exactly. */
export function jsonAmount(amountMinor: bigint): number {
  return Number(amountMinor);
}

/** `12.34 usd`, as Stripe's refund messages write amounts. */
export function amountText(amountMinor: bigint, currency: string): string {
  return `${formatMinor(amountMinor, currency)} ${currency.toLowerCase()}`;
}

/** The intent's Stripe status, derived from the trade's state and the intent's progress. */
export function intentStatus(trade: SimTrade, intent: CardIntent): string {
  switch (trade.state) {
    case "paid":
      return "succeeded";
    case "closed":
      return "canceled";
    case "failed":
      return "requires_payment_method";
    default:
      if (!intent.paymentMethod) return "requires_payment_method";
      return intent.confirmed ? "requires_action" : "requires_confirmation";
  }
}

export function intentJson(trade: SimTrade, intent: CardIntent, statusOverride?: string): Json {
  const status = statusOverride ?? intentStatus(trade, intent);
  const canceled = status === "canceled";
  return {
    id: intent.id,
    object: "payment_intent",
    amount: jsonAmount(trade.amountMinor),
    amount_capturable: 0,
    amount_received: status === "succeeded" ? jsonAmount(trade.amountMinor) : 0,
    canceled_at: canceled ? (intent.canceledAt ?? unixNow()) : null,
    cancellation_reason: canceled ? intent.cancellationReason : null,
    capture_method: "automatic",
    client_secret: intent.clientSecret,
    confirmation_method: "automatic",
    created: intent.created,
    currency: trade.currency.toLowerCase(),
    description: intent.description,
    last_payment_error: intent.lastPaymentError,
    latest_charge: intent.latestCharge,
    livemode: false,
    metadata: intent.metadata,
    // The shopper's browser would run the 3-D Secure challenge; the control API's pay() or a
    // publishable-key confirm stands in for it.
    next_action: status === "requires_action" ? { type: "use_stripe_sdk", use_stripe_sdk: { type: "three_d_secure_redirect" } } : null,
    payment_method: intent.paymentMethod,
    payment_method_types: ["card"],
    status,
  };
}

function chargeJson(trade: SimTrade, intent: CardIntent): Json {
  return {
    id: intent.latestCharge,
    object: "charge",
    amount: jsonAmount(trade.amountMinor),
    amount_captured: jsonAmount(trade.amountMinor),
    amount_refunded: jsonAmount(refundedMinor(trade)),
    balance_transaction: intent.chargeBalanceTransaction,
    captured: true,
    created: intent.chargeCreated,
    currency: trade.currency.toLowerCase(),
    description: intent.description,
    livemode: false,
    metadata: intent.metadata,
    paid: true,
    payment_intent: intent.id,
    payment_method: intent.paymentMethod,
    refunded: refundedMinor(trade) >= trade.amountMinor,
    status: "succeeded",
  };
}

export function refundJson(book: CardBook, trade: SimTrade, refund: CardRefund): Json {
  const json: Json = {
    id: refund.id,
    object: "refund",
    amount: jsonAmount(refund.amountMinor),
    balance_transaction: refund.balanceTransaction,
    charge: book.intentOf(trade).latestCharge,
    created: refund.created,
    currency: trade.currency.toLowerCase(),
    metadata: refund.metadata,
    payment_intent: refund.paymentIntent,
    reason: refund.stripeReason,
    receipt_number: null,
    source_transfer_reversal: null,
    status: refund.state === "processing" ? "pending" : refund.state,
    transfer_reversal: null,
  };
  if (refund.failureReason) json.failure_reason = refund.failureReason;
  return json;
}

export function balanceTransactionJson(book: CardBook, transaction: BalanceTransaction, expandSource: boolean): Json {
  const { trade, refund } = transaction;
  const intent = book.intentOf(trade);
  const sourceId = refund ? refund.id : intent.latestCharge;
  const currency = trade.currency.toLowerCase();
  return {
    id: transaction.id,
    object: "balance_transaction",
    amount: jsonAmount(transaction.amountMinor),
    available_on: transaction.created + 2 * 86_400,
    created: transaction.created,
    currency,
    description: refund ? `REFUND FOR CHARGE (${intent.description ?? intent.id})` : (intent.description ?? intent.id),
    exchange_rate: null,
    fee: jsonAmount(transaction.feeMinor),
    fee_details:
      transaction.feeMinor === 0n
        ? []
        : [{ amount: jsonAmount(transaction.feeMinor), application: null, currency, description: "Stripe processing fees", type: "stripe_fee" }],
    metadata: refund ? refund.metadata : intent.metadata,
    net: jsonAmount(transaction.amountMinor - transaction.feeMinor),
    reporting_category: transaction.type,
    source: expandSource ? (refund ? refundJson(book, trade, refund) : chargeJson(trade, intent)) : sourceId,
    status: "available",
    type: transaction.type,
  };
}
