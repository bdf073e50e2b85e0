/**
 * PaymentIntents: create, retrieve, search, confirm, cancel, and the shopper's outcome.
 *
 * The model. Create with `confirm=true` (or a server-side confirm with the secret key) leaves every
 * intent `requires_action`, whatever the token: the simulated 3-D Secure challenge waits for the
 * shopper. Without `confirm` the intent is `requires_confirmation`, or `requires_payment_method`
 * without a token (the client-confirmed flow: the server hands the `client_secret` to the browser).
 * The shopper finishes in one of two ways: the control API's `pay()`, or the browser's confirm
 * (`POST /v1/payment_intents/{id}/confirm` with the publishable key and the `client_secret`), where
 * the challenge counts as passed. Either settles the intent: `succeeded` (a charge and a balance
 * transaction are booked, `payment_intent.succeeded` is sent) unless the token declines
 * (`pm_card_chargeDeclined...`) or `pay()` says `fail`; then `requires_payment_method` with
 * `last_payment_error` and `payment_intent.payment_failed` (a browser confirm also answers 402
 * `card_error`). A declined intent may be confirmed again, as at Stripe.
 */
import { randomUUID } from "node:crypto";
import { isKnownCurrency } from "../../money/currency.js";
import type { PayOutcome } from "../channel-side.js";
import type { SimTrade } from "../trade-store.js";
import type { CardCaller } from "./card-auth.js";
import {
  type CardBook,
  type CardIntent,
  DECLINE_TOKENS,
  GENERIC_DECLINE,
  MAX_AMOUNT_MINOR,
  PAYING_TOKENS,
  unixNow,
} from "./card-book.js";
import { invalidRequest, type Json, missingParam, StripeError, unexpectedState } from "./card-errors.js";
import { intentJson, intentStatus } from "./card-json.js";
import {
  booleanParam,
  enumParam,
  integerParam,
  listLimit,
  METADATA_CLAUSE,
  metadataParam,
  onlyParams,
  type Params,
  unquote,
} from "./card-params.js";
import { emitEvent } from "./card-webhooks.js";

const FEE_PER_MILLE = 29n;
const FEE_FIXED_MINOR = 30n;
const CANCELABLE = "requires_payment_method, requires_capture, requires_confirmation, requires_action, processing";
const CONFIRMABLE: ReadonlySet<string> = new Set(["requires_payment_method", "requires_confirmation", "requires_action"]);
/** Used when the control API pays an intent that has no payment method yet: the shopper typed a card. */
const DEFAULT_SHOPPER_TOKEN = "pm_card_visa";

const CREATE_PARAMS = new Set([
  "amount",
  "currency",
  "payment_method",
  "payment_method_types",
  "automatic_payment_methods",
  "confirm",
  "metadata",
  "description",
  "capture_method",
  "confirmation_method",
  "receipt_email",
  "statement_descriptor_suffix",
  "return_url",
  "expand",
]);
const CONFIRM_PARAMS = new Set(["payment_method", "client_secret", "return_url", "receipt_email", "use_stripe_sdk", "payment_method_types", "expand"]);

function paymentMethodParam(params: Params): string | null {
  const paymentMethod = params.values.get("payment_method") || null;
  if (paymentMethod !== null && !PAYING_TOKENS.has(paymentMethod) && !DECLINE_TOKENS.has(paymentMethod)) {
    throw invalidRequest(`No such PaymentMethod: '${paymentMethod}'`, { code: "resource_missing", param: "payment_method" });
  }
  return paymentMethod;
}

const missingPaymentMethod = () =>
  invalidRequest("You cannot confirm this PaymentIntent because it's missing a payment method. Update the PaymentIntent with a payment method and then confirm it again.", {
    code: "payment_intent_unexpected_state",
    param: "payment_method",
  });

/**
 * The shopper has confirmed (3-D Secure done): the intent succeeds or is declined, and its event
 * goes out. Returns the decline, if any, and a promise that settles after the event's first delivery.
 */
function settleIntent(book: CardBook, trade: SimTrade, intent: CardIntent, outcome: PayOutcome): { declined?: Json; delivered: Promise<void> } {
  const now = new Date();
  trade.openedAt ??= now;
  intent.confirmed = true;
  const decline = outcome === "fail" ? GENERIC_DECLINE : intent.paymentMethod ? DECLINE_TOKENS.get(intent.paymentMethod) : undefined;
  if (decline) {
    trade.state = "failed";
    intent.lastPaymentError = {
      type: "card_error",
      code: decline.code,
      decline_code: decline.declineCode,
      message: decline.message,
      payment_method: { id: intent.paymentMethod, object: "payment_method", type: "card" },
    };
    return { declined: intent.lastPaymentError, delivered: emitEvent(book, trade, "payment_intent.payment_failed", intentJson(trade, intent)) };
  }
  trade.state = "paid";
  trade.paidAt = now;
  intent.lastPaymentError = null;
  intent.latestCharge = `ch_${intent.id.slice(3)}`;
  intent.chargeCreated = unixNow();
  const fee = (trade.amountMinor * FEE_PER_MILLE + 500n) / 1000n + FEE_FIXED_MINOR;
  intent.chargeBalanceTransaction = book.book(trade, "charge", trade.amountMinor, fee < trade.amountMinor ? fee : trade.amountMinor);
  return { delivered: emitEvent(book, trade, "payment_intent.succeeded", intentJson(trade, intent)) };
}

/** The control API's `pay()`: the shopper finishes the challenge (typing a card first if the intent has none). */
export function payIntent(book: CardBook, trade: SimTrade, intent: CardIntent, outcome: PayOutcome): void {
  intent.paymentMethod ??= DEFAULT_SHOPPER_TOKEN;
  void settleIntent(book, trade, intent, outcome).delivered;
}

/** `POST /v1/payment_intents`. */
export async function createIntent(book: CardBook, params: Params): Promise<Json> {
  onlyParams(params, CREATE_PARAMS);
  const amountMinor = integerParam(params, "amount");
  if (amountMinor === undefined) throw missingParam("amount");
  if (amountMinor < 1n) throw invalidRequest("Amount must be at least 1 minor unit.", { code: "amount_too_small", param: "amount" });
  if (amountMinor > MAX_AMOUNT_MINOR) {
    throw invalidRequest(`Amount must be no more than ${MAX_AMOUNT_MINOR} minor units.`, { code: "amount_too_large", param: "amount" });
  }
  const currencyParam = params.values.get("currency");
  if (!currencyParam) throw missingParam("currency");
  const currency = currencyParam.toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency) || !isKnownCurrency(currency)) {
    throw invalidRequest(`Invalid currency: ${currencyParam.toLowerCase()}.`, { param: "currency" });
  }
  const paymentMethod = paymentMethodParam(params);
  const confirmNow = booleanParam(params, "confirm");
  if (confirmNow && paymentMethod === null) throw missingPaymentMethod();
  const captureMethod = params.values.get("capture_method");
  if (captureMethod !== undefined && captureMethod !== "automatic" && captureMethod !== "automatic_async") {
    throw invalidRequest("simulator: only automatic capture is simulated", { code: "parameter_invalid_string", param: "capture_method" });
  }
  const metadata = metadataParam(params);
  const description = params.values.get("description") || null;

  const id = book.newId("pi");
  const outTradeNo = metadata.payment_no ?? id;
  const existing = book.context.trades.get("card", outTradeNo);
  if (existing) {
    throw invalidRequest(
      `simulator: payment intent ${existing.channelTradeNo} already carries metadata[payment_no]=${outTradeNo}; the simulator keeps one intent per payment number`,
      { code: "parameter_invalid_string", param: "metadata[payment_no]" },
    );
  }
  const now = new Date();
  const trade: SimTrade = {
    channel: "card",
    outTradeNo,
    channelTradeNo: id,
    amountMinor,
    currency,
    subject: description ?? "",
    state: "created",
    createdAt: now,
    refunds: [],
    notifications: [],
    attributes: {},
  };
  const intent: CardIntent = {
    id,
    clientSecret: `${id}_secret_${randomUUID().replaceAll("-", "").slice(0, 25)}`,
    created: Math.floor(now.getTime() / 1000),
    paymentMethod,
    confirmed: confirmNow,
    description,
    metadata,
    lastPaymentError: null,
    latestCharge: null,
    chargeCreated: null,
    chargeBalanceTransaction: null,
    canceledAt: null,
    cancellationReason: null,
  };
  book.addIntent(trade, intent);
  if (confirmNow && book.context.faults.resolve("card", outTradeNo).notifyBeforeCreateReturns) {
    await settleIntent(book, trade, intent, "success").delivered;
  }
  return intentJson(trade, intent);
}

/** The browser may only see an intent whose client secret it holds. */
function checkClientSecret(intent: CardIntent, params: Params, caller: CardCaller): void {
  const given = params.values.get("client_secret");
  if (given === undefined || given === "") {
    if (caller === "publishable") throw missingParam("client_secret");
    return;
  }
  if (given !== intent.clientSecret) {
    throw invalidRequest("The client_secret provided does not match the client_secret associated with the PaymentIntent.", {
      code: "payment_intent_invalid_parameter",
      param: "client_secret",
    });
  }
}

/** `GET /v1/payment_intents/{id}`; with the publishable key, `?client_secret=` is required. */
export function retrieveIntent(book: CardBook, id: string, params: Params, caller: CardCaller): Json {
  onlyParams(params, new Set(["client_secret", "expand"]));
  const { trade, intent } = book.findIntent(id, "intent");
  checkClientSecret(intent, params, caller);
  return intentJson(trade, intent);
}

/**
 * `POST /v1/payment_intents/{id}/confirm`. With the secret key (server-side) the intent waits for
 * the shopper's challenge (`requires_action`); with the publishable key and the intent's
 * `client_secret` (the shopper's browser) the challenge counts as passed and the intent settles.
 */
export function confirmIntent(book: CardBook, id: string, params: Params, caller: CardCaller): Json {
  onlyParams(params, CONFIRM_PARAMS);
  const { trade, intent } = book.findIntent(id, "intent");
  checkClientSecret(intent, params, caller);
  const paymentMethod = paymentMethodParam(params);
  const status = intentStatus(trade, intent);
  if (!CONFIRMABLE.has(status)) {
    throw unexpectedState(
      `You cannot confirm this PaymentIntent because it has a status of ${status}. Only a PaymentIntent with one of the following statuses may be confirmed: ${[...CONFIRMABLE].join(", ")}.`,
      intentJson(trade, intent),
    );
  }
  if (paymentMethod === null && intent.paymentMethod === null) throw missingPaymentMethod();
  if (paymentMethod !== null) intent.paymentMethod = paymentMethod;
  // A retry after a decline starts a new attempt.
  if (trade.state === "failed") trade.state = "pending";
  if (caller === "secret") {
    intent.confirmed = true;
    return intentJson(trade, intent);
  }
  const { declined } = settleIntent(book, trade, intent, "success");
  if (declined) {
    // Stripe answers a declined confirmation with 402 and the intent, now back at requires_payment_method.
    throw new StripeError(402, { ...declined, payment_intent: intentJson(trade, intent) });
  }
  return intentJson(trade, intent);
}

/** `GET /v1/payment_intents/search`: clauses `metadata['key']:'value'`, joined by AND. */
export function searchIntents(book: CardBook, params: Params): Json {
  onlyParams(params, new Set(["query", "limit", "page", "expand"]));
  const query = params.values.get("query");
  if (!query) throw missingParam("query");
  const clauses = query.split(/\s+AND\s+/).map((part) => {
    const match = METADATA_CLAUSE.exec(part);
    if (!match) {
      throw invalidRequest(`simulator: unsupported search clause ${JSON.stringify(part)}; use metadata['key']:'value' joined by AND`, {
        param: "query",
      });
    }
    return { key: unquote(match[1] ?? ""), value: unquote(match[2] ?? "") };
  });
  const limit = listLimit(params);
  const paymentNo = clauses.find((clause) => clause.key === "payment_no")?.value;
  // The payment number is the trade store's key: found directly; other searches scan (rare, not hot).
  const trade = paymentNo === undefined ? undefined : book.context.trades.get("card", paymentNo);
  const candidates = paymentNo === undefined ? book.context.trades.list("card").reverse() : trade ? [trade] : [];
  const matches = candidates.filter((candidate) => clauses.every((clause) => book.intentOf(candidate).metadata[clause.key] === clause.value));
  return {
    object: "search_result",
    data: matches.slice(0, limit).map((match) => intentJson(match, book.intentOf(match))),
    has_more: matches.length > limit,
    next_page: null,
    url: "/v1/payment_intents/search",
  };
}

/** The payment number a search is about, for trade-scoped faults. */
export function searchedPaymentNo(params: Params): string | undefined {
  const match = /metadata\['payment_no'\]\s*:\s*'((?:[^'\\]|\\.)*)'/.exec(params.values.get("query") ?? "");
  return match?.[1] === undefined ? undefined : unquote(match[1]);
}

/** `POST /v1/payment_intents/{id}/cancel`; the `paidAfterClose` fault says yes and lets the payment succeed anyway. */
export function cancelIntent(book: CardBook, id: string, params: Params): Json {
  onlyParams(params, new Set(["cancellation_reason", "expand"]));
  const reason = enumParam(params, "cancellation_reason", ["duplicate", "fraudulent", "requested_by_customer", "abandoned"]);
  const { trade, intent } = book.findIntent(id, "intent");
  const status = intentStatus(trade, intent);
  if (status === "succeeded" || status === "canceled") {
    throw unexpectedState(
      `You cannot cancel this PaymentIntent because it has a status of ${status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELABLE}.`,
      intentJson(trade, intent),
    );
  }
  if (book.context.faults.resolve("card", trade.outTradeNo).paidAfterClose) {
    // The shopper's confirmation wins the race at the acquirer: the cancel says yes, the money arrives anyway.
    book.context.timers.schedule(0, () => {
      if (trade.state !== "paid" && trade.state !== "closed") payIntent(book, trade, intent, "success");
    });
    return { ...intentJson(trade, intent, "canceled"), cancellation_reason: reason };
  }
  trade.state = "closed";
  trade.closedAt = new Date();
  intent.canceledAt = unixNow();
  intent.cancellationReason = reason;
  return intentJson(trade, intent);
}
