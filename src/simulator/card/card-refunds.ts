/**
 * Refunds: `POST /v1/refunds`, `GET /v1/refunds?payment_intent=`, `GET /v1/refunds/{id}`.
 * A refund is `succeeded` at once, `pending` under the `refundDelayMs` fault and then `succeeded`
 * (or `failed` under `refundFails`) after that many real milliseconds; `refundFails` alone creates
 * it `failed` at once. Refunds and pending refunds count against the charge: more than what is left
 * is 400 `amount_too_large`, a fully refunded charge 400 `charge_already_refunded`. Every new refund
 * sends `refund.created` (in its first status), a pending one finishing `refund.updated`.
 */
import { refundedMinor, type SimTrade } from "../trade-store.js";
import type { CardBook, CardRefund } from "./card-book.js";
import { invalidRequest, type Json, noSuch, StripeError } from "./card-errors.js";
import { amountText, refundJson } from "./card-json.js";
import { enumParam, integerParam, listPage, metadataParam, onlyParams, type Params } from "./card-params.js";
import { emitEvent } from "./card-webhooks.js";

const REFUND_PARAMS = new Set(["payment_intent", "charge", "amount", "reason", "metadata", "expand", "instructions_email"]);
const FAILURE_REASON = "expired_or_canceled_card";

/** The intent a refund call names by `payment_intent` or `charge` (`ch_X` belongs to `pi_X`). */
function refundedIntent(book: CardBook, params: Params) {
  const intentId = params.values.get("payment_intent");
  const chargeId = params.values.get("charge");
  if (intentId) return book.findIntent(intentId, "payment_intent");
  if (!chargeId) return undefined;
  const found = book.findIntent(`pi_${chargeId.replace(/^ch_/, "")}`, "charge");
  if (found.intent.latestCharge !== chargeId) throw noSuch("charge", chargeId, "charge");
  return found;
}

/** `POST /v1/refunds`. */
export function createRefund(book: CardBook, params: Params): Json {
  onlyParams(params, REFUND_PARAMS);
  const found = refundedIntent(book, params);
  if (!found) throw invalidRequest("Must provide either payment_intent or charge.", { code: "parameter_missing" });
  const { trade, intent } = found;
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

  const faults = book.context.faults.resolve("card", trade.outTradeNo);
  const now = new Date();
  const id = book.newId("re");
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
  if (refund.state === "failed") refund.failureReason = FAILURE_REASON;
  if (refund.state === "succeeded") refund.balanceTransaction = book.book(trade, "refund", -amountMinor, 0n, refund);
  book.addRefund(trade, refund);
  void emitEvent(book, trade, "refund.created", refundJson(book, trade, refund));
  if (refund.state === "processing") finishLater(book, trade, refund, faults.refundDelayMs ?? 0);
  return refundJson(book, trade, refund);
}

function finishLater(book: CardBook, trade: SimTrade, refund: CardRefund, delayMs: number): void {
  book.context.timers.schedule(delayMs, () => {
    if (refund.state !== "processing") return;
    if (book.context.faults.resolve("card", trade.outTradeNo).refundFails) {
      refund.state = "failed";
      refund.failureReason = FAILURE_REASON;
    } else {
      refund.state = "succeeded";
      refund.balanceTransaction = book.book(trade, "refund", -refund.amountMinor, 0n, refund);
    }
    void emitEvent(book, trade, "refund.updated", refundJson(book, trade, refund), { status: "pending" });
  });
}

/** `GET /v1/refunds`, of one intent or charge or all, newest first. */
export function listRefunds(book: CardBook, params: Params): Json {
  onlyParams(params, new Set(["payment_intent", "charge", "limit", "starting_after", "expand"]));
  const found = refundedIntent(book, params);
  const refunds = found
    ? (found.trade.refunds as CardRefund[]).map((refund) => ({ trade: found.trade, refund })).reverse()
    : [...book.refundsById.values()].reverse();
  return listPage(params, "/v1/refunds", refunds, ({ refund }) => refund.id, ({ trade, refund }) => refundJson(book, trade, refund));
}

/** `GET /v1/refunds/{id}`. */
export function retrieveRefund(book: CardBook, id: string): Json {
  const found = book.refundsById.get(id);
  if (!found) throw noSuch("refund", id, "id");
  return refundJson(book, found.trade, found.refund);
}
