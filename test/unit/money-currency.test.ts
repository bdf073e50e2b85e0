import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { currencyExponent, formatMinor, isKnownCurrency, parseMinor } from "../../src/money/currency.js";

describe("formatMinor", () => {
  it("writes minor units with the currency's exponent", () => {
    expect(formatMinor(8888n, "CNY")).toBe("88.88");
    expect(formatMinor(5n, "CNY")).toBe("0.05");
    expect(formatMinor(0n, "CNY")).toBe("0.00");
    expect(formatMinor(100n, "USD")).toBe("1.00");
    expect(formatMinor(5n, "JPY")).toBe("5");
    expect(formatMinor(1234n, "KWD")).toBe("1.234");
    expect(formatMinor(7n, "KWD")).toBe("0.007");
  });

  it("writes negatives with a leading minus", () => {
    expect(formatMinor(-8888n, "CNY")).toBe("-88.88");
    expect(formatMinor(-5n, "CNY")).toBe("-0.05");
    expect(formatMinor(-5n, "JPY")).toBe("-5");
    expect(formatMinor(-1n, "KWD")).toBe("-0.001");
  });

  it("stays exact above 2^53", () => {
    expect(formatMinor(12345678901234567n, "CNY")).toBe("123456789012345.67");
  });

  it("rejects unknown currencies", () => {
    expect(() => formatMinor(1n, "XXX")).toThrow(RangeError);
    expect(isKnownCurrency("XXX")).toBe(false);
    expect(currencyExponent("KWD")).toBe(3);
  });
});

describe("parseMinor", () => {
  it("reads decimal text exactly", () => {
    expect(parseMinor("88.88", "CNY")).toBe(8888n);
    expect(parseMinor("88.8", "CNY")).toBe(8880n);
    expect(parseMinor("88", "CNY")).toBe(8800n);
    expect(parseMinor("0.01", "CNY")).toBe(1n);
    expect(parseMinor("1000", "JPY")).toBe(1000n);
    expect(parseMinor("1.234", "KWD")).toBe(1234n);
    expect(parseMinor("123456789012345.67", "CNY")).toBe(12345678901234567n);
  });

  it("reads negatives", () => {
    expect(parseMinor("-0.05", "CNY")).toBe(-5n);
    expect(parseMinor("-5", "JPY")).toBe(-5n);
    expect(parseMinor("-1.234", "KWD")).toBe(-1234n);
  });

  it("rejects more decimals than the currency has, instead of rounding", () => {
    expect(() => parseMinor("88.888", "CNY")).toThrow(/more than 2 decimal places/);
    expect(() => parseMinor("1.5", "JPY")).toThrow(/more than 0 decimal places/);
    expect(() => parseMinor("1.2345", "KWD")).toThrow(RangeError);
  });

  it("rejects text that is not a plain decimal", () => {
    for (const text of ["", "abc", "1e3", "1,000.00", "+1.00", ".5", "1.", "--1", "0x10", "NaN"]) {
      expect(() => parseMinor(text, "CNY"), text).toThrow(RangeError);
    }
  });

  it("round-trips with formatMinor for any amount", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.constantFrom("CNY", "JPY", "KWD"), (amount, currency) => {
        expect(parseMinor(formatMinor(amount, currency), currency)).toBe(amount);
      }),
    );
  });
});
