/**
 * Validation of a create-payment request and its canonical hash. Every problem is reported at
 * once as a field violation; nothing is written for an invalid request.
 */
import { createHash } from "node:crypto";
import type { ChannelName } from "../channels/channel.js";
import { Violations } from "../errors.js";
import { checkPrintable } from "../input-text.js";
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
/** Order lines per payment; a longer list gets one violation and its lines are not examined. */
export const MAX_ITEMS = 100;
/** Metadata entries per payment; a larger map gets one violation and its entries are not examined. */
export const MAX_METADATA_ENTRIES = 20;
const MAX_METADATA_KEY_CHARS = 40;
const MAX_METADATA_VALUE_CHARS = 500;
const MAX_SUBJECT_CHARS = 256;
const MAX_ITEM_QUANTITY = 1_000_000n;
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

/**
 * Throws a ValidationError listing the invalid fields; `notifyUrls` is the notify URL policy (strict
 * by default). The work is bounded by the list limits, not by the request: an over-long list or
 * map gets one violation and its entries are not examined (nor summed, nor scanned), and text over
 * its length limit is not scanned for card numbers.
 */
export function validateCreatePayment(input: CreatePaymentInput, notifyUrls: NotifyUrlPolicy = STRICT_NOTIFY_URL_POLICY): void {
  const v = new Violations();

  if (!ORDER_NO_PATTERN.test(input.merchantOrderNo) && checkPrintable(v, "merchant_order_no", input.merchantOrderNo)) {
    v.add("merchant_order_no", "INVALID_FORMAT", "must be 1-64 characters of A-Z a-z 0-9 _ -");
  }
  if (input.channel === undefined) v.add("channel", "REQUIRED", "is required");

  const currencyKnown = isKnownCurrency(input.currency);
  if (!currencyKnown) v.add("currency", "UNKNOWN_CURRENCY", "must be a supported ISO 4217 code, e.g. CNY");
  const maxAmount = currencyKnown ? MAX_AMOUNT_MAJOR * 10n ** BigInt(currencyExponent(input.currency)) : 0n;

  if (input.amount <= 0n) v.add("amount", "NOT_POSITIVE", "must be at least 1 minor unit");
  else if (currencyKnown && input.amount > maxAmount) v.add("amount", "TOO_LARGE", `must be at most ${maxAmount}`);

  // Free text that passed its length and character checks; only this is scanned for card numbers.
  const freeText: Array<[string, string]> = [];

  if (input.subject.length > MAX_SUBJECT_CHARS) v.add("subject", "TOO_LONG", `must be at most ${MAX_SUBJECT_CHARS} characters`);
  else if (input.subject.trim().length === 0) v.add("subject", "REQUIRED", "is required");
  else if (checkPrintable(v, "subject", input.subject)) freeText.push(["subject", input.subject]);

  if (input.expireSeconds < 0 || input.expireSeconds > MAX_EXPIRE_SECONDS) {
    v.add("expire_seconds", "OUT_OF_RANGE", `must be 0 (default ${DEFAULT_EXPIRE_SECONDS}) to ${MAX_EXPIRE_SECONDS}`);
  } else if (input.expireSeconds > 0 && input.expireSeconds < 60) {
    v.add("expire_seconds", "OUT_OF_RANGE", "must be at least 60 seconds");
  }
  validateNotifyUrl(v, "notify_url", input.notifyUrl, notifyUrls);

  let amountMismatch = false;
  if (input.items.length > MAX_ITEMS) {
    v.add("items", "TOO_MANY", `at most ${MAX_ITEMS} items, got ${input.items.length}`);
  } else {
    let itemsTotal = 0n;
    input.items.forEach((item, i) => {
      const field = `items[${i}]`;
      let skuOk = false;
      let nameOk = false;
      if (item.sku.length === 0 || item.sku.length > 64) v.add(`${field}.sku`, "INVALID_LENGTH", "must be 1-64 characters");
      else skuOk = checkPrintable(v, `${field}.sku`, item.sku);
      if (item.name.length === 0 || item.name.length > 256) v.add(`${field}.name`, "INVALID_LENGTH", "must be 1-256 characters");
      else nameOk = checkPrintable(v, `${field}.name`, item.name);
      if (skuOk && nameOk) freeText.push([`${field}.name`, `${item.name} ${item.sku}`]);
      if (item.quantity <= 0n) v.add(`${field}.quantity`, "NOT_POSITIVE", "must be at least 1");
      else if (item.quantity > MAX_ITEM_QUANTITY) v.add(`${field}.quantity`, "TOO_LARGE", `must be at most ${MAX_ITEM_QUANTITY}`);
      if (item.unitAmount < 0n) v.add(`${field}.unit_amount`, "NEGATIVE", "must not be negative");
      itemsTotal += item.quantity * item.unitAmount;
    });
    amountMismatch = input.items.length > 0 && itemsTotal !== input.amount && v.empty;
    if (amountMismatch) {
      v.add("amount", "AMOUNT_MISMATCH", `must equal the sum of quantity * unit_amount over items (${itemsTotal})`);
    }
  }

  const entries = Object.entries(input.metadata);
  if (entries.length > MAX_METADATA_ENTRIES) {
    v.add("metadata", "TOO_MANY", `at most ${MAX_METADATA_ENTRIES} entries, got ${entries.length}`);
  } else {
    for (const [key, value] of entries) {
      const field = `metadata.${key}`;
      const keyOk = key.length > 0 && key.length <= MAX_METADATA_KEY_CHARS;
      if (!keyOk) v.add(field, "INVALID_KEY", `keys must be 1-${MAX_METADATA_KEY_CHARS} characters`);
      const valueOk = value.length <= MAX_METADATA_VALUE_CHARS;
      if (!valueOk) v.add(field, "TOO_LONG", `values must be at most ${MAX_METADATA_VALUE_CHARS} characters`);
      if (keyOk && valueOk && checkPrintable(v, field, `${key} ${value}`)) freeText.push([field, `${key} ${value}`]);
    }
  }

  if (input.channel === "card") {
    // Empty is the client-confirmed flow: the shopper's browser confirms with the client secret.
    if (input.paymentMethod !== "") {
      if (!/^pm_[A-Za-z0-9_]{1,250}$/.test(input.paymentMethod)) {
        v.add("payment_method", "INVALID_TOKEN", "must be empty or the acquirer's payment-method token (pm_...)");
      } else freeText.push(["payment_method", input.paymentMethod]);
    }
  } else if (input.paymentMethod !== "") {
    v.add("payment_method", "NOT_ALLOWED", "is only used by the card channel");
  }

  // Card numbers must never enter the service (PCI DSS scope): refuse them wherever they hide.
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
