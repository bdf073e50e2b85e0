/**
 * Alipay's trades: precreate, query and close, the trade lookup every gateway method shares, the
 * expiry at `time_expire`, and the shopper's side (scan, pay) the control API plays. A precreated
 * trade exists for query/close/refund only once the shopper scans the QR code
 * (`ACQ.TRADE_NOT_EXIST` before that, and a close then leaves the QR code payable); closing a
 * scanned trade notifies `TRADE_CLOSED`.
 */
import { parseAlipayTime, toAlipayDate, toAlipayTime } from "../../channels/alipay/alipay-time.js";
import type { PayOutcome } from "../channel-side.js";
import { type SimTrade, SimulatorControlError } from "../trade-store.js";
import { type AlipayBook, CHANNEL } from "./alipay-book.js";
import { notify } from "./alipay-notifications.js";
import {
  amountField,
  business,
  type Content,
  digits,
  invalidParameter,
  lowerAlphanumeric,
  maskedLogonId,
  parseTimeoutExpress,
  stringField,
  tradeNotExist,
  tradeStatus,
  yuan,
} from "./alipay-params.js";

/** The smallest amount Alipay takes, in fen. */
export const MIN_AMOUNT_MINOR = 1n;
const MAX_AMOUNT_MINOR = 10_000_000_000n;
const DEFAULT_EXPIRY_MS = 2 * 60 * 60 * 1000;

/** The trade `trade_no` or `out_trade_no` names (expired first if due), or undefined. */
function findTrade(book: AlipayBook, biz: Content): SimTrade | undefined {
  const tradeNo = stringField(biz, "trade_no");
  const outTradeNo = stringField(biz, "out_trade_no");
  if (!tradeNo && !outTradeNo) throw invalidParameter("out_trade_no or trade_no is required");
  const { trades } = book.context;
  const trade = tradeNo ? trades.findByChannelTradeNo(CHANNEL, tradeNo) : trades.get(CHANNEL, outTradeNo as string);
  if (trade) expireIfDue(book, trade);
  return trade;
}

/** The trade as Alipay's API sees it: unknown until the shopper scanned the QR code. */
export function findVisibleTrade(book: AlipayBook, biz: Content): SimTrade {
  const trade = findTrade(book, biz);
  if (!trade?.openedAt) throw tradeNotExist();
  return trade;
}

function expireIfDue(book: AlipayBook, trade: SimTrade): void {
  if ((trade.state === "created" || trade.state === "pending") && trade.expiresAt && trade.expiresAt.getTime() <= Date.now()) {
    close(book, trade, trade.expiresAt);
  }
}

function close(book: AlipayBook, trade: SimTrade, at: Date): void {
  const wasOpened = trade.openedAt !== undefined;
  trade.state = "closed";
  trade.closedAt = at;
  if (wasOpened) void notify(book, trade, "closed");
}

function markPaid(trade: SimTrade): void {
  const now = new Date();
  trade.openedAt ??= now;
  trade.buyerId ??= `2088${digits(12)}`;
  trade.state = "paid";
  trade.paidAt = now;
}

function requirePayable(book: AlipayBook, outTradeNo: string): SimTrade {
  const trade = book.context.trades.require(CHANNEL, outTradeNo);
  expireIfDue(book, trade);
  if (trade.state === "paid") throw new SimulatorControlError(409, `trade ${outTradeNo} is already paid`);
  if (trade.state === "closed" || trade.state === "failed") {
    const expired = trade.expiresAt !== undefined && trade.closedAt?.getTime() === trade.expiresAt.getTime();
    throw new SimulatorControlError(409, `trade ${outTradeNo} is ${trade.state}${expired ? " (expired)" : ""}`);
  }
  return trade;
}

function pay(book: AlipayBook, trade: SimTrade, outcome: PayOutcome): Promise<void> {
  if (outcome === "fail") {
    // Alipay has no failed state: a shopper who cannot pay leaves the trade to close.
    trade.openedAt ??= new Date();
    close(book, trade, new Date());
    return Promise.resolve();
  }
  markPaid(trade);
  return notify(book, trade, "payment");
}

/** `alipay.trade.precreate`: a repeat with the same amount and subject answers the same QR code. */
export async function precreate(book: AlipayBook, biz: Content, params: Record<string, string>): Promise<Content> {
  const { context } = book;
  const outTradeNo = stringField(biz, "out_trade_no");
  if (!outTradeNo) throw invalidParameter("out_trade_no is required");
  if (outTradeNo.length > 64 || !/^[\x21-\x7e]+$/.test(outTradeNo)) {
    throw invalidParameter("out_trade_no: up to 64 visible ASCII characters");
  }
  const amountMinor = amountField(biz, "total_amount");
  if (amountMinor === undefined) throw invalidParameter("total_amount is required");
  if (amountMinor < MIN_AMOUNT_MINOR) throw invalidParameter("total_amount must be at least 0.01");
  if (amountMinor > MAX_AMOUNT_MINOR) throw business("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额");
  const subject = stringField(biz, "subject");
  if (!subject) throw invalidParameter("subject is required");
  const now = new Date();
  const timeExpire = stringField(biz, "time_expire");
  const timeoutExpress = stringField(biz, "timeout_express");
  let expiresAt = new Date(now.getTime() + DEFAULT_EXPIRY_MS);
  if (timeExpire) {
    const parsed = parseAlipayTime(timeExpire);
    if (!parsed) throw invalidParameter("time_expire must be yyyy-MM-dd HH:mm:ss");
    expiresAt = parsed;
  } else if (timeoutExpress) expiresAt = parseTimeoutExpress(timeoutExpress, now);

  const existing = context.trades.get(CHANNEL, outTradeNo);
  if (existing) {
    expireIfDue(book, existing);
    if (existing.state === "paid") throw business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付");
    if (existing.state === "closed" || existing.state === "failed") throw business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭");
    if (existing.amountMinor !== amountMinor || existing.subject !== subject) {
      throw business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改");
    }
    return { code: "10000", msg: "Success", out_trade_no: outTradeNo, qr_code: existing.attributes.qr_code };
  }

  const trade: SimTrade = {
    channel: CHANNEL,
    outTradeNo,
    channelTradeNo: `${toAlipayDate(now).replaceAll("-", "")}22001${digits(15)}`,
    amountMinor,
    currency: "CNY",
    subject,
    state: "created",
    createdAt: now,
    expiresAt,
    refunds: [],
    notifications: [],
    attributes: { qr_code: `https://qr.alipay.com/bax0${lowerAlphanumeric(20)}` },
  };
  if (params.notify_url) trade.notifyUrl = params.notify_url;
  context.trades.add(trade);
  context.timers.schedule(expiresAt.getTime() - now.getTime(), () => expireIfDue(book, trade));

  if (context.faults.resolve(CHANNEL, outTradeNo).notifyBeforeCreateReturns) {
    markPaid(trade);
    await notify(book, trade, "payment");
  }
  return { code: "10000", msg: "Success", out_trade_no: outTradeNo, qr_code: trade.attributes.qr_code };
}

/** `alipay.trade.query`. */
export function queryTrade(book: AlipayBook, biz: Content): Content {
  const trade = findVisibleTrade(book, biz);
  const content: Content = {
    code: "10000",
    msg: "Success",
    trade_no: trade.channelTradeNo,
    out_trade_no: trade.outTradeNo,
    trade_status: tradeStatus(trade),
    total_amount: yuan(trade.amountMinor),
  };
  if (trade.buyerId) {
    content.buyer_logon_id = maskedLogonId(trade.buyerId);
    content.buyer_user_id = trade.buyerId;
  }
  if (trade.paidAt) {
    content.buyer_pay_amount = yuan(trade.amountMinor);
    content.receipt_amount = yuan(trade.amountMinor);
    content.point_amount = "0.00";
    content.invoice_amount = yuan(trade.amountMinor);
    content.send_pay_date = toAlipayTime(trade.paidAt);
  } else {
    content.buyer_pay_amount = "0.00";
  }
  return content;
}

/** `alipay.trade.close`. */
export function closeTrade(book: AlipayBook, biz: Content): Content {
  const { context } = book;
  if (context.faults.resolve(CHANNEL, stringField(biz, "out_trade_no")).paidAfterClose) {
    const trade = findTrade(book, biz);
    if (trade && (trade.state === "created" || trade.state === "pending")) {
      // The shopper's payment wins the race at Alipay: the close says yes, the money arrives anyway.
      context.timers.schedule(0, () => {
        if (trade.state === "created" || trade.state === "pending") void pay(book, trade, "success");
      });
      return { code: "10000", msg: "Success", trade_no: trade.channelTradeNo, out_trade_no: trade.outTradeNo };
    }
  }
  const trade = findVisibleTrade(book, biz);
  if (trade.state !== "pending" && trade.state !== "created") throw business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
  close(book, trade, new Date());
  return { code: "10000", msg: "Success", trade_no: trade.channelTradeNo, out_trade_no: trade.outTradeNo };
}

/** The shopper pays (or fails to, which closes the trade), through the control API. */
export function payTrade(book: AlipayBook, outTradeNo: string, outcome: PayOutcome): void {
  void pay(book, requirePayable(book, outTradeNo), outcome);
}

/** The shopper scans the QR code without paying yet: the trade now exists for the API. */
export function scanTrade(book: AlipayBook, outTradeNo: string): void {
  const trade = requirePayable(book, outTradeNo);
  trade.openedAt ??= new Date();
  trade.state = "pending";
}

/** `trade_status` for the control API, or why the API does not know the trade yet. */
export function tradeChannelState(book: AlipayBook, trade: SimTrade): string {
  expireIfDue(book, trade);
  return trade.openedAt ? tradeStatus(trade) : "TRADE_NOT_EXIST (QR code not scanned yet)";
}
