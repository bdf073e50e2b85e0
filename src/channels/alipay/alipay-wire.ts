/**
 * Alipay's wire objects: the gateway envelope as the call pipeline reads it (status rule, RSA2
 * verification of the `<method>_response` member, `code`/`sub_code` failures) and a typed decoder
 * for each answer the adapter uses.
 */
import type { KeyObject } from "node:crypto";
import type { ChannelTradeState } from "../channel.js";
import type { ChannelBusinessFailure, ChannelProtocol } from "../channel-call.js";
import { parseWireObject, textOf, type WireObject, type WireReader } from "../wire-fields.js";
import { splitGatewayResponse, verifyGatewayResponse } from "./alipay-signature.js";
import { parseAlipayTime } from "./alipay-time.js";

/** Gateway `code` values (`40004` is a business failure with a `sub_code`). */
export const ALIPAY_CODE = Object.freeze({
  success: "10000",
  waitingForBuyer: "10003",
  unavailable: "20000",
  businessFailed: "40004",
});

/** An answer whose `code` is not 10000. `code` is the `sub_code` when there is one, else the gateway code. */
export interface AlipayFailure extends ChannelBusinessFailure {
  gatewayCode: string;
  subCode?: string;
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

/** The Alipay side of the call pipeline, verifying with Alipay's public key. */
export function createAlipayProtocol(alipayPublicKey: KeyObject, timeoutMs: number): ChannelProtocol<AlipayFailure> {
  return {
    channel: "alipay",
    timeoutMs,
    unverifiedCode(response, name) {
      const parts = splitGatewayResponse(response.body.toString("utf8"), name.wireMethod ?? "");
      const fields = parts && parseWireObject(parts.responseText);
      return (fields && [textOf(fields.code), textOf(fields.sub_code)].filter(Boolean).join(" ")) || "none";
    },
    refusedStatus(response) {
      if (response.status === 200) return undefined;
      return { code: `HTTP_${response.status}`, message: `gateway answered HTTP ${response.status}` };
    },
    verify(response, name) {
      const parts = splitGatewayResponse(response.body.toString("utf8"), name.wireMethod ?? "");
      if (!parts) return { kind: "not_channel_answer", why: "gateway answer is not an Alipay response envelope" };
      if (!verifyGatewayResponse(parts, alipayPublicKey)) {
        const what = parts.sign ? "response signature does not verify" : "response is unsigned";
        return { kind: "signature_invalid", why: `${what} with the configured Alipay public key; check ALIPAY_PUBLIC_KEY` };
      }
      const fields = parseWireObject(parts.responseText);
      return fields ? { kind: "trusted", fields } : { kind: "unreadable", why: `${parts.responseKey} is not a JSON object` };
    },
    failureOf(answer: WireObject) {
      const gatewayCode = textOf(answer.code) ?? "";
      if (gatewayCode === ALIPAY_CODE.success) return undefined;
      const subCode = textOf(answer.sub_code);
      const subMsg = textOf(answer.sub_msg);
      const sub = subCode ? ` ${subCode}${subMsg ? ` (${subMsg})` : ""}` : "";
      const failure: AlipayFailure = { code: subCode ?? gatewayCode, message: `${gatewayCode} ${textOf(answer.msg) ?? ""}${sub}`, gatewayCode };
      if (subCode) failure.subCode = subCode;
      return failure;
    },
    // 20000 and ACQ.SYSTEM_ERROR both mean "try again with the same parameters".
    isBusy: (failure) => failure.gatewayCode === ALIPAY_CODE.unavailable || failure.subCode === "ACQ.SYSTEM_ERROR",
  };
}

/** `alipay.trade.precreate`. */
export interface AlipayPrecreateAnswer {
  qrCode: string;
}

export function readPrecreateAnswer(answer: WireReader): AlipayPrecreateAnswer {
  return { qrCode: answer.requiredText("qr_code") };
}

/** `alipay.trade.query`. */
export interface AlipayTradeAnswer {
  tradeStatus: string;
  state: ChannelTradeState;
  tradeNo?: string;
  totalAmountMinor?: bigint;
  /** When the shopper paid; also present on a fully refunded (TRADE_CLOSED) trade. */
  sendPayDate?: Date;
}

export function readTradeQueryAnswer(answer: WireReader): AlipayTradeAnswer {
  const { text: tradeStatus, value: state } = answer.oneOf("trade_status", mapAlipayTradeStatus);
  const trade: AlipayTradeAnswer = { tradeStatus, state };
  const tradeNo = answer.text("trade_no");
  if (tradeNo) trade.tradeNo = tradeNo;
  const totalAmountMinor = answer.decimalAmount("total_amount", "CNY");
  if (totalAmountMinor !== undefined) trade.totalAmountMinor = totalAmountMinor;
  // An unreadable date is treated as absent, as Alipay's own SDKs do.
  const sendPayDate = parseAlipayTime(answer.text("send_pay_date"));
  if (sendPayDate) trade.sendPayDate = sendPayDate;
  return trade;
}

/** `alipay.trade.close`: nothing in a success answer is used. */
export function readCloseAnswer(_answer: WireReader): void {}

/** `alipay.trade.refund`. */
export interface AlipayRefundAnswer {
  /** `fund_change: "Y"`: money moved on this call. "N" (repeat or still in progress) must be confirmed by a refund query. */
  fundChanged: boolean;
}

export function readRefundAnswer(answer: WireReader): AlipayRefundAnswer {
  return { fundChanged: answer.text("fund_change") === "Y" };
}

/** `alipay.trade.fastpay.refund.query`. */
export interface AlipayRefundQueryAnswer {
  /** Absent when Alipay has no such refund (10000 only means the query ran). */
  refundAmountMinor?: bigint;
  refundStatus?: string;
}

export function readRefundQueryAnswer(answer: WireReader): AlipayRefundQueryAnswer {
  const result: AlipayRefundQueryAnswer = {};
  const refundAmountMinor = answer.decimalAmount("refund_amount", "CNY");
  if (refundAmountMinor !== undefined) result.refundAmountMinor = refundAmountMinor;
  const refundStatus = answer.text("refund_status");
  if (refundStatus) result.refundStatus = refundStatus;
  return result;
}

/** `alipay.data.dataservice.bill.downloadurl.query`. */
export interface AlipayBillUrlAnswer {
  billDownloadUrl: string;
}

export function readBillUrlAnswer(answer: WireReader): AlipayBillUrlAnswer {
  return { billDownloadUrl: answer.requiredText("bill_download_url") };
}
