/**
 * Alipay adapter: QR payments (`alipay.trade.precreate`), query, close, refund, refund query,
 * asynchronous notifies and the daily trade bill, over the open-platform gateway with RSA2.
 */
import type { KeyObject } from "node:crypto";
import { formatMinor, parseMinor } from "../../money/currency.js";
import { fetchBillFile, isBillDate, openCallerBillFile } from "../bill-file.js";
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
} from "../channel.js";
import { type ChannelCallName, type ChannelCallOutcome, type ChannelOperation, createChannelCaller } from "../channel-call.js";
import type { WireReader } from "../wire-fields.js";
import { readAlipayBill } from "./alipay-bill.js";
import { createAlipayPayouts } from "./alipay-payouts.js";
import { loadAlipayPrivateKey, loadAlipayPublicKey, signRequestParams, verifyNotifyParams } from "./alipay-signature.js";
import { parseAlipayTime, toAlipayTime } from "./alipay-time.js";
import {
  ALIPAY_CODE,
  type AlipayFailure,
  createAlipayProtocol,
  mapAlipayTradeStatus,
  readBillUrlAnswer,
  readCloseAnswer,
  readPrecreateAnswer,
  readRefundAnswer,
  readRefundQueryAnswer,
  readTradeQueryAnswer,
} from "./alipay-wire.js";

export { ALIPAY_CODE, mapAlipayTradeStatus } from "./alipay-wire.js";
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

/** Creates the Alipay {@link PaymentChannel}. Keys are parsed here, so a bad key fails at start. */
export function createAlipayChannel(config: AlipayChannelConfig): PaymentChannel {
  const appPrivateKey: KeyObject = loadAlipayPrivateKey(config.appPrivateKeyPem);
  const alipayPublicKey: KeyObject = loadAlipayPublicKey(config.alipayPublicKeyPem);
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const gateway = createChannelCaller(createAlipayProtocol(alipayPublicKey, timeoutMs));

  /** The signed gateway request for one API method. */
  function gatewayRequest(method: string, biz: Record<string, unknown>, notifyUrl?: string) {
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
    return {
      method: "POST",
      url: config.gatewayUrl,
      headers: { "content-type": "application/x-www-form-urlencoded;charset=utf-8", accept: "application/json" },
      body: new URLSearchParams(params).toString(),
    };
  }

  /** Runs `wireMethod` for `operation` through the pipeline, decoding a success with `decode`. */
  function callGateway<T>(
    operation: ChannelOperation,
    wireMethod: string,
    biz: Record<string, unknown>,
    decode: (answer: WireReader) => T,
    notifyUrl?: string,
  ): Promise<ChannelCallOutcome<T, AlipayFailure>> {
    return gateway.call({ operation, wireMethod, request: gatewayRequest(wireMethod, biz, notifyUrl), decode });
  }

  function requireCny(currency: string, name: ChannelCallName): void {
    if (currency !== "CNY") {
      throw gateway.rejected(name, { code: "CURRENCY_NOT_SUPPORTED", message: `Alipay settles CNY only, got ${currency}` });
    }
  }

  function tradeBiz(trade: ChannelTradeRef): Record<string, unknown> {
    return trade.channelTradeNo ? { out_trade_no: trade.paymentNo, trade_no: trade.channelTradeNo } : { out_trade_no: trade.paymentNo };
  }

  async function queryPayment(trade: ChannelTradeRef, operation: ChannelOperation = "queryPayment"): Promise<ChannelTradeStatus> {
    const name = { operation, wireMethod: "alipay.trade.query" };
    const outcome = await callGateway(operation, name.wireMethod, tradeBiz(trade), readTradeQueryAnswer);
    if (!outcome.ok) {
      // A precreated trade exists at Alipay only once the shopper scans the QR code.
      if (outcome.failure.subCode === "ACQ.TRADE_NOT_EXIST") return { state: "not_found", detail: outcome.failure.message };
      throw gateway.rejected(name, outcome.failure);
    }
    const answer = outcome.value;
    // A fully refunded trade is TRADE_CLOSED too; a payment date tells it apart from one never paid.
    const state = answer.state === "closed" && answer.sendPayDate ? "succeeded" : answer.state;
    const status: ChannelTradeStatus = { state, currency: "CNY", detail: answer.tradeStatus };
    if (answer.tradeNo) status.channelTradeNo = answer.tradeNo;
    if (answer.totalAmountMinor !== undefined) status.amountMinor = answer.totalAmountMinor;
    if (answer.sendPayDate && state === "succeeded") status.paidAt = answer.sendPayDate;
    return status;
  }

  async function queryRefund(request: ChannelRefundRequest, operation: ChannelOperation = "queryRefund"): Promise<ChannelRefundStatus> {
    const name = { operation, wireMethod: "alipay.trade.fastpay.refund.query" };
    const biz = { ...tradeBiz(request.trade), out_request_no: request.refundNo, query_options: ["gmt_refund_pay"] };
    const outcome = await callGateway(operation, name.wireMethod, biz, readRefundQueryAnswer);
    if (!outcome.ok) {
      if (outcome.failure.subCode === "ACQ.TRADE_NOT_EXIST") return { state: "not_found", detail: outcome.failure.message };
      throw gateway.rejected(name, outcome.failure);
    }
    const { refundAmountMinor, refundStatus } = outcome.value;
    if (refundAmountMinor === undefined) return { state: "not_found", detail: "refund not found at Alipay" };
    return refundStatus === "REFUND_SUCCESS"
      ? { state: "succeeded", detail: refundStatus }
      : { state: "processing", detail: refundStatus ?? "no refund_status yet" };
  }

  return {
    name: "alipay",

    payouts: createAlipayPayouts({ gateway, callGateway }),

    async createPayment(request: ChannelCreatePaymentRequest): Promise<ChannelPaymentCreated> {
      const name = { operation: "createPayment", wireMethod: "alipay.trade.precreate" } as const;
      requireCny(request.currency, name);
      if (request.amountMinor < ALIPAY_MIN_AMOUNT_MINOR || request.amountMinor > ALIPAY_MAX_AMOUNT_MINOR) {
        throw gateway.rejected(name, {
          code: "AMOUNT_OUT_OF_RANGE",
          message: `Alipay accepts 0.01 to 100000000.00 CNY, got ${formatMinor(request.amountMinor, "CNY")}`,
        });
      }
      const biz = {
        out_trade_no: request.paymentNo,
        total_amount: formatMinor(request.amountMinor, "CNY"),
        subject: request.subject,
        time_expire: toAlipayTime(request.expiresAt),
        product_code: "FACE_TO_FACE_PAYMENT",
      };
      const outcome = await callGateway(name.operation, name.wireMethod, biz, readPrecreateAnswer, request.notifyUrl);
      if (!outcome.ok) throw gateway.rejected(name, outcome.failure);
      return { action: { kind: "qr_code_url", value: outcome.value.qrCode } };
    },

    queryPayment: (trade) => queryPayment(trade),

    async closePayment(trade: ChannelTradeRef): Promise<void> {
      const name = { operation: "closePayment", wireMethod: "alipay.trade.close" } as const;
      const outcome = await callGateway(name.operation, name.wireMethod, tradeBiz(trade), readCloseAnswer);
      if (outcome.ok || outcome.failure.subCode === "ACQ.TRADE_NOT_EXIST") return;
      if (outcome.failure.subCode && CLOSE_WRONG_STATE_SUB_CODES.has(outcome.failure.subCode)) {
        // The sub-code only says "not waiting for payment": ask which state it is in.
        const status = await queryPayment(trade, name.operation);
        if (status.state === "succeeded") throw new ChannelTradePaidError("alipay");
        if (status.state === "closed" || status.state === "not_found") return;
      }
      throw gateway.rejected(name, outcome.failure);
    },

    async refund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const name = { operation: "refund", wireMethod: "alipay.trade.refund" } as const;
      requireCny(request.trade.currency, name);
      const biz: Record<string, unknown> = {
        ...tradeBiz(request.trade),
        refund_amount: formatMinor(request.amountMinor, "CNY"),
        out_request_no: request.refundNo,
      };
      if (request.reason) biz.refund_reason = request.reason;
      const outcome = await callGateway(name.operation, name.wireMethod, biz, readRefundAnswer);
      if (!outcome.ok) {
        if (outcome.failure.gatewayCode === ALIPAY_CODE.businessFailed) return { state: "failed", detail: outcome.failure.message };
        throw gateway.rejected(name, outcome.failure);
      }
      if (outcome.value.fundChanged) return { state: "succeeded", detail: "fund_change=Y" };
      // Alipay's rule: fund_change N (a repeated out_request_no, or still in progress) must be confirmed by a refund query.
      const confirmed = await queryRefund(request, name.operation);
      return confirmed.state === "failed" ? { state: "processing", detail: "accepted, not yet visible to refund query" } : confirmed;
    },

    queryRefund: (request) => queryRefund(request),

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

    async fetchBill(billDate: string): Promise<BillFile> {
      const name = { operation: "fetchBill", wireMethod: "alipay.data.dataservice.bill.downloadurl.query" } as const;
      if (!isBillDate(billDate)) {
        throw gateway.rejected(name, { code: "INVALID_BILL_DATE", message: `bill date must be yyyy-MM-dd, got ${JSON.stringify(billDate)}` });
      }
      const { billDownloadUrl } = await gateway.callOrReject({
        ...name,
        request: gatewayRequest(name.wireMethod, { bill_type: "trade", bill_date: billDate }),
        decode: readBillUrlAnswer,
      });

      // The file is not signed: the URL came in a verified answer, and it is Alipay's own short-lived link.
      const download = { operation: "fetchBill", wireMethod: "bill download" } as const;
      return fetchBillFile({
        channel: "alipay",
        billDate,
        fileName: `alipay-${billDate}.csv.zip`,
        url: billDownloadUrl,
        idleTimeoutMs: Math.max(timeoutMs, BILL_DOWNLOAD_TIMEOUT_MS),
        read: (path) => readAlipayBill(path, billDate),
        unavailable: (detail, cause) => gateway.unavailable(download, detail, { cause }),
      });
    },

    openBillFile(path: string, billDate: string, options?: { sha1?: string }): Promise<BillFile> {
      return openCallerBillFile("alipay", path, billDate, options, (file) => readAlipayBill(file, billDate));
    },
  };
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
