/**
 * Card acquirer adapter, speaking Stripe's public API: PaymentIntents confirmed server-side with
 * the acquirer's payment-method token, query (by id, or by metadata search), cancel, refunds,
 * signed webhooks and the daily bill from balance transactions. Card numbers never reach this
 * code, only `pm_...` tokens; nothing here logs, and error texts carry no secrets or card data.
 */
import {
  type BillRecord,
  type CallbackAnswer,
  CallbackRejectedError,
  type CallbackRequest,
  type ChannelCreatePaymentRequest,
  type ChannelNotification,
  type ChannelPaymentCreated,
  ChannelRejectedError,
  type ChannelRefundRequest,
  type ChannelRefundState,
  type ChannelRefundStatus,
  type ChannelTradeRef,
  type ChannelTradeState,
  type ChannelTradeStatus,
  ChannelTradePaidError,
  ChannelUnavailableError,
  type PaymentChannel,
  type PaymentNotification,
  type RefundNotification,
  ChannelAnswerUntrustedError,
} from "../channel.js";
import { type HttpResponse, HttpTransportError, sendHttpRequest } from "../http-client.js";
import { verifyCardWebhookSignature } from "./card-webhook-signature.js";

export {
  CARD_WEBHOOK_TOLERANCE_SECONDS,
  computeCardWebhookSignature,
  signCardWebhook,
  verifyCardWebhookSignature,
} from "./card-webhook-signature.js";

/** How to reach the acquirer and prove who we are. */
export interface CardChannelConfig {
  /** API origin, e.g. `https://api.stripe.com` or the simulator's card base; paths start with `/v1/`. */
  baseUrl: string;
  /** `sk_live_...` or `sk_test_...`, sent as a Bearer token. */
  secretKey: string;
  /** The webhook endpoint's signing secret (`whsec_...`), used whole as the HMAC key. */
  webhookSecret: string;
  /** Per-call deadline; default 10 s. */
  timeoutMs?: number;
}

/** The acquirer's payment-method tokens; anything else (above all a card number) is refused unsent. */
export const CARD_PAYMENT_METHOD_TOKEN = /^pm_[A-Za-z0-9_]{1,250}$/;

const DEFAULT_TIMEOUT_MS = 10_000;
/** The acquirer's limit on a metadata value. */
const METADATA_VALUE_MAX_CHARS = 500;
const LIST_PAGE_SIZE = "100";
const SECONDS_PER_DAY = 86_400;

type JsonObject = Record<string, unknown>;

/** Form parameters in wire order, nested ones already flattened (`metadata[payment_no]`). */
type FormParams = Array<[string, string]>;

/** A 4xx answer, decoded from `{"error":{"type","code","message",...}}`. */
interface AcquirerError {
  status: number;
  type?: string;
  code?: string;
  message?: string;
  /** Stripe attaches the intent to errors about one, e.g. `payment_intent_unexpected_state`. */
  paymentIntent?: JsonObject;
}

type AcquirerAnswer = { ok: true; body: JsonObject } | { ok: false; error: AcquirerError };

/**
 * A PaymentIntent status → our normalised state. `requires_payment_method` is where an intent
 * returns after a failed attempt: failed when it carries a `last_payment_error`, else still pending.
 * Undefined for a status we do not know.
 */
export function mapCardIntentStatus(status: string, hasPaymentError: boolean): ChannelTradeState | undefined {
  switch (status) {
    case "succeeded":
      return "succeeded";
    case "canceled":
      return "closed";
    case "requires_payment_method":
      return hasPaymentError ? "failed" : "pending";
    case "requires_confirmation":
    case "requires_action":
    case "processing":
    // Only with manual capture, which this service does not request.
    case "requires_capture":
      return "pending";
    default:
      return undefined;
  }
}

/** A Refund status → our normalised refund state. Undefined for a status we do not know. */
export function mapCardRefundStatus(status: string): ChannelRefundState | undefined {
  switch (status) {
    case "succeeded":
      return "succeeded";
    case "pending":
    case "requires_action":
      return "processing";
    case "failed":
    case "canceled":
      return "failed";
    default:
      return undefined;
  }
}

/** Creates the card {@link PaymentChannel}. */
export function createCardChannel(config: CardChannelConfig): PaymentChannel {
  // An empty HMAC key is a key everybody knows: refuse to start rather than accept forged events.
  if (!config.webhookSecret) throw new Error("card channel: webhookSecret is empty");
  if (!config.secretKey) throw new Error("card channel: secretKey is empty");
  const baseUrl = config.baseUrl.replace(/\/+$/, "");
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const keyMode = /^(?:sk|rk)_(live|test)_/.exec(config.secretKey)?.[1];

  async function call(
    operation: string,
    method: "GET" | "POST",
    path: string,
    params: FormParams,
    idempotencyKey?: string,
  ): Promise<AcquirerAnswer> {
    const form = new URLSearchParams(params).toString();
    const headers: Record<string, string> = { authorization: `Bearer ${config.secretKey}`, accept: "application/json" };
    let url = `${baseUrl}${path}`;
    let body: string | undefined;
    if (method === "POST") {
      headers["content-type"] = "application/x-www-form-urlencoded";
      if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
      body = form;
    } else if (form) {
      url += `?${form}`;
    }

    let response: HttpResponse;
    try {
      response = await sendHttpRequest({ method, url, headers, body, timeoutMs });
    } catch (error) {
      if (error instanceof HttpTransportError) {
        throw new ChannelUnavailableError("card", `${operation}: ${error.message}`, { cause: error });
      }
      throw error;
    }

    const parsed = parseJsonObject(response.body);
    if (response.status >= 200 && response.status < 300) {
      if (!parsed) throw new ChannelUnavailableError("card", `${operation}: HTTP ${response.status} answer is not a JSON object`);
      return { ok: true, body: parsed };
    }
    const error = decodeError(response.status, parsed);
    // 409 idempotency_key_in_use: our earlier attempt with this key is still running there.
    if (response.status >= 500 || response.status === 429 || (response.status === 409 && error.code === "idempotency_key_in_use")) {
      throw new ChannelUnavailableError("card", `${operation}: acquirer answered ${describeError(error)}`);
    }
    return { ok: false, error };
  }

  const get = (operation: string, path: string, params: FormParams = []) => call(operation, "GET", path, params);
  const post = (operation: string, path: string, params: FormParams, idempotencyKey: string) =>
    call(operation, "POST", path, params, idempotencyKey);

  /** Every object of a list endpoint, following `has_more` / `starting_after`. */
  async function* listAll(operation: string, path: string, params: FormParams): AsyncGenerator<JsonObject> {
    let startingAfter: string | undefined;
    for (;;) {
      const pageParams: FormParams = startingAfter ? [...params, ["starting_after", startingAfter]] : params;
      const answer = await get(operation, path, pageParams);
      if (!answer.ok) throw rejected(operation, answer.error);
      const data = answer.body.data;
      if (!Array.isArray(data)) throw unexpected(operation, "list answer without a data array");
      for (const item of data) if (isObject(item)) yield item;
      if (answer.body.has_more !== true) return;
      const last: unknown = data.at(-1);
      const lastId = isObject(last) ? text(last.id) : undefined;
      if (!lastId) throw unexpected(operation, "has_more without an object id to continue after");
      startingAfter = lastId;
    }
  }

  /**
   * The intent carrying `metadata.payment_no`, found with the search API. Search is eventually
   * consistent (the acquirer documents up to a minute, longer in outages), so a very fresh intent
   * can be missing: callers treat "none" as "not found yet", which the sweeper revisits.
   */
  async function findIntent(operation: string, paymentNo: string): Promise<JsonObject | undefined> {
    const query = `metadata['payment_no']:'${paymentNo.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
    const answer = await get(operation, "/v1/payment_intents/search", [["query", query]]);
    if (!answer.ok) throw rejected(operation, answer.error);
    const data = Array.isArray(answer.body.data) ? answer.body.data.filter(isObject) : [];
    // Two intents for one payment only if a create was retried after the idempotency key expired:
    // the one holding money is the one that matters.
    return data.find((intent) => intent.status === "succeeded") ?? data[0];
  }

  async function intentIdFor(operation: string, trade: ChannelTradeRef): Promise<string | undefined> {
    if (trade.channelTradeNo) return trade.channelTradeNo;
    const intent = await findIntent(operation, trade.paymentNo);
    return intent ? text(intent.id) : undefined;
  }

  function intentStatus(operation: string, intent: JsonObject, paymentNo: string): ChannelTradeStatus {
    const ownNo = text(metadataOf(intent).payment_no);
    if (ownNo !== undefined && ownNo !== paymentNo) {
      throw new ChannelRejectedError("card", "TRADE_MISMATCH", `${operation}: intent belongs to payment ${ownNo}, not ${paymentNo}`);
    }
    const status = text(intent.status) ?? "";
    const paymentError = isObject(intent.last_payment_error) ? intent.last_payment_error : undefined;
    const state = mapCardIntentStatus(status, paymentError !== undefined);
    if (!state) throw unexpected(operation, `unknown payment intent status ${JSON.stringify(status)}`);

    const result: ChannelTradeStatus = { state, detail: status };
    if (state === "failed" && paymentError) result.detail = clean(text(paymentError.message) ?? text(paymentError.code) ?? status);
    if (state === "closed" && text(intent.cancellation_reason)) result.detail = `canceled: ${text(intent.cancellation_reason)}`;
    const id = text(intent.id);
    if (id) result.channelTradeNo = id;
    const amountMinor = integer(intent.amount);
    if (amountMinor !== undefined) result.amountMinor = amountMinor;
    const currency = text(intent.currency);
    if (currency) result.currency = currency.toUpperCase();
    return result;
  }

  function refundStatus(operation: string, refund: JsonObject): ChannelRefundStatus {
    const status = text(refund.status) ?? "";
    const state = mapCardRefundStatus(status);
    if (!state) throw unexpected(operation, `unknown refund status ${JSON.stringify(status)}`);
    const failureReason = text(refund.failure_reason);
    const result: ChannelRefundStatus = { state, detail: failureReason ? `${status}: ${failureReason}` : status };
    const id = text(refund.id);
    if (id) result.channelRefundNo = id;
    return result;
  }

  async function queryPayment(trade: ChannelTradeRef): Promise<ChannelTradeStatus> {
    const operation = "queryPayment";
    if (!trade.channelTradeNo) {
      const intent = await findIntent(operation, trade.paymentNo);
      if (!intent) return { state: "not_found", detail: "no payment intent with this payment_no (yet)" };
      return intentStatus(operation, intent, trade.paymentNo);
    }
    const answer = await get(operation, `/v1/payment_intents/${encodeURIComponent(trade.channelTradeNo)}`);
    if (!answer.ok) {
      if (isMissing(answer.error)) return { state: "not_found", detail: describeError(answer.error) };
      throw rejected(operation, answer.error);
    }
    return intentStatus(operation, answer.body, trade.paymentNo);
  }

  return {
    name: "card",

    async createPayment(request: ChannelCreatePaymentRequest): Promise<ChannelPaymentCreated> {
      const operation = "createPayment";
      // The value is never echoed: a wrong "token" may well be a card number.
      if (!request.paymentMethodToken || !CARD_PAYMENT_METHOD_TOKEN.test(request.paymentMethodToken)) {
        throw new ChannelRejectedError("card", "INVALID_PAYMENT_METHOD", `${operation}: payment method must be an acquirer token (pm_...)`);
      }
      if (request.amountMinor <= 0n) {
        throw new ChannelRejectedError("card", "INVALID_AMOUNT", `${operation}: amount must be positive, got ${request.amountMinor}`);
      }
      if (!/^[A-Za-z]{3}$/.test(request.currency)) {
        const got = JSON.stringify(request.currency);
        throw new ChannelRejectedError("card", "INVALID_CURRENCY", `${operation}: not an ISO 4217 code: ${got}`);
      }
      const answer = await post(
        operation,
        "/v1/payment_intents",
        [
          ["amount", request.amountMinor.toString()],
          ["currency", request.currency.toLowerCase()],
          ["payment_method", request.paymentMethodToken],
          // Cards only: otherwise the acquirer's automatic payment methods demand a return_url on confirm.
          ["payment_method_types[]", "card"],
          ["confirm", "true"],
          ["metadata[payment_no]", request.paymentNo],
          ["description", request.subject],
        ],
        request.idempotencyKey,
      );
      if (!answer.ok) throw rejected(operation, answer.error);
      const intentId = text(answer.body.id);
      const clientSecret = text(answer.body.client_secret);
      if (!intentId || !clientSecret) throw unexpected(operation, "payment intent without id or client_secret");
      // Already succeeded or waiting for 3-D Secure alike: the shopper's client finishes with the secret.
      return { channelTradeNo: intentId, action: { kind: "client_secret", value: clientSecret } };
    },

    queryPayment,

    async closePayment(trade: ChannelTradeRef): Promise<void> {
      const operation = "closePayment";
      const intentId = await intentIdFor(operation, trade);
      if (!intentId) return;
      const answer = await post(operation, `/v1/payment_intents/${encodeURIComponent(intentId)}/cancel`, [], `cancel-${trade.paymentNo}`);
      if (answer.ok) {
        if (answer.body.status === "succeeded") throw new ChannelTradePaidError("card");
        return;
      }
      const { error } = answer;
      if (isMissing(error)) return;
      if (error.code === "payment_intent_unexpected_state") {
        // The error usually carries the intent; ask for it when it does not.
        let status = error.paymentIntent ? text(error.paymentIntent.status) : undefined;
        if (status === undefined) {
          const current = await get(operation, `/v1/payment_intents/${encodeURIComponent(intentId)}`);
          if (current.ok) status = text(current.body.status);
        }
        if (status === "succeeded") throw new ChannelTradePaidError("card");
        if (status === "canceled") return;
      }
      throw rejected(operation, error);
    },

    async refund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const operation = "refund";
      if (request.amountMinor <= 0n) {
        throw new ChannelRejectedError("card", "INVALID_AMOUNT", `${operation}: amount must be positive, got ${request.amountMinor}`);
      }
      const intentId = await intentIdFor(operation, request.trade);
      if (!intentId) {
        const paymentNo = request.trade.paymentNo;
        throw new ChannelRejectedError("card", "TRADE_NOT_FOUND", `${operation}: no payment intent found for payment ${paymentNo}`);
      }
      const params: FormParams = [
        ["payment_intent", intentId],
        ["amount", request.amountMinor.toString()],
        ["metadata[refund_no]", request.refundNo],
        // Lets refund webhooks name the payment without another call.
        ["metadata[payment_no]", request.trade.paymentNo],
      ];
      if (request.reason) {
        // The acquirer's reason is an enum; the merchant's own words travel as metadata.
        const reasonText = Array.from(request.reason).slice(0, METADATA_VALUE_MAX_CHARS).join("");
        params.push(["reason", "requested_by_customer"], ["metadata[reason]", reasonText]);
      }
      const answer = await post(operation, "/v1/refunds", params, `refund-${request.refundNo}`);
      if (!answer.ok) throw rejected(operation, answer.error);
      return refundStatus(operation, answer.body);
    },

    async queryRefund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const operation = "queryRefund";
      // ChannelRefundRequest has no acquirer refund id, so the intent's refunds are listed instead.
      const intentId = await intentIdFor(operation, request.trade);
      if (!intentId) return { state: "not_found", detail: "no payment intent for this payment at the acquirer" };
      for await (const refund of listAll(operation, "/v1/refunds", [
        ["payment_intent", intentId],
        ["limit", LIST_PAGE_SIZE],
      ])) {
        if (metadataOf(refund).refund_no === request.refundNo) return refundStatus(operation, refund);
      }
      return { state: "not_found", detail: "no refund with this refund_no at the acquirer" };
    },

    parseCallback(request: CallbackRequest): ChannelNotification {
      const verdict = verifyCardWebhookSignature(config.webhookSecret, request.rawBody, request.headers["stripe-signature"]);
      if (!verdict.ok) throw new CallbackRejectedError("card", verdict.reason);

      const event = parseEvent(request.rawBody);
      if (!event) throw new CallbackRejectedError("card", "malformed_body");
      // A test-mode event at a live endpoint (or the reverse) is a misrouted webhook.
      if (keyMode && typeof event.livemode === "boolean" && event.livemode !== (keyMode === "live")) {
        throw new CallbackRejectedError("card", "livemode_mismatch");
      }

      const ignored = (why?: string): ChannelNotification => ({
        kind: "ignored",
        notificationId: event.id,
        channelStatus: why ? `${event.type}: ${why}` : event.type,
      });
      const object = event.object;
      switch (event.type) {
        case "payment_intent.succeeded":
        case "payment_intent.payment_failed":
          return paymentNotification(event, object);
        case "refund.created":
        case "refund.updated":
        case "refund.failed":
          return refundNotification(event, object) ?? ignored("refund without our refund_no");
        case "charge.refunded": {
          // The charge lists its refunds newest first, and not at all since API version 2022-11-15
          // (then the refund.* events carry them). The event is about the latest one: pick the
          // newest by `created`; earlier refunds had their own events.
          const refunds = isObject(object.refunds) && Array.isArray(object.refunds.data) ? object.refunds.data.filter(isObject) : [];
          const newest = refunds.reduce<JsonObject | undefined>(
            (best, refund) => (best === undefined || (integer(refund.created) ?? 0n) > (integer(best.created) ?? 0n) ? refund : best),
            undefined,
          );
          if (!newest) return ignored("charge without a refund list");
          return refundNotification(event, newest, text(metadataOf(object).payment_no)) ?? ignored("refund without our refund_no");
        }
        default:
          return ignored();
      }
    },

    acceptAnswer(): CallbackAnswer {
      return { status: 200, contentType: "application/json", body: JSON.stringify({ received: true }) };
    },

    rejectAnswer(reason: string): CallbackAnswer {
      return { status: 400, contentType: "application/json", body: JSON.stringify({ error: reason }) };
    },

    async fetchBill(billDate: string): Promise<BillRecord[]> {
      const operation = "fetchBill";
      const dayStart = utcDayStart(billDate);
      if (dayStart === undefined) {
        const got = JSON.stringify(billDate);
        throw new ChannelRejectedError("card", "INVALID_BILL_DATE", `${operation}: bill date must be yyyy-MM-dd, got ${got}`);
      }
      const records: BillRecord[] = [];
      for await (const transaction of listAll(operation, "/v1/balance_transactions", [
        ["created[gte]", String(dayStart)],
        ["created[lt]", String(dayStart + SECONDS_PER_DAY)],
        ["limit", LIST_PAGE_SIZE],
        // Stripe itself puts no metadata on balance transactions; the expanded source (charge or
        // refund) carries it. Our acquirer copies the intent's/refund's metadata onto the balance
        // transaction as `metadata`, which is read first.
        ["expand[]", "data.source"],
      ])) {
        const record = billRecord(transaction);
        if (record) records.push(record);
      }
      return records;
    },
  };
}

/** The fields of an event this adapter reads; `object` is `data.object`. */
interface CardEvent {
  id: string;
  type: string;
  /** Unix seconds. */
  created: number;
  livemode?: unknown;
  object: JsonObject;
}

function parseEvent(rawBody: Buffer): CardEvent | undefined {
  const event = parseJsonObject(rawBody);
  if (!event) return undefined;
  const id = text(event.id);
  const type = text(event.type);
  const created = event.created;
  const object = isObject(event.data) ? event.data.object : undefined;
  if (!id || !type || typeof created !== "number" || !Number.isSafeInteger(created) || !isObject(object)) return undefined;
  return { id, type, created, livemode: event.livemode, object };
}

function paymentNotification(event: CardEvent, intent: JsonObject): PaymentNotification {
  const paymentNo = text(metadataOf(intent).payment_no);
  if (!paymentNo) throw new CallbackRejectedError("card", "missing_payment_no");
  const amountMinor = integer(intent.amount);
  if (amountMinor === undefined || amountMinor < 0n) throw new CallbackRejectedError("card", "bad_amount");
  const currency = text(intent.currency);
  if (!currency) throw new CallbackRejectedError("card", "missing_currency");

  const succeeded = event.type === "payment_intent.succeeded";
  const notification: PaymentNotification = {
    kind: "payment",
    notificationId: event.id,
    paymentNo,
    state: succeeded ? "succeeded" : "failed",
    amountMinor,
    currency: currency.toUpperCase(),
    channelStatus: event.type,
  };
  const id = text(intent.id);
  if (id) notification.channelTradeNo = id;
  if (succeeded) notification.paidAt = new Date(event.created * 1000);
  // channelStatus becomes the payment's status reason: carry the decline text there.
  const paymentError = isObject(intent.last_payment_error) ? intent.last_payment_error : undefined;
  const failure = paymentError ? (text(paymentError.message) ?? text(paymentError.code)) : undefined;
  if (!succeeded && failure) notification.channelStatus = `${event.type}: ${clean(failure)}`;
  return notification;
}

/** Undefined when the refund is not one of ours (made elsewhere, without our metadata). */
function refundNotification(event: CardEvent, refund: JsonObject, fallbackPaymentNo?: string): RefundNotification | undefined {
  const metadata = metadataOf(refund);
  const refundNo = text(metadata.refund_no);
  const paymentNo = text(metadata.payment_no) ?? fallbackPaymentNo;
  if (!refundNo || !paymentNo) return undefined;
  const status = text(refund.status) ?? "";
  const state = mapCardRefundStatus(status);
  if (!state) throw new CallbackRejectedError("card", "unknown_refund_status");
  const amountMinor = integer(refund.amount);
  if (amountMinor === undefined || amountMinor < 0n) throw new CallbackRejectedError("card", "bad_amount");
  // channelStatus becomes the refund's failure reason: carry the acquirer's, as a query does.
  const failureReason = state === "failed" ? text(refund.failure_reason) : undefined;
  const notification: RefundNotification = {
    kind: "refund",
    notificationId: event.id,
    paymentNo,
    refundNo,
    state,
    amountMinor,
    channelStatus: failureReason ? `${event.type}:${status}: ${clean(failureReason)}` : `${event.type}:${status}`,
  };
  const id = text(refund.id);
  if (id) notification.channelRefundNo = id;
  return notification;
}

/** A balance transaction → a bill row; undefined for other movements (payouts, fees) and rows not ours. */
function billRecord(transaction: JsonObject): BillRecord | undefined {
  const type = text(transaction.type);
  const kind = type === "charge" || type === "payment" ? "payment" : type === "refund" || type === "payment_refund" ? "refund" : undefined;
  if (!kind) return undefined;

  const source = isObject(transaction.source) ? transaction.source : undefined;
  const metadata = isObject(transaction.metadata) ? transaction.metadata : source ? metadataOf(source) : {};
  const paymentNo = text(metadata.payment_no);
  const amount = integer(transaction.amount);
  const fee = integer(transaction.fee) ?? 0n;
  const currency = text(transaction.currency);
  const created = transaction.created;
  if (!paymentNo || amount === undefined || !currency || typeof created !== "number") return undefined;

  // Amounts are magnitudes, as in the other channels' bills: the acquirer books refunds negative.
  const record: BillRecord = {
    kind,
    paymentNo,
    amountMinor: amount < 0n ? -amount : amount,
    feeMinor: fee < 0n ? -fee : fee,
    currency: currency.toUpperCase(),
    occurredAt: new Date(created * 1000),
  };
  // An expanded charge or refund names its intent; an unexpanded source may be the intent itself.
  const sourceId = typeof transaction.source === "string" ? transaction.source : undefined;
  const intentId = source ? text(source.payment_intent) : sourceId?.startsWith("pi_") ? sourceId : undefined;
  if (intentId) record.channelTradeNo = intentId;
  const refundNo = text(metadata.refund_no);
  if (kind === "refund" && refundNo) record.refundNo = refundNo;
  return record;
}

/** Unix seconds at 00:00 UTC of a `yyyy-MM-dd` date; undefined unless it is a real calendar date. */
function utcDayStart(billDate: string): number | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(billDate);
  if (!match) return undefined;
  const [, year, month, day] = match.map(Number) as [number, number, number, number];
  const start = new Date(Date.UTC(year, month - 1, day));
  if (start.getUTCFullYear() !== year || start.getUTCMonth() !== month - 1 || start.getUTCDate() !== day) return undefined;
  return start.getTime() / 1000;
}

function parseJsonObject(body: Buffer): JsonObject | undefined {
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function decodeError(status: number, body: JsonObject | undefined): AcquirerError {
  const error: AcquirerError = { status };
  const detail = body && isObject(body.error) ? body.error : undefined;
  if (!detail) return error;
  const type = text(detail.type);
  const code = text(detail.code);
  const message = text(detail.message);
  if (type) error.type = type;
  if (code) error.code = code;
  if (message) error.message = clean(message);
  if (isObject(detail.payment_intent)) error.paymentIntent = detail.payment_intent;
  return error;
}

function describeError(error: AcquirerError): string {
  const code = error.code ?? error.type;
  return `HTTP ${error.status}${code ? ` ${code}` : ""}${error.message ? `: ${error.message}` : ""}`;
}

/** Only `resource_missing` means "no such object": a bare 404 may be a wrong base URL. */
function isMissing(error: AcquirerError): boolean {
  return error.status === 404 && error.code === "resource_missing";
}

function rejected(operation: string, error: AcquirerError): ChannelRejectedError {
  return new ChannelRejectedError("card", error.code ?? error.type ?? `HTTP_${error.status}`, `${operation}: ${describeError(error)}`);
}

function unexpected(operation: string, what: string): ChannelAnswerUntrustedError {
  return new ChannelAnswerUntrustedError("card", "UNEXPECTED_RESPONSE", `${operation}: ${what}`);
}

/**
 * Text from the acquirer, made safe to keep in errors and status reasons: key-like strings and
 * card-number-like digit runs are masked (a misbehaving peer could echo them), length is capped.
 */
function clean(message: string): string {
  return message
    .replace(/\b(sk|rk|whsec)_[A-Za-z0-9_]+/g, "$1_[redacted]")
    .replace(/_secret_[A-Za-z0-9]+/g, "_secret_[redacted]")
    .replace(/\d(?:[ -]?\d){12,18}/g, "[digits redacted]")
    .slice(0, 300);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** JSON integers within 2^53 convert exactly; anything else (fractions, huge values) is refused. */
function integer(value: unknown): bigint | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : undefined;
}

function metadataOf(object: JsonObject): JsonObject {
  return isObject(object.metadata) ? object.metadata : {};
}
