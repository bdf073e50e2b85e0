/**
 * ISO 4217 currencies this service accepts, with their minor-unit exponents. Amounts are always
 * `bigint` minor units; these helpers are the only place that turns them into decimal text and back.
 */
const EXPONENTS: Readonly<Record<string, number>> = Object.freeze({
  CNY: 2,
  HKD: 2,
  USD: 2,
  EUR: 2,
  GBP: 2,
  SGD: 2,
  AUD: 2,
  CAD: 2,
  CHF: 2,
  MYR: 2,
  THB: 2,
  JPY: 0,
  KRW: 0,
  VND: 0,
  KWD: 3,
  BHD: 3,
  JOD: 3,
});

export function isKnownCurrency(code: string): boolean {
  return Object.hasOwn(EXPONENTS, code);
}

/** The number of decimal places of `currency`'s minor unit. Throws on an unknown code. */
export function currencyExponent(currency: string): number {
  const exponent = EXPONENTS[currency];
  if (exponent === undefined) throw new RangeError(`unknown currency ${JSON.stringify(currency)}`);
  return exponent;
}

/** `formatMinor(8888n, "CNY")` → `"88.88"`; `formatMinor(5n, "JPY")` → `"5"`. */
export function formatMinor(amountMinor: bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const negative = amountMinor < 0n;
  const digits = (negative ? -amountMinor : amountMinor).toString().padStart(exponent + 1, "0");
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent);
  return `${negative ? "-" : ""}${whole}${exponent > 0 ? `.${fraction}` : ""}`;
}

/**
 * Parses decimal text into minor units, exactly: `"88.88"` CNY → `8888n`. Accepts fewer fraction
 * digits than the exponent (`"88.8"` → `8880n`), never more (that would need rounding).
 */
export function parseMinor(text: string, currency: string): bigint {
  const exponent = currencyExponent(currency);
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) throw new RangeError(`not a decimal amount: ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = ""] = match;
  if (fraction.length > exponent) {
    throw new RangeError(`${JSON.stringify(text)} has more than ${exponent} decimal places for ${currency}`);
  }
  const minor = BigInt(`${whole}${fraction.padEnd(exponent, "0")}`);
  return sign === "-" ? -minor : minor;
}
