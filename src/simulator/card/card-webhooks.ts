/**
 * Webhook endpoints (`POST/GET /v1/webhook_endpoints`, `DELETE /v1/webhook_endpoints/{id}`) and
 * event delivery. Events `{id:"evt_...", object:"event", type, created, data:{object}}` go to every
 * endpoint subscribed to the type, signed `Stripe-Signature: t=<now>,v1=<hmac>` afresh for every
 * delivery; the event id and body stay the same across re-sends. Any 2xx acknowledges; otherwise
 * re-sent after 1m, 5m, 30m, 2h, 5h, 10h, 10h, 12h, 12h, 12h (× the time scale), about 2.6 days.
 * Faults: `badSignature` signs with another secret; `alterAmount` changes `data.object.amount`
 * after the fact, correctly signed.
 */
import { signCardWebhook } from "../../channels/card/card-webhook-signature.js";
import type { SimTrade } from "../trade-store.js";
import { API_VERSION, type CardBook, unixNow, type WebhookEndpoint } from "./card-book.js";
import { invalidRequest, type Json, missingParam, noSuch } from "./card-errors.js";
import { jsonAmount } from "./card-json.js";
import { listPage, metadataParam, onlyParams, type Params } from "./card-params.js";

/** Gaps before each webhook re-send, in real milliseconds: about 2.6 days in all. */
const WEBHOOK_RETRY_GAPS_MS: readonly number[] = [1, 5, 30, 120, 300, 600, 600, 720, 720, 720].map((minutes) => minutes * 60_000);

/** Endpoints an account may register; beyond it a create is refused, as Stripe does (its limit is 16). */
export const MAX_WEBHOOK_ENDPOINTS = 100;

/** The event types the simulator sends. */
export type CardEventType =
  | "payment_intent.succeeded"
  | "payment_intent.payment_failed"
  | "refund.created"
  | "refund.updated"
  | "payout.created"
  | "payout.paid"
  | "payout.failed";

/**
 * Sends one event to every endpoint subscribed to its type, `copies` times each (the same event,
 * one delivery after the other); resolves after the first attempts.
 */
export function emitEvent(book: CardBook, trade: SimTrade, type: CardEventType, object: Json, previousAttributes?: Json, copies = 1): Promise<void> {
  const endpoints = [...book.webhookEndpoints.values()].filter(
    (endpoint) => endpoint.enabledEvents.includes("*") || endpoint.enabledEvents.includes(type),
  );
  if (endpoints.length === 0) return Promise.resolve();
  const event: Json = {
    id: book.newId("evt"),
    object: "event",
    api_version: API_VERSION,
    created: unixNow(),
    data: previousAttributes ? { object, previous_attributes: previousAttributes } : { object },
    livemode: false,
    pending_webhooks: endpoints.length,
    request: { id: null, idempotency_key: null },
    type,
  };
  // A secret the endpoint does not know, for the badSignature fault.
  const wrongSecret = `${book.keys.webhookSecret}_not_this_one`;
  let body: string | undefined;
  const deliveries = endpoints.flatMap((endpoint) => Array.from({ length: copies }, () => endpoint)).map((endpoint) =>
    book.context.notifier.enqueue(trade, {
      id: event.id as string,
      kind: type,
      url: endpoint.url,
      retryGapsMs: WEBHOOK_RETRY_GAPS_MS,
      build: () => {
        const faults = book.context.faults.resolve("card", trade.outTradeNo);
        const delta = faults.alterAmount === true ? 1n : typeof faults.alterAmount === "number" ? BigInt(faults.alterAmount) : 0n;
        body ??= JSON.stringify(event);
        const payload = delta === 0n ? body : JSON.stringify(withAmountChanged(event, object, delta));
        const signature = signCardWebhook(faults.badSignature ? wrongSecret : book.keys.webhookSecret, payload, unixNow());
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

function webhookEndpointJson(book: CardBook, endpoint: WebhookEndpoint, withSecret: boolean): Json {
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
  if (withSecret) json.secret = book.keys.webhookSecret;
  return json;
}

/** `POST /v1/webhook_endpoints`: the answer (only this one) carries the signing secret. */
export function createWebhookEndpoint(book: CardBook, params: Params): Json {
  onlyParams(params, new Set(["url", "enabled_events", "description", "metadata", "api_version", "connect", "expand"]));
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
  if (book.webhookEndpoints.size >= MAX_WEBHOOK_ENDPOINTS) {
    throw invalidRequest(`You have reached the maximum of ${MAX_WEBHOOK_ENDPOINTS} test webhook endpoints.`, { param: "url" });
  }
  const endpoint: WebhookEndpoint = {
    id: book.newId("we"),
    url,
    enabledEvents,
    description: params.values.get("description") || null,
    metadata: metadataParam(params),
    created: unixNow(),
  };
  book.webhookEndpoints.set(endpoint.id, endpoint);
  return webhookEndpointJson(book, endpoint, true);
}

/** `GET /v1/webhook_endpoints`, newest first. */
export function listWebhookEndpoints(book: CardBook, params: Params): Json {
  const endpoints = [...book.webhookEndpoints.values()].reverse();
  return listPage(params, "/v1/webhook_endpoints", endpoints, (endpoint) => endpoint.id, (endpoint) => webhookEndpointJson(book, endpoint, false));
}

/** `DELETE /v1/webhook_endpoints/{id}`. */
export function deleteWebhookEndpoint(book: CardBook, id: string): Json {
  if (!book.webhookEndpoints.delete(id)) throw noSuch("webhook endpoint", id, "id");
  return { id, object: "webhook_endpoint", deleted: true };
}
