/**
 * The card acquirer's side of the simulator, speaking Stripe's public API under `/card`
 * (the adapter's base URL is `${simulator.url}/card`): form-encoded requests with nested
 * `metadata[...]`, `Authorization: Bearer <secret key>` (or Basic with the key as user name;
 * anything else is 401 `api_key_invalid`), JSON answers and `{"error":{...}}` errors, signed webhooks.
 * Every POST needs an `Idempotency-Key` here (Stripe makes it optional): a repeat with the same
 * parameters replays the stored answer (`Idempotent-Replayed: true`), with other parameters it is
 * 400 `idempotency_error`, and while the first is still running 409 `idempotency_key_in_use`.
 *
 * Endpoints (fault method names, for `apiError`/`apiTimeout`, in brackets):
 * - `POST /v1/payment_intents` [`payment_intents.create`]: `amount`, `currency`, `payment_method`
 *   (a test token `pm_card_...`), `confirm`, `metadata[...]`, `description`; `payment_method_types[]`
 *   and a few other Stripe parameters are accepted and ignored, unknown ones are refused.
 * - `GET /v1/payment_intents/{id}` [`payment_intents.retrieve`],
 *   `GET /v1/payment_intents/search?query=metadata['payment_no']:'...'` [`payment_intents.search`]
 *   (clauses `metadata['key']:'value'` joined by `AND`),
 *   `POST /v1/payment_intents/{id}/cancel` [`payment_intents.cancel`].
 * - `POST /v1/refunds` [`refunds.create`], `GET /v1/refunds?payment_intent=` [`refunds.list`],
 *   `GET /v1/refunds/{id}` [`refunds.retrieve`].
 * - `GET /v1/balance_transactions?created[gte]=&created[lt]=&expand[]=data.source`
 *   [`balance_transactions.list`]: the bill. Each transaction carries the intent's (or refund's)
 *   metadata as `metadata`, which the adapter reads first.
 * - `POST /v1/webhook_endpoints` (`url`, `enabled_events[]`), `GET /v1/webhook_endpoints`,
 *   `DELETE /v1/webhook_endpoints/{id}` [`webhook_endpoints.*`]. Stripe's API carries no
 *   per-payment notify URL: an account sends events to its registered endpoints, so a deployment
 *   (or test) registers `${PUBLIC_BASE_URL}/callbacks/card` once. Every endpoint here signs with
 *   the development webhook secret, which its creation answer returns as `secret`.
 *
 * The payment model. Create with `confirm=true` leaves every intent `requires_action` (3-D Secure:
 * the shopper must confirm in the browser with the client secret), whatever the token; without
 * `confirm` it is `requires_confirmation` (or `requires_payment_method` without a token). The
 * control API's `pay(paymentNo)` is the shopper confirming: `success` moves the intent to
 * `succeeded` (a charge `ch_...` and a balance transaction are booked, `payment_intent.succeeded`
 * is sent) unless the token is a decline token such as `pm_card_chargeDeclined`; `fail` (or a
 * decline token) moves it to `requires_payment_method` with `last_payment_error` (`card_declined`)
 * and sends `payment_intent.payment_failed`. A declined intent may be confirmed again (the shopper
 * retries with another card), as at Stripe; `scan()` only marks the challenge opened. Unknown
 * tokens are 400 `resource_missing`. The control API's trade key is our payment number,
 * `metadata[payment_no]` (an intent without one is keyed by its own id); the simulator keeps one
 * intent per payment number and refuses a second one.
 *
 * Refunds are `succeeded` at once, `pending` under the `refundDelayMs` fault and then `succeeded`
 * (or `failed` under `refundFails`) after that many real milliseconds; `refundFails` alone creates
 * the refund `failed` at once. Refunds and pending refunds count against the charge: more than
 * what is left is 400 `amount_too_large`, a fully refunded charge 400 `charge_already_refunded`.
 *
 * Webhooks: events `{id:"evt_...", object:"event", type, created, livemode:false, data:{object}}`
 * of types `payment_intent.succeeded`, `payment_intent.payment_failed`, `refund.created` (every new
 * refund, in its first status) and `refund.updated` (a pending refund finishing), to each endpoint
 * subscribed to the type; `data.object` is the object as it was when the event happened.
 * `Stripe-Signature: t=<now>,v1=<hmac>` is computed afresh for every delivery; the event id and
 * body stay the same across re-sends. Any 2xx acknowledges; otherwise
 * re-sent after 1m, 5m, 30m, 2h, 5h, 10h, 10h, 12h, 12h, 12h (× the time scale), about 2.6 days.
 *
 * Faults: `apiError`/`apiTimeout` by the method names above (before anything else, so a timeout
 * with `apply` carries the call out, stores its idempotent answer, then goes silent);
 * `badSignature` signs with another secret; `alterAmount` changes `data.object.amount` after the
 * fact, correctly signed; `notifyBeforeCreateReturns` confirms the intent and delivers its event
 * before the create call answers; `paidAfterClose` answers a cancel with a canceled intent, then
 * the payment succeeds anyway; `dropNotifies`, `duplicateNotifies`, `outOfOrder`, `notifyDelayMs`
 * are applied by the notifier; `refundDelayMs`/`refundFails` as above; `badResponseSignature` does
 * not apply (the API answers over TLS, unsigned).
 *
 * Approximations: Stripe's per-currency minimum charge is not enforced (any amount from 1 to
 * 99,999,999 minor units); refunds are booked in the bill when they succeed (Stripe books them when
 * created and reverses failures); the fee is 2.9 % + 30 minor units in every currency; idempotency
 * keys are kept 24 h or until 100,000 newer ones were used; search is consistent at once.
 */
import { randomUUID, timingSafeEqual } from "node:crypto";
import { signCardWebhook } from "../channels/card/card-webhook-signature.js";
import type { DevChannelKeys } from "../channels/dev-keys.js";
import { formatMinor, isKnownCurrency } from "../money/currency.js";
import {
  type ChannelSimulator,
  HOLD_OPEN,
  type PayOutcome,
  type SimulatorContext,
  type SimulatorRequest,
  type SimulatorResponse,
} from "./channel-side.js";
import { refundedMinor, type SimRefund, type SimTrade, SimulatorControlError } from "./trade-store.js";

/** Gaps before each webhook re-send, in real milliseconds: about 2.6 days in all. */
const WEBHOOK_RETRY_GAPS_MS: readonly number[] = [1, 5, 30, 120, 300, 600, 600, 720, 720, 720].map((minutes) => minutes * 60_000);

const API_VERSION = "2024-06-20";
/** Stripe's largest amount (8 digits); also keeps every amount an exact JSON number. */
const MAX_AMOUNT_MINOR = 99_999_999n;
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_IDEMPOTENCY_KEYS = 100_000;
const MAX_IDEMPOTENCY_KEY_CHARS = 255;
/** Bounds for what is kept beside the trade store (which forgets its oldest trades itself). */
const MAX_REFUNDS = 200_000;
const MAX_BALANCE_TRANSACTIONS = 200_000;
const FEE_PER_MILLE = 29n;
const FEE_FIXED_MINOR = 30n;
const METADATA_MAX_KEYS = 50;
const METADATA_KEY_MAX_CHARS = 40;
const METADATA_VALUE_MAX_CHARS = 500;
const CANCELABLE = "requires_payment_method, requires_capture, requires_confirmation, requires_action, processing";
const EVENT_TYPES = ["payment_intent.succeeded", "payment_intent.payment_failed", "refund.created", "refund.updated"] as const;
type EventType = (typeof EVENT_TYPES)[number];

type Json = Record<string, unknown>;

/** A decline as `last_payment_error` describes it. */
interface Decline {
  code: string;
  declineCode: string;
  message: string;
}

const GENERIC_DECLINE: Decline = { code: "card_declined", declineCode: "generic_decline", message: "Your card was declined." };
const DECLINE_TOKENS: ReadonlyMap<string, Decline> = new Map([
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
const PAYING_TOKENS: ReadonlySet<string> = new Set([
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
interface CardIntent {
  id: string;
  clientSecret: string;
  /** Unix seconds. */
  created: number;
  paymentMethod: string | null;
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
interface CardRefund extends SimRefund {
  id: string;
  paymentIntent: string;
  created: number;
  metadata: Record<string, string>;
  stripeReason: string | null;
  failureReason: string | null;
  balanceTransaction: string | null;
}

interface BalanceTransaction {
  id: string;
  type: "charge" | "refund";
  trade: SimTrade;
  refund?: CardRefund;
  amountMinor: bigint;
  feeMinor: bigint;
  created: number;
}

interface WebhookEndpoint {
  id: string;
  url: string;
  enabledEvents: string[];
  description: string | null;
  metadata: Record<string, string>;
  created: number;
}

interface IdempotencyEntry {
  request: string;
  expiresAt: number;
  /** Undefined while the first request is still running. */
  answer?: { status: number; body: string; requestId: string };
}

/** Parsed form or query parameters: plain values, `name[key]` hashes and `name[]` lists. */
interface Params {
  values: Map<string, string>;
  hashes: Map<string, Map<string, string>>;
  lists: Map<string, string[]>;
  /** Sorted `k=v` text, compared for idempotent replays. */
  canonical(): string;
}

/** A Stripe error answer; `replayable` false for validation errors, which Stripe does not store. */
class StripeError extends Error {
  constructor(
    readonly status: number,
    readonly detail: Json,
    readonly replayable = true,
  ) {
    super(String(detail.message));
  }
}

const invalidRequest = (message: string, extra: Json = {}) =>
  new StripeError(400, { type: "invalid_request_error", message, ...extra }, false);
const missingParam = (param: string) =>
  invalidRequest(`Missing required param: ${param}.`, { code: "parameter_missing", param });
const noSuch = (what: string, id: string, param: string) =>
  new StripeError(404, { type: "invalid_request_error", code: "resource_missing", message: `No such ${what}: '${id}'`, param }, false);

const PARAM_KEY = /^([a-z_]+)(?:\[([^\]]*)\])?$/;
/** One search clause, `metadata['key']:'value'`, with `\'` escapes. */
const METADATA_CLAUSE = /^\s*metadata\['((?:[^'\\]|\\.)*)'\]\s*:\s*'((?:[^'\\]|\\.)*)'\s*$/;

function unquote(text: string): string {
  return text.replace(/\\(.)/g, "$1");
}

function parseParams(text: string): Params {
  const values = new Map<string, string>();
  const hashes = new Map<string, Map<string, string>>();
  const lists = new Map<string, string[]>();
  const pairs: string[] = [];
  for (const [key, value] of new URLSearchParams(text)) {
    pairs.push(`${key}=${value}`);
    const match = PARAM_KEY.exec(key);
    if (!match) throw invalidRequest(`Received unknown parameter: ${key}`, { code: "parameter_unknown", param: key });
    const [, name, inner] = match as unknown as [string, string, string | undefined];
    if (inner === undefined) values.set(name, value);
    else if (inner === "" || /^\d+$/.test(inner)) {
      const list = lists.get(name);
      if (list) list.push(value);
      else lists.set(name, [value]);
    } else {
      const hash = hashes.get(name) ?? new Map<string, string>();
      hashes.set(name, hash);
      hash.set(inner, value);
    }
  }
  return { values, hashes, lists, canonical: () => pairs.sort().join("&") };
}

function onlyParams(params: Params, allowed: ReadonlySet<string>): void {
  for (const names of [params.values.keys(), params.hashes.keys(), params.lists.keys()]) {
    for (const name of names) {
      if (!allowed.has(name)) throw invalidRequest(`Received unknown parameter: ${name}`, { code: "parameter_unknown", param: name });
    }
  }
}

function integerParam(params: Params, name: string): bigint | undefined {
  const text = params.values.get(name);
  if (text === undefined || text === "") return undefined;
  if (!/^\d{1,18}$/.test(text)) throw invalidRequest(`Invalid integer: ${text}`, { code: "parameter_invalid_integer", param: name });
  return BigInt(text);
}

function booleanParam(params: Params, name: string): boolean {
  const text = params.values.get(name);
  if (text === undefined || text === "" || text === "false") return false;
  if (text === "true") return true;
  throw invalidRequest(`Invalid boolean: ${text}`, { code: "parameter_invalid_empty", param: name });
}

function enumParam(params: Params, name: string, allowed: readonly string[]): string | null {
  const text = params.values.get(name);
  if (text === undefined || text === "") return null;
  if (!allowed.includes(text)) {
    throw invalidRequest(`Invalid ${name}: must be one of ${allowed.join(", ")}`, { code: "parameter_invalid_string", param: name });
  }
  return text;
}

/** `metadata[key]=value` pairs with Stripe's limits; an empty value leaves the key out. */
function metadataParam(params: Params): Record<string, string> {
  const metadata: Record<string, string> = {};
  const hash = params.hashes.get("metadata");
  if (!hash) return metadata;
  if (hash.size > METADATA_MAX_KEYS) throw invalidRequest(`Metadata can have at most ${METADATA_MAX_KEYS} keys.`, { param: "metadata" });
  for (const [key, value] of hash) {
    if (key.length > METADATA_KEY_MAX_CHARS) {
      throw invalidRequest(`Metadata keys can have up to ${METADATA_KEY_MAX_CHARS} characters.`, { param: `metadata[${key}]` });
    }
    if (value.length > METADATA_VALUE_MAX_CHARS) {
      throw invalidRequest(`Metadata values can have up to ${METADATA_VALUE_MAX_CHARS} characters.`, { param: `metadata[${key}]` });
    }
    if (value !== "") metadata[key] = value;
  }
  return metadata;
}

function listLimit(params: Params): number {
  const limit = integerParam(params, "limit") ?? 10n;
  if (limit < 1n || limit > 100n) throw invalidRequest("This value must be between 1 and 100.", { param: "limit" });
  return Number(limit);
}

/** Amounts stay bigint here; within {@link MAX_AMOUNT_MINOR} they convert to JSON numbers exactly. */
function jsonAmount(amountMinor: bigint): number {
  return Number(amountMinor);
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

function amountText(amountMinor: bigint, currency: string): string {
  return `${formatMinor(amountMinor, currency)} ${currency.toLowerCase()}`;
}

/** Creates the card acquirer side of the simulator. */
export function createCardSimulator(context: SimulatorContext, allKeys: DevChannelKeys): ChannelSimulator {
  const keys = allKeys.card;
  const expectedKey = Buffer.from(keys.secretKey, "utf8");
  // A secret the endpoint does not know, for the badSignature fault.
  const wrongWebhookSecret = `${keys.webhookSecret}_not_this_one`;
  // Ids are a per-instance random stem plus a counter: unique without randomness per request.
  const stem = randomUUID().replaceAll("-", "").slice(0, 10);
  let sequence = 0;
  const newId = (prefix: string) => `${prefix}_3${stem}${(++sequence).toString(36).padStart(12, "0")}`;

  const intents = new WeakMap<SimTrade, CardIntent>();
  const refundsById = new Map<string, { trade: SimTrade; refund: CardRefund }>();
  const idempotency = new Map<string, IdempotencyEntry>();
  const balanceTransactions: BalanceTransaction[] = [];
  const webhookEndpoints = new Map<string, WebhookEndpoint>();

  function intentOf(trade: SimTrade): CardIntent {
    const intent = intents.get(trade);
    if (!intent) throw new Error(`card trade ${trade.outTradeNo} has no payment intent`);
    return intent;
  }

  function findIntent(id: string, param: string): { trade: SimTrade; intent: CardIntent } {
    const trade = context.trades.findByChannelTradeNo("card", id);
    if (!trade) throw noSuch("payment_intent", id, param);
    return { trade, intent: intentOf(trade) };
  }

  // --- JSON shapes -----------------------------------------------------------------------

  function intentStatus(trade: SimTrade, intent: CardIntent): string {
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

  function intentJson(trade: SimTrade, intent: CardIntent, statusOverride?: string): Json {
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
      // The shopper's browser would run the 3-D Secure challenge; here the control API's pay() stands in.
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

  function refundStatus(refund: CardRefund): string {
    return refund.state === "processing" ? "pending" : refund.state;
  }

  function refundJson(trade: SimTrade, refund: CardRefund): Json {
    const json: Json = {
      id: refund.id,
      object: "refund",
      amount: jsonAmount(refund.amountMinor),
      balance_transaction: refund.balanceTransaction,
      charge: intentOf(trade).latestCharge,
      created: refund.created,
      currency: trade.currency.toLowerCase(),
      metadata: refund.metadata,
      payment_intent: refund.paymentIntent,
      reason: refund.stripeReason,
      receipt_number: null,
      source_transfer_reversal: null,
      status: refundStatus(refund),
      transfer_reversal: null,
    };
    if (refund.failureReason) json.failure_reason = refund.failureReason;
    return json;
  }

  function balanceTransactionJson(transaction: BalanceTransaction, expandSource: boolean): Json {
    const { trade, refund } = transaction;
    const intent = intentOf(trade);
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
      source: expandSource ? (refund ? refundJson(trade, refund) : chargeJson(trade, intent)) : sourceId,
      status: "available",
      type: transaction.type,
    };
  }

  function bookBalanceTransaction(trade: SimTrade, type: "charge" | "refund", amountMinor: bigint, feeMinor: bigint, refund?: CardRefund) {
    const transaction: BalanceTransaction = {
      id: newId("txn"),
      type,
      trade,
      amountMinor,
      feeMinor,
      created: unixNow(),
    };
    if (refund) transaction.refund = refund;
    balanceTransactions.push(transaction);
    // Dropped in chunks, so that forgetting the oldest costs nothing per call.
    if (balanceTransactions.length > MAX_BALANCE_TRANSACTIONS * 1.25) balanceTransactions.splice(0, balanceTransactions.length - MAX_BALANCE_TRANSACTIONS);
    return transaction.id;
  }

  // --- webhooks --------------------------------------------------------------------------

  /** Sends one event to every endpoint subscribed to its type; resolves after the first attempts. */
  function emit(trade: SimTrade, type: EventType, object: Json, previousAttributes?: Json): Promise<void> {
    const endpoints = [...webhookEndpoints.values()].filter(
      (endpoint) => endpoint.enabledEvents.includes("*") || endpoint.enabledEvents.includes(type),
    );
    if (endpoints.length === 0) return Promise.resolve();
    const event: Json = {
      id: newId("evt"),
      object: "event",
      api_version: API_VERSION,
      created: unixNow(),
      data: previousAttributes ? { object, previous_attributes: previousAttributes } : { object },
      livemode: false,
      pending_webhooks: endpoints.length,
      request: { id: null, idempotency_key: null },
      type,
    };
    let body: string | undefined;
    const deliveries = endpoints.map((endpoint) =>
      context.notifier.enqueue(trade, {
        id: event.id as string,
        kind: type,
        url: endpoint.url,
        retryGapsMs: WEBHOOK_RETRY_GAPS_MS,
        build: () => {
          const faults = context.faults.resolve("card", trade.outTradeNo);
          const delta = faults.alterAmount === true ? 1n : typeof faults.alterAmount === "number" ? BigInt(faults.alterAmount) : 0n;
          body ??= JSON.stringify(event);
          const payload = delta === 0n ? body : JSON.stringify(withAmountChanged(event, object, delta));
          const signature = signCardWebhook(faults.badSignature ? wrongWebhookSecret : keys.webhookSecret, payload, unixNow());
          return {
            headers: {
              "content-type": "application/json; charset=utf-8",
              "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
              "stripe-signature": signature,
            },
            body: payload,
          };
        },
        isAcknowledged: (status) => status >= 200 && status < 300,
      }),
    );
    return Promise.all(deliveries).then(() => undefined);
  }

  function withAmountChanged(event: Json, object: Json, delta: bigint): Json {
    const changed: Json = { ...object, amount: jsonAmount(BigInt(object.amount as number) + delta) };
    if (typeof object.amount_received === "number" && object.amount_received > 0) changed.amount_received = changed.amount;
    return { ...event, data: { ...(event.data as Json), object: changed } };
  }

  // --- payments --------------------------------------------------------------------------

  /** The shopper confirms (3-D Secure done): the intent succeeds or is declined, and its event goes out. */
  function confirm(trade: SimTrade, intent: CardIntent, outcome: PayOutcome): Promise<void> {
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
      return emit(trade, "payment_intent.payment_failed", intentJson(trade, intent));
    }
    trade.state = "paid";
    trade.paidAt = now;
    intent.lastPaymentError = null;
    intent.latestCharge = `ch_${intent.id.slice(3)}`;
    intent.chargeCreated = unixNow();
    const fee = (trade.amountMinor * FEE_PER_MILLE + 500n) / 1000n + FEE_FIXED_MINOR;
    intent.chargeBalanceTransaction = bookBalanceTransaction(trade, "charge", trade.amountMinor, fee < trade.amountMinor ? fee : trade.amountMinor);
    return emit(trade, "payment_intent.succeeded", intentJson(trade, intent));
  }

  const CREATE_PARAMS = new Set([
    "amount",
    "currency",
    "payment_method",
    "payment_method_types",
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

  async function createIntent(params: Params): Promise<Json> {
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
    const paymentMethod = params.values.get("payment_method") || null;
    if (paymentMethod !== null && !PAYING_TOKENS.has(paymentMethod) && !DECLINE_TOKENS.has(paymentMethod)) {
      throw invalidRequest(`No such PaymentMethod: '${paymentMethod}'`, { code: "resource_missing", param: "payment_method" });
    }
    const confirmNow = booleanParam(params, "confirm");
    if (confirmNow && paymentMethod === null) {
      throw invalidRequest("You cannot confirm this PaymentIntent because it's missing a payment method.", {
        code: "payment_intent_unexpected_state",
        param: "payment_method",
      });
    }
    const captureMethod = params.values.get("capture_method");
    if (captureMethod !== undefined && captureMethod !== "automatic" && captureMethod !== "automatic_async") {
      throw invalidRequest("simulator: only automatic capture is simulated", { code: "parameter_invalid_string", param: "capture_method" });
    }
    const metadata = metadataParam(params);
    const description = params.values.get("description") || null;

    const id = newId("pi");
    const outTradeNo = metadata.payment_no ?? id;
    const existing = context.trades.get("card", outTradeNo);
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
    context.trades.add(trade);
    intents.set(trade, intent);

    if (confirmNow && context.faults.resolve("card", outTradeNo).notifyBeforeCreateReturns) {
      await confirm(trade, intent, "success");
    }
    return intentJson(trade, intent);
  }

  /** Search clauses `metadata['key']:'value'`, joined by AND. */
  function searchIntents(params: Params): Json {
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
    const trade = paymentNo === undefined ? undefined : context.trades.get("card", paymentNo);
    const candidates = paymentNo === undefined ? context.trades.list("card").reverse() : trade ? [trade] : [];
    const matches = candidates.filter((candidate) => clauses.every((clause) => intentOf(candidate).metadata[clause.key] === clause.value));
    return {
      object: "search_result",
      data: matches.slice(0, limit).map((match) => intentJson(match, intentOf(match))),
      has_more: matches.length > limit,
      next_page: null,
      url: "/v1/payment_intents/search",
    };
  }

  function cancelIntent(id: string, params: Params): Json {
    onlyParams(params, new Set(["cancellation_reason", "expand"]));
    const reason = enumParam(params, "cancellation_reason", ["duplicate", "fraudulent", "requested_by_customer", "abandoned"]);
    const { trade, intent } = findIntent(id, "intent");
    const status = intentStatus(trade, intent);
    if (status === "succeeded" || status === "canceled") {
      throw new StripeError(400, {
        type: "invalid_request_error",
        code: "payment_intent_unexpected_state",
        message: `You cannot cancel this PaymentIntent because it has a status of ${status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELABLE}.`,
        payment_intent: intentJson(trade, intent),
      });
    }
    if (context.faults.resolve("card", trade.outTradeNo).paidAfterClose) {
      // The shopper's confirmation wins the race at the acquirer: the cancel says yes, the money arrives anyway.
      context.timers.schedule(0, () => {
        if (trade.state !== "paid" && trade.state !== "closed") void confirm(trade, intent, "success");
      });
      return { ...intentJson(trade, intent, "canceled"), cancellation_reason: reason };
    }
    trade.state = "closed";
    trade.closedAt = new Date();
    intent.canceledAt = unixNow();
    intent.cancellationReason = reason;
    return intentJson(trade, intent);
  }

  // --- refunds ---------------------------------------------------------------------------

  const REFUND_PARAMS = new Set(["payment_intent", "charge", "amount", "reason", "metadata", "expand", "instructions_email"]);

  function createRefund(params: Params): Json {
    onlyParams(params, REFUND_PARAMS);
    const intentId = params.values.get("payment_intent");
    const chargeId = params.values.get("charge");
    if (!intentId && !chargeId) throw invalidRequest("Must provide either payment_intent or charge.", { code: "parameter_missing" });
    const { trade, intent } = intentId
      ? findIntent(intentId, "payment_intent")
      : findIntent(`pi_${(chargeId as string).replace(/^ch_/, "")}`, "charge");
    if (chargeId && intent.latestCharge !== chargeId) throw noSuch("charge", chargeId, "charge");
    const requested = integerParam(params, "amount");
    if (requested !== undefined && requested < 1n) {
      throw invalidRequest("Refund amount must be at least 1 minor unit.", { code: "amount_too_small", param: "amount" });
    }
    const stripeReason = enumParam(params, "reason", ["duplicate", "fraudulent", "requested_by_customer"]);
    const metadata = metadataParam(params);
    if (trade.state !== "paid") {
      throw new StripeError(400, {
        type: "invalid_request_error",
        code: "payment_intent_unexpected_state",
        message: `This PaymentIntent (${intent.id}) does not have a successful charge to refund.`,
        param: "payment_intent",
      });
    }
    const refunded = refundedMinor(trade);
    if (refunded >= trade.amountMinor) {
      throw new StripeError(400, {
        type: "invalid_request_error",
        code: "charge_already_refunded",
        message: `Charge ${intent.latestCharge} has already been refunded.`,
      });
    }
    const left = trade.amountMinor - refunded;
    const amountMinor = requested ?? left;
    if (amountMinor > left) {
      throw new StripeError(400, {
        type: "invalid_request_error",
        code: "amount_too_large",
        message: `Refund amount (${amountText(amountMinor, trade.currency)}) is greater than unrefunded amount on charge (${amountText(left, trade.currency)})`,
        param: "amount",
      });
    }

    const faults = context.faults.resolve("card", trade.outTradeNo);
    const now = new Date();
    const id = newId("re");
    const refund: CardRefund = {
      id,
      refundNo: metadata.refund_no ?? id,
      channelRefundNo: id,
      amountMinor,
      state: faults.refundDelayMs !== undefined ? "processing" : faults.refundFails ? "failed" : "succeeded",
      createdAt: now,
      paymentIntent: intent.id,
      created: Math.floor(now.getTime() / 1000),
      metadata,
      stripeReason,
      failureReason: null,
      balanceTransaction: null,
    };
    if (metadata.reason) refund.reason = metadata.reason;
    if (refund.state === "failed") refund.failureReason = "expired_or_canceled_card";
    if (refund.state === "succeeded") refund.balanceTransaction = bookBalanceTransaction(trade, "refund", -amountMinor, 0n, refund);
    trade.refunds.push(refund);
    refundsById.set(id, { trade, refund });
    if (refundsById.size > MAX_REFUNDS) refundsById.delete(refundsById.keys().next().value as string);
    void emit(trade, "refund.created", refundJson(trade, refund));

    if (refund.state === "processing") {
      context.timers.schedule(faults.refundDelayMs ?? 0, () => {
        if (refund.state !== "processing") return;
        if (context.faults.resolve("card", trade.outTradeNo).refundFails) {
          refund.state = "failed";
          refund.failureReason = "expired_or_canceled_card";
        } else {
          refund.state = "succeeded";
          refund.balanceTransaction = bookBalanceTransaction(trade, "refund", -refund.amountMinor, 0n, refund);
        }
        void emit(trade, "refund.updated", refundJson(trade, refund), { status: "pending" });
      });
    }
    return refundJson(trade, refund);
  }

  function listRefunds(params: Params): Json {
    onlyParams(params, new Set(["payment_intent", "charge", "limit", "starting_after", "expand"]));
    const intentId = params.values.get("payment_intent");
    const chargeId = params.values.get("charge");
    let refunds: { trade: SimTrade; refund: CardRefund }[];
    if (intentId || chargeId) {
      const { trade } = intentId ? findIntent(intentId, "payment_intent") : findIntent(`pi_${(chargeId as string).replace(/^ch_/, "")}`, "charge");
      refunds = (trade.refunds as CardRefund[]).map((refund) => ({ trade, refund })).reverse();
    } else {
      refunds = [...refundsById.values()].reverse();
    }
    return page(params, "/v1/refunds", refunds, ({ refund }) => refund.id, ({ trade, refund }) => refundJson(trade, refund));
  }

  /** One page of a list, newest first, continued with Stripe's `starting_after` cursor. */
  function page<T>(params: Params, url: string, items: T[], idOf: (item: T) => string, render: (item: T) => Json): Json {
    const limit = listLimit(params);
    const after = params.values.get("starting_after");
    let start = 0;
    if (after) {
      const index = items.findIndex((item) => idOf(item) === after);
      if (index < 0) throw noSuch("object", after, "starting_after");
      start = index + 1;
    }
    return { object: "list", data: items.slice(start, start + limit).map(render), has_more: start + limit < items.length, url };
  }

  function listBalanceTransactions(params: Params): Json {
    onlyParams(params, new Set(["created", "limit", "starting_after", "type", "expand"]));
    const range = params.hashes.get("created");
    const bound = (name: string) => {
      const text = range?.get(name);
      if (text === undefined) return undefined;
      if (!/^\d{1,12}$/.test(text)) throw invalidRequest(`Invalid integer: ${text}`, { code: "parameter_invalid_integer", param: `created[${name}]` });
      return Number(text);
    };
    const exact = integerParam(params, "created");
    const [gte, gt, lte, lt] = [bound("gte"), bound("gt"), bound("lte"), bound("lt")];
    const type = params.values.get("type");
    const expandSource = (params.lists.get("expand") ?? []).includes("data.source");
    const matching = balanceTransactions
      .filter(
        (txn) =>
          (exact === undefined || txn.created === Number(exact)) &&
          (gte === undefined || txn.created >= gte) &&
          (gt === undefined || txn.created > gt) &&
          (lte === undefined || txn.created <= lte) &&
          (lt === undefined || txn.created < lt) &&
          (type === undefined || txn.type === type),
      )
      .reverse();
    return page(params, "/v1/balance_transactions", matching, (txn) => txn.id, (txn) => balanceTransactionJson(txn, expandSource));
  }

  // --- webhook endpoints -----------------------------------------------------------------

  function webhookEndpointJson(endpoint: WebhookEndpoint, withSecret: boolean): Json {
    const json: Json = {
      id: endpoint.id,
      object: "webhook_endpoint",
      api_version: API_VERSION,
      created: endpoint.created,
      description: endpoint.description,
      enabled_events: endpoint.enabledEvents,
      livemode: false,
      metadata: endpoint.metadata,
      status: "enabled",
      url: endpoint.url,
    };
    if (withSecret) json.secret = keys.webhookSecret;
    return json;
  }

  function createWebhookEndpoint(params: Params): Json {
    onlyParams(params, new Set(["url", "enabled_events", "description", "metadata", "api_version", "connect"]));
    const url = params.values.get("url");
    if (!url) throw missingParam("url");
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) throw invalidRequest("Invalid URL: must be an http(s) URL.", { param: "url" });
    const enabledEvents = params.lists.get("enabled_events");
    if (!enabledEvents || enabledEvents.length === 0) throw missingParam("enabled_events");
    const endpoint: WebhookEndpoint = {
      id: newId("we"),
      url,
      enabledEvents,
      description: params.values.get("description") || null,
      metadata: metadataParam(params),
      created: unixNow(),
    };
    webhookEndpoints.set(endpoint.id, endpoint);
    return webhookEndpointJson(endpoint, true);
  }

  // --- HTTP ------------------------------------------------------------------------------

  interface Route {
    operation: string;
    /** Runs the call; `params` are the form body (POST) or the query (GET, DELETE). */
    run(params: Params): Json | Promise<Json>;
    /** The trade the call is about, for per-trade faults. */
    outTradeNo?(params: Params): string | undefined;
  }

  const tradeOfIntent = (id: string | undefined) => (id ? context.trades.findByChannelTradeNo("card", id)?.outTradeNo : undefined);

  function route(method: string, path: string): Route | undefined {
    const segments = path.split("/").filter((segment) => segment !== "");
    if (segments[0] !== "v1") return undefined;
    const [, resource, id, action] = segments.map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    });
    if (segments.length > 4) return undefined;
    if (resource === "payment_intents") {
      if (id === undefined && method === "POST") {
        return { operation: "payment_intents.create", run: createIntent, outTradeNo: (params) => params.hashes.get("metadata")?.get("payment_no") };
      }
      if (id === "search" && action === undefined && method === "GET") {
        return {
          operation: "payment_intents.search",
          run: searchIntents,
          outTradeNo: (params) => {
            const match = /metadata\['payment_no'\]\s*:\s*'((?:[^'\\]|\\.)*)'/.exec(params.values.get("query") ?? "");
            return match?.[1] === undefined ? undefined : unquote(match[1]);
          },
        };
      }
      if (id !== undefined && action === undefined && method === "GET") {
        return {
          operation: "payment_intents.retrieve",
          run: () => {
            const found = findIntent(id, "intent");
            return intentJson(found.trade, found.intent);
          },
          outTradeNo: () => tradeOfIntent(id),
        };
      }
      if (id !== undefined && action === "cancel" && method === "POST") {
        return { operation: "payment_intents.cancel", run: (params) => cancelIntent(id, params), outTradeNo: () => tradeOfIntent(id) };
      }
    }
    if (resource === "refunds" && action === undefined) {
      const refundTrade = (params: Params) => tradeOfIntent(params.values.get("payment_intent"));
      if (id === undefined && method === "POST") return { operation: "refunds.create", run: createRefund, outTradeNo: refundTrade };
      if (id === undefined && method === "GET") return { operation: "refunds.list", run: listRefunds, outTradeNo: refundTrade };
      if (id !== undefined && method === "GET") {
        return {
          operation: "refunds.retrieve",
          run: () => {
            const found = refundsById.get(id);
            if (!found) throw noSuch("refund", id, "id");
            return refundJson(found.trade, found.refund);
          },
          outTradeNo: () => refundsById.get(id)?.trade.outTradeNo,
        };
      }
    }
    if (resource === "balance_transactions" && id === undefined && method === "GET") {
      return { operation: "balance_transactions.list", run: listBalanceTransactions };
    }
    if (resource === "webhook_endpoints" && action === undefined) {
      if (id === undefined && method === "POST") return { operation: "webhook_endpoints.create", run: createWebhookEndpoint };
      if (id === undefined && method === "GET") {
        return {
          operation: "webhook_endpoints.list",
          run: (params) =>
            page(params, "/v1/webhook_endpoints", [...webhookEndpoints.values()].reverse(), (endpoint) => endpoint.id, (endpoint) =>
              webhookEndpointJson(endpoint, false),
            ),
        };
      }
      if (id !== undefined && method === "DELETE") {
        return {
          operation: "webhook_endpoints.delete",
          run: () => {
            if (!webhookEndpoints.delete(id)) throw noSuch("webhook endpoint", id, "id");
            return { id, object: "webhook_endpoint", deleted: true };
          },
        };
      }
    }
    return undefined;
  }

  let requestSequence = 0;
  /** `originalRequest`: the id of the request whose stored answer this replays. */
  function answer(status: number, body: string, requestId: string, originalRequest?: string): SimulatorResponse {
    const headers: Record<string, string> = { "content-type": "application/json", "request-id": requestId, "stripe-version": API_VERSION };
    if (originalRequest) {
      headers["idempotent-replayed"] = "true";
      headers["original-request"] = originalRequest;
    }
    return { status, headers, body };
  }
  const errorBody = (detail: Json) => JSON.stringify({ error: detail });

  function authenticated(header: string | undefined): boolean {
    if (!header) return false;
    let key: string | undefined;
    if (header.startsWith("Bearer ")) key = header.slice(7).trim();
    else if (header.startsWith("Basic ")) key = Buffer.from(header.slice(6).trim(), "base64").toString("utf8").split(":")[0];
    if (!key) return false;
    const given = Buffer.from(key, "utf8");
    return given.length === expectedKey.length && timingSafeEqual(given, expectedKey);
  }

  function authenticationError(header: string | undefined): StripeError {
    if (!header) {
      return new StripeError(401, {
        type: "invalid_request_error",
        message:
          "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
      });
    }
    // Never echo a key whole: it may be someone's real one.
    const given = header.replace(/^(Bearer|Basic)\s+/, "");
    const masked = given.length > 12 ? `${given.slice(0, 8)}${"*".repeat(4)}${given.slice(-4)}` : "****";
    return new StripeError(401, { type: "invalid_request_error", code: "api_key_invalid", message: `Invalid API Key provided: ${masked}` });
  }

  function rememberIdempotency(key: string, entry: IdempotencyEntry): void {
    // Re-inserted, not overwritten in place: the map's order is the order keys expire in.
    idempotency.delete(key);
    idempotency.set(key, entry);
    // Oldest first: evict what is expired or beyond the bound, a few per call.
    const now = Date.now();
    for (let i = 0; i < 2; i++) {
      const oldest = idempotency.entries().next().value as [string, IdempotencyEntry] | undefined;
      if (!oldest || (oldest[1].expiresAt > now && idempotency.size <= MAX_IDEMPOTENCY_KEYS) || oldest[1].answer === undefined) break;
      idempotency.delete(oldest[0]);
    }
  }

  async function handle(request: SimulatorRequest): Promise<SimulatorResponse | typeof HOLD_OPEN> {
    const requestId = `req_${stem}${(++requestSequence).toString(36)}`;
    const fail = (error: StripeError) => answer(error.status, errorBody(error.detail), requestId);
    const isPost = request.method === "POST";
    let params: Params;
    try {
      const contentType = request.headers["content-type"] ?? "";
      if (isPost && request.rawBody.length > 0 && !contentType.includes("application/x-www-form-urlencoded")) {
        throw invalidRequest("simulator: request bodies must be form-encoded (application/x-www-form-urlencoded), as Stripe's API expects");
      }
      params = parseParams(isPost ? request.rawBody.toString("utf8") : request.query.toString());
    } catch (error) {
      if (error instanceof StripeError) return fail(error);
      throw error;
    }

    const matched = route(request.method, request.path);
    const fault = matched ? context.faults.takeApiFault("card", matched.operation, matched.outTradeNo?.(params)) : undefined;
    if (fault?.kind === "error") {
      return answer(fault.status, errorBody({ type: "api_error", message: "An unknown error occurred (simulated)." }), requestId);
    }
    if (fault?.kind === "timeout" && !fault.apply) return HOLD_OPEN;

    const authorization = request.headers.authorization;
    if (!authenticated(authorization)) return fail(authenticationError(authorization));
    if (!matched) {
      return fail(
        new StripeError(404, {
          type: "invalid_request_error",
          message: `Unrecognized request URL (${request.method}: ${request.path}). Please see https://stripe.com/docs.`,
        }),
      );
    }

    let idempotencyKey: string | undefined;
    let requestText = "";
    if (isPost) {
      const header = request.headers["idempotency-key"];
      idempotencyKey = Array.isArray(header) ? header[0] : header;
      if (!idempotencyKey) {
        return fail(invalidRequest("simulator: this acquirer requires an Idempotency-Key header on every POST (Stripe makes it optional)"));
      }
      if (idempotencyKey.length > MAX_IDEMPOTENCY_KEY_CHARS) {
        return fail(invalidRequest(`Idempotency-Key is too long: at most ${MAX_IDEMPOTENCY_KEY_CHARS} characters.`));
      }
      requestText = `${request.path}\n${params.canonical()}`;
      const previous = idempotency.get(idempotencyKey);
      if (previous && previous.expiresAt > Date.now()) {
        if (previous.request !== requestText) {
          return fail(
            new StripeError(400, {
              type: "idempotency_error",
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            }),
          );
        }
        if (!previous.answer) {
          return fail(
            new StripeError(409, {
              type: "invalid_request_error",
              code: "idempotency_key_in_use",
              message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.`,
            }),
          );
        }
        if (fault?.kind === "timeout") return HOLD_OPEN;
        return answer(previous.answer.status, previous.answer.body, requestId, previous.answer.requestId);
      }
    }

    const entry: IdempotencyEntry = { request: requestText, expiresAt: Date.now() + IDEMPOTENCY_TTL_MS };
    if (idempotencyKey) rememberIdempotency(idempotencyKey, entry);
    let response: SimulatorResponse;
    try {
      response = answer(200, JSON.stringify(await matched.run(params)), requestId);
      if (idempotencyKey) entry.answer = { status: response.status, body: response.body as string, requestId };
    } catch (error) {
      if (!(error instanceof StripeError)) {
        if (idempotencyKey) idempotency.delete(idempotencyKey);
        throw error;
      }
      response = fail(error);
      if (idempotencyKey) {
        if (error.replayable) entry.answer = { status: response.status, body: response.body as string, requestId };
        else idempotency.delete(idempotencyKey);
      }
    }
    if (fault?.kind === "timeout") return HOLD_OPEN;
    return response;
  }

  function requirePayable(outTradeNo: string): { trade: SimTrade; intent: CardIntent } {
    const trade = context.trades.require("card", outTradeNo);
    const intent = intentOf(trade);
    if (trade.state === "paid") throw new SimulatorControlError(409, `payment intent ${intent.id} has already succeeded`);
    if (trade.state === "closed") throw new SimulatorControlError(409, `payment intent ${intent.id} is canceled`);
    return { trade, intent };
  }

  return {
    channel: "card",
    handle,

    pay(outTradeNo, outcome) {
      const { trade, intent } = requirePayable(outTradeNo);
      void confirm(trade, intent, outcome);
    },

    scan(outTradeNo) {
      // The shopper opens the 3-D Secure challenge without finishing it: still requires_action.
      const { trade, intent } = requirePayable(outTradeNo);
      trade.openedAt ??= new Date();
      if (trade.state === "created") trade.state = "pending";
      intent.confirmed = true;
    },

    channelState(trade) {
      return intentStatus(trade, intentOf(trade));
    },
  };
}
