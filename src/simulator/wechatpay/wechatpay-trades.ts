/**
 * WeChat Pay's orders: the Native order, its query and close, the transaction object of queries
 * and `TRANSACTION.SUCCESS` callbacks, and the shopper's side (scan, pay) the control API plays.
 * A repeated Native order with the same body gets the same `code_url`, a changed one
 * `INVALID_REQUEST` "201 商户订单号重复"; closing an unknown or closed order answers 204; only
 * payment successes are notified (`PAYERROR` and closes are not).
 */
import { createHash } from "node:crypto";
import { parseWechatTime, toWechatTime } from "../../channels/wechatpay/wechatpay-time.js";
import type { PayOutcome } from "../channel-side.js";
import { type SimTrade, SimulatorControlError } from "../trade-store.js";
import { type Answer, CHANNEL, type WechatBook } from "./wechatpay-book.js";
import { notify } from "./wechatpay-notifications.js";
import {
  amountField,
  chinaDate,
  invalidRequest,
  isObject,
  type Json,
  paramError,
  randomAlphanumeric,
  randomDigits,
  requireCny,
  requiredString,
  stringField,
  WechatApiError,
} from "./wechatpay-params.js";

const DEFAULT_EXPIRY_MS = 2 * 60 * 60 * 1000;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;

const TRADE_STATE_DESC: Readonly<Record<string, string>> = {
  NOTPAY: "订单未支付",
  USERPAYING: "用户支付中",
  SUCCESS: "支付成功",
  REFUND: "订单发生过退款",
  PAYERROR: "支付失败，请重新下单支付",
  CLOSED: "订单已关闭",
};

/** `trade_state` as WeChat reports it; `REFUND` once a refund was accepted. */
export function tradeState(trade: SimTrade): string {
  switch (trade.state) {
    case "created":
      return "NOTPAY";
    case "pending":
      return "USERPAYING";
    case "paid":
      return trade.refunds.some((refund) => refund.state !== "failed") ? "REFUND" : "SUCCESS";
    case "failed":
      return "PAYERROR";
    case "closed":
      return "CLOSED";
  }
}

/** The transaction object of queries and `TRANSACTION.*` callbacks. */
function transaction(book: WechatBook, trade: SimTrade, state = tradeState(trade)): Json {
  const result: Json = {
    appid: book.keys.appId,
    mchid: book.keys.mchId,
    out_trade_no: trade.outTradeNo,
    trade_state: state,
    trade_state_desc: TRADE_STATE_DESC[state],
    attach: "",
    amount: { total: Number(trade.amountMinor), currency: trade.currency, payer_currency: trade.currency },
  };
  if (trade.buyerId) result.payer = { openid: trade.buyerId };
  if (trade.state === "paid" || trade.state === "failed") {
    Object.assign(result, { transaction_id: trade.channelTradeNo, trade_type: "NATIVE", bank_type: "OTHERS" });
  }
  if (trade.paidAt) {
    result.success_time = toWechatTime(trade.paidAt);
    (result.amount as Json).payer_total = Number(trade.amountMinor);
  }
  return result;
}

/** The shopper scanned the code: WeChat now knows who is paying. */
function open(trade: SimTrade): void {
  trade.openedAt ??= new Date();
  trade.buyerId ??= `o${randomAlphanumeric(27)}`;
}

function markPaid(book: WechatBook, trade: SimTrade): Promise<void> {
  open(trade);
  trade.state = "paid";
  trade.paidAt = new Date();
  return notify(book, trade, trade.notifyUrl, "payment", transaction(book, trade, "SUCCESS"));
}

function requirePayable(book: WechatBook, outTradeNo: string): SimTrade {
  const trade = book.context.trades.require(CHANNEL, outTradeNo);
  if (trade.state === "paid") throw new SimulatorControlError(409, `trade ${outTradeNo} is already paid`);
  if (trade.state === "closed" || trade.state === "failed") {
    throw new SimulatorControlError(409, `trade ${outTradeNo} is ${trade.state}`);
  }
  if (trade.expiresAt && trade.expiresAt.getTime() <= Date.now()) {
    throw new SimulatorControlError(409, `trade ${outTradeNo} expired at ${trade.expiresAt.toISOString()}`);
  }
  return trade;
}

function requireMchid(book: WechatBook, mchid: string | undefined): void {
  if (mchid === undefined) throw paramError("缺少参数 mchid");
  if (mchid !== book.keys.mchId) throw new WechatApiError(400, "MCH_NOT_EXISTS", "商户号不存在");
}

/** `POST /v3/pay/transactions/native`. */
export async function createNative(book: WechatBook, body: Json): Promise<Answer> {
  const { context, keys } = book;
  if (requiredString(body, "appid") !== keys.appId) throw new WechatApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配");
  requireMchid(book, requiredString(body, "mchid"));
  const description = requiredString(body, "description");
  if (description.length > 127) throw paramError("description 长度不能超过 127 个字符");
  const outTradeNo = requiredString(body, "out_trade_no");
  if (!OUT_TRADE_NO.test(outTradeNo)) throw paramError("out_trade_no 须为 6-32 位数字、大小写字母或 _-|*");
  const notifyUrl = requiredString(body, "notify_url");
  if (!/^https?:\/\/[^?#]+$/.test(notifyUrl)) throw paramError("notify_url 须为不带参数的 http(s) 地址");
  const timeExpire = stringField(body, "time_expire");
  const expiresAt = timeExpire === undefined ? new Date(Date.now() + DEFAULT_EXPIRY_MS) : parseWechatTime(timeExpire);
  if (!expiresAt) throw paramError("time_expire 须为 RFC 3339 时间，如 2018-06-08T10:34:56+08:00");
  if (!isObject(body.amount)) throw paramError("缺少参数 amount");
  const amountMinor = amountField(body.amount, "total");
  requireCny(body.amount);
  const fingerprint = createHash("sha256").update(JSON.stringify(body)).digest("hex");

  const existing = context.trades.get(CHANNEL, outTradeNo);
  if (existing) {
    if (existing.state === "paid") throw new WechatApiError(400, "ORDERPAID", "该订单已支付");
    if (existing.state === "closed") throw new WechatApiError(400, "ORDER_CLOSED", "订单已关闭");
    if (existing.attributes.request_sha256 !== fingerprint) throw invalidRequest("201 商户订单号重复");
    return { status: 200, json: { code_url: existing.attributes.code_url } };
  }

  const now = new Date();
  const trade: SimTrade = {
    channel: CHANNEL,
    outTradeNo,
    channelTradeNo: `42000${randomDigits(5)}${chinaDate(now).replaceAll("-", "")}${randomDigits(10)}`,
    amountMinor,
    currency: "CNY",
    subject: description,
    notifyUrl,
    state: "created",
    createdAt: now,
    expiresAt,
    refunds: [],
    notifications: [],
    attributes: { code_url: `weixin://wxpay/bizpayurl?pr=${randomAlphanumeric(9)}`, request_sha256: fingerprint },
  };
  context.trades.add(trade);
  if (context.faults.resolve(CHANNEL, outTradeNo).notifyBeforeCreateReturns) await markPaid(book, trade);
  return { status: 200, json: { code_url: trade.attributes.code_url } };
}

/** `GET /v3/pay/transactions/out-trade-no/{out_trade_no}`. */
export function queryOrder(book: WechatBook, outTradeNo: string, query: URLSearchParams): Answer {
  requireMchid(book, query.get("mchid") ?? undefined);
  const trade = book.context.trades.get(CHANNEL, outTradeNo);
  if (!trade) throw new WechatApiError(404, "ORDER_NOT_EXIST", "订单不存在");
  return { status: 200, json: transaction(book, trade) };
}

/** `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`. */
export function closeOrder(book: WechatBook, outTradeNo: string, body: Json): Answer {
  const { context } = book;
  requireMchid(book, requiredString(body, "mchid"));
  const trade = context.trades.get(CHANNEL, outTradeNo);
  // WeChat answers 204 for an order it does not know, or one already closed.
  if (!trade || trade.state === "closed") return { status: 204 };
  if (trade.state === "paid") throw new WechatApiError(400, "ORDERPAID", "订单已支付");
  if (context.faults.resolve(CHANNEL, outTradeNo).paidAfterClose) {
    // The shopper's payment wins the race at WeChat: the close says yes, the money arrives anyway.
    context.timers.schedule(0, () => {
      if (trade.state === "created" || trade.state === "pending") void markPaid(book, trade);
    });
    return { status: 204 };
  }
  trade.state = "closed";
  trade.closedAt = new Date();
  return { status: 204 };
}

/** The shopper pays (or fails to), through the control API. */
export function payOrder(book: WechatBook, outTradeNo: string, outcome: PayOutcome): void {
  const trade = requirePayable(book, outTradeNo);
  if (outcome === "success") {
    void markPaid(book, trade);
    return;
  }
  // WeChat notifies successes only: a failed payment is found by querying the order.
  open(trade);
  trade.state = "failed";
}

/** The shopper scans the code without paying yet: `USERPAYING`. */
export function scanOrder(book: WechatBook, outTradeNo: string): void {
  const trade = requirePayable(book, outTradeNo);
  open(trade);
  trade.state = "pending";
}

/** `trade_state` for the control API, noting an order past `time_expire` (WeChat keeps it `NOTPAY`). */
export function orderChannelState(trade: SimTrade): string {
  const state = tradeState(trade);
  const expired =
    (trade.state === "created" || trade.state === "pending") && trade.expiresAt && trade.expiresAt.getTime() <= Date.now();
  return expired ? `${state} (expired: no longer payable)` : state;
}
