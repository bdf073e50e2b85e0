/**
 * WeChat Pay API v3 wire objects: the answer as the call pipeline reads it (`Wechatpay-Signature`
 * over every answer acted upon, `{code, message}` failures on 202/4xx) and a typed decoder for each
 * answer the adapter uses.
 */
import type { KeyObject } from "node:crypto";
import type { ChannelRefundState, ChannelTradeState } from "../channel.js";
import type { ChannelBusinessFailure, ChannelProtocol } from "../channel-call.js";
import { parseWireObject, textOf, type WireObject, type WireReader } from "../wire-fields.js";
import { verifyWechatSignature } from "./wechatpay-signature.js";
import { parseWechatTime } from "./wechatpay-time.js";

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

/** What the pipeline needs to verify WeChat Pay's answers. */
export interface WechatPayProtocolKeys {
  platformKey: KeyObject;
  /** `PUB_KEY_ID_...`: the `Wechatpay-Serial` every signed answer must carry. */
  publicKeyId: string;
}

/** The WeChat Pay side of the call pipeline. A 202 (USER_PAYING) and every 4xx are failures with WeChat's `code`. */
export function createWechatPayProtocol(keys: WechatPayProtocolKeys, timeoutMs: number): ChannelProtocol<ChannelBusinessFailure> {
  return {
    channel: "wechatpay",
    timeoutMs,
    unverifiedCode: (response) => textOf(parseWireObject(response.body)?.code) ?? "none",
    verify(response) {
      const check = verifyWechatSignature({
        headers: response.headers,
        body: response.body,
        publicKey: keys.platformKey,
        publicKeyId: keys.publicKeyId,
      });
      if (!check.ok) {
        return {
          kind: "signature_invalid",
          why:
            `HTTP ${response.status} answer failed signature verification (${check.reason}) with the configured WeChat Pay public key` +
            ` ${keys.publicKeyId}; check WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID`,
        };
      }
      if (response.body.length === 0) return { kind: "trusted", fields: {} };
      const fields = parseWireObject(response.body);
      return fields ? { kind: "trusted", fields } : { kind: "unreadable", why: `HTTP ${response.status} body is not a JSON object` };
    },
    failureOf(answer: WireObject, status: number) {
      if (status === 200 || status === 204) return undefined;
      const code = textOf(answer.code) ?? `HTTP_${status}`;
      const message = textOf(answer.message);
      return { code, message: message ? `${code} (${message})` : code };
    },
    isBusy: () => false,
  };
}

/** `POST /v3/pay/transactions/native`. */
export function readNativeOrderAnswer(answer: WireReader): { codeUrl: string } {
  return { codeUrl: answer.requiredText("code_url") };
}

/** A transaction, from `GET /v3/pay/transactions/out-trade-no/{out_trade_no}`. */
export interface WechatTransaction {
  tradeState: string;
  state: ChannelTradeState;
  tradeStateDesc?: string;
  transactionId?: string;
  /** Present when the answer has an `amount` object; currency defaults to CNY there. */
  amount?: { totalMinor?: bigint; currency: string };
  successTime?: Date;
}

export function readTransaction(answer: WireReader): WechatTransaction {
  const { text: tradeState, value: state } = answer.oneOf("trade_state", mapWechatTradeState);
  const transaction: WechatTransaction = { tradeState, state };
  const tradeStateDesc = answer.text("trade_state_desc");
  if (tradeStateDesc) transaction.tradeStateDesc = tradeStateDesc;
  const transactionId = answer.text("transaction_id");
  if (transactionId) transaction.transactionId = transactionId;
  const amount = answer.object("amount");
  if (amount) {
    transaction.amount = { currency: amount.text("currency") ?? "CNY" };
    const totalMinor = amount.amount("total");
    if (totalMinor !== undefined) transaction.amount.totalMinor = totalMinor;
  }
  // An unreadable time is treated as absent: paid_at then comes from the callback or our clock.
  const successTime = parseWechatTime(answer.text("success_time"));
  if (successTime) transaction.successTime = successTime;
  return transaction;
}

/** `POST .../close`: 204, nothing to read. */
export function readCloseAnswer(_answer: WireReader): void {}

/** A refund, from `POST /v3/refund/domestic/refunds` or `GET /v3/refund/domestic/refunds/{out_refund_no}`. */
export interface WechatRefund {
  status: string;
  state: ChannelRefundState;
  refundId?: string;
}

export function readRefund(answer: WireReader): WechatRefund {
  const { text: status, value: state } = answer.oneOf("status", mapWechatRefundStatus);
  const refund: WechatRefund = { status, state };
  const refundId = answer.text("refund_id");
  if (refundId) refund.refundId = refundId;
  return refund;
}

/** `GET /v3/bill/tradebill`: where the bill file is and the SHA1 that vouches for it. */
export interface WechatTradeBillAnswer {
  downloadUrl: string;
  hashType: string;
  hashValue: string;
}

export function readTradeBillAnswer(answer: WireReader): WechatTradeBillAnswer {
  return {
    downloadUrl: answer.requiredText("download_url"),
    hashType: answer.requiredText("hash_type"),
    hashValue: answer.requiredText("hash_value"),
  };
}
