import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import {
  containsCardNumber,
  type CreatePaymentInput,
  hashCreatePayment,
  validateCreatePayment,
} from "../../src/payments/payment-input.js";

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
  try {
    validateCreatePayment(value);
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("expected a ValidationError");
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

  it("requires a payment-method token for cards and nothing else", () => {
    expect(violations(input({ channel: "card", currency: "USD" })).violations[0]!.field).toBe("payment_method");
    expect(() => validateCreatePayment(input({ channel: "card", currency: "USD", paymentMethod: "pm_card_visa" }))).not.toThrow();
    expect(violations(input({ paymentMethod: "pm_x" })).violations[0]!.reason).toBe("NOT_ALLOWED");
  });

  it("hashes the same request the same way regardless of metadata order", () => {
    const a = hashCreatePayment(input({ metadata: { a: "1", b: "2" } }));
    const b = hashCreatePayment(input({ metadata: { b: "2", a: "1" } }));
    expect(a).toBe(b);
    expect(hashCreatePayment(input({ amount: 8889n }))).not.toBe(a);
  });
});
