/**
 * Request parsing for the WeChat Pay side: WeChat's `{code, message}` errors with their HTTP
 * statuses, typed readers for JSON bodies (fen amounts, CNY only), path segments, and small id
 * helpers.
 */
import { randomInt } from "node:crypto";
import { toWechatBillTime } from "../../channels/wechatpay/wechatpay-time.js";

/** A JSON object as WeChat's API writes it. */
export type Json = Record<string, unknown>;

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A non-2xx answer with WeChat's `{code, message}` body. */
export class WechatApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** 400 `PARAM_ERROR`. */
export const paramError = (message: string) => new WechatApiError(400, "PARAM_ERROR", message);
/** 400 `INVALID_REQUEST`. */
export const invalidRequest = (message: string) => new WechatApiError(400, "INVALID_REQUEST", message);

export function randomDigits(length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += String(randomInt(10));
  return text;
}

export function randomAlphanumeric(length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return text;
}

/** `yyyy-MM-dd` of China time. */
export function chinaDate(date: Date): string {
  return toWechatBillTime(date).slice(0, 10);
}

export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function stringField(body: Json, name: string): string | undefined {
  const value = body[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw paramError(`${name} 必须是字符串`);
  return value;
}

export function requiredString(body: Json, name: string): string {
  const value = stringField(body, name);
  if (value === undefined) throw paramError(`缺少参数 ${name}`);
  return value;
}

/** A fen amount: a positive JSON integer. */
export function amountField(amount: Json, name: string): bigint {
  const value = amount[name];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw paramError(`amount.${name} 必须是大于 0 的整数（单位：分）`);
  }
  return BigInt(value);
}

export function requireCny(amount: Json): void {
  const currency = amount.currency ?? "CNY";
  if (currency !== "CNY") throw paramError("amount.currency 仅支持 CNY");
}

export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw paramError("路径参数编码错误");
  }
}

/** A POST's JSON object body (`{}` for other methods), or `PARAM_ERROR`. */
export function parseJsonBody(method: string, rawBody: Buffer): Json {
  if (method !== "POST") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawBody.toString("utf8"));
  } catch {
    throw paramError("请求体不是合法的 JSON");
  }
  if (!isObject(parsed)) throw paramError("请求体须为 JSON 对象");
  return parsed;
}
