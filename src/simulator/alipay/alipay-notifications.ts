/**
 * Alipay's notify sender: `trade_status_sync` form posts to the trade's notify_url for payments,
 * closes of scanned trades and refunds, signed with Alipay's key, re-sent on Alipay's schedule
 * until the receiver answers `success`.
 */
import { randomBytes } from "node:crypto";
import { signNotifyParams } from "../../channels/alipay/alipay-signature.js";
import { toAlipayTime } from "../../channels/alipay/alipay-time.js";
import type { SimRefund, SimTrade } from "../trade-store.js";
import { type AlipayBook, CHANNEL } from "./alipay-book.js";
import { digits, maskedLogonId, paidOutMinor, tradeStatus, yuan } from "./alipay-params.js";

/** Alipay re-sends an unacknowledged notify after 4m, 10m, 10m, 1h, 2h, 6h, 15h (8 deliveries in about 25 h). */
export const ALIPAY_NOTIFY_RETRY_GAPS_MS: readonly number[] = [4, 10, 10, 60, 120, 360, 900].map((minutes) => minutes * 60_000);

/** What a notify reports, fixed when it is queued so that re-sends repeat it. */
interface NotifyFacts {
  kind: "payment" | "closed" | "refund";
  tradeStatus: string;
  refund?: SimRefund;
  refundFeeMinor?: bigint;
}

/** The signed notify parameters of one delivery; the amount and signature faults apply per delivery. */
function notifyParams(book: AlipayBook, trade: SimTrade, facts: NotifyFacts, notifyId: string): Record<string, string> {
  const { keys } = book;
  const faults = book.context.faults.resolve(CHANNEL, trade.outTradeNo);
  const delta = faults.alterAmount === true ? 1n : typeof faults.alterAmount === "number" ? BigInt(faults.alterAmount) : 0n;
  const stated = yuan(trade.amountMinor + delta);
  const params: Record<string, string> = {
    notify_time: toAlipayTime(new Date()),
    notify_type: "trade_status_sync",
    notify_id: notifyId,
    app_id: keys.appId,
    auth_app_id: keys.appId,
    charset: "utf-8",
    version: "1.0",
    sign_type: "RSA2",
    trade_no: trade.channelTradeNo,
    out_trade_no: trade.outTradeNo,
    seller_id: keys.sellerId,
    trade_status: facts.tradeStatus,
    total_amount: stated,
    subject: trade.subject,
    gmt_create: toAlipayTime(trade.openedAt ?? trade.createdAt),
  };
  if (trade.buyerId) {
    params.buyer_id = trade.buyerId;
    params.buyer_logon_id = maskedLogonId(trade.buyerId);
  }
  if (trade.paidAt) {
    params.receipt_amount = stated;
    params.invoice_amount = stated;
    params.buyer_pay_amount = stated;
    params.point_amount = "0.00";
    params.gmt_payment = toAlipayTime(trade.paidAt);
    params.fund_bill_list = JSON.stringify([{ amount: stated, fundChannel: "ALIPAYACCOUNT" }]);
  }
  if (trade.closedAt && facts.kind === "closed") params.gmt_close = toAlipayTime(trade.closedAt);
  const { refund } = facts;
  if (refund) {
    params.out_biz_no = refund.refundNo;
    params.refund_fee = yuan(facts.refundFeeMinor ?? refund.amountMinor);
    params.gmt_refund = `${toAlipayTime(refund.createdAt)}.${String(refund.createdAt.getUTCMilliseconds()).padStart(3, "0")}`;
  }
  params.sign = signNotifyParams(params, book.signingKey(trade.outTradeNo, "badSignature"));
  return params;
}

/** Queues a notify to the trade's notify_url; resolves after its first delivery attempt. */
export function notify(book: AlipayBook, trade: SimTrade, kind: "payment" | "closed" | "refund", refund?: SimRefund): Promise<void> {
  if (!trade.notifyUrl) return Promise.resolve();
  const notifyId = `${randomBytes(16).toString("hex")}${digits(3)}`;
  const facts: NotifyFacts =
    kind === "payment"
      ? { kind, tradeStatus: "TRADE_SUCCESS" }
      : kind === "closed"
        ? { kind, tradeStatus: "TRADE_CLOSED" }
        : { kind, tradeStatus: tradeStatus(trade), refundFeeMinor: paidOutMinor(trade) };
  if (refund) facts.refund = refund;
  return book.context.notifier.enqueue(trade, {
    id: notifyId,
    kind,
    url: trade.notifyUrl,
    retryGapsMs: ALIPAY_NOTIFY_RETRY_GAPS_MS,
    build: () => ({
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      body: new URLSearchParams(notifyParams(book, trade, facts, notifyId)).toString(),
    }),
    isAcknowledged: (status, body) => status === 200 && body.toString("utf8") === "success",
  });
}
