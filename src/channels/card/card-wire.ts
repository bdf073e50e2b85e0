/**
 * The card acquirer's wire objects (Stripe's API): the answer as the call pipeline reads it (no
 * response signatures; `{"error":{type,code,message}}` failures on 4xx) and typed decoders for
 * PaymentIntents, Refunds and list pages.
 */
import type { ChannelRefundState, ChannelTradeState } from "../channel.js";
import type { ChannelBusinessFailure, ChannelProtocol } from "../channel-call.js";
import { isWireObject, parseWireObject, textOf, type WireObject, WireFieldError, type WireReader } from "../wire-fields.js";

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

/**
 * Text from the acquirer, made safe to keep in errors and status reasons: key-like strings and
 * card-number-like digit runs are masked (a misbehaving peer could echo them), length is capped.
 */
export function clean(message: string): string {
  return message
    .replace(/\b(sk|rk|whsec)_[A-Za-z0-9_]+/g, "$1_[redacted]")
    .replace(/_secret_[A-Za-z0-9]+/g, "_secret_[redacted]")
    .replace(/\d(?:[ -]?\d){12,18}/g, "[digits redacted]")
    .slice(0, 300);
}

/** A non-2xx answer, decoded from `{"error":{"type","code","message",...}}`. `code` is `error.code ?? error.type ?? HTTP_<status>`. */
export interface CardFailure extends ChannelBusinessFailure {
  status: number;
  /** The acquirer's `error.code` itself (`resource_missing`, `payment_intent_unexpected_state`). */
  errorCode?: string;
  /** Stripe attaches the intent to errors about one, e.g. `payment_intent_unexpected_state`. */
  paymentIntent?: WireObject;
}

/** `error.code` or `error.type` of an answer, before anything else is read. */
function errorCodeOf(body: WireObject | undefined): string | undefined {
  const detail = body && isWireObject(body.error) ? body.error : undefined;
  return detail ? (textOf(detail.code) ?? textOf(detail.type)) : undefined;
}

/** The card side of the call pipeline. The acquirer signs no answers: TLS to its host is what vouches for them. */
export function createCardProtocol(timeoutMs: number): ChannelProtocol<CardFailure> {
  return {
    channel: "card",
    timeoutMs,
    unverifiedCode: (response) => errorCodeOf(parseWireObject(response.body)) ?? "none",
    verify(response) {
      const fields = parseWireObject(response.body);
      if (response.status >= 200 && response.status < 300 && !fields) {
        return { kind: "not_channel_answer", why: `HTTP ${response.status} answer is not a JSON object` };
      }
      return { kind: "trusted", fields: fields ?? {} };
    },
    failureOf(answer, status) {
      if (status >= 200 && status < 300) return undefined;
      const detail = isWireObject(answer.error) ? answer.error : {};
      const type = textOf(detail.type);
      const errorCode = textOf(detail.code);
      const message = textOf(detail.message);
      const code = errorCode ?? type;
      const failure: CardFailure = {
        code: code ?? `HTTP_${status}`,
        message: `HTTP ${status}${code ? ` ${code}` : ""}${message ? `: ${clean(message)}` : ""}`,
        status,
      };
      if (errorCode) failure.errorCode = errorCode;
      if (isWireObject(detail.payment_intent)) failure.paymentIntent = detail.payment_intent;
      return failure;
    },
    // Our earlier attempt with this Idempotency-Key is still running at the acquirer.
    isBusy: (failure) => failure.status === 409 && failure.errorCode === "idempotency_key_in_use",
  };
}

/** Only `resource_missing` means "no such object": a bare 404 may be a wrong base URL. */
export function isMissing(failure: CardFailure): boolean {
  return failure.status === 404 && failure.errorCode === "resource_missing";
}

/** A PaymentIntent. */
export interface CardIntent {
  id?: string;
  status: string;
  state: ChannelTradeState;
  /** `metadata.payment_no`: our payment number, set on create. */
  paymentNo?: string;
  amountMinor?: bigint;
  currency?: string;
  /** The decline text of a failed attempt (`last_payment_error.message`, else its `code`). */
  paymentError?: string;
  cancellationReason?: string;
  clientSecret?: string;
}

export function readIntent(answer: WireReader): CardIntent {
  const status = answer.requiredText("status");
  const lastError = answer.object("last_payment_error");
  const state = mapCardIntentStatus(status, lastError !== undefined);
  if (!state) throw new WireFieldError(answer.pathOf("status"), `has an unknown value ${JSON.stringify(status)}`);
  const intent: CardIntent = { status, state };
  const id = answer.text("id");
  if (id) intent.id = id;
  const paymentNo = answer.object("metadata")?.text("payment_no");
  if (paymentNo) intent.paymentNo = paymentNo;
  const amountMinor = answer.amount("amount");
  if (amountMinor !== undefined) intent.amountMinor = amountMinor;
  const currency = answer.text("currency");
  if (currency) intent.currency = currency.toUpperCase();
  const paymentError = lastError && (lastError.text("message") ?? lastError.text("code"));
  if (paymentError) intent.paymentError = paymentError;
  const cancellationReason = answer.text("cancellation_reason");
  if (cancellationReason) intent.cancellationReason = cancellationReason;
  const clientSecret = answer.text("client_secret");
  if (clientSecret) intent.clientSecret = clientSecret;
  return intent;
}

/** A created PaymentIntent: its id and the client secret the shopper's client finishes with. */
export function readCreatedIntent(answer: WireReader): { id: string; clientSecret: string } {
  return { id: answer.requiredText("id"), clientSecret: answer.requiredText("client_secret") };
}

/** `GET /v1/payment_intents/search`. */
export function readIntentSearch(answer: WireReader): CardIntent[] {
  return answer.objects("data").map(readIntent);
}

/** A Refund. */
export interface CardRefund {
  id?: string;
  status: string;
  state: ChannelRefundState;
  failureReason?: string;
  /** `metadata.refund_no`: our refund number, set on create. */
  refundNo?: string;
}

export function readRefund(answer: WireReader): CardRefund {
  const { text: status, value: state } = answer.oneOf("status", mapCardRefundStatus);
  const refund: CardRefund = { status, state };
  const id = answer.text("id");
  if (id) refund.id = id;
  const failureReason = answer.text("failure_reason");
  if (failureReason) refund.failureReason = failureReason;
  const refundNo = answer.object("metadata")?.text("refund_no");
  if (refundNo) refund.refundNo = refundNo;
  return refund;
}

/** One page of a list endpoint; items stay raw for the caller's own decoder. */
export interface CardListPage {
  items: WireObject[];
  /** The id to continue after, when the acquirer has more. */
  nextAfter?: string;
}

export function readListPage(answer: WireReader): CardListPage {
  const items = answer.objects("data");
  if (answer.boolean("has_more") !== true) return { items: items.map((item) => item.fields) };
  const last = items.at(-1);
  const nextAfter = last?.text("id");
  if (!nextAfter) throw new WireFieldError(answer.pathOf("has_more"), "is true without an object id to continue after");
  return { items: items.map((item) => item.fields), nextAfter };
}
