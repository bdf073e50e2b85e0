/**
 * Field readers for channel wire objects, shared by every adapter's typed decoders
 * (`alipay-wire.ts`, `wechatpay-wire.ts`, `card-wire.ts`) and by callback parsing. A decoder reads
 * an answer through a {@link WireReader}; a field of the wrong shape throws {@link WireFieldError}
 * naming the field, which the call pipeline (`channel-call.ts`) reports as `UNEXPECTED_RESPONSE`.
 */
import { parseMinor } from "../money/currency.js";

/** A JSON object from a channel, before anything in it is known to be of the right type. */
export type WireObject = Record<string, unknown>;

/** A field of a channel's answer is missing or malformed. `field` is its dotted path (`amount.total`). */
export class WireFieldError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
    this.name = "WireFieldError";
  }
}

/** A plain JSON object (not an array, not null). */
export function isWireObject(value: unknown): value is WireObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A non-empty string, else undefined: the lenient reading used where a wrong type only means "absent". */
export function textOf(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** JSON integers within 2^53 convert exactly; anything else (fractions, huge values, text) is undefined. */
export function safeIntegerOf(value: unknown): bigint | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : undefined;
}

/** The body as one JSON object; undefined for anything else (not JSON, an array, a bare value). */
export function parseWireObject(body: Buffer | string): WireObject | undefined {
  try {
    const parsed: unknown = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
    return isWireObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Absent in the channel's sense: not sent, JSON `null` (Stripe's habit) or an empty string (Alipay's). */
function isAbsent(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/**
 * Reads the fields of one wire object. Optional readers return undefined when the field is absent
 * (missing, `null` or `""`) and throw {@link WireFieldError} when it is present with the wrong type;
 * `required*` readers also throw when it is absent.
 */
export class WireReader {
  constructor(
    readonly fields: WireObject,
    private readonly path = "",
  ) {}

  /** The dotted path of a field of this object, for error messages. */
  pathOf(name: string): string {
    return `${this.path}${name}`;
  }

  private fail(name: string, problem: string): never {
    throw new WireFieldError(this.pathOf(name), problem);
  }

  /** A string field. */
  text(name: string): string | undefined {
    const value = this.fields[name];
    if (isAbsent(value)) return undefined;
    if (typeof value !== "string") this.fail(name, `is not a string: ${describe(value)}`);
    return value;
  }

  requiredText(name: string): string {
    return this.text(name) ?? this.fail(name, "is missing");
  }

  /** A string field that must be one of `allowed`'s keys; returns the mapped value and the text. */
  oneOf<T>(name: string, allowed: (value: string) => T | undefined): { text: string; value: T } {
    const text = this.requiredText(name);
    const value = allowed(text);
    if (value === undefined) this.fail(name, `has an unknown value ${JSON.stringify(text)}`);
    return { text, value };
  }

  /** A JSON integer within 2^53, as bigint. */
  integer(name: string): bigint | undefined {
    const value = this.fields[name];
    if (isAbsent(value)) return undefined;
    const integer = safeIntegerOf(value);
    if (integer === undefined) this.fail(name, `is not an integer: ${describe(value)}`);
    return integer;
  }

  requiredInteger(name: string): bigint {
    return this.integer(name) ?? this.fail(name, "is missing");
  }

  /** A non-negative JSON integer within 2^53: an amount in minor units (WeChat fen, card minor units). */
  amount(name: string): bigint | undefined {
    const value = this.integer(name);
    if (value !== undefined && value < 0n) this.fail(name, `is not an amount: ${value}`);
    return value;
  }

  /** A decimal amount text in major units (Alipay's `"88.88"`), as minor units of `currency`. */
  decimalAmount(name: string, currency: string): bigint | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    try {
      return parseMinor(text, currency);
    } catch {
      return this.fail(name, `is not an amount: ${JSON.stringify(text)}`);
    }
  }

  boolean(name: string): boolean | undefined {
    const value = this.fields[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "boolean") this.fail(name, `is not a boolean: ${describe(value)}`);
    return value;
  }

  /** A nested object, read with the same rules; undefined when absent. */
  object(name: string): WireReader | undefined {
    const value = this.fields[name];
    if (value === undefined || value === null) return undefined;
    if (!isWireObject(value)) this.fail(name, `is not an object: ${describe(value)}`);
    return new WireReader(value, `${this.pathOf(name)}.`);
  }

  /** An array of objects, each read with the same rules. */
  objects(name: string): WireReader[] {
    const value = this.fields[name];
    if (!Array.isArray(value)) this.fail(name, value === undefined || value === null ? "is missing" : `is not an array: ${describe(value)}`);
    return value.map((item, index) => {
      if (!isWireObject(item)) this.fail(`${name}[${index}]`, `is not an object: ${describe(item)}`);
      return new WireReader(item, `${this.pathOf(name)}[${index}].`);
    });
  }
}

/** A short, safe rendering of an unexpected value for an error message (logged, never sent to callers). */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  return String(value).slice(0, 40);
}
