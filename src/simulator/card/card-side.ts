/**
 * The card acquirer's side of the simulator, speaking Stripe's public API: served under `/card` on
 * the shared listener (the adapter's base URL is `${simulator.url}/card`) and at the root of its own
 * listener (`simulator.channelUrls.card`), where the official `stripe` client works unchanged
 * (`new Stripe(key, { host: "127.0.0.1", port, protocol: "http" })`). Form-encoded requests with
 * nested `metadata[...]`, JSON answers, `{"error":{type, code, message}}` errors (an unknown path
 * too), signed webhooks.
 *
 * Authentication: the secret key as `Authorization: Bearer` (or Basic with the key as user name);
 * the publishable key ({@link cardPublishableKey}) only for the browser's calls, retrieve and
 * confirm of one intent with its `client_secret`; anything else is 401. Every secret-key POST
 * needs an `Idempotency-Key` here (Stripe makes it optional; the official client always sends one).
 *
 * Modules: `card-params` (request parsing), `card-idempotency`, `card-intents` (the payment model),
 * `card-refunds`, `card-payouts`, `card-bill` (balance transactions), `card-webhooks`, `card-routes` (the route
 * table with each endpoint's fault operation name), `card-book` (the state), `card-json` (wire objects).
 *
 * Faults: `apiError`/`apiTimeout` by the routes' operation names, before anything else, so a
 * timeout with `apply` carries the call out, stores its idempotent answer, then goes silent;
 * `notifyBeforeCreateReturns` settles the intent and delivers its event before a create with
 * `confirm=true` answers; `paidAfterClose` answers a cancel with a canceled intent, then the payment
 * succeeds anyway; `badSignature`, `alterAmount` (webhooks); `refundDelayMs`/`refundFails`
 * (refunds); `payoutDelayMs`/`payoutFails`/`duplicatePayoutWebhooks` (payouts, scoped by our payout
 * number); `dropNotifies`, `duplicateNotifies`, `outOfOrder`, `notifyDelayMs` by the notifier;
 * `badResponseSignature` does not apply (the API answers over TLS, unsigned).
 *
 * Approximations: Stripe's per-currency minimum charge is not enforced (any amount from 1 to
 * 99,999,999 minor units); search is consistent at once; the control API's trade key is our payment
 * number, `metadata[payment_no]` (an intent without one is keyed by its own id), and the simulator
 * keeps one intent per payment number.
 */
import type { DevChannelKeys } from "../../channels/dev-keys.js";
import { type ChannelSimulator, HOLD_OPEN, type SimulatorContext, type SimulatorRequest, type SimulatorResponse } from "../channel-side.js";
import { SimulatorControlError } from "../trade-store.js";
import { createCardAuthenticator, secretKeyRequired } from "./card-auth.js";
import { API_VERSION, CardBook } from "./card-book.js";
import { invalidRequest, StripeError, unrecognizedUrl } from "./card-errors.js";
import { IdempotencyStore } from "./card-idempotency.js";
import { payIntent } from "./card-intents.js";
import { intentStatus } from "./card-json.js";
import { type Params, parseParams } from "./card-params.js";
import { matchCardRoute } from "./card-routes.js";

export { cardPublishableKey } from "./card-auth.js";

/** Creates the card acquirer side of the simulator. */
export function createCardSimulator(context: SimulatorContext, allKeys: DevChannelKeys): ChannelSimulator {
  const book = new CardBook(context, allKeys.card);
  const authenticate = createCardAuthenticator(allKeys.card.secretKey);
  const idempotency = new IdempotencyStore();
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

  async function handle(request: SimulatorRequest): Promise<SimulatorResponse | typeof HOLD_OPEN> {
    const requestId = `req_${book.stem}${(++requestSequence).toString(36)}`;
    const fail = (error: StripeError) => answer(error.status, JSON.stringify({ error: error.detail }), requestId);
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

    const matched = matchCardRoute(request.method, request.path);
    const target = matched ? { book, params, id: matched.id } : undefined;
    const fault = matched ? context.faults.takeApiFault("card", matched.route.operation, matched.route.outTradeNo?.(target!)) : undefined;
    if (fault?.kind === "error") {
      return answer(fault.status, JSON.stringify({ error: { type: "api_error", message: "An unknown error occurred (simulated)." } }), requestId);
    }
    if (fault?.kind === "timeout" && !fault.apply) return HOLD_OPEN;

    const caller = authenticate(request.headers.authorization);
    if (caller instanceof StripeError) return fail(caller);
    if (!matched) return fail(unrecognizedUrl(request.method, request.path));
    if (caller === "publishable" && !matched.route.publishable) return fail(secretKeyRequired());

    const header = request.headers["idempotency-key"];
    const idempotencyKey = isPost ? (Array.isArray(header) ? header[0] : header) || undefined : undefined;
    if (isPost && !idempotencyKey && caller === "secret") {
      return fail(invalidRequest("simulator: this acquirer requires an Idempotency-Key header on every POST (Stripe makes it optional)"));
    }
    if (idempotencyKey) {
      try {
        const decision = idempotency.begin(idempotencyKey, `${request.path}\n${params.canonical()}`);
        if (decision.kind === "replay") {
          if (fault?.kind === "timeout") return HOLD_OPEN;
          return answer(decision.answer.status, decision.answer.body, requestId, decision.answer.requestId);
        }
      } catch (error) {
        if (error instanceof StripeError) return fail(error);
        throw error;
      }
    }

    let response: SimulatorResponse;
    try {
      response = answer(200, JSON.stringify(await matched.route.run({ ...target!, caller })), requestId);
      if (idempotencyKey) idempotency.finish(idempotencyKey, { status: response.status, body: response.body as string, requestId });
    } catch (error) {
      if (!(error instanceof StripeError)) {
        if (idempotencyKey) idempotency.forget(idempotencyKey);
        throw error;
      }
      response = fail(error);
      if (idempotencyKey) {
        if (error.replayable) idempotency.finish(idempotencyKey, { status: response.status, body: response.body as string, requestId });
        else idempotency.forget(idempotencyKey);
      }
    }
    if (fault?.kind === "timeout") return HOLD_OPEN;
    return response;
  }

  function requirePayable(outTradeNo: string) {
    const trade = context.trades.require("card", outTradeNo);
    const intent = book.intentOf(trade);
    if (trade.state === "paid") throw new SimulatorControlError(409, `payment intent ${intent.id} has already succeeded`);
    if (trade.state === "closed") throw new SimulatorControlError(409, `payment intent ${intent.id} is canceled`);
    return { trade, intent };
  }

  return {
    channel: "card",
    handle,

    pay(outTradeNo, outcome) {
      const { trade, intent } = requirePayable(outTradeNo);
      payIntent(book, trade, intent, outcome);
    },

    scan(outTradeNo) {
      // The shopper opens the 3-D Secure challenge without finishing it: still requires_action.
      const { trade, intent } = requirePayable(outTradeNo);
      trade.openedAt ??= new Date();
      if (trade.state === "created") trade.state = "pending";
      intent.confirmed = true;
    },

    channelState(trade) {
      return intentStatus(trade, book.intentOf(trade));
    },
  };
}
