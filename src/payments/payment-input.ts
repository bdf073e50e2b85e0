/**
 * Validation of a create-payment request and its canonical hash. Every problem is reported at
 * once as a field violation; nothing is written for an invalid request.
 */
import { createHash } from "node:crypto";
import type { ChannelName } from "../channels/channel.js";
import { Violations } from "../errors.js";
import { type NotifyUrlPolicy, STRICT_NOTIFY_URL_POLICY, validateNotifyUrl } from "../notifications/notify-url.js";
import { currencyExponent, isKnownCurrency } from "../money/currency.js";

export interface CreatePaymentItemInput {
  sku: string;
  name: string;
  quantity: bigint;
  unitAmount: bigint;
}

export interface CreatePaymentInput {
  merchantOrderNo: string;
  currency: string;
  items: CreatePaymentItemInput[];
  amount: bigint;
  /** Undefined when the caller did not choose one. */
  channel: ChannelName | undefined;
  subject: string;
  /** 0 = default. */
  expireSeconds: number;
  notifyUrl: string;
  metadata: Record<string, string>;
  paymentMethod: string;
}

export const DEFAULT_EXPIRE_SECONDS = 900;
export const MAX_EXPIRE_SECONDS = 86_400;
const MAX_ITEMS = 100;
const MAX_METADATA_ENTRIES = 20;
/** Largest amount accepted, in major units; far above any channel's single-payment limit. */
const MAX_AMOUNT_MAJOR = 10n ** 10n;
const ORDER_NO_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Card-network prefixes (Visa, Mastercard, Amex, Discover, JCB, UnionPay, Diners). Requiring one
 * keeps Luhn-valid order numbers and timestamps (1 in 10 of any digit run) from being refused.
 */
const CARD_PREFIX = /^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|35|6011|64[4-9]|65|62|81)/;

/** Luhn-valid runs of 13-19 digits with a card-network prefix (spaces or dashes allowed) look like card numbers. */
export function containsCardNumber(text: string): boolean {
  for (const match of text.matchAll(/(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g)) {
    const digits = match[0].replace(/[ -]/g, "");
    if (!CARD_PREFIX.test(digits)) continue;
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let d = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
    }
    if (sum % 10 === 0) return true;
  }
  return false;
}

/** Throws a ValidationError listing every invalid field; `notifyUrls` is the notify URL policy (strict by default). */
export function validateCreatePayment(input: CreatePaymentInput, notifyUrls: NotifyUrlPolicy = STRICT_NOTIFY_URL_POLICY): void {
  const v = new Violations();

  if (!ORDER_NO_PATTERN.test(input.merchantOrderNo)) {
    v.add("merchant_order_no", "INVALID_FORMAT", "must be 1-64 characters of A-Z a-z 0-9 _ -");
  }
  if (input.channel === undefined) v.add("channel", "REQUIRED", "is required");

  const currencyKnown = isKnownCurrency(input.currency);
  if (!currencyKnown) v.add("currency", "UNKNOWN_CURRENCY", "must be a supported ISO 4217 code, e.g. CNY");
  const maxAmount = currencyKnown ? MAX_AMOUNT_MAJOR * 10n ** BigInt(currencyExponent(input.currency)) : 0n;

  if (input.amount <= 0n) v.add("amount", "NOT_POSITIVE", "must be at least 1 minor unit");
  else if (currencyKnown && input.amount > maxAmount) v.add("amount", "TOO_LARGE", `must be at most ${maxAmount}`);

  const subject = input.subject.trim();
  if (subject.length === 0) v.add("subject", "REQUIRED", "is required");
  else if (input.subject.length > 256) v.add("subject", "TOO_LONG", "must be at most 256 characters");

  if (input.expireSeconds < 0 || input.expireSeconds > MAX_EXPIRE_SECONDS) {
    v.add("expire_seconds", "OUT_OF_RANGE", `must be 0 (default ${DEFAULT_EXPIRE_SECONDS}) to ${MAX_EXPIRE_SECONDS}`);
  } else if (input.expireSeconds > 0 && input.expireSeconds < 60) {
    v.add("expire_seconds", "OUT_OF_RANGE", "must be at least 60 seconds");
  }
  validateNotifyUrl(v, "notify_url", input.notifyUrl, notifyUrls);

  if (input.items.length > MAX_ITEMS) v.add("items", "TOO_MANY", `at most ${MAX_ITEMS} items`);
  let itemsTotal = 0n;
  input.items.forEach((item, i) => {
    if (item.sku.length === 0 || item.sku.length > 64) v.add(`items[${i}].sku`, "INVALID_LENGTH", "must be 1-64 characters");
    if (item.name.length === 0 || item.name.length > 256) {
      v.add(`items[${i}].name`, "INVALID_LENGTH", "must be 1-256 characters");
    }
    if (item.quantity <= 0n) v.add(`items[${i}].quantity`, "NOT_POSITIVE", "must be at least 1");
    else if (item.quantity > 1_000_000n) v.add(`items[${i}].quantity`, "TOO_LARGE", "must be at most 1000000");
    if (item.unitAmount < 0n) v.add(`items[${i}].unit_amount`, "NEGATIVE", "must not be negative");
    itemsTotal += item.quantity * item.unitAmount;
  });
  const amountMismatch = input.items.length > 0 && itemsTotal !== input.amount && v.empty;
  if (amountMismatch) {
    v.add("amount", "AMOUNT_MISMATCH", `must equal the sum of quantity * unit_amount over items (${itemsTotal})`);
  }

  const entries = Object.entries(input.metadata);
  if (entries.length > MAX_METADATA_ENTRIES) v.add("metadata", "TOO_MANY", `at most ${MAX_METADATA_ENTRIES} entries`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > 40) v.add(`metadata.${key}`, "INVALID_KEY", "keys must be 1-40 characters");
    if (value.length > 500) v.add(`metadata.${key}`, "TOO_LONG", "values must be at most 500 characters");
  }

  if (input.channel === "card") {
    if (!/^pm_[A-Za-z0-9_]{1,250}$/.test(input.paymentMethod)) {
      v.add("payment_method", "INVALID_TOKEN", "must be the acquirer's payment-method token (pm_...)");
    }
  } else if (input.paymentMethod !== "") {
    v.add("payment_method", "NOT_ALLOWED", "is only used by the card channel");
  }

  // Card numbers must never enter the service (PCI DSS scope): refuse them wherever they hide.
  const freeText: Array<[string, string]> = [
    ["subject", input.subject],
    ["payment_method", input.paymentMethod],
    ...input.items.map((item, i): [string, string] => [`items[${i}].name`, `${item.name} ${item.sku}`]),
    ...entries.map(([key, value]): [string, string] => [`metadata.${key}`, `${key} ${value}`]),
  ];
  for (const [field, text] of freeText) {
    if (containsCardNumber(text)) v.add(field, "CARD_NUMBER_NOT_ALLOWED", "must not contain a card number");
  }

  // A lone sum mismatch gets its own reason, so clients can tell it from malformed input.
  v.throwIfAny(amountMismatch && v.size === 1 ? "AMOUNT_MISMATCH" : "INVALID_REQUEST");
}

/** SHA-256 over a canonical form of the request: same request, same hash, whatever the field order. */
export function hashCreatePayment(input: CreatePaymentInput): string {
  const canonical = JSON.stringify([
    input.merchantOrderNo,
    input.currency,
    input.amount.toString(),
    input.channel ?? "",
    input.subject,
    input.expireSeconds,
    input.notifyUrl,
    input.paymentMethod,
    input.items.map((item) => [item.sku, item.name, item.quantity.toString(), item.unitAmount.toString()]),
    Object.entries(input.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}
