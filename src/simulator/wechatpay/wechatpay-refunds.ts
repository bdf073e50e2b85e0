/**
 * WeChat Pay's refunds: create and query by `out_refund_no`, the refund object of both answers,
 * and the `REFUND.*` callback every result sends. A refund goes through at once (`SUCCESS`) unless
 * `refundDelayMs` keeps it `PROCESSING` first; `refundFails` alone is a 403 `NOT_ENOUGH`.
 */
import { toWechatTime } from "../../channels/wechatpay/wechatpay-time.js";
import { paymentFee } from "../../fees/fee-calculator.js";
import { refundedMinor, type SimRefund } from "../trade-store.js";
import { type Answer, CHANNEL, FEE_TERMS, type RefundEntry, type WechatBook } from "./wechatpay-book.js";
import { notify } from "./wechatpay-notifications.js";
import {
  amountField,
  chinaDate,
  invalidRequest,
  isObject,
  type Json,
  paramError,
  randomDigits,
  requireCny,
  requiredString,
  stringField,
  WechatApiError,
} from "./wechatpay-params.js";

const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;

function refundStatus(refund: SimRefund): string {
  return refund.state === "succeeded" ? "SUCCESS" : refund.state === "processing" ? "PROCESSING" : "ABNORMAL";
}

function refundAmounts(entry: RefundEntry): Json {
  const total = Number(entry.trade.amountMinor);
  const refund = Number(entry.refund.amountMinor);
  return { total, refund, payer_total: total, payer_refund: refund };
}

/** The refund object of the refund and refund-query answers. */
function refundView(entry: RefundEntry): Json {
  const { trade, refund } = entry;
  const view: Json = {
    refund_id: refund.channelRefundNo,
    out_refund_no: refund.refundNo,
    transaction_id: trade.channelTradeNo,
    out_trade_no: trade.outTradeNo,
    channel: "ORIGINAL",
    user_received_account: "支付用户零钱",
    create_time: toWechatTime(refund.createdAt),
    status: refundStatus(refund),
    funds_account: "AVAILABLE",
    amount: {
      ...refundAmounts(entry),
      settlement_total: Number(trade.amountMinor),
      settlement_refund: Number(refund.amountMinor),
      discount_refund: 0,
      currency: trade.currency,
      refund_fee: Number(paymentFee(refund.amountMinor, FEE_TERMS)),
    },
    promotion_detail: [],
  };
  if (refund.state === "succeeded" && entry.finishedAt) view.success_time = toWechatTime(entry.finishedAt);
  return view;
}

function finishRefund(book: WechatBook, entry: RefundEntry, state: "succeeded" | "failed"): void {
  entry.refund.state = state;
  entry.finishedAt = new Date();
  const { trade, refund } = entry;
  const resource: Json = {
    mchid: book.keys.mchId,
    transaction_id: trade.channelTradeNo,
    out_trade_no: trade.outTradeNo,
    refund_id: refund.channelRefundNo,
    out_refund_no: refund.refundNo,
    refund_status: refundStatus(refund),
    user_received_account: "支付用户零钱",
    amount: refundAmounts(entry),
  };
  if (state === "succeeded") resource.success_time = toWechatTime(entry.finishedAt);
  void notify(book, trade, entry.notifyUrl, "refund", resource);
}

/** `POST /v3/refund/domestic/refunds`; a repeat with the same trade and amount answers the same refund. */
export function createRefund(book: WechatBook, body: Json): Answer {
  const { context } = book;
  const outRefundNo = requiredString(body, "out_refund_no");
  if (!OUT_REFUND_NO.test(outRefundNo)) throw paramError("out_refund_no 须为 1-64 位数字、大小写字母或 _-|*@");
  const transactionId = stringField(body, "transaction_id");
  const outTradeNo = stringField(body, "out_trade_no");
  if (!transactionId && !outTradeNo) throw paramError("transaction_id 和 out_trade_no 必须填一个");
  const trade = transactionId
    ? context.trades.findByChannelTradeNo(CHANNEL, transactionId)
    : context.trades.get(CHANNEL, outTradeNo as string);
  if (!trade) throw new WechatApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在");
  if (!isObject(body.amount)) throw paramError("缺少参数 amount");
  const amountMinor = amountField(body.amount, "refund");
  const totalMinor = amountField(body.amount, "total");
  requireCny(body.amount);
  const reason = stringField(body, "reason");
  const notifyUrl = stringField(body, "notify_url") ?? trade.notifyUrl;

  const previous = book.refunds.get(outRefundNo);
  if (previous) {
    if (previous.trade !== trade || previous.refund.amountMinor !== amountMinor) {
      throw invalidRequest("退款单号已存在，但订单号或退款金额与之前的请求不一致");
    }
    return { status: 200, json: refundView(previous) };
  }
  if (trade.state !== "paid") throw invalidRequest("订单未支付，不能退款");
  if (totalMinor !== trade.amountMinor) throw invalidRequest("amount.total 与原订单金额不一致");
  if (refundedMinor(trade) + amountMinor > trade.amountMinor) throw invalidRequest("申请退款金额超过订单可退金额");
  const faults = context.faults.resolve(CHANNEL, trade.outTradeNo);
  if (faults.refundFails && !faults.refundDelayMs) {
    throw new WechatApiError(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起");
  }

  const now = new Date();
  const refund: SimRefund = {
    refundNo: outRefundNo,
    channelRefundNo: `50300${randomDigits(6)}${chinaDate(now).replaceAll("-", "")}${randomDigits(10)}`,
    amountMinor,
    state: "processing",
    createdAt: now,
  };
  if (reason) refund.reason = reason;
  const entry: RefundEntry = { trade, refund, notifyUrl };
  book.addRefund(entry);
  const outcome = faults.refundFails ? "failed" : "succeeded";
  if (faults.refundDelayMs) context.timers.schedule(faults.refundDelayMs, () => finishRefund(book, entry, outcome));
  else finishRefund(book, entry, outcome);
  return { status: 200, json: refundView(entry) };
}

/** `GET /v3/refund/domestic/refunds/{out_refund_no}`. */
export function queryRefund(book: WechatBook, outRefundNo: string): Answer {
  const entry = book.refunds.get(outRefundNo);
  if (!entry) throw new WechatApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在");
  return { status: 200, json: refundView(entry) };
}
