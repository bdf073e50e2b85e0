/**
 * Gateway request parsing for the Alipay side: the common parameters, Alipay's error answers
 * (`40001` missing, `40002` invalid, `40004` business with `sub_code`), typed `biz_content`
 * readers, and small formatting helpers shared by the gateway methods, notifies and bills.
 */
import { randomInt } from "node:crypto";
import { parseAlipayTime, toAlipayDate } from "../../channels/alipay/alipay-time.js";
import { formatMinor, parseMinor } from "../../money/currency.js";
import type { SimulatorRequest } from "../channel-side.js";
import type { SimTrade } from "../trade-store.js";

/** Common parameters every gateway call needs, with the name Alipay's `isv.missing-*` sub-code uses. */
export const REQUIRED_PARAMS = [
  ["app_id", "app-id"],
  ["method", "method"],
  ["sign_type", "signature-type"],
  ["sign", "signature"],
  ["timestamp", "timestamp"],
  ["version", "version"],
] as const;

/** A `biz_content` object or a gateway answer's content. */
export type Content = Record<string, unknown>;

/** A gateway-level or business answer that is not a success. */
export class GatewayError extends Error {
  constructor(
    readonly code: string,
    readonly msg: string,
    readonly subCode: string,
    readonly subMsg: string,
    readonly extra: Content = {},
  ) {
    super(`${code} ${subCode}`);
  }
}

/** 40001 `isv.missing-*`. */
export const missing = (what: string) => new GatewayError("40001", "Missing Required Arguments", `isv.missing-${what}`, `缺少${what}参数`);
export const invalidArgument = (subCode: string, subMsg: string) => new GatewayError("40002", "Invalid Arguments", subCode, subMsg);
export const business = (subCode: string, subMsg: string, extra?: Content) => new GatewayError("40004", "Business Failed", subCode, subMsg, extra);
export const invalidParameter = (detail: string) => business("ACQ.INVALID_PARAMETER", `参数无效: ${detail}`);
export const tradeNotExist = () => business("ACQ.TRADE_NOT_EXIST", "交易不存在");

export function digits(length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += String(randomInt(10));
  return text;
}

export function lowerAlphanumeric(length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  let text = "";
  for (let i = 0; i < length; i++) text += alphabet[randomInt(alphabet.length)];
  return text;
}

export function yuan(amountMinor: bigint): string {
  return formatMinor(amountMinor, "CNY");
}

export function stringField(biz: Content, name: string): string | undefined {
  const value = biz[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw invalidParameter(`${name} must be a string`);
  return value;
}

/** Alipay amounts: up to two decimals; our clients send them as strings, which keeps them exact. */
export function amountField(biz: Content, name: string): bigint | undefined {
  const value = stringField(biz, name);
  if (value === undefined) return undefined;
  if (!/^\d{1,9}(\.\d{1,2})?$/.test(value)) throw invalidParameter(`${name} must be a yuan amount with at most two decimals`);
  return parseMinor(value, "CNY");
}

/** `timeout_express`: `90m`, `2h`, `1d`, `1c` (end of the day). */
export function parseTimeoutExpress(text: string, now: Date): Date {
  const match = /^(\d+)([mhdc])$/.exec(text);
  if (!match) throw invalidParameter("timeout_express must look like 90m, 2h, 1d or 1c");
  const count = Number(match[1]);
  const unit = match[2];
  if (unit === "c") {
    const endOfDay = parseAlipayTime(`${toAlipayDate(now)} 23:59:59`) as Date;
    return new Date(endOfDay.getTime() + 1000);
  }
  const unitMs = unit === "m" ? 60_000 : unit === "h" ? 3_600_000 : 86_400_000;
  return new Date(now.getTime() + count * unitMs);
}

/** What the trade has refunded so far: processing refunds are reserved (see `refundedMinor`) but not yet paid out. */
export function paidOutMinor(trade: SimTrade): bigint {
  return trade.refunds.reduce((sum, refund) => (refund.state === "succeeded" ? sum + refund.amountMinor : sum), 0n);
}

export function maskedLogonId(buyerId: string): string {
  return `${buyerId.slice(4, 7)}***@sim.alipay.test`;
}

/** `trade_status` as Alipay reports it: a fully refunded trade is `TRADE_CLOSED`. */
export function tradeStatus(trade: SimTrade): string {
  switch (trade.state) {
    case "created":
    case "pending":
      return "WAIT_BUYER_PAY";
    case "paid":
      return paidOutMinor(trade) >= trade.amountMinor ? "TRADE_CLOSED" : "TRADE_SUCCESS";
    default:
      return "TRADE_CLOSED";
  }
}

/** The gateway's parameters: the query string, then a form body (whose values win). */
export function parseGatewayParams(request: SimulatorRequest): Record<string, string> {
  const params: Record<string, string> = {};
  const contentType = request.headers["content-type"] ?? "";
  const isForm = contentType.includes("application/x-www-form-urlencoded");
  const bodyParams = new URLSearchParams(isForm ? request.rawBody.toString("utf8") : "");
  for (const source of [request.query, bodyParams]) for (const [key, value] of source) params[key] = value;
  return params;
}

/**
 * `biz_content` as an object (`{}` when absent), and the error to answer once the request is
 * authenticated when it is not a JSON object.
 */
export function parseBizContent(params: Record<string, string>): { biz: Content; bizError?: GatewayError } {
  if (params.biz_content === undefined) return { biz: {} };
  try {
    const parsed: unknown = JSON.parse(params.biz_content);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    return { biz: parsed as Content };
  } catch {
    return { biz: {}, bizError: invalidParameter("biz_content is not a JSON object") };
  }
}
