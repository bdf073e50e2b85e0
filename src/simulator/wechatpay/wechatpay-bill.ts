/**
 * WeChat Pay's trade bill: `GET /v3/bill/tradebill` makes the day's file and answers its SHA-1 and
 * a download link valid 5 minutes; `GET /v3/billdownload/file` serves it (unsigned, as WeChat
 * does). Bills are served for today as well (WeChat: T+1 after 10:00).
 */
import { createHash, randomBytes } from "node:crypto";
import { formatWechatTradeBill, type WechatTradeBillRow } from "../../channels/wechatpay/wechatpay-bill.js";
import { parseWechatBillTime } from "../../channels/wechatpay/wechatpay-time.js";
import { paymentFee } from "../../fees/fee-calculator.js";
import { keepLink } from "../download-links.js";
import { type Answer, CHANNEL, FEE_TERMS, type WechatBook } from "./wechatpay-book.js";
import { chinaDate, paramError, WechatApiError } from "./wechatpay-params.js";

const BILL_URL_VALIDITY_MS = 5 * 60 * 1000;
// Each link keeps its whole file until it expires, so few are kept.
const MAX_BILL_FILES = 100;

function billRows(book: WechatBook, billDate: string, billType: string): WechatTradeBillRow[] {
  const rows: WechatTradeBillRow[] = [];
  if (billType !== "REFUND") {
    for (const trade of book.context.trades.list(CHANNEL)) {
      if (!trade.paidAt || chinaDate(trade.paidAt) !== billDate) continue;
      rows.push({
        kind: "payment",
        paymentNo: trade.outTradeNo,
        channelTradeNo: trade.channelTradeNo,
        amountMinor: trade.amountMinor,
        feeMinor: paymentFee(trade.amountMinor, FEE_TERMS),
        currency: trade.currency,
        occurredAt: trade.paidAt,
        subject: trade.subject,
      });
    }
  }
  if (billType !== "SUCCESS") {
    for (const { trade, refund, finishedAt } of book.refunds.values()) {
      if (refund.state !== "succeeded" || !finishedAt || chinaDate(finishedAt) !== billDate) continue;
      rows.push({
        kind: "refund",
        paymentNo: trade.outTradeNo,
        channelTradeNo: trade.channelTradeNo,
        refundNo: refund.refundNo,
        channelRefundNo: refund.channelRefundNo,
        amountMinor: refund.amountMinor,
        feeMinor: paymentFee(refund.amountMinor, FEE_TERMS),
        currency: trade.currency,
        occurredAt: finishedAt,
        subject: trade.subject,
      });
    }
  }
  return rows.sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime());
}

/** `GET /v3/bill/tradebill`; `base` is the channel's base URL the download link points under. */
export function tradeBill(book: WechatBook, query: URLSearchParams, base: string): Answer {
  const billDate = query.get("bill_date") ?? "";
  if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate) || !parseWechatBillTime(`${billDate} 00:00:00`)) {
    throw paramError("bill_date 须为 yyyy-MM-dd");
  }
  const billType = query.get("bill_type") ?? "ALL";
  if (!["ALL", "SUCCESS", "REFUND"].includes(billType)) throw paramError("bill_type 须为 ALL、SUCCESS 或 REFUND");
  const rows = billRows(book, billDate, billType);
  if (rows.length === 0) throw new WechatApiError(400, "NO_STATEMENT_EXIST", "请求的账单文件不存在");
  // The hash must match the bytes served later, so the file is made now and kept with its token.
  const file = Buffer.from(formatWechatTradeBill(rows, { appId: book.keys.appId, mchId: book.keys.mchId }), "utf8");
  const token = randomBytes(24).toString("base64url");
  const now = Date.now();
  keepLink(book.bills, token, { file, fileName: `${billDate}_${billType}.csv`, expiresAt: now + BILL_URL_VALIDITY_MS }, MAX_BILL_FILES);
  return {
    status: 200,
    json: {
      hash_type: "SHA1",
      hash_value: createHash("sha1").update(file).digest("hex"),
      download_url: `${base}/v3/billdownload/file?token=${token}`,
    },
  };
}

/** `GET /v3/billdownload/file?token=...`. */
export function billDownload(book: WechatBook, query: URLSearchParams): Answer {
  const bill = book.bills.get(query.get("token") ?? "");
  if (!bill || bill.expiresAt < Date.now()) {
    throw new WechatApiError(404, "RESOURCE_NOT_EXISTS", "账单下载链接无效或已过期（有效期 5 分钟）");
  }
  return { status: 200, file: bill.file, fileName: bill.fileName };
}
