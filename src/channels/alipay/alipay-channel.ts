/**
 * Alipay adapter: QR payments (`alipay.trade.precreate`), query, close, refund, refund query,
 * asynchronous notifies and the daily trade bill, over the open-platform gateway with RSA2.
 */
import type { KeyObject } from "node:crypto";
import { formatMinor, parseMinor } from "../../money/currency.js";
import {
  type CallbackAnswer,
  CallbackRejectedError,
  type CallbackRequest,
  type ChannelCreatePaymentRequest,
  type ChannelNotification,
  type ChannelPaymentCreated,
  ChannelRejectedError,
  type ChannelRefundRequest,
  type ChannelRefundStatus,
  type ChannelTradeRef,
  type ChannelTradeState,
  type ChannelTradeStatus,
  ChannelTradePaidError,
  ChannelUnavailableError,
  type BillRecord,
  type PaymentChannel,
  type PaymentNotification,
  ChannelAnswerUntrustedError,
} from "../channel.js";
import { type HttpRequest, type HttpResponse, HttpTransportError, sendHttpRequest } from "../http-client.js";
import { parseAlipayTradeBill } from "./alipay-bill.js";
import {
  loadAlipayPrivateKey,
  loadAlipayPublicKey,
  signRequestParams,
  splitGatewayResponse,
  verifyGatewayResponse,
  verifyNotifyParams,
} from "./alipay-signature.js";
import { parseAlipayTime, toAlipayTime } from "./alipay-time.js";

/** Alipay's China-time formats, re-exported for callers of the adapter. */
export { parseAlipayTime, toAlipayDate, toAlipayTime } from "./alipay-time.js";

/** How to reach Alipay and prove who we are. Keys are PEM text (or Alipay's bare base64 form). */
export interface AlipayChannelConfig {
  /** Full gateway URL, e.g. `https://openapi.alipay.com/gateway.do` or `{simulator}/alipay/gateway.do`. */
  gatewayUrl: string;
  appId: string;
  appPrivateKeyPem: string;
  /** Alipay's public key (not the app's): verifies responses and notifies. */
  alipayPublicKeyPem: string;
  /** When set, notifies for another seller are rejected. */
  sellerId?: string;
  /** Per-call deadline for gateway calls; default 10 s. */
  timeoutMs?: number;
}

/** Gateway `code` values (`40004` is a business failure with a `sub_code`). */
export const ALIPAY_CODE = Object.freeze({
  success: "10000",
  waitingForBuyer: "10003",
  unavailable: "20000",
  businessFailed: "40004",
});

/** Alipay's amount limits for one trade, in fen: 0.01 to 100,000,000.00 yuan. */
export const ALIPAY_MIN_AMOUNT_MINOR = 1n;
export const ALIPAY_MAX_AMOUNT_MINOR = 10_000_000_000n;

const DEFAULT_TIMEOUT_MS = 10_000;
const BILL_DOWNLOAD_TIMEOUT_MS = 60_000;

/** Sub-codes a close answers with when the trade is not waiting for payment (paid, finished or closed). */
const CLOSE_WRONG_STATE_SUB_CODES = new Set([
  "ACQ.TRADE_STATUS_ERROR",
  "ACQ.REASON_ILLEGAL_STATUS",
  "ACQ.REASON_TRADE_STATUS_INVALID",
  "ACQ.TRADE_HAS_SUCCESS",
  "ACQ.TRADE_HAS_FINISHED",
]);

/** A decoded gateway answer whose signature verified. */
interface GatewayAnswer {
  code: string;
  msg: string;
  subCode?: string;
  subMsg?: string;
  fields: Record<string, unknown>;
}

/** Alipay's trade status → our normalised state. Undefined for a status we do not know. */
export function mapAlipayTradeStatus(tradeStatus: string): ChannelTradeState | undefined {
  switch (tradeStatus) {
    case "WAIT_BUYER_PAY":
      return "pending";
    case "TRADE_SUCCESS":
    case "TRADE_FINISHED":
      return "succeeded";
    case "TRADE_CLOSED":
      return "closed";
    default:
      return undefined;
  }
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function requireCny(currency: string, what: string): void {
  if (currency !== "CNY") {
    throw new ChannelRejectedError("alipay", "CURRENCY_NOT_SUPPORTED", `${what}: Alipay settles CNY only, got ${currency}`);
  }
}

/** Creates the Alipay {@link PaymentChannel}. Keys are parsed here, so a bad key fails at start. */
export function createAlipayChannel(config: AlipayChannelConfig): PaymentChannel {
  const appPrivateKey: KeyObject = loadAlipayPrivateKey(config.appPrivateKeyPem);
  const alipayPublicKey: KeyObject = loadAlipayPublicKey(config.alipayPublicKeyPem);
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  async function callGateway(method: string, biz: Record<string, unknown>, notifyUrl?: string): Promise<GatewayAnswer> {
    const params: Record<string, string> = {
      app_id: config.appId,
      method,
      format: "JSON",
      charset: "utf-8",
      sign_type: "RSA2",
      timestamp: toAlipayTime(new Date()),
      version: "1.0",
      biz_content: JSON.stringify(biz),
    };
    if (notifyUrl) params.notify_url = notifyUrl;
    params.sign = signRequestParams(params, appPrivateKey);

    const response = await send(method, {
      method: "POST",
      url: config.gatewayUrl,
      headers: { "content-type": "application/x-www-form-urlencoded;charset=utf-8", accept: "application/json" },
      body: new URLSearchParams(params).toString(),
      timeoutMs,
    });
    if (response.status >= 500 || response.status === 429) {
      throw new ChannelUnavailableError("alipay", `${method}: gateway answered HTTP ${response.status}`);
    }
    if (response.status !== 200) {
      throw new ChannelRejectedError("alipay", `HTTP_${response.status}`, `${method}: gateway answered HTTP ${response.status}`);
    }

    const parts = splitGatewayResponse(response.body.toString("utf8"), method);
    if (!parts) throw new ChannelUnavailableError("alipay", `${method}: gateway answer is not an Alipay response envelope`);
    if (!verifyGatewayResponse(parts, alipayPublicKey)) {
      throw new ChannelAnswerUntrustedError("alipay", "RESPONSE_SIGNATURE_INVALID",
        `${method}: ${parts.sign ? "response signature does not verify" : "response is unsigned"} with the configured Alipay public key` +
          ` (unverified content claims code ${unverifiedCode(parts.responseText)}); check ALIPAY_PUBLIC_KEY`,
      );
    }
    const fields = parseObject(parts.responseText);
    if (!fields) throw new ChannelAnswerUntrustedError("alipay", "UNEXPECTED_RESPONSE", `${method}: ${parts.responseKey} is not a JSON object`);
    const answer: GatewayAnswer = { code: text(fields.code) ?? "", msg: text(fields.msg) ?? "", fields };
    const subCode = text(fields.sub_code);
    const subMsg = text(fields.sub_msg);
    if (subCode) answer.subCode = subCode;
    if (subMsg) answer.subMsg = subMsg;

    // 20000 and ACQ.SYSTEM_ERROR both mean "try again with the same parameters".
    if (answer.code === ALIPAY_CODE.unavailable || answer.subCode === "ACQ.SYSTEM_ERROR") {
      throw new ChannelUnavailableError("alipay", `${method}: ${describe(answer)}`);
    }
    return answer;
  }

  function rejected(method: string, answer: GatewayAnswer): ChannelRejectedError {
    return new ChannelRejectedError("alipay", answer.subCode ?? answer.code, `${method}: ${describe(answer)}`);
  }

  function amountField(answer: GatewayAnswer, name: string, method: string): bigint | undefined {
    const value = text(answer.fields[name]);
    if (value === undefined) return undefined;
    try {
      return parseMinor(value, "CNY");
    } catch {
      throw new ChannelAnswerUntrustedError("alipay", "UNEXPECTED_RESPONSE", `${method}: ${name} is not an amount: ${JSON.stringify(value)}`);
    }
  }

  function tradeBiz(trade: ChannelTradeRef): Record<string, unknown> {
    return trade.channelTradeNo ? { out_trade_no: trade.paymentNo, trade_no: trade.channelTradeNo } : { out_trade_no: trade.paymentNo };
  }

  async function queryPayment(trade: ChannelTradeRef): Promise<ChannelTradeStatus> {
    const method = "alipay.trade.query";
    const answer = await callGateway(method, tradeBiz(trade));
    if (answer.code !== ALIPAY_CODE.success) {
      // A precreated trade exists at Alipay only once the shopper scans the QR code.
      if (answer.subCode === "ACQ.TRADE_NOT_EXIST") return { state: "not_found", detail: describe(answer) };
      throw rejected(method, answer);
    }
    const tradeStatus = text(answer.fields.trade_status) ?? "";
    let state = mapAlipayTradeStatus(tradeStatus);
    if (!state) {
      throw new ChannelAnswerUntrustedError("alipay", "UNEXPECTED_RESPONSE", `${method}: unknown trade_status ${JSON.stringify(tradeStatus)}`);
    }
    const paidAt = parseAlipayTime(text(answer.fields.send_pay_date));
    // A fully refunded trade is TRADE_CLOSED too; a payment date tells it apart from one never paid.
    if (state === "closed" && paidAt) state = "succeeded";
    const status: ChannelTradeStatus = { state, currency: "CNY", detail: tradeStatus };
    const channelTradeNo = text(answer.fields.trade_no);
    if (channelTradeNo) status.channelTradeNo = channelTradeNo;
    const amountMinor = amountField(answer, "total_amount", method);
    if (amountMinor !== undefined) status.amountMinor = amountMinor;
    if (paidAt && state === "succeeded") status.paidAt = paidAt;
    return status;
  }

  async function queryRefund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
    const method = "alipay.trade.fastpay.refund.query";
    const answer = await callGateway(method, {
      ...tradeBiz(request.trade),
      out_request_no: request.refundNo,
      query_options: ["gmt_refund_pay"],
    });
    if (answer.code !== ALIPAY_CODE.success) {
      if (answer.subCode === "ACQ.TRADE_NOT_EXIST") return { state: "not_found", detail: describe(answer) };
      throw rejected(method, answer);
    }
    // 10000 only means the query ran: no refund_amount means Alipay has no such refund.
    if (text(answer.fields.refund_amount) === undefined) {
      return { state: "not_found", detail: "refund not found at Alipay" };
    }
    const refundStatus = text(answer.fields.refund_status);
    return refundStatus === "REFUND_SUCCESS"
      ? { state: "succeeded", detail: refundStatus }
      : { state: "processing", detail: refundStatus ?? "no refund_status yet" };
  }

  return {
    name: "alipay",

    async createPayment(request: ChannelCreatePaymentRequest): Promise<ChannelPaymentCreated> {
      const method = "alipay.trade.precreate";
      requireCny(request.currency, method);
      if (request.amountMinor < ALIPAY_MIN_AMOUNT_MINOR || request.amountMinor > ALIPAY_MAX_AMOUNT_MINOR) {
        throw new ChannelRejectedError(
          "alipay",
          "AMOUNT_OUT_OF_RANGE",
          `${method}: Alipay accepts 0.01 to 100000000.00 CNY, got ${formatMinor(request.amountMinor, "CNY")}`,
        );
      }
      const answer = await callGateway(
        method,
        {
          out_trade_no: request.paymentNo,
          total_amount: formatMinor(request.amountMinor, "CNY"),
          subject: request.subject,
          time_expire: toAlipayTime(request.expiresAt),
          product_code: "FACE_TO_FACE_PAYMENT",
        },
        request.notifyUrl,
      );
      if (answer.code !== ALIPAY_CODE.success) throw rejected(method, answer);
      const qrCode = text(answer.fields.qr_code);
      if (!qrCode) throw new ChannelAnswerUntrustedError("alipay", "UNEXPECTED_RESPONSE", `${method}: success without qr_code`);
      return { action: { kind: "qr_code_url", value: qrCode } };
    },

    queryPayment,

    async closePayment(trade: ChannelTradeRef): Promise<void> {
      const method = "alipay.trade.close";
      const answer = await callGateway(method, tradeBiz(trade));
      if (answer.code === ALIPAY_CODE.success || answer.subCode === "ACQ.TRADE_NOT_EXIST") return;
      if (answer.subCode && CLOSE_WRONG_STATE_SUB_CODES.has(answer.subCode)) {
        // The sub-code only says "not waiting for payment": ask which state it is in.
        const status = await queryPayment(trade);
        if (status.state === "succeeded") throw new ChannelTradePaidError("alipay");
        if (status.state === "closed" || status.state === "not_found") return;
      }
      throw rejected(method, answer);
    },

    async refund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const method = "alipay.trade.refund";
      requireCny(request.trade.currency, method);
      const biz: Record<string, unknown> = {
        ...tradeBiz(request.trade),
        refund_amount: formatMinor(request.amountMinor, "CNY"),
        out_request_no: request.refundNo,
      };
      if (request.reason) biz.refund_reason = request.reason;
      const answer = await callGateway(method, biz);
      if (answer.code === ALIPAY_CODE.businessFailed) return { state: "failed", detail: describe(answer) };
      if (answer.code !== ALIPAY_CODE.success) throw rejected(method, answer);
      if (answer.fields.fund_change === "Y") return { state: "succeeded", detail: "fund_change=Y" };
      // Alipay's rule: fund_change N (a repeated out_request_no, or still in progress) must be confirmed by a refund query.
      const confirmed = await queryRefund(request);
      return confirmed.state === "failed" ? { state: "processing", detail: "accepted, not yet visible to refund query" } : confirmed;
    },

    queryRefund,

    parseCallback(request: CallbackRequest): ChannelNotification {
      const params = decodeForm(request.rawBody);
      if (!params) throw new CallbackRejectedError("alipay", "malformed_body");
      if (params.sign_type !== undefined && params.sign_type !== "RSA2") throw new CallbackRejectedError("alipay", "bad_signature");
      if (!verifyNotifyParams(params, alipayPublicKey)) throw new CallbackRejectedError("alipay", "bad_signature");
      if (params.app_id !== config.appId) throw new CallbackRejectedError("alipay", "app_id_mismatch");
      if (config.sellerId && params.seller_id !== config.sellerId) throw new CallbackRejectedError("alipay", "seller_id_mismatch");

      const notificationId = params.notify_id;
      if (!notificationId) throw new CallbackRejectedError("alipay", "missing_notify_id");
      const tradeStatus = params.trade_status ?? "";
      // Refunds arrive as trade_status_sync too, recognisable by out_biz_no / gmt_refund / refund_fee.
      if (params.out_biz_no || params.gmt_refund || isPositiveAmount(params.refund_fee)) {
        return { kind: "ignored", notificationId, channelStatus: `${tradeStatus}:refund` };
      }
      const state = mapAlipayTradeStatus(tradeStatus);
      if (!state) return { kind: "ignored", notificationId, channelStatus: tradeStatus || "no trade_status" };

      const paymentNo = params.out_trade_no;
      if (!paymentNo) throw new CallbackRejectedError("alipay", "missing_out_trade_no");
      let amountMinor: bigint;
      try {
        amountMinor = parseMinor(params.total_amount ?? "", "CNY");
      } catch {
        throw new CallbackRejectedError("alipay", "bad_total_amount");
      }
      const notification: PaymentNotification = {
        kind: "payment",
        notificationId,
        paymentNo,
        state,
        amountMinor,
        currency: "CNY",
        channelStatus: tradeStatus,
      };
      if (params.trade_no) notification.channelTradeNo = params.trade_no;
      const paidAt = state === "succeeded" ? parseAlipayTime(params.gmt_payment) : undefined;
      if (paidAt) notification.paidAt = paidAt;
      return notification;
    },

    acceptAnswer(): CallbackAnswer {
      return { status: 200, contentType: "text/plain", body: "success" };
    },

    rejectAnswer(_reason: string): CallbackAnswer {
      return { status: 400, contentType: "text/plain", body: "fail" };
    },

    async fetchBill(billDate: string): Promise<BillRecord[]> {
      const method = "alipay.data.dataservice.bill.downloadurl.query";
      if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate)) {
        const got = JSON.stringify(billDate);
        throw new ChannelRejectedError("alipay", "INVALID_BILL_DATE", `${method}: bill date must be yyyy-MM-dd, got ${got}`);
      }
      const answer = await callGateway(method, { bill_type: "trade", bill_date: billDate });
      if (answer.code !== ALIPAY_CODE.success) throw rejected(method, answer);
      const downloadUrl = text(answer.fields.bill_download_url);
      if (!downloadUrl) throw new ChannelAnswerUntrustedError("alipay", "UNEXPECTED_RESPONSE", `${method}: success without bill_download_url`);

      const download = await send("bill download", {
        method: "GET",
        url: downloadUrl,
        timeoutMs: Math.max(timeoutMs, BILL_DOWNLOAD_TIMEOUT_MS),
      });
      if (download.status !== 200) throw new ChannelUnavailableError("alipay", `bill download answered HTTP ${download.status}`);
      try {
        return parseAlipayTradeBill(download.body);
      } catch (error) {
        throw new ChannelRejectedError("alipay", "BILL_UNREADABLE", `bill for ${billDate}: ${(error as Error).message}`);
      }
    },
  };
}

/** Sends a request; transport failures (refused, reset, timeout) become {@link ChannelUnavailableError}. */
async function send(what: string, request: HttpRequest): Promise<HttpResponse> {
  try {
    return await sendHttpRequest(request);
  } catch (error) {
    if (error instanceof HttpTransportError) throw new ChannelUnavailableError("alipay", `${what}: ${error.message}`, { cause: error });
    throw error;
  }
}

function describe(answer: GatewayAnswer): string {
  const sub = answer.subCode ? ` ${answer.subCode}${answer.subMsg ? ` (${answer.subMsg})` : ""}` : "";
  return `${answer.code} ${answer.msg}${sub}`;
}

function parseObject(json: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function unverifiedCode(responseText: string): string {
  const fields = parseObject(responseText);
  return (fields && [text(fields.code), text(fields.sub_code)].filter(Boolean).join(" ")) || "none";
}

function isPositiveAmount(value: string | undefined): boolean {
  if (!value) return false;
  try {
    return parseMinor(value, "CNY") > 0n;
  } catch {
    return false;
  }
}

/** Form-decodes a UTF-8 body; undefined when a parameter repeats (never legitimate in a notify). */
export function decodeForm(rawBody: Buffer): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawBody.toString("utf8"))) {
    if (Object.hasOwn(params, key)) return undefined;
    params[key] = value;
  }
  return params;
}
