/**
 * Alipay's refunds: `alipay.trade.refund` (idempotent on `out_request_no`; without one, a full
 * refund keyed by the trade) and `alipay.trade.fastpay.refund.query`. Refund faults follow
 * Alipay's rules: `refundFails` alone is a `40004` `ACQ.SELLER_BALANCE_NOT_ENOUGH`; `refundDelayMs`
 * answers `fund_change: "N"` and the query shows the refund without `refund_status` until it is
 * paid out (`REFUND_SUCCESS`; no notify then), or, with `refundFails`, shows no refund at all once
 * it is abandoned. An immediate refund notifies the trade's notify_url.
 */
import { toAlipayTime } from "../../channels/alipay/alipay-time.js";
import { refundedMinor, type SimRefund } from "../trade-store.js";
import { type AlipayBook, CHANNEL } from "./alipay-book.js";
import { notify } from "./alipay-notifications.js";
import { amountField, business, type Content, invalidParameter, maskedLogonId, paidOutMinor, stringField, yuan } from "./alipay-params.js";
import { findVisibleTrade, MIN_AMOUNT_MINOR } from "./alipay-trades.js";

/** A refund leaves processing once; a delayed one is then visible through the refund query only. */
function finishRefund(book: AlipayBook, refundRecord: SimRefund, state: "succeeded" | "failed"): void {
  if (refundRecord.state !== "processing") return;
  refundRecord.state = state;
  if (state === "succeeded") book.refundPaidAt.set(refundRecord, new Date());
}

/** `alipay.trade.refund`. */
export function refundTrade(book: AlipayBook, biz: Content): Content {
  const { context, refundPaidAt } = book;
  const trade = findVisibleTrade(book, biz);
  const amountMinor = amountField(biz, "refund_amount");
  if (amountMinor === undefined) throw invalidParameter("refund_amount is required");
  if (amountMinor < MIN_AMOUNT_MINOR) throw invalidParameter("refund_amount must be at least 0.01");
  const outRequestNo = stringField(biz, "out_request_no");
  const failureExtra = () => ({ out_trade_no: trade.outTradeNo, refund_fee: yuan(paidOutMinor(trade)), send_back_fee: "0.00" });
  if (trade.state !== "paid") throw business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法", failureExtra());
  if (!outRequestNo && amountMinor !== trade.amountMinor) {
    throw business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "撤销或退款金额与订单金额不一致", failureExtra());
  }
  const refundNo = outRequestNo ?? trade.outTradeNo;
  // fund_change Y only when this very call moved the money; a repeat or a refund still in progress says N.
  const answer = (fundChange: "Y" | "N", refundRecord: SimRefund): Content => {
    const paidOut = refundRecord.state === "succeeded";
    const content: Content = {
      code: "10000",
      msg: "Success",
      trade_no: trade.channelTradeNo,
      out_trade_no: trade.outTradeNo,
      buyer_logon_id: maskedLogonId(trade.buyerId ?? "2088000000000000"),
      buyer_user_id: trade.buyerId,
      fund_change: fundChange,
      refund_fee: yuan(paidOutMinor(trade)),
      send_back_fee: paidOut ? yuan(refundRecord.amountMinor) : "0.00",
    };
    if (paidOut) content.gmt_refund_pay = toAlipayTime(refundPaidAt.get(refundRecord) ?? refundRecord.createdAt);
    return content;
  };

  const previous = trade.refunds.find((candidate) => candidate.refundNo === refundNo);
  if (previous && previous.state !== "failed") {
    if (previous.amountMinor !== amountMinor) throw business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致", failureExtra());
    return answer("N", previous);
  }
  // Alipay's advice for a failed refund is to retry with the same out_request_no: a new attempt.
  if (previous) trade.refunds.splice(trade.refunds.indexOf(previous), 1);
  if (refundedMinor(trade) + amountMinor > trade.amountMinor) {
    throw business("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效", failureExtra());
  }
  const refundRecord: SimRefund = { refundNo, amountMinor, state: "processing", createdAt: new Date() };
  const reason = stringField(biz, "refund_reason");
  if (reason) refundRecord.reason = reason;
  trade.refunds.push(refundRecord);

  const faults = context.faults.resolve(CHANNEL, trade.outTradeNo);
  if (faults.refundDelayMs !== undefined) {
    const fails = faults.refundFails === true;
    context.timers.schedule(faults.refundDelayMs, () => finishRefund(book, refundRecord, fails ? "failed" : "succeeded"));
    return answer("N", refundRecord);
  }
  if (faults.refundFails) {
    // Kept as failed so the control API shows the attempt; the refund query reports nothing for it.
    refundRecord.state = "failed";
    throw business("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足", failureExtra());
  }
  finishRefund(book, refundRecord, "succeeded");
  void notify(book, trade, "refund", refundRecord);
  return answer("Y", refundRecord);
}

/** `alipay.trade.fastpay.refund.query`. */
export function queryRefund(book: AlipayBook, biz: Content): Content {
  const trade = findVisibleTrade(book, biz);
  const outRequestNo = stringField(biz, "out_request_no");
  if (!outRequestNo) throw invalidParameter("out_request_no is required");
  const refundRecord = trade.refunds.find((candidate) => candidate.refundNo === outRequestNo);
  const content: Content = {
    code: "10000",
    msg: "Success",
    trade_no: trade.channelTradeNo,
    out_trade_no: trade.outTradeNo,
    out_request_no: outRequestNo,
  };
  // 10000 only says the query ran: Alipay returns no refund data for a refund it never received or that failed.
  if (!refundRecord || refundRecord.state === "failed") return content;
  const known: Content = {
    ...content,
    total_amount: yuan(trade.amountMinor),
    refund_amount: yuan(refundRecord.amountMinor),
  };
  if (refundRecord.reason) known.refund_reason = refundRecord.reason;
  // refund_status stays absent until the money is back with the buyer.
  if (refundRecord.state === "processing") return known;
  return {
    ...known,
    refund_status: "REFUND_SUCCESS",
    gmt_refund_pay: toAlipayTime(book.refundPaidAt.get(refundRecord) ?? refundRecord.createdAt),
  };
}
