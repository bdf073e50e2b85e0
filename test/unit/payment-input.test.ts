import { describe, expect, it } from "vitest";
import { VALIDATION_ERROR_LIMITS, ValidationError, Violations } from "../../src/errors.js";
import {
  containsCardNumber,
  type CreatePaymentInput,
  hashCreatePayment,
  MAX_ITEMS,
  MAX_METADATA_ENTRIES,
  validateCreatePayment,
} from "../../src/payments/payment-input.js";
import { thrown } from "../support/thrown.js";

function input(overrides: Partial<CreatePaymentInput> = {}): CreatePaymentInput {
  return {
    merchantOrderNo: "order-1",
    currency: "CNY",
    items: [],
    amount: 8888n,
    channel: "alipay",
    subject: "Tea",
    expireSeconds: 0,
    notifyUrl: "",
    metadata: {},
    paymentMethod: "",
    ...overrides,
  };
}

function violations(value: CreatePaymentInput): ValidationError {
  return thrown(ValidationError, () => validateCreatePayment(value));
}

describe("create-payment validation", () => {
  it("accepts a well-formed request", () => {
    expect(() => validateCreatePayment(input())).not.toThrow();
  });

  it("reports every bad field at once", () => {
    const error = violations(
      input({ merchantOrderNo: "bad order!", currency: "XXX", amount: 0n, subject: " ", channel: undefined }),
    );
    expect(error.violations.map((v) => v.field).sort()).toEqual(
      ["amount", "channel", "currency", "merchant_order_no", "subject"].sort(),
    );
    expect(error.reason).toBe("INVALID_REQUEST");
  });

  it("requires amount to equal the items' total, with the AMOUNT_MISMATCH reason", () => {
    const items = [
      { sku: "a", name: "A", quantity: 2n, unitAmount: 150n },
      { sku: "b", name: "B", quantity: 1n, unitAmount: 99n },
    ];
    expect(() => validateCreatePayment(input({ items, amount: 399n }))).not.toThrow();
    const error = violations(input({ items, amount: 400n }));
    expect(error.reason).toBe("AMOUNT_MISMATCH");
    expect(error.violations[0]!.field).toBe("amount");
  });

  it("rejects non-positive quantities and negative unit amounts by item path", () => {
    const error = violations(
      input({ items: [{ sku: "a", name: "A", quantity: 0n, unitAmount: -1n }], amount: 1n }),
    );
    expect(error.violations.map((v) => v.field)).toEqual(["items[0].quantity", "items[0].unit_amount"]);
  });

  it("limits amounts by the currency's exponent", () => {
    expect(() => validateCreatePayment(input({ currency: "JPY", amount: 10n ** 10n }))).not.toThrow();
    expect(violations(input({ currency: "JPY", amount: 10n ** 10n + 1n })).violations[0]!.reason).toBe("TOO_LARGE");
    expect(() => validateCreatePayment(input({ currency: "KWD", amount: 10n ** 13n }))).not.toThrow();
  });

  it("refuses card numbers anywhere in the request", () => {
    expect(containsCardNumber("4242 4242 4242 4242")).toBe(true);
    expect(containsCardNumber("order 4242424242424241")).toBe(false);
    // Luhn-valid, but a timestamp-like number without a card-network prefix.
    expect(containsCardNumber("17637732390000")).toBe(false);
    const error = violations(input({ metadata: { note: "card 4111-1111-1111-1111" } }));
    expect(error.violations[0]).toMatchObject({ field: "metadata.note", reason: "CARD_NUMBER_NOT_ALLOWED" });
  });

  it("takes a payment-method token or none (client-confirmed) for cards, nothing else, and no other token", () => {
    expect(() => validateCreatePayment(input({ channel: "card", currency: "USD", paymentMethod: "" }))).not.toThrow();
    expect(() => validateCreatePayment(input({ channel: "card", currency: "USD", paymentMethod: "pm_card_visa" }))).not.toThrow();
    for (const token of ["tok_visa", "4242424242424242", "pm_", "pm_card visa"]) {
      const refused = violations(input({ channel: "card", currency: "USD", paymentMethod: token })).violations[0]!;
      expect(refused).toMatchObject({ field: "payment_method", reason: "INVALID_TOKEN" });
      expect(refused.description).not.toContain("4242");
    }
    expect(violations(input({ paymentMethod: "pm_x" })).violations[0]!.reason).toBe("NOT_ALLOWED");
  });

  it("hashes the same request the same way regardless of metadata order", () => {
    const a = hashCreatePayment(input({ metadata: { a: "1", b: "2" } }));
    const b = hashCreatePayment(input({ metadata: { b: "2", a: "1" } }));
    expect(a).toBe(b);
    expect(hashCreatePayment(input({ amount: 8889n }))).not.toBe(a);
  });
});

describe("bounded validation errors", () => {
  const invalidItem = { sku: "", name: "", quantity: 0n, unitAmount: -1n };

  it("lists the first 20 violations and says how many more were found", () => {
    const error = violations(input({ items: Array.from({ length: MAX_ITEMS }, () => invalidItem) }));
    expect(error.violations).toHaveLength(VALIDATION_ERROR_LIMITS.maxViolations);
    expect(error.violations[0]).toMatchObject({ field: "items[0].sku", reason: "INVALID_LENGTH" });
    expect(error.omitted).toBe(4 * MAX_ITEMS - 20);
    expect(error.message).toMatch(/^items\[0\]\.sku: must be 1-64 characters; .* \.\.\. and 380 more violations$/);
    expect(error.metadata).toEqual({ violations: "400", violations_listed: "20" });
  });

  it("reports an over-long item list once and does not look at its items", () => {
    const error = violations(input({ items: Array.from({ length: 50_000 }, () => invalidItem) }));
    expect(error.violations).toEqual([{ field: "items", reason: "TOO_MANY", description: `at most ${MAX_ITEMS} items, got 50000` }]);
    expect(error.message).toBe(`items: at most ${MAX_ITEMS} items, got 50000`);
  });

  it("reports an over-large metadata map once and does not look at its entries", () => {
    const metadata = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`${"k".repeat(100)}${i}`, "v".repeat(1000)]));
    const error = violations(input({ metadata }));
    expect(error.violations).toEqual([
      { field: "metadata", reason: "TOO_MANY", description: `at most ${MAX_METADATA_ENTRIES} entries, got 5000` },
    ]);
  });

  it("cuts echoed field paths, and keeps message and list within their byte budgets", () => {
    const metadata = Object.fromEntries(Array.from({ length: MAX_METADATA_ENTRIES }, (_, i) => [`${i}${"\u8ba2".repeat(50_000)}`, "x"]));
    const error = violations(input({ metadata }));
    for (const violation of error.violations) {
      expect(violation.field.length).toBeLessThanOrEqual(VALIDATION_ERROR_LIMITS.maxFieldChars);
    }
    const listed = error.violations.reduce((sum, v) => sum + Buffer.byteLength(v.field) + Buffer.byteLength(v.description), 0);
    expect(listed).toBeLessThanOrEqual(VALIDATION_ERROR_LIMITS.maxListedBytes);
    expect(Buffer.byteLength(error.message)).toBeLessThan(VALIDATION_ERROR_LIMITS.maxMessageBytes + 64);
    expect(error.message).toMatch(/and \d+ more violations$/);
  });

  it("bounds a ValidationError built from a long list directly, and cuts long descriptions", () => {
    const long = Array.from({ length: 1000 }, (_, i) => ({ field: `f${i}`, reason: "BAD", description: "d".repeat(10_000) }));
    const error = new ValidationError(long);
    expect(error.violations.length).toBeLessThanOrEqual(VALIDATION_ERROR_LIMITS.maxViolations);
    expect(error.violations[0]!.description.length).toBe(VALIDATION_ERROR_LIMITS.maxDescriptionChars);
    expect(error.omitted).toBe(1000 - error.violations.length);
    expect(error.message).toMatch(/and \d+ more violations$/);
  });

  it("Violations keeps 20 and counts the rest", () => {
    const v = new Violations();
    for (let i = 0; i < 100_000; i++) v.add(`f${i}`, "BAD", "is bad");
    expect(v.size).toBe(100_000);
    const error = thrown(ValidationError, () => v.throwIfAny());
    expect(error.violations).toHaveLength(20);
    expect(error.message).toMatch(/\.\.\. and 99980 more violations$/);
  });

  it("says one more violation in the singular", () => {
    const list = Array.from({ length: 21 }, (_, i) => ({ field: `f${i}`, reason: "BAD", description: "is bad" }));
    expect(new ValidationError(list).message).toMatch(/\.\.\. and 1 more violation$/);
  });
});

describe("control characters in text fields", () => {
  const unsafe = ["\u0000", "\t", "\n", "\r", "\u001b", "\u007f", "\u0085", "\u009f", "\ud800", "\udc00"];

  it.each(unsafe.map((c) => [JSON.stringify(c), c]))("refuses %s in the subject, item sku and name, metadata keys and values", (_, c) => {
    const fields = (value: CreatePaymentInput) => violations(value).violations.map((v) => `${v.field} ${v.reason}`);
    expect(fields(input({ subject: `Tea${c}` }))).toEqual(["subject CONTROL_CHARACTERS"]);
    expect(fields(input({ items: [{ sku: `a${c}`, name: `A${c}`, quantity: 1n, unitAmount: 8888n }] }))).toEqual([
      "items[0].sku CONTROL_CHARACTERS",
      "items[0].name CONTROL_CHARACTERS",
    ]);
    expect(fields(input({ metadata: { [`k${c}`]: "v" } }))[0]).toMatch(/^metadata\.k. CONTROL_CHARACTERS$/);
    expect(fields(input({ metadata: { k: `v${c}` } }))).toEqual(["metadata.k CONTROL_CHARACTERS"]);
    expect(fields(input({ merchantOrderNo: `order${c}` }))).toEqual(["merchant_order_no CONTROL_CHARACTERS"]);
  });

  it("echoes a field path holding a control character with U+FFFD instead", () => {
    const error = violations(input({ metadata: { "k\u0000": "v" } }));
    expect(error.violations[0]!.field).toBe("metadata.k\ufffd");
    expect(error.message).not.toContain("\u0000");
  });

  it("accepts ordinary Unicode text, emoji (surrogate pairs) included", () => {
    expect(() => validateCreatePayment(input({ subject: "\u9f99\u4e95\u8336 \ud83c\udf75 caf\u00e9", metadata: { "\u5907\u6ce8": "\u00a0ok" } }))).not.toThrow();
  });
});
