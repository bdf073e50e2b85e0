/**
 * Who calls the card side. The merchant's server uses the secret key (`Authorization: Bearer
 * sk_test_...`, or Basic with the key as user name); the shopper's browser (Stripe.js) uses the
 * account's publishable key, which may only retrieve and confirm one intent whose `client_secret`
 * it presents. The simulator's publishable key is derived from the development secret key
 * ({@link cardPublishableKey}), so the keys file needs nothing new.
 */
import { timingSafeEqual } from "node:crypto";
import { StripeError } from "./card-errors.js";

/** `secret`: the merchant's server; `publishable`: the shopper's browser. */
export type CardCaller = "secret" | "publishable";

/** The publishable key that goes with `secretKey`: `sk_test_X` → `pk_test_X`. */
export function cardPublishableKey(secretKey: string): string {
  return secretKey.replace(/^sk_/, "pk_");
}

function sameKey(given: string, expected: Buffer): boolean {
  const bytes = Buffer.from(given, "utf8");
  return bytes.length === expected.length && timingSafeEqual(bytes, expected);
}

/** Builds the check for one account's keys. */
export function createCardAuthenticator(secretKey: string): (header: string | undefined) => CardCaller | StripeError {
  const secret = Buffer.from(secretKey, "utf8");
  const publishable = Buffer.from(cardPublishableKey(secretKey), "utf8");
  return (header) => {
    let key: string | undefined;
    if (header?.startsWith("Bearer ")) key = header.slice(7).trim();
    else if (header?.startsWith("Basic ")) key = Buffer.from(header.slice(6).trim(), "base64").toString("utf8").split(":")[0];
    if (key && sameKey(key, secret)) return "secret";
    if (key && sameKey(key, publishable)) return "publishable";
    return authenticationError(header);
  };
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

/** A publishable key on a call only the secret key may make. */
export const secretKeyRequired = () =>
  new StripeError(401, {
    type: "invalid_request_error",
    message: "This API call cannot be made with a publishable API key. Please use a secret API key.",
  });
