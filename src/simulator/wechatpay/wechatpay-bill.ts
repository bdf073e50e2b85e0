/**
 * WeChat Pay's trade bill: `GET /v3/bill/tradebill` makes the day's file (with the service's own
 * bill writer) and answers its SHA-1 and a download link valid 5 minutes; `GET
 * /v3/billdownload/file` serves it (unsigned, as WeChat does). A bill is made for any day (China
 * time) from the trades still in the trade store, today included (WeChat: T+1 after 10:00); a day
 * without rows is `NO_STATEMENT_EXIST`. Bill faults: `billOmitLine`, `billAlterAmount`,
 * `billAlterFee` (per trade), `billExtraLine`, `billWrongHash` (the answer states another file's
 * SHA-1), `billTruncated` (the file, hashed as served, is cut in its last detail row).
 */
import { createHash, randomBytes } from "node:crypto";
import { type WechatBillRow, wechatBillBuffer } from "../../channels/wechatpay/wechatpay-bill-writer.js";
import { parseWechatBillTime } from "../../channels/wechatpay/wechatpay-time.js";
import { paymentFee } from "../../fees/fee-calculator.js";
import { keepLink } from "../download-links.js";
import { type Answer, CHANNEL, FEE_TERMS, type WechatBook } from "./wechatpay-book.js";
import { chinaDate, paramError, WechatApiError } from "./wechatpay-params.js";

const BILL_URL_VALIDITY_MS = 5 * 60 * 1000;
// Each link keeps its whole file until it expires, so few are kept.
const MAX_BILL_FILES = 100;

// The billExtraLine trade's number: never a real trade's, and the same on every bill of a day.
const EXTRA_STEM = randomBytes(4).toString("hex");

function billRows(book: WechatBook, billDate: string, billType: string): WechatBillRow[] {
  const rows: WechatBillRow[] = [];
  const faultsOf = (outTradeNo: string) => book.context.faults.resolve(CHANNEL, outTradeNo);
  if (billType !== "REFUND") {
    for (const trade of book.context.trades.list(CHANNEL)) {
      if (!trade.paidAt || chinaDate(trade.paidAt) !== billDate) continue;
      const faults = faultsOf(trade.outTradeNo);
      if (faults.billOmitLine) continue;
      rows.push({
        kind: "payment",
        paymentNo: trade.outTradeNo,
        channelTradeNo: trade.channelTradeNo,
        amountMinor: trade.amountMinor + (faults.billAlterAmount ? 1n : 0n),
        feeMinor: paymentFee(trade.amountMinor, FEE_TERMS) + (faults.billAlterFee ? 1n : 0n),
        currency: trade.currency,
        occurredAt: trade.paidAt,
        subject: trade.subject,
      });
    }
    if (book.context.faults.resolve(CHANNEL).billExtraLine) {
      const compactDate = billDate.replaceAll("-", "");
      rows.push({
        kind: "payment",
        paymentNo: `SIMX${compactDate}${EXTRA_STEM}`,
        channelTradeNo: `42000099${compactDate}${EXTRA_STEM}`,
        amountMinor: 1_000n,
        feeMinor: paymentFee(1_000n, FEE_TERMS),
        currency: "CNY",
        occurredAt: parseWechatBillTime(`${billDate} 12:00:00`) as Date,
        subject: "never ordered",
      });
    }
  }
  if (billType !== "SUCCESS") {
    for (const { trade, refund, finishedAt } of book.refunds.values()) {
      if (refund.state !== "succeeded" || !finishedAt || chinaDate(finishedAt) !== billDate) continue;
      if (faultsOf(trade.outTradeNo).billOmitLine) continue;
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
export async function tradeBill(book: WechatBook, query: URLSearchParams, base: string): Promise<Answer> {
  const billDate = query.get("bill_date") ?? "";
  if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate) || !parseWechatBillTime(`${billDate} 00:00:00`)) {
    throw paramError("bill_date 须为 yyyy-MM-dd");
  }
  const billType = query.get("bill_type") ?? "ALL";
  if (!["ALL", "SUCCESS", "REFUND"].includes(billType)) throw paramError("bill_type 须为 ALL、SUCCESS 或 REFUND");
  const rows = billRows(book, billDate, billType);
  if (rows.length === 0) throw new WechatApiError(400, "NO_STATEMENT_EXIST", "请求的账单文件不存在");
  // The hash must match the bytes served later, so the file is made now and kept with its token.
  const faults = book.context.faults.resolve(CHANNEL);
  const file = await wechatBillBuffer(rows, { appId: book.keys.appId, mchId: book.keys.mchId }, { truncate: faults.billTruncated === true });
  const hash = createHash("sha1").update(file);
  if (faults.billWrongHash) hash.update("another file");
  const token = randomBytes(24).toString("base64url");
  const now = Date.now();
  keepLink(book.bills, token, { file, fileName: `${billDate}_${billType}.csv`, expiresAt: now + BILL_URL_VALIDITY_MS }, MAX_BILL_FILES);
  return {
    status: 200,
    json: {
      hash_type: "SHA1",
      hash_value: hash.digest("hex"),
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
