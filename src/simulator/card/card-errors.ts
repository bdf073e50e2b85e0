/**
 * Stripe's error answers as the card side raises them: `{"error":{type, code, message, param}}`
 * with Stripe's HTTP statuses, which the official client turns into `StripeInvalidRequestError`,
 * `StripeCardError`, `StripeAuthenticationError` and so on.
 */

/** A JSON object as the card side writes it. */
export type Json = Record<string, unknown>;

/** A Stripe error answer; `replayable` false for validation errors, which Stripe does not store for idempotent replays. */
export class StripeError extends Error {
  constructor(
    readonly status: number,
    readonly detail: Json,
    readonly replayable = true,
  ) {
    super(String(detail.message));
  }
}

/** 400 `invalid_request_error`, not stored for replays. */
export const invalidRequest = (message: string, extra: Json = {}) =>
  new StripeError(400, { type: "invalid_request_error", message, ...extra }, false);

/** 400 `parameter_missing`. */
export const missingParam = (param: string) => invalidRequest(`Missing required param: ${param}.`, { code: "parameter_missing", param });

/** 404 `resource_missing`. */
export const noSuch = (what: string, id: string, param: string) =>
  new StripeError(404, { type: "invalid_request_error", code: "resource_missing", message: `No such ${what}: '${id}'`, param }, false);

/** Stripe's answer to a path it does not serve (after authentication, as Stripe checks the key first). */
export const unrecognizedUrl = (method: string, path: string) =>
  new StripeError(404, {
    type: "invalid_request_error",
    message: `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
  });

/** 400 `payment_intent_unexpected_state`, carrying the intent as Stripe does. */
export const unexpectedState = (message: string, paymentIntent: Json) =>
  new StripeError(400, { type: "invalid_request_error", code: "payment_intent_unexpected_state", message, payment_intent: paymentIntent });
