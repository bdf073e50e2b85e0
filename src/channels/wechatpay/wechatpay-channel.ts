/**
 * WeChat Pay API v3 adapter (direct merchant, public-key mode): Native (QR) payments, query,
 * close, refund, refund query, encrypted callbacks and the daily trade bill. Every request carries
 * a SHA256withRSA `Authorization` header; every answer acted upon is signature-checked first.
 */
import { createHash, type KeyObject, timingSafeEqual } from "node:crypto";
import {
  type BillRecord,
  type CallbackAnswer,
  CallbackRejectedError,
  type CallbackRequest,
  type ChannelCreatePaymentRequest,
  type ChannelNotification,
  type ChannelPaymentCreated,
  type ChannelRefundRequest,
  type ChannelRefundState,
  type ChannelRefundStatus,
  ChannelRejectedError,
  type ChannelTradeRef,
  type ChannelTradeState,
  type ChannelTradeStatus,
  ChannelTradePaidError,
  ChannelUnavailableError,
  type PaymentChannel,
  type PaymentNotification,
  type RefundNotification,
  ChannelAnswerUntrustedError,
} from "../channel.js";
import { HttpTransportError, type HttpResponse, sendHttpRequest } from "../http-client.js";
import { parseWechatTradeBill } from "./wechatpay-bill.js";
import {
  buildAuthorization,
  decryptResource,
  loadWechatPrivateKey,
  loadWechatPublicKey,
  verifyWechatSignature,
  WECHATPAY_RESOURCE_ALGORITHM,
} from "./wechatpay-signature.js";
import { parseWechatTime, toWechatTime } from "./wechatpay-time.js";

export { formatWechatTradeBill, parseWechatTradeBill } from "./wechatpay-bill.js";

/** How to reach WeChat Pay and prove who we are. Keys are PEM text (or bare base64 DER). */
export interface WechatPayChannelConfig {
  /** `https://api.mch.weixin.qq.com`, or `{simulator}/wechatpay`; request paths are appended. */
  baseUrl: string;
  mchId: string;
  appId: string;
  /** Serial number of the merchant API certificate (`serial_no` in `Authorization`). */
  mchSerialNo: string;
  mchPrivateKeyPem: string;
  /** The WeChat Pay public key: verifies responses and callbacks. */
  platformPublicKeyPem: string;
  /** `PUB_KEY_ID_...`: the `Wechatpay-Serial` every signed answer must carry. */
  publicKeyId: string;
  /** The 32-byte APIv3 key that decrypts callback resources. */
  apiV3Key: string;
  /** Per-call deadline; default 10 s. */
  timeoutMs?: number;
}

/** Callback event types this adapter applies; any other verified event is `ignored`. */
export const WECHATPAY_EVENT_TYPES = Object.freeze({
  transactionSuccess: "TRANSACTION.SUCCESS",
  refundSuccess: "REFUND.SUCCESS",
  refundAbnormal: "REFUND.ABNORMAL",
  refundClosed: "REFUND.CLOSED",
});

const DEFAULT_TIMEOUT_MS = 10_000;
const BILL_DOWNLOAD_TIMEOUT_MS = 60_000;
const USER_AGENT = "payments-service (WeChat Pay API v3; node)";
const NOT_FOUND_CODES = new Set(["ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"]);
const MAX_ANSWER_REASON_LENGTH = 200;

/** WeChat's `trade_state` → our normalised state. Undefined for a state we do not know. */
export function mapWechatTradeState(tradeState: string): ChannelTradeState | undefined {
  switch (tradeState) {
    case "SUCCESS":
    case "REFUND": // paid, then (partly) refunded: the payment itself succeeded
      return "succeeded";
    case "NOTPAY":
    case "USERPAYING":
      return "pending";
    case "CLOSED":
    case "REVOKED":
      return "closed";
    case "PAYERROR":
      return "failed";
    default:
      return undefined;
  }
}

/** WeChat's refund `status` → our refund state. Undefined for a status we do not know. */
export function mapWechatRefundStatus(status: string): ChannelRefundState | undefined {
  switch (status) {
    case "SUCCESS":
      return "succeeded";
    case "PROCESSING":
      return "processing";
    case "CLOSED":
    case "ABNORMAL":
      return "failed";
    default:
      return undefined;
  }
}

/**
 * Minor units to the JSON number WeChat expects. Throws a RangeError outside 1 ..
 * `Number.MAX_SAFE_INTEGER`, where a number would no longer hold the exact amount.
 */
export function toWechatAmount(amountMinor: bigint): number {
  if (amountMinor < 1n || amountMinor > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`amount ${amountMinor} is outside 1..${Number.MAX_SAFE_INTEGER} minor units`);
  }
  return Number(amountMinor);
}

/** A JSON amount from WeChat to minor units; undefined unless it is a non-negative safe integer. */
export function fromWechatAmount(value: unknown): bigint | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function requireCny(currency: string, operation: string): void {
  if (currency !== "CNY") {
    throw new ChannelRejectedError("wechatpay", "CURRENCY_NOT_SUPPORTED", `${operation}: WeChat Pay takes CNY only, got ${currency}`);
  }
}

function wireAmount(amountMinor: bigint, operation: string, what: string): number {
  try {
    return toWechatAmount(amountMinor);
  } catch (error) {
    throw new ChannelRejectedError("wechatpay", "AMOUNT_OUT_OF_RANGE", `${operation}: ${what}: ${(error as Error).message}`);
  }
}

/** A signature-verified answer: 2xx, or 4xx with WeChat's error `code`. */
interface VerifiedAnswer {
  status: number;
  fields: Json;
  /** Set when the status is not 200/204: WeChat's `code` (or `HTTP_<status>`) and `message`. */
  error?: { code: string; message: string };
}

function describeError(error: { code: string; message: string }): string {
  return error.message ? `${error.code} (${error.message})` : error.code;
}

function unverifiedCode(body: Buffer): string {
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    return (isObject(parsed) && text(parsed.code)) || "none";
  } catch {
    return "none";
  }
}

/** Creates the WeChat Pay {@link PaymentChannel}. Keys are parsed here, so a bad key fails at start. */
export function createWechatPayChannel(config: WechatPayChannelConfig): PaymentChannel {
  const merchantKey: KeyObject = loadWechatPrivateKey(config.mchPrivateKeyPem);
  const platformKey: KeyObject = loadWechatPublicKey(config.platformPublicKeyPem);
  if (Buffer.byteLength(config.apiV3Key, "utf8") !== 32) throw new RangeError("WeChat Pay APIv3 key must be exactly 32 bytes");
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const baseUrl = config.baseUrl.replace(/\/+$/, "");

  /** Sends one signed request; transport failures become {@link ChannelUnavailableError}. */
  async function send(operation: string, method: "GET" | "POST", url: URL, body: string, deadlineMs: number): Promise<HttpResponse> {
    const headers: Record<string, string> = {
      authorization: buildAuthorization({
        mchId: config.mchId,
        serialNo: config.mchSerialNo,
        privateKey: merchantKey,
        method,
        pathWithQuery: `${url.pathname}${url.search}`,
        body,
      }),
      accept: "application/json",
      "user-agent": USER_AGENT,
    };
    if (method === "POST") headers["content-type"] = "application/json";
    try {
      return await sendHttpRequest({ method, url: url.href, headers, body: method === "POST" ? body : undefined, timeoutMs: deadlineMs });
    } catch (error) {
      if (error instanceof HttpTransportError) {
        throw new ChannelUnavailableError("wechatpay", `${operation}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  async function call(operation: string, method: "GET" | "POST", pathWithQuery: string, payload?: Json): Promise<VerifiedAnswer> {
    const body = payload === undefined ? "" : JSON.stringify(payload);
    const response = await send(operation, method, new URL(`${baseUrl}${pathWithQuery}`), body, timeoutMs);
    if (response.status >= 500 || response.status === 429) {
      // Nothing in a 5xx/429 is acted upon, so it need not be signed: retrying is always safe.
      throw new ChannelUnavailableError(
        "wechatpay",
        `${operation}: WeChat Pay answered HTTP ${response.status} (unverified code ${unverifiedCode(response.body)})`,
      );
    }
    const check = verifyWechatSignature({
      headers: response.headers,
      body: response.body,
      publicKey: platformKey,
      publicKeyId: config.publicKeyId,
    });
    if (!check.ok) {
      throw new ChannelAnswerUntrustedError("wechatpay", "RESPONSE_SIGNATURE_INVALID",
        `${operation}: HTTP ${response.status} answer failed signature verification (${check.reason}) with the configured` +
          ` WeChat Pay public key ${config.publicKeyId} (unverified content claims code ${unverifiedCode(response.body)});` +
          " check WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID",
      );
    }

    let fields: Json = {};
    if (response.body.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(response.body.toString("utf8"));
      } catch {
        parsed = undefined;
      }
      if (!isObject(parsed)) {
        throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", `${operation}: HTTP ${response.status} body is not a JSON object`);
      }
      fields = parsed;
    }
    if (response.status === 200 || response.status === 204) return { status: response.status, fields };
    // 202 (USER_PAYING) and every 4xx carry {code, message}.
    const error = { code: text(fields.code) ?? `HTTP_${response.status}`, message: text(fields.message) ?? "" };
    return { status: response.status, fields, error };
  }

  function rejected(operation: string, error: { code: string; message: string }): ChannelRejectedError {
    return new ChannelRejectedError("wechatpay", error.code, `${operation}: ${describeError(error)}`);
  }

  function answerAmount(value: unknown, operation: string, name: string): bigint {
    const amount = fromWechatAmount(value);
    if (amount === undefined) {
      throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", `${operation}: ${name} is not an amount: ${JSON.stringify(value)}`);
    }
    return amount;
  }

  function refundStatusOf(fields: Json, operation: string): ChannelRefundStatus {
    const status = text(fields.status) ?? "";
    const state = mapWechatRefundStatus(status);
    if (!state) throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", `${operation}: unknown refund status ${JSON.stringify(status)}`);
    const result: ChannelRefundStatus = { state, detail: status };
    const refundId = text(fields.refund_id);
    if (refundId) result.channelRefundNo = refundId;
    return result;
  }

  const tradePath = (paymentNo: string) => `/v3/pay/transactions/out-trade-no/${encodeURIComponent(paymentNo)}`;

  async function queryPayment(trade: ChannelTradeRef): Promise<ChannelTradeStatus> {
    const operation = "query order";
    const answer = await call(operation, "GET", `${tradePath(trade.paymentNo)}?mchid=${encodeURIComponent(config.mchId)}`);
    if (answer.error) {
      if (NOT_FOUND_CODES.has(answer.error.code)) return { state: "not_found", detail: describeError(answer.error) };
      throw rejected(operation, answer.error);
    }
    const fields = answer.fields;
    const tradeState = text(fields.trade_state) ?? "";
    const state = mapWechatTradeState(tradeState);
    if (!state) throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", `${operation}: unknown trade_state ${JSON.stringify(tradeState)}`);
    const description = text(fields.trade_state_desc);
    const status: ChannelTradeStatus = { state, detail: description ? `${tradeState} (${description})` : tradeState };
    const transactionId = text(fields.transaction_id);
    if (transactionId) status.channelTradeNo = transactionId;
    if (isObject(fields.amount)) {
      if (fields.amount.total !== undefined) status.amountMinor = answerAmount(fields.amount.total, operation, "amount.total");
      status.currency = text(fields.amount.currency) ?? "CNY";
    }
    const paidAt = state === "succeeded" ? parseWechatTime(fields.success_time) : undefined;
    if (paidAt) status.paidAt = paidAt;
    return status;
  }

  async function queryRefund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
    const operation = "query refund";
    const answer = await call(operation, "GET", `/v3/refund/domestic/refunds/${encodeURIComponent(request.refundNo)}`);
    if (answer.error) {
      if (NOT_FOUND_CODES.has(answer.error.code)) {
        return { state: "not_found", detail: "refund not found at WeChat Pay" };
      }
      throw rejected(operation, answer.error);
    }
    return refundStatusOf(answer.fields, operation);
  }

  async function downloadBill(billDate: string, downloadUrl: string, hashType: string, hashValue: string): Promise<BillRecord[]> {
    const operation = "download trade bill";
    if (hashType !== "SHA1" || !/^[0-9a-fA-F]{40}$/.test(hashValue)) {
      throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", `apply trade bill: unsupported hash ${hashType} ${JSON.stringify(hashValue)}`);
    }
    let url: URL;
    try {
      url = new URL(downloadUrl);
    } catch {
      throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", "apply trade bill: download_url is not a URL");
    }
    // The file is not signed (WeChat sends no Wechatpay-* headers on it): the SHA1 from the signed answer vouches for it.
    const response = await send(operation, "GET", url, "", Math.max(timeoutMs, BILL_DOWNLOAD_TIMEOUT_MS));
    if (response.status !== 200) {
      throw new ChannelUnavailableError("wechatpay", `${operation}: HTTP ${response.status} (unverified code ${unverifiedCode(response.body)})`);
    }
    const actual = createHash("sha1").update(response.body).digest();
    if (!timingSafeEqual(actual, Buffer.from(hashValue, "hex"))) {
      throw new ChannelUnavailableError("wechatpay", `${operation}: bill for ${billDate} does not match its SHA1 (truncated or altered); fetch it again`);
    }
    try {
      return parseWechatTradeBill(response.body.toString("utf8"));
    } catch (error) {
      throw new ChannelRejectedError("wechatpay", "BILL_UNREADABLE", `bill for ${billDate}: ${(error as Error).message}`);
    }
  }

  function parseResource(envelope: Json): Json {
    const resource = envelope.resource;
    if (!isObject(resource)) throw new CallbackRejectedError("wechatpay", "malformed_body");
    if (resource.algorithm !== WECHATPAY_RESOURCE_ALGORITHM) throw new CallbackRejectedError("wechatpay", "unsupported_algorithm");
    let plaintext: string;
    try {
      plaintext = decryptResource(
        {
          ciphertext: resource.ciphertext as string,
          nonce: resource.nonce as string,
          associated_data: typeof resource.associated_data === "string" ? resource.associated_data : "",
        },
        config.apiV3Key,
      );
    } catch {
      throw new CallbackRejectedError("wechatpay", "decrypt_failed");
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(plaintext);
    } catch {
      parsed = undefined;
    }
    if (!isObject(parsed)) throw new CallbackRejectedError("wechatpay", "malformed_resource");
    if (parsed.mchid !== config.mchId) throw new CallbackRejectedError("wechatpay", "mchid_mismatch");
    // Refund resources carry no appid; transaction resources must carry ours.
    if (parsed.appid !== undefined && parsed.appid !== config.appId) throw new CallbackRejectedError("wechatpay", "appid_mismatch");
    return parsed;
  }

  function callbackAmount(value: unknown): bigint {
    const amount = fromWechatAmount(value);
    if (amount === undefined) throw new CallbackRejectedError("wechatpay", "bad_amount");
    return amount;
  }

  return {
    name: "wechatpay",

    async createPayment(request: ChannelCreatePaymentRequest): Promise<ChannelPaymentCreated> {
      const operation = "native order";
      requireCny(request.currency, operation);
      const answer = await call(operation, "POST", "/v3/pay/transactions/native", {
        appid: config.appId,
        mchid: config.mchId,
        description: request.subject,
        out_trade_no: request.paymentNo,
        time_expire: toWechatTime(request.expiresAt),
        notify_url: request.notifyUrl,
        amount: { total: wireAmount(request.amountMinor, operation, "amount"), currency: "CNY" },
      });
      if (answer.error) {
        // Already paid under this out_trade_no: not a rejection of the payment; the next query settles it.
        if (answer.error.code === "ORDERPAID") {
          throw new ChannelUnavailableError("wechatpay", `${operation}: ${describeError(answer.error)}; query the order for its outcome`);
        }
        throw rejected(operation, answer.error);
      }
      const codeUrl = text(answer.fields.code_url);
      if (!codeUrl) throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", `${operation}: success without code_url`);
      return { action: { kind: "code_url", value: codeUrl } };
    },

    queryPayment,

    async closePayment(trade: ChannelTradeRef): Promise<void> {
      const operation = "close order";
      const answer = await call(operation, "POST", `${tradePath(trade.paymentNo)}/close`, { mchid: config.mchId });
      if (!answer.error) return;
      const code = answer.error.code;
      if (code === "ORDERPAID") throw new ChannelTradePaidError("wechatpay");
      if (code === "ORDER_CLOSED" || NOT_FOUND_CODES.has(code)) return;
      // The shopper is entering a password right now: closing may be possible in a moment.
      if (code === "USER_PAYING") throw new ChannelUnavailableError("wechatpay", `${operation}: ${describeError(answer.error)}`);
      throw rejected(operation, answer.error);
    },

    async refund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const operation = "refund";
      requireCny(request.trade.currency, operation);
      const payload: Json = {
        out_trade_no: request.trade.paymentNo,
        out_refund_no: request.refundNo,
        notify_url: request.notifyUrl,
        amount: {
          refund: wireAmount(request.amountMinor, operation, "refund amount"),
          total: wireAmount(request.trade.amountMinor, operation, "order amount"),
          currency: "CNY",
        },
      };
      if (request.reason) payload.reason = request.reason;
      const answer = await call(operation, "POST", "/v3/refund/domestic/refunds", payload);
      if (answer.error) throw rejected(operation, answer.error);
      return refundStatusOf(answer.fields, operation);
    },

    queryRefund,

    parseCallback(request: CallbackRequest): ChannelNotification {
      const check = verifyWechatSignature({
        headers: request.headers,
        body: request.rawBody,
        publicKey: platformKey,
        publicKeyId: config.publicKeyId,
      });
      if (!check.ok) throw new CallbackRejectedError("wechatpay", check.reason);

      let envelope: unknown;
      try {
        envelope = JSON.parse(request.rawBody.toString("utf8"));
      } catch {
        envelope = undefined;
      }
      if (!isObject(envelope)) throw new CallbackRejectedError("wechatpay", "malformed_body");
      const notificationId = text(envelope.id);
      const eventType = text(envelope.event_type);
      if (!notificationId || !eventType) throw new CallbackRejectedError("wechatpay", "malformed_body");
      const E = WECHATPAY_EVENT_TYPES;

      if (eventType === E.transactionSuccess) {
        const transaction = parseResource(envelope);
        const paymentNo = text(transaction.out_trade_no);
        if (!paymentNo) throw new CallbackRejectedError("wechatpay", "missing_out_trade_no");
        const tradeState = text(transaction.trade_state) ?? "";
        const state = mapWechatTradeState(tradeState);
        if (!state) return { kind: "ignored", notificationId, channelStatus: `${eventType}:${tradeState || "no trade_state"}` };
        const amount = isObject(transaction.amount) ? transaction.amount : {};
        const notification: PaymentNotification = {
          kind: "payment",
          notificationId,
          paymentNo,
          state,
          amountMinor: callbackAmount(amount.total),
          currency: text(amount.currency) ?? "CNY",
          channelStatus: tradeState,
        };
        const transactionId = text(transaction.transaction_id);
        if (transactionId) notification.channelTradeNo = transactionId;
        const paidAt = state === "succeeded" ? parseWechatTime(transaction.success_time) : undefined;
        if (paidAt) notification.paidAt = paidAt;
        return notification;
      }

      if (eventType === E.refundSuccess || eventType === E.refundAbnormal || eventType === E.refundClosed) {
        const refund = parseResource(envelope);
        const paymentNo = text(refund.out_trade_no);
        const refundNo = text(refund.out_refund_no);
        if (!paymentNo || !refundNo) throw new CallbackRejectedError("wechatpay", "missing_out_refund_no");
        const amount = isObject(refund.amount) ? refund.amount : {};
        const notification: RefundNotification = {
          kind: "refund",
          notificationId,
          paymentNo,
          refundNo,
          state: eventType === E.refundSuccess ? "succeeded" : "failed",
          amountMinor: callbackAmount(amount.refund),
          channelStatus: text(refund.refund_status) ?? eventType,
        };
        const refundId = text(refund.refund_id);
        if (refundId) notification.channelRefundNo = refundId;
        return notification;
      }

      return { kind: "ignored", notificationId, channelStatus: eventType };
    },

    acceptAnswer(): CallbackAnswer {
      return { status: 204, contentType: "text/plain", body: "" };
    },

    rejectAnswer(reason: string): CallbackAnswer {
      const message = reason.length > MAX_ANSWER_REASON_LENGTH ? `${reason.slice(0, MAX_ANSWER_REASON_LENGTH)}...` : reason;
      return { status: 400, contentType: "application/json", body: JSON.stringify({ code: "FAIL", message }) };
    },

    async fetchBill(billDate: string): Promise<BillRecord[]> {
      const operation = "apply trade bill";
      if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate)) {
        throw new ChannelRejectedError("wechatpay", "INVALID_BILL_DATE", `${operation}: bill date must be yyyy-MM-dd, got ${JSON.stringify(billDate)}`);
      }
      const answer = await call(operation, "GET", `/v3/bill/tradebill?bill_date=${billDate}&bill_type=ALL`);
      if (answer.error) {
        // WeChat's word for "no trade or refund that day"; STATEMENT_CREATING means "ask again after 10:00".
        if (answer.error.code === "NO_STATEMENT_EXIST") return [];
        if (answer.error.code === "STATEMENT_CREATING") {
          throw new ChannelUnavailableError("wechatpay", `${operation}: bill for ${billDate} is still being generated`);
        }
        throw rejected(operation, answer.error);
      }
      const downloadUrl = text(answer.fields.download_url);
      const hashType = text(answer.fields.hash_type);
      const hashValue = text(answer.fields.hash_value);
      if (!downloadUrl || !hashType || !hashValue) {
        throw new ChannelAnswerUntrustedError("wechatpay", "UNEXPECTED_RESPONSE", `${operation}: success without download_url/hash_type/hash_value`);
      }
      return downloadBill(billDate, downloadUrl, hashType, hashValue);
    },
  };
}
