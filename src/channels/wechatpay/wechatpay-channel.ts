/**
 * WeChat Pay API v3 adapter (direct merchant, public-key mode): Native (QR) payments, query,
 * close, refund, refund query, encrypted callbacks and the daily trade bill. Every request carries
 * a SHA256withRSA `Authorization` header; every answer acted upon is signature-checked first.
 */
import type { KeyObject } from "node:crypto";
import { emptyBillFile, fetchBillFile, isBillDate, openCallerBillFile } from "../bill-file.js";
import {
  type BillFile,
  type CallbackAnswer,
  CallbackRejectedError,
  type CallbackRequest,
  type ChannelCreatePaymentRequest,
  type ChannelNotification,
  type ChannelPaymentCreated,
  type ChannelRefundRequest,
  type ChannelRefundStatus,
  type ChannelTradeRef,
  type ChannelTradeStatus,
  ChannelTradePaidError,
  type PaymentChannel,
  type PaymentNotification,
  type RefundNotification,
} from "../channel.js";
import { type ChannelCallName, createChannelCaller } from "../channel-call.js";
import { isWireObject, parseWireObject, textOf, type WireObject as Json } from "../wire-fields.js";
import { readWechatBill } from "./wechatpay-bill.js";
import { createWechatPayPayouts } from "./wechatpay-payouts.js";
import {
  buildAuthorization,
  decryptResource,
  loadWechatPrivateKey,
  loadWechatPublicKey,
  verifyWechatSignature,
  WECHATPAY_RESOURCE_ALGORITHM,
} from "./wechatpay-signature.js";
import { parseWechatTime, toWechatTime } from "./wechatpay-time.js";
import {
  createWechatPayProtocol,
  fromWechatAmount,
  mapWechatTradeState,
  readCloseAnswer,
  readNativeOrderAnswer,
  readRefund,
  readTradeBillAnswer,
  readTransaction,
  toWechatAmount,
  type WechatRefund,
  type WechatTradeBillAnswer,
} from "./wechatpay-wire.js";

export { fromWechatAmount, mapWechatRefundStatus, mapWechatTradeState, toWechatAmount } from "./wechatpay-wire.js";

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

/** The API calls, by the {@link PaymentChannel} method each serves. */
const CALLS = Object.freeze({
  nativeOrder: { operation: "createPayment", wireMethod: "POST /v3/pay/transactions/native" },
  queryOrder: { operation: "queryPayment", wireMethod: "GET /v3/pay/transactions/out-trade-no/{out_trade_no}" },
  closeOrder: { operation: "closePayment", wireMethod: "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close" },
  refund: { operation: "refund", wireMethod: "POST /v3/refund/domestic/refunds" },
  queryRefund: { operation: "queryRefund", wireMethod: "GET /v3/refund/domestic/refunds/{out_refund_no}" },
  tradeBill: { operation: "fetchBill", wireMethod: "GET /v3/bill/tradebill" },
  billDownload: { operation: "fetchBill", wireMethod: "bill download" },
} satisfies Record<string, ChannelCallName>);

/** Creates the WeChat Pay {@link PaymentChannel}. Keys are parsed here, so a bad key fails at start. */
export function createWechatPayChannel(config: WechatPayChannelConfig): PaymentChannel {
  const merchantKey: KeyObject = loadWechatPrivateKey(config.mchPrivateKeyPem);
  const platformKey: KeyObject = loadWechatPublicKey(config.platformPublicKeyPem);
  if (Buffer.byteLength(config.apiV3Key, "utf8") !== 32) throw new RangeError("WeChat Pay APIv3 key must be exactly 32 bytes");
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const baseUrl = config.baseUrl.replace(/\/+$/, "");
  const api = createChannelCaller(createWechatPayProtocol({ platformKey, publicKeyId: config.publicKeyId }, timeoutMs));

  /** A request with the merchant's `Authorization` signature over method, path, query and body. */
  function signedRequest(method: "GET" | "POST", url: URL, payload?: Json) {
    const body = payload === undefined ? "" : JSON.stringify(payload);
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
    return { method, url: url.href, headers, body: method === "POST" ? body : undefined };
  }

  const apiUrl = (pathWithQuery: string) => new URL(`${baseUrl}${pathWithQuery}`);

  function requireCny(currency: string, name: ChannelCallName): void {
    if (currency !== "CNY") {
      throw api.rejected(name, { code: "CURRENCY_NOT_SUPPORTED", message: `WeChat Pay takes CNY only, got ${currency}` });
    }
  }

  function wireAmount(amountMinor: bigint, name: ChannelCallName, what: string): number {
    try {
      return toWechatAmount(amountMinor);
    } catch (error) {
      throw api.rejected(name, { code: "AMOUNT_OUT_OF_RANGE", message: `${what}: ${(error as Error).message}` });
    }
  }

  function refundStatusOf(refund: WechatRefund): ChannelRefundStatus {
    const result: ChannelRefundStatus = { state: refund.state, detail: refund.status };
    if (refund.refundId) result.channelRefundNo = refund.refundId;
    return result;
  }

  const tradePath = (paymentNo: string) => `/v3/pay/transactions/out-trade-no/${encodeURIComponent(paymentNo)}`;

  async function queryPayment(trade: ChannelTradeRef): Promise<ChannelTradeStatus> {
    const name = CALLS.queryOrder;
    const url = apiUrl(`${tradePath(trade.paymentNo)}?mchid=${encodeURIComponent(config.mchId)}`);
    const outcome = await api.call({ ...name, request: signedRequest("GET", url), decode: readTransaction });
    if (!outcome.ok) {
      if (NOT_FOUND_CODES.has(outcome.failure.code)) return { state: "not_found", detail: outcome.failure.message };
      throw api.rejected(name, outcome.failure);
    }
    const transaction = outcome.value;
    const { tradeState, tradeStateDesc, state } = transaction;
    const status: ChannelTradeStatus = { state, detail: tradeStateDesc ? `${tradeState} (${tradeStateDesc})` : tradeState };
    if (transaction.transactionId) status.channelTradeNo = transaction.transactionId;
    if (transaction.amount) {
      if (transaction.amount.totalMinor !== undefined) status.amountMinor = transaction.amount.totalMinor;
      status.currency = transaction.amount.currency;
    }
    if (state === "succeeded" && transaction.successTime) status.paidAt = transaction.successTime;
    return status;
  }

  async function queryRefund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
    const name = CALLS.queryRefund;
    const url = apiUrl(`/v3/refund/domestic/refunds/${encodeURIComponent(request.refundNo)}`);
    const outcome = await api.call({ ...name, request: signedRequest("GET", url), decode: readRefund });
    if (!outcome.ok) {
      if (NOT_FOUND_CODES.has(outcome.failure.code)) return { state: "not_found", detail: "refund not found at WeChat Pay" };
      throw api.rejected(name, outcome.failure);
    }
    return refundStatusOf(outcome.value);
  }

  function downloadBill(billDate: string, bill: WechatTradeBillAnswer): Promise<BillFile> {
    const name = CALLS.billDownload;
    if (bill.hashType !== "SHA1" || !/^[0-9a-fA-F]{40}$/.test(bill.hashValue)) {
      throw api.unexpected(CALLS.tradeBill, `unsupported hash ${bill.hashType} ${JSON.stringify(bill.hashValue)}`);
    }
    let url: URL;
    try {
      url = new URL(bill.downloadUrl);
    } catch {
      throw api.unexpected(CALLS.tradeBill, "download_url is not a URL");
    }
    // The file is not signed (WeChat sends no Wechatpay-* headers on it): the SHA1 from the signed answer vouches for it.
    return fetchBillFile({
      channel: "wechatpay",
      billDate,
      fileName: `wechatpay-${billDate}.csv`,
      url: url.href,
      headers: signedRequest("GET", url).headers,
      idleTimeoutMs: Math.max(timeoutMs, BILL_DOWNLOAD_TIMEOUT_MS),
      sha1: bill.hashValue,
      read: (path) => readWechatBill(path, billDate),
      unavailable: (detail, cause, body) =>
        api.unavailable(name, body === undefined ? detail : `${detail} (unverified code ${textOf(parseWireObject(body)?.code) ?? "none"})`, { cause }),
    });
  }

  function parseResource(envelope: Json): Json {
    const resource = envelope.resource;
    if (!isWireObject(resource)) throw new CallbackRejectedError("wechatpay", "malformed_body");
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
    const parsed = parseWireObject(plaintext);
    if (!parsed) throw new CallbackRejectedError("wechatpay", "malformed_resource");
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

    payouts: createWechatPayPayouts({ api, signedRequest, apiUrl, appId: config.appId, platformKey, publicKeyId: config.publicKeyId }),

    async createPayment(request: ChannelCreatePaymentRequest): Promise<ChannelPaymentCreated> {
      const name = CALLS.nativeOrder;
      requireCny(request.currency, name);
      const order = {
        appid: config.appId,
        mchid: config.mchId,
        description: request.subject,
        out_trade_no: request.paymentNo,
        time_expire: toWechatTime(request.expiresAt),
        notify_url: request.notifyUrl,
        amount: { total: wireAmount(request.amountMinor, name, "amount"), currency: "CNY" },
      };
      const outcome = await api.call({ ...name, request: signedRequest("POST", apiUrl("/v3/pay/transactions/native"), order), decode: readNativeOrderAnswer });
      if (!outcome.ok) {
        // Already paid under this out_trade_no: not a rejection of the payment; the next query settles it.
        if (outcome.failure.code === "ORDERPAID") throw api.unavailable(name, `${outcome.failure.message}; query the order for its outcome`);
        throw api.rejected(name, outcome.failure);
      }
      return { action: { kind: "code_url", value: outcome.value.codeUrl } };
    },

    queryPayment,

    async closePayment(trade: ChannelTradeRef): Promise<void> {
      const name = CALLS.closeOrder;
      const url = apiUrl(`${tradePath(trade.paymentNo)}/close`);
      const outcome = await api.call({ ...name, request: signedRequest("POST", url, { mchid: config.mchId }), decode: readCloseAnswer });
      if (outcome.ok) return;
      const { code } = outcome.failure;
      if (code === "ORDERPAID") throw new ChannelTradePaidError("wechatpay");
      if (code === "ORDER_CLOSED" || NOT_FOUND_CODES.has(code)) return;
      // The shopper is entering a password right now: closing may be possible in a moment.
      if (code === "USER_PAYING") throw api.unavailable(name, outcome.failure.message);
      throw api.rejected(name, outcome.failure);
    },

    async refund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const name = CALLS.refund;
      requireCny(request.trade.currency, name);
      const payload: Json = {
        out_trade_no: request.trade.paymentNo,
        out_refund_no: request.refundNo,
        notify_url: request.notifyUrl,
        amount: {
          refund: wireAmount(request.amountMinor, name, "refund amount"),
          total: wireAmount(request.trade.amountMinor, name, "order amount"),
          currency: "CNY",
        },
      };
      if (request.reason) payload.reason = request.reason;
      const refund = await api.callOrReject({ ...name, request: signedRequest("POST", apiUrl("/v3/refund/domestic/refunds"), payload), decode: readRefund });
      return refundStatusOf(refund);
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

      const envelope = parseWireObject(request.rawBody);
      if (!envelope) throw new CallbackRejectedError("wechatpay", "malformed_body");
      const notificationId = textOf(envelope.id);
      const eventType = textOf(envelope.event_type);
      if (!notificationId || !eventType) throw new CallbackRejectedError("wechatpay", "malformed_body");
      const E = WECHATPAY_EVENT_TYPES;

      if (eventType === E.transactionSuccess) {
        const transaction = parseResource(envelope);
        const paymentNo = textOf(transaction.out_trade_no);
        if (!paymentNo) throw new CallbackRejectedError("wechatpay", "missing_out_trade_no");
        const tradeState = textOf(transaction.trade_state) ?? "";
        const state = mapWechatTradeState(tradeState);
        if (!state) return { kind: "ignored", notificationId, channelStatus: `${eventType}:${tradeState || "no trade_state"}` };
        const amount = isWireObject(transaction.amount) ? transaction.amount : {};
        const notification: PaymentNotification = {
          kind: "payment",
          notificationId,
          paymentNo,
          state,
          amountMinor: callbackAmount(amount.total),
          currency: textOf(amount.currency) ?? "CNY",
          channelStatus: tradeState,
        };
        const transactionId = textOf(transaction.transaction_id);
        if (transactionId) notification.channelTradeNo = transactionId;
        const paidAt = state === "succeeded" ? parseWechatTime(transaction.success_time) : undefined;
        if (paidAt) notification.paidAt = paidAt;
        return notification;
      }

      if (eventType === E.refundSuccess || eventType === E.refundAbnormal || eventType === E.refundClosed) {
        const refund = parseResource(envelope);
        const paymentNo = textOf(refund.out_trade_no);
        const refundNo = textOf(refund.out_refund_no);
        if (!paymentNo || !refundNo) throw new CallbackRejectedError("wechatpay", "missing_out_refund_no");
        const amount = isWireObject(refund.amount) ? refund.amount : {};
        const notification: RefundNotification = {
          kind: "refund",
          notificationId,
          paymentNo,
          refundNo,
          state: eventType === E.refundSuccess ? "succeeded" : "failed",
          amountMinor: callbackAmount(amount.refund),
          channelStatus: textOf(refund.refund_status) ?? eventType,
        };
        const refundId = textOf(refund.refund_id);
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

    async fetchBill(billDate: string): Promise<BillFile> {
      const name = CALLS.tradeBill;
      if (!isBillDate(billDate)) {
        throw api.rejected(name, { code: "INVALID_BILL_DATE", message: `bill date must be yyyy-MM-dd, got ${JSON.stringify(billDate)}` });
      }
      const url = apiUrl(`/v3/bill/tradebill?bill_date=${billDate}&bill_type=ALL`);
      const outcome = await api.call({ ...name, request: signedRequest("GET", url), decode: readTradeBillAnswer });
      if (!outcome.ok) {
        // WeChat's word for "no trade or refund that day"; STATEMENT_CREATING means "ask again after 10:00".
        if (outcome.failure.code === "NO_STATEMENT_EXIST") return emptyBillFile("wechatpay", billDate);
        if (outcome.failure.code === "STATEMENT_CREATING") throw api.unavailable(name, `bill for ${billDate} is still being generated`);
        throw api.rejected(name, outcome.failure);
      }
      return downloadBill(billDate, outcome.value);
    },

    openBillFile(path: string, billDate: string, options?: { sha1?: string }): Promise<BillFile> {
      return openCallerBillFile("wechatpay", path, billDate, options, (file) => readWechatBill(file, billDate));
    },
  };
}
