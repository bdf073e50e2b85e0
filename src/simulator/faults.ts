/**
 * Fault injection, channel-agnostic: faults are set globally, per channel or per trade, and the
 * most specific scope wins key by key. API faults with `times` are used up call by call.
 */
import { CHANNEL_NAMES, type ChannelName } from "../channels/channel.js";
import { SimulatorControlError } from "./trade-store.js";

/** Answer API calls with HTTP 5xx before doing anything. `method` is the channel's operation name. */
export interface ApiErrorFault {
  /** Only this operation (Alipay: the `method` parameter, e.g. `alipay.trade.query`); all when absent. */
  method?: string;
  status: 500 | 503;
  /** How many calls to fail; every call while set when absent. */
  times?: number;
}

/** Hold API calls open without answering, past any client timeout. */
export interface ApiTimeoutFault {
  method?: string;
  times?: number;
  /** Carry the call out before going silent (the "it worked but the answer was lost" case). */
  apply?: boolean;
}

/** Every fault the simulator knows. All optional; JSON-compatible as shown. */
export interface SimulatorFaults {
  /** Deliver each notify attempt as this many concurrent copies. */
  duplicateNotifies?: number;
  /** When several notifies are waiting for a trade, deliver the newest first. */
  outOfOrder?: boolean;
  /** Wait this long (real milliseconds, not scaled) before a trade's first notify attempt. */
  notifyDelayMs?: number;
  /** Never notify: only an active query finds the outcome. */
  dropNotifies?: boolean;
  /** On create, pay the trade and deliver its notify before the create call answers. */
  notifyBeforeCreateReturns?: boolean;
  /** Sign notifies with the wrong key. */
  badSignature?: boolean;
  /** Notifies state a different total, correctly signed: `true` adds one minor unit, a number adds that many. */
  alterAmount?: boolean | number;
  /** Sign API responses with the wrong key. */
  badResponseSignature?: boolean;
  apiError?: ApiErrorFault;
  apiTimeout?: ApiTimeoutFault;
  /** A close call answers success, then the trade gets paid and a success notify is sent. */
  paidAfterClose?: boolean;
  /**
   * Refunds are answered as still processing and finish later: after this many real milliseconds
   * the refund completes and its notify (where the channel has one) is sent. Alipay, whose refunds
   * are synchronous, then reports the refund through its refund query only.
   */
  refundDelayMs?: number;
  /** Refunds fail at the channel: rejected at once, or (with `refundDelayMs`) abandoned later. */
  refundFails?: boolean;
  /** Bill (scope: a trade): the trade's lines are left out of the daily bill. */
  billOmitLine?: boolean;
  /** Bill (scope: a trade): the trade's payment line states one minor unit more than was paid. */
  billAlterAmount?: boolean;
  /** Bill (scope: a trade): the trade's payment line states one minor unit more fee than the rate gives. */
  billAlterFee?: boolean;
  /** Bill (scope: a channel): the bill carries one extra payment line for a trade that never existed. */
  billExtraLine?: boolean;
  /** Bill (scope: a channel): the download answer states a wrong hash (WeChat Pay's SHA1). */
  billWrongHash?: boolean;
  /** Bill (scope: a channel): the bill file is cut off in the middle of a line. */
  billTruncated?: boolean;
  /** Payouts (scope: a channel, or a payout by our number as `outTradeNo`): the transfer fails at the channel. */
  payoutFails?: boolean;
  /** Payouts: transfers answer processing and finish (paid, or failed with `payoutFails`) after this many real ms. */
  payoutDelayMs?: number;
  /** Payouts: each payout webhook (card) is delivered this many times. */
  duplicatePayoutWebhooks?: number;
}

/** Where faults apply: everything, one channel, or one trade of a channel. */
export interface FaultScope {
  channel?: ChannelName;
  outTradeNo?: string;
}

/** Body of `POST /simulator/faults`. A fault set to `null` is removed from the scope. */
export interface SetFaultsRequest extends FaultScope {
  faults: { [K in keyof SimulatorFaults]?: SimulatorFaults[K] | null };
}

/** What to do with one API call. */
export type ApiFaultDecision = { kind: "error"; status: 500 | 503 } | { kind: "timeout"; apply: boolean };

const FAULT_KEYS = [
  "duplicateNotifies",
  "outOfOrder",
  "notifyDelayMs",
  "dropNotifies",
  "notifyBeforeCreateReturns",
  "badSignature",
  "alterAmount",
  "badResponseSignature",
  "apiError",
  "apiTimeout",
  "paidAfterClose",
  "refundDelayMs",
  "refundFails",
  "billOmitLine",
  "billAlterAmount",
  "billAlterFee",
  "billExtraLine",
  "billWrongHash",
  "billTruncated",
  "payoutFails",
  "payoutDelayMs",
  "duplicatePayoutWebhooks",
] as const satisfies readonly (keyof SimulatorFaults)[];

function invalid(message: string): SimulatorControlError {
  return new SimulatorControlError(400, `invalid faults: ${message}`);
}

function nonNegativeInteger(value: unknown, name: string, minimum = 0): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < minimum) {
    throw invalid(`${name} must be an integer >= ${minimum}`);
  }
  return value;
}

function optionalMethod(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw invalid(`${name}.method must be a non-empty string`);
  return value;
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], name: string): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) throw invalid(`unknown field ${name}.${key}`);
}

/** Validates a control-API request body (throws a 400 {@link SimulatorControlError}). */
export function parseSetFaultsRequest(body: unknown): SetFaultsRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalid("body must be a JSON object");
  const record = body as Record<string, unknown>;
  onlyKeys(record, ["channel", "outTradeNo", "faults"], "body");
  const request: SetFaultsRequest = { faults: {} };
  if (record.channel !== undefined) {
    if (!CHANNEL_NAMES.includes(record.channel as ChannelName)) throw invalid(`channel must be one of ${CHANNEL_NAMES.join(", ")}`);
    request.channel = record.channel as ChannelName;
  }
  if (record.outTradeNo !== undefined) {
    if (typeof record.outTradeNo !== "string" || record.outTradeNo === "") throw invalid("outTradeNo must be a non-empty string");
    if (!request.channel) throw invalid("outTradeNo needs a channel");
    request.outTradeNo = record.outTradeNo;
  }
  const faults = record.faults;
  if (typeof faults !== "object" || faults === null || Array.isArray(faults)) throw invalid("faults must be a JSON object");
  const input = faults as Record<string, unknown>;
  onlyKeys(input, FAULT_KEYS, "faults");
  const out = request.faults as Record<string, unknown>;
  for (const key of FAULT_KEYS) {
    const value = input[key];
    if (value === undefined) continue;
    if (value === null) {
      out[key] = null;
      continue;
    }
    switch (key) {
      case "duplicateNotifies":
      case "duplicatePayoutWebhooks":
        out[key] = nonNegativeInteger(value, key, 1);
        break;
      case "notifyDelayMs":
      case "refundDelayMs":
      case "payoutDelayMs":
        out[key] = nonNegativeInteger(value, key);
        break;
      case "alterAmount":
        if (typeof value !== "boolean" && !(typeof value === "number" && Number.isSafeInteger(value) && value !== 0)) {
          throw invalid("alterAmount must be a boolean or a non-zero integer (minor units)");
        }
        out[key] = value;
        break;
      case "apiError": {
        if (typeof value !== "object" || Array.isArray(value)) throw invalid("apiError must be an object");
        const fault = value as Record<string, unknown>;
        onlyKeys(fault, ["method", "status", "times"], key);
        if (fault.status !== 500 && fault.status !== 503) throw invalid("apiError.status must be 500 or 503");
        const parsed: ApiErrorFault = { status: fault.status };
        const method = optionalMethod(fault.method, key);
        if (method) parsed.method = method;
        if (fault.times !== undefined) parsed.times = nonNegativeInteger(fault.times, "apiError.times", 1);
        out[key] = parsed;
        break;
      }
      case "apiTimeout": {
        if (typeof value !== "object" || Array.isArray(value)) throw invalid("apiTimeout must be an object");
        const fault = value as Record<string, unknown>;
        onlyKeys(fault, ["method", "times", "apply"], key);
        const parsed: ApiTimeoutFault = {};
        const method = optionalMethod(fault.method, key);
        if (method) parsed.method = method;
        if (fault.times !== undefined) parsed.times = nonNegativeInteger(fault.times, "apiTimeout.times", 1);
        if (fault.apply !== undefined) {
          if (typeof fault.apply !== "boolean") throw invalid("apiTimeout.apply must be a boolean");
          parsed.apply = fault.apply;
        }
        out[key] = parsed;
        break;
      }
      default:
        if (typeof value !== "boolean") throw invalid(`${key} must be a boolean`);
        out[key] = value;
    }
  }
  return request;
}

function scopeKey(scope: FaultScope): string {
  if (scope.outTradeNo !== undefined && scope.channel === undefined) throw invalid("outTradeNo needs a channel");
  return scope.channel === undefined ? "*" : scope.outTradeNo === undefined ? scope.channel : `${scope.channel}\u0000${scope.outTradeNo}`;
}

/** The faults in force, by scope. */
export class FaultRegistry {
  readonly #scopes = new Map<string, SimulatorFaults>();

  /** Merges `request.faults` into its scope (`null` removes a key). */
  set(request: SetFaultsRequest): void {
    const key = scopeKey(request);
    const current: Record<string, unknown> = { ...this.#scopes.get(key) };
    for (const [name, value] of Object.entries(request.faults)) {
      if (value === null) delete current[name];
      else if (value !== undefined) current[name] = typeof value === "object" ? { ...value } : value;
    }
    if (Object.keys(current).length === 0) this.#scopes.delete(key);
    else this.#scopes.set(key, current as SimulatorFaults);
  }

  /** Clears one scope, or everything when no scope is given. */
  clear(scope?: FaultScope): void {
    if (!scope || (scope.channel === undefined && scope.outTradeNo === undefined)) this.#scopes.clear();
    else this.#scopes.delete(scopeKey(scope));
  }

  /** The faults that apply to a channel (and trade): most specific scope first, key by key. */
  resolve(channel: ChannelName, outTradeNo?: string): SimulatorFaults {
    return Object.assign({}, ...this.#chain(channel, outTradeNo).reverse()) as SimulatorFaults;
  }

  /**
   * Decides whether one API call fails, and uses up one of the fault's `times`. `apiError` wins over
   * `apiTimeout`; within each, the most specific scope that matches the operation.
   */
  takeApiFault(channel: ChannelName, method: string, outTradeNo?: string): ApiFaultDecision | undefined {
    for (const kind of ["apiError", "apiTimeout"] as const) {
      for (const faults of this.#chain(channel, outTradeNo)) {
        const fault = faults[kind];
        if (!fault || (fault.method !== undefined && fault.method !== method)) continue;
        if (fault.times !== undefined) {
          fault.times -= 1;
          if (fault.times <= 0) delete faults[kind];
        }
        return kind === "apiError"
          ? { kind: "error", status: (fault as ApiErrorFault).status }
          : { kind: "timeout", apply: (fault as ApiTimeoutFault).apply ?? false };
      }
    }
    return undefined;
  }

  /** Every scope with its faults, for `GET /simulator/faults`. */
  snapshot(): { channel?: ChannelName; outTradeNo?: string; faults: SimulatorFaults }[] {
    return [...this.#scopes.entries()].map(([key, faults]) => {
      if (key === "*") return { faults: structuredClone(faults) };
      const [channel, outTradeNo] = key.split("\u0000") as [ChannelName, string | undefined];
      const copy = structuredClone(faults);
      return outTradeNo === undefined ? { channel, faults: copy } : { channel, outTradeNo, faults: copy };
    });
  }

  /** Most specific first: trade, channel, global. */
  #chain(channel: ChannelName, outTradeNo?: string): SimulatorFaults[] {
    const keys = outTradeNo === undefined ? [channel, "*"] : [`${channel}\u0000${outTradeNo}`, channel, "*"];
    return keys.map((key) => this.#scopes.get(key)).filter((faults): faults is SimulatorFaults => faults !== undefined);
  }
}
