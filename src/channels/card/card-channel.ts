/**
 * Card acquirer adapter, speaking Stripe's public API: PaymentIntents confirmed server-side with
 * the acquirer's payment-method token, or created without one for the shopper's browser to
 * confirm with the client secret, query (by id, or by metadata search), cancel, refunds,
 * signed webhooks and the daily bill from balance transactions. Card numbers never reach this
 * code, only `pm_...` tokens; nothing here logs, and error texts carry no secrets or card data.
 */
import { billFileOf, createBillTempFile, openCallerBillFile } from "../bill-file.js";
import {
  type BillFile,
  type CallbackAnswer,
  CallbackRejectedError,
  type CallbackRequest,
  type ChannelCreatePaymentRequest,
  type ChannelNotification,
  type ChannelPaymentCreated,
  type ChannelRefundRequest,
  type ChannelRefundStatus,
  type ChannelTradeRef,
  type ChannelTradeStatus,
  ChannelTradePaidError,
  type PaymentChannel,
  type PaymentNotification,
  type RefundNotification,
} from "../channel.js";
import { type ChannelCallName, type ChannelOperation, createChannelCaller } from "../channel-call.js";
import { isWireObject, parseWireObject, safeIntegerOf, textOf, type WireObject } from "../wire-fields.js";
import {
  type CardIntent,
  type CardRefund,
  clean,
  createCardProtocol,
  isMissing,
  mapCardRefundStatus,
  readCreatedIntent,
  readIntent,
  readIntentSearch,
  readListPage,
  readRefund,
} from "./card-wire.js";
import { createCardPayouts, payoutNotificationOf } from "./card-payouts.js";
import { CardBillWriter, readCardBill, utcDayStart } from "./card-bill.js";
import { verifyCardWebhookSignature } from "./card-webhook-signature.js";

export { mapCardIntentStatus, mapCardRefundStatus } from "./card-wire.js";
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
/** The acquirer's expected acknowledgement of a webhook. */
const RECEIVED = JSON.stringify({ received: true });

type JsonObject = WireObject;

/** Form parameters in wire order, nested ones already flattened (`metadata[payment_no]`). */
type FormParams = Array<[string, string]>;

/** The acquirer's API methods, named as in its API reference. */
const WIRE = Object.freeze({
  createIntent: "payment_intents.create",
  retrieveIntent: "payment_intents.retrieve",
  searchIntents: "payment_intents.search",
  cancelIntent: "payment_intents.cancel",
  createRefund: "refunds.create",
  listRefunds: "refunds.list",
  listBalanceTransactions: "balance_transactions.list",
});

/** Creates the card {@link PaymentChannel}. */
export function createCardChannel(config: CardChannelConfig): PaymentChannel {
  // An empty HMAC key is a key everybody knows: refuse to start rather than accept forged events.
  if (!config.webhookSecret) throw new Error("card channel: webhookSecret is empty");
  if (!config.secretKey) throw new Error("card channel: secretKey is empty");
  const baseUrl = config.baseUrl.replace(/\/+$/, "");
  const keyMode = /^(?:sk|rk)_(live|test)_/.exec(config.secretKey)?.[1];
  const api = createChannelCaller(createCardProtocol(config.timeoutMs ?? DEFAULT_TIMEOUT_MS));

  /** A form request with the secret key; POSTs carry the Idempotency-Key that makes retries safe. */
  function request(method: "GET" | "POST", path: string, params: FormParams, idempotencyKey?: string) {
    const form = new URLSearchParams(params).toString();
    const headers: Record<string, string> = { authorization: `Bearer ${config.secretKey}`, accept: "application/json" };
    if (method === "GET") return { method, url: form ? `${baseUrl}${path}?${form}` : `${baseUrl}${path}`, headers };
    headers["content-type"] = "application/x-www-form-urlencoded";
    if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
    return { method, url: `${baseUrl}${path}`, headers, body: form };
  }

  const intentPath = (intentId: string) => `/v1/payment_intents/${encodeURIComponent(intentId)}`;

  /** Every object of a list endpoint, following `has_more` / `starting_after`. */
  async function* listAll(name: ChannelCallName, path: string, params: FormParams): AsyncGenerator<JsonObject> {
    let startingAfter: string | undefined;
    for (;;) {
      const pageParams: FormParams = startingAfter ? [...params, ["starting_after", startingAfter]] : params;
      const page = await api.callOrReject({ ...name, request: request("GET", path, pageParams), decode: readListPage });
      yield* page.items;
      if (!page.nextAfter) return;
      startingAfter = page.nextAfter;
    }
  }

  /**
   * The intent carrying `metadata.payment_no`, found with the search API. Search is eventually
   * consistent (the acquirer documents up to a minute, longer in outages), so a very fresh intent
   * can be missing: callers treat "none" as "not found yet", which the sweeper revisits.
   */
  async function findIntent(operation: ChannelOperation, paymentNo: string): Promise<CardIntent | undefined> {
    const query = `metadata['payment_no']:'${paymentNo.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
    const intents = await api.callOrReject({
      operation,
      wireMethod: WIRE.searchIntents,
      request: request("GET", "/v1/payment_intents/search", [["query", query]]),
      decode: readIntentSearch,
    });
    // Two intents for one payment only if a create was retried after the idempotency key expired:
    // the one holding money is the one that matters.
    return intents.find((intent) => intent.state === "succeeded") ?? intents[0];
  }

  async function intentIdFor(operation: ChannelOperation, trade: ChannelTradeRef): Promise<string | undefined> {
    if (trade.channelTradeNo) return trade.channelTradeNo;
    return (await findIntent(operation, trade.paymentNo))?.id;
  }

  function intentStatus(name: ChannelCallName, intent: CardIntent, paymentNo: string): ChannelTradeStatus {
    if (intent.paymentNo !== undefined && intent.paymentNo !== paymentNo) {
      throw api.rejected(name, { code: "TRADE_MISMATCH", message: `intent belongs to payment ${intent.paymentNo}, not ${paymentNo}` });
    }
    const result: ChannelTradeStatus = { state: intent.state, detail: intent.status };
    if (intent.state === "failed" && intent.paymentError) result.detail = clean(intent.paymentError);
    if (intent.state === "closed" && intent.cancellationReason) result.detail = `canceled: ${intent.cancellationReason}`;
    if (intent.id) result.channelTradeNo = intent.id;
    if (intent.amountMinor !== undefined) result.amountMinor = intent.amountMinor;
    if (intent.currency) result.currency = intent.currency;
    return result;
  }

  function refundStatus(refund: CardRefund): ChannelRefundStatus {
    const result: ChannelRefundStatus = { state: refund.state, detail: refund.failureReason ? `${refund.status}: ${refund.failureReason}` : refund.status };
    if (refund.id) result.channelRefundNo = refund.id;
    return result;
  }

  async function queryPayment(trade: ChannelTradeRef): Promise<ChannelTradeStatus> {
    if (!trade.channelTradeNo) {
      const intent = await findIntent("queryPayment", trade.paymentNo);
      if (!intent) return { state: "not_found", detail: "no payment intent with this payment_no (yet)" };
      return intentStatus({ operation: "queryPayment", wireMethod: WIRE.searchIntents }, intent, trade.paymentNo);
    }
    const name = { operation: "queryPayment", wireMethod: WIRE.retrieveIntent } as const;
    const outcome = await api.call({ ...name, request: request("GET", intentPath(trade.channelTradeNo), []), decode: readIntent });
    if (!outcome.ok) {
      if (isMissing(outcome.failure)) return { state: "not_found", detail: outcome.failure.message };
      throw api.rejected(name, outcome.failure);
    }
    return intentStatus(name, outcome.value, trade.paymentNo);
  }

  return {
    name: "card",

    payouts: createCardPayouts({ api, request }),

    async createPayment(request_: ChannelCreatePaymentRequest): Promise<ChannelPaymentCreated> {
      const name = { operation: "createPayment", wireMethod: WIRE.createIntent } as const;
      // No token: the client-confirmed flow, where the shopper's browser confirms with the client secret.
      const token = request_.paymentMethodToken || undefined;
      // The value is never echoed: a wrong "token" may well be a card number.
      if (token !== undefined && !CARD_PAYMENT_METHOD_TOKEN.test(token)) {
        throw api.rejected(name, { code: "INVALID_PAYMENT_METHOD", message: "payment method must be an acquirer token (pm_...)" });
      }
      if (request_.amountMinor <= 0n) {
        throw api.rejected(name, { code: "INVALID_AMOUNT", message: `amount must be positive, got ${request_.amountMinor}` });
      }
      if (!/^[A-Za-z]{3}$/.test(request_.currency)) {
        throw api.rejected(name, { code: "INVALID_CURRENCY", message: `not an ISO 4217 code: ${JSON.stringify(request_.currency)}` });
      }
      const params: FormParams = [
        ["amount", request_.amountMinor.toString()],
        ["currency", request_.currency.toLowerCase()],
        ...(token === undefined ? [] : ([["payment_method", token]] as FormParams)),
        // Cards only: otherwise the acquirer's automatic payment methods demand a return_url on confirm.
        ["payment_method_types[]", "card"],
        ...(token === undefined ? [] : ([["confirm", "true"]] as FormParams)),
        ["metadata[payment_no]", request_.paymentNo],
        ["description", request_.subject],
      ];
      const intent = await api.callOrReject({
        ...name,
        request: request("POST", "/v1/payment_intents", params, request_.idempotencyKey),
        decode: readCreatedIntent,
      });
      // Already succeeded or waiting for 3-D Secure alike: the shopper's client finishes with the secret.
      return { channelTradeNo: intent.id, action: { kind: "client_secret", value: intent.clientSecret } };
    },

    queryPayment,

    async closePayment(trade: ChannelTradeRef): Promise<void> {
      const name = { operation: "closePayment", wireMethod: WIRE.cancelIntent } as const;
      const intentId = await intentIdFor(name.operation, trade);
      if (!intentId) return;
      const cancel = request("POST", `${intentPath(intentId)}/cancel`, [], `cancel-${trade.paymentNo}`);
      const outcome = await api.call({ ...name, request: cancel, decode: readIntent });
      if (outcome.ok) {
        if (outcome.value.state === "succeeded") throw new ChannelTradePaidError("card");
        return;
      }
      const { failure } = outcome;
      if (isMissing(failure)) return;
      if (failure.errorCode === "payment_intent_unexpected_state") {
        // The error usually carries the intent; ask for it when it does not.
        let status = textOf(failure.paymentIntent?.status);
        if (status === undefined) {
          const retrieve = { operation: name.operation, wireMethod: WIRE.retrieveIntent, request: request("GET", intentPath(intentId), []) };
          const current = await api.call({ ...retrieve, decode: readIntent });
          if (current.ok) status = current.value.status;
        }
        if (status === "succeeded") throw new ChannelTradePaidError("card");
        if (status === "canceled") return;
      }
      throw api.rejected(name, failure);
    },

    async refund(refund: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const name = { operation: "refund", wireMethod: WIRE.createRefund } as const;
      if (refund.amountMinor <= 0n) {
        throw api.rejected(name, { code: "INVALID_AMOUNT", message: `amount must be positive, got ${refund.amountMinor}` });
      }
      const intentId = await intentIdFor(name.operation, refund.trade);
      if (!intentId) {
        throw api.rejected(name, { code: "TRADE_NOT_FOUND", message: `no payment intent found for payment ${refund.trade.paymentNo}` });
      }
      const params: FormParams = [
        ["payment_intent", intentId],
        ["amount", refund.amountMinor.toString()],
        ["metadata[refund_no]", refund.refundNo],
        // Lets refund webhooks name the payment without another call.
        ["metadata[payment_no]", refund.trade.paymentNo],
      ];
      if (refund.reason) {
        // The acquirer's reason is an enum; the merchant's own words travel as metadata.
        const reasonText = Array.from(refund.reason).slice(0, METADATA_VALUE_MAX_CHARS).join("");
        params.push(["reason", "requested_by_customer"], ["metadata[reason]", reasonText]);
      }
      const created = await api.callOrReject({ ...name, request: request("POST", "/v1/refunds", params, `refund-${refund.refundNo}`), decode: readRefund });
      return refundStatus(created);
    },

    async queryRefund(refund: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const name = { operation: "queryRefund", wireMethod: WIRE.listRefunds } as const;
      // ChannelRefundRequest has no acquirer refund id, so the intent's refunds are listed instead.
      const intentId = await intentIdFor(name.operation, refund.trade);
      if (!intentId) return { state: "not_found", detail: "no payment intent for this payment at the acquirer" };
      for await (const item of listAll(name, "/v1/refunds", [
        ["payment_intent", intentId],
        ["limit", LIST_PAGE_SIZE],
      ])) {
        const candidate = api.decode(name, item, readRefund);
        if (candidate.refundNo === refund.refundNo) return refundStatus(candidate);
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
          const refunds = isWireObject(object.refunds) && Array.isArray(object.refunds.data) ? object.refunds.data.filter(isWireObject) : [];
          const newest = refunds.reduce<JsonObject | undefined>(
            (best, refund) => (best === undefined || (safeIntegerOf(refund.created) ?? 0n) > (safeIntegerOf(best.created) ?? 0n) ? refund : best),
            undefined,
          );
          if (!newest) return ignored("charge without a refund list");
          return refundNotification(event, newest, textOf(metadataOf(object).payment_no)) ?? ignored("refund without our refund_no");
        }
        case "payout.paid":
        case "payout.failed":
          return payoutNotificationOf({ id: event.id, type: event.type }, object) ?? ignored("payout without our payout_no");
        default:
          // payout.created/updated are no outcome; payout.canceled only follows a cancel, which we never send.
          return ignored();
      }
    },

    acceptAnswer(): CallbackAnswer {
      return { status: 200, contentType: "application/json", body: RECEIVED };
    },

    rejectAnswer(reason: string): CallbackAnswer {
      return { status: 400, contentType: "application/json", body: JSON.stringify({ error: reason }) };
    },

    async fetchBill(billDate: string): Promise<BillFile> {
      const name = { operation: "fetchBill", wireMethod: WIRE.listBalanceTransactions } as const;
      const dayStart = utcDayStart(billDate);
      if (dayStart === undefined) {
        throw api.rejected(name, { code: "INVALID_BILL_DATE", message: `bill date must be yyyy-MM-dd, got ${JSON.stringify(billDate)}` });
      }
      // The list, page by page, into a JSON-lines file (card-bill.ts), read back like the other channels' files.
      const temp = await createBillTempFile("card", `card-${billDate}.jsonl`);
      const writer = new CardBillWriter(temp.path);
      try {
        let startingAfter: string | undefined;
        for (;;) {
          const params: FormParams = [
            ["created[gte]", String(dayStart)],
            ["created[lt]", String(dayStart + SECONDS_PER_DAY)],
            ["limit", LIST_PAGE_SIZE],
            // Stripe itself puts no metadata on balance transactions; the expanded source (charge or
            // refund) carries it. Our acquirer copies the intent's/refund's metadata onto the balance
            // transaction as `metadata`, which is read first.
            ["expand[]", "data.source"],
          ];
          if (startingAfter) params.push(["starting_after", startingAfter]);
          const page = await api.callOrReject({ ...name, request: request("GET", "/v1/balance_transactions", params), decode: readListPage });
          for (const item of page.items) await writer.write(item);
          if (!page.nextAfter) break;
          startingAfter = page.nextAfter;
        }
        await writer.close();
        return billFileOf({ channel: "card", billDate, path: temp.path, read: (path) => readCardBill(path, billDate), remove: temp.remove });
      } catch (error) {
        writer.destroy();
        await temp.remove();
        throw error;
      }
    },

    openBillFile(path: string, billDate: string, options?: { sha1?: string }): Promise<BillFile> {
      return openCallerBillFile("card", path, billDate, options, (file) => readCardBill(file, billDate));
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
  const event = parseWireObject(rawBody);
  if (!event) return undefined;
  const id = textOf(event.id);
  const type = textOf(event.type);
  const created = event.created;
  const object = isWireObject(event.data) ? event.data.object : undefined;
  if (!id || !type || typeof created !== "number" || !Number.isSafeInteger(created) || !isWireObject(object)) return undefined;
  return { id, type, created, livemode: event.livemode, object };
}

function paymentNotification(event: CardEvent, intent: JsonObject): PaymentNotification {
  const paymentNo = textOf(metadataOf(intent).payment_no);
  if (!paymentNo) throw new CallbackRejectedError("card", "missing_payment_no");
  const amountMinor = safeIntegerOf(intent.amount);
  if (amountMinor === undefined || amountMinor < 0n) throw new CallbackRejectedError("card", "bad_amount");
  const currency = textOf(intent.currency);
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
  const id = textOf(intent.id);
  if (id) notification.channelTradeNo = id;
  if (succeeded) notification.paidAt = new Date(event.created * 1000);
  // channelStatus becomes the payment's status reason: carry the decline text there.
  const paymentError = isWireObject(intent.last_payment_error) ? intent.last_payment_error : undefined;
  const failure = paymentError ? (textOf(paymentError.message) ?? textOf(paymentError.code)) : undefined;
  if (!succeeded && failure) notification.channelStatus = `${event.type}: ${clean(failure)}`;
  return notification;
}

/** Undefined when the refund is not one of ours (made elsewhere, without our metadata). */
function refundNotification(event: CardEvent, refund: JsonObject, fallbackPaymentNo?: string): RefundNotification | undefined {
  const metadata = metadataOf(refund);
  const refundNo = textOf(metadata.refund_no);
  const paymentNo = textOf(metadata.payment_no) ?? fallbackPaymentNo;
  if (!refundNo || !paymentNo) return undefined;
  const status = textOf(refund.status) ?? "";
  const state = mapCardRefundStatus(status);
  if (!state) throw new CallbackRejectedError("card", "unknown_refund_status");
  const amountMinor = safeIntegerOf(refund.amount);
  if (amountMinor === undefined || amountMinor < 0n) throw new CallbackRejectedError("card", "bad_amount");
  // channelStatus becomes the refund's failure reason: carry the acquirer's, as a query does.
  const failureReason = state === "failed" ? textOf(refund.failure_reason) : undefined;
  const notification: RefundNotification = {
    kind: "refund",
    notificationId: event.id,
    paymentNo,
    refundNo,
    state,
    amountMinor,
    channelStatus: failureReason ? `${event.type}:${status}: ${clean(failureReason)}` : `${event.type}:${status}`,
  };
  const id = textOf(refund.id);
  if (id) notification.channelRefundNo = id;
  return notification;
}

function metadataOf(object: JsonObject): JsonObject {
  return isWireObject(object.metadata) ? object.metadata : {};
}
