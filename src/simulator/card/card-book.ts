/**
 * What the card side keeps beside the shared trade store: each trade's payment intent, refunds by
 * id, the balance transactions that make the bill, registered webhook endpoints, and the ids it
 * hands out. Every other card module reads and writes through one {@link CardBook}.
 */
import { randomUUID } from "node:crypto";
import type { CardDevKeys } from "../../channels/dev-keys.js";
import type { SimulatorContext } from "../channel-side.js";
import type { SimRefund, SimTrade } from "../trade-store.js";
import { type Json, noSuch } from "./card-errors.js";

/** The API version the simulator's answers and events name. */
export const API_VERSION = "2024-06-20";
/** Stripe's largest amount (8 digits); also keeps every amount an exact JSON number. */
export const MAX_AMOUNT_MINOR = 99_999_999n;
const MAX_REFUNDS = 200_000;
const MAX_BALANCE_TRANSACTIONS = 200_000;

/** A decline as `last_payment_error` describes it. */
export interface Decline {
  code: string;
  declineCode: string;
  message: string;
}

/** What `pay(..., "fail")` and `pm_card_chargeDeclined` answer. */
export const GENERIC_DECLINE: Decline = { code: "card_declined", declineCode: "generic_decline", message: "Your card was declined." };

/** Stripe's test tokens that decline, with the decline each reports. */
export const DECLINE_TOKENS: ReadonlyMap<string, Decline> = new Map([
  ["pm_card_chargeDeclined", GENERIC_DECLINE],
  [
    "pm_card_chargeDeclinedInsufficientFunds",
    { code: "card_declined", declineCode: "insufficient_funds", message: "Your card has insufficient funds." },
  ],
  ["pm_card_chargeDeclinedFraudulent", { code: "card_declined", declineCode: "fraudulent", message: "Your card was declined." }],
  ["pm_card_chargeDeclinedExpiredCard", { code: "expired_card", declineCode: "expired_card", message: "Your card has expired." }],
  [
    "pm_card_chargeDeclinedIncorrectCvc",
    { code: "incorrect_cvc", declineCode: "incorrect_cvc", message: "Your card's security code is incorrect." },
  ],
]);

/** Stripe's test tokens that pay. */
export const PAYING_TOKENS: ReadonlySet<string> = new Set([
  "pm_card_visa",
  "pm_card_visa_debit",
  "pm_card_mastercard",
  "pm_card_mastercard_debit",
  "pm_card_amex",
  "pm_card_discover",
  "pm_card_jcb",
  "pm_card_unionpay",
  "pm_card_threeDSecureRequired",
  "pm_card_threeDSecure2Required",
  "pm_card_authenticationRequired",
]);

/** The Stripe-only parts of an intent; the common ones live on its {@link SimTrade}. */
export interface CardIntent {
  id: string;
  clientSecret: string;
  /** Unix seconds. */
  created: number;
  paymentMethod: string | null;
  /** Confirmed server-side and waiting for the shopper's 3-D Secure challenge. */
  confirmed: boolean;
  description: string | null;
  metadata: Record<string, string>;
  lastPaymentError: Json | null;
  latestCharge: string | null;
  chargeCreated: number | null;
  chargeBalanceTransaction: string | null;
  canceledAt: number | null;
  cancellationReason: string | null;
}

/** A refund as the trade keeps it, with Stripe's own fields. */
export interface CardRefund extends SimRefund {
  id: string;
  paymentIntent: string;
  created: number;
  metadata: Record<string, string>;
  stripeReason: string | null;
  failureReason: string | null;
  balanceTransaction: string | null;
}

/** One line of the bill. */
export interface BalanceTransaction {
  id: string;
  type: "charge" | "refund";
  trade: SimTrade;
  refund?: CardRefund;
  amountMinor: bigint;
  feeMinor: bigint;
  created: number;
}

/** An account's webhook endpoint; every one signs with the development webhook secret. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  enabledEvents: string[];
  description: string | null;
  metadata: Record<string, string>;
  created: number;
}

/** Unix seconds now. */
export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

/** The card side's state and the shared simulator machinery, passed to every card module. */
export class CardBook {
  private readonly intents = new WeakMap<SimTrade, CardIntent>();
  readonly refundsById = new Map<string, { trade: SimTrade; refund: CardRefund }>();
  readonly balanceTransactions: BalanceTransaction[] = [];
  readonly webhookEndpoints = new Map<string, WebhookEndpoint>();
  // Ids are a per-instance random stem plus a counter: unique without randomness per request.
  readonly stem = randomUUID().replaceAll("-", "").slice(0, 10);
  private sequence = 0;

  constructor(
    readonly context: SimulatorContext,
    readonly keys: CardDevKeys,
  ) {}

  /** A new Stripe-style id, e.g. `pi_3...`. */
  newId(prefix: string): string {
    return `${prefix}_3${this.stem}${(++this.sequence).toString(36).padStart(12, "0")}`;
  }

  /** Keeps a new intent with its trade (the trade store adds the trade). */
  addIntent(trade: SimTrade, intent: CardIntent): void {
    this.context.trades.add(trade);
    this.intents.set(trade, intent);
  }

  intentOf(trade: SimTrade): CardIntent {
    const intent = this.intents.get(trade);
    if (!intent) throw new Error(`card trade ${trade.outTradeNo} has no payment intent`);
    return intent;
  }

  /** The intent with id `id`, or 404 `resource_missing` naming `param`. */
  findIntent(id: string, param: string): { trade: SimTrade; intent: CardIntent } {
    const trade = this.context.trades.findByChannelTradeNo("card", id);
    if (!trade) throw noSuch("payment_intent", id, param);
    return { trade, intent: this.intentOf(trade) };
  }

  /** The payment number of intent `id`, for trade-scoped faults. */
  tradeOfIntent(id: string | undefined): string | undefined {
    return id ? this.context.trades.findByChannelTradeNo("card", id)?.outTradeNo : undefined;
  }

  addRefund(trade: SimTrade, refund: CardRefund): void {
    trade.refunds.push(refund);
    this.refundsById.set(refund.id, { trade, refund });
    if (this.refundsById.size > MAX_REFUNDS) this.refundsById.delete(this.refundsById.keys().next().value as string);
  }

  /** Books one line of the bill and returns its id. */
  book(trade: SimTrade, type: "charge" | "refund", amountMinor: bigint, feeMinor: bigint, refund?: CardRefund): string {
    const transaction: BalanceTransaction = { id: this.newId("txn"), type, trade, amountMinor, feeMinor, created: unixNow() };
    if (refund) transaction.refund = refund;
    const list = this.balanceTransactions;
    list.push(transaction);
    // Dropped in chunks, so that forgetting the oldest costs nothing per call.
    if (list.length > MAX_BALANCE_TRANSACTIONS * 1.25) list.splice(0, list.length - MAX_BALANCE_TRANSACTIONS);
    return transaction.id;
  }
}
