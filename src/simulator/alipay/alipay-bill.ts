/**
 * Alipay's trade bill: `alipay.data.dataservice.bill.downloadurl.query` answers a link valid 30 s,
 * and `GET /bill/download?token=...` serves a zip of two GBK CSV files (业务明细 and its 汇总),
 * every value tab-padded as Alipay writes them (written by the service's own bill writer), with the
 * simulated 0.6 % service fee (half up to the fen) on payments and returned on refunds. A bill is
 * made for any day up to today, China time (Alipay: T+1 after 10:00), from the trades still in
 * the trade store. Bill faults: `billOmitLine`, `billAlterAmount`, `billAlterFee` (per trade),
 * `billExtraLine`, `billTruncated` (per channel; the detail CSV is cut in its last row).
 * `billWrongHash` does not apply: Alipay states no hash.
 */
import { randomBytes } from "node:crypto";
import { type AlipayBillRow, alipayBillArchiveBuffer, alipayBillFileNames } from "../../channels/alipay/alipay-bill-writer.js";
import { parseAlipayTime, toAlipayDate } from "../../channels/alipay/alipay-time.js";
import type { SimulatorRequest, SimulatorResponse } from "../channel-side.js";
import { keepLink } from "../download-links.js";
import { type AlipayBook, CHANNEL } from "./alipay-book.js";
import { business, type Content, invalidParameter, maskedLogonId, stringField } from "./alipay-params.js";

const BILL_URL_VALIDITY_MS = 30_000;
const MAX_BILL_LINKS = 1_000;
const TEXT = { "content-type": "text/plain; charset=utf-8" };

/** `alipay.data.dataservice.bill.downloadurl.query`: a download link under the channel's base URL. */
export function billDownloadUrl(book: AlipayBook, biz: Content, request: SimulatorRequest): Content {
  const billType = stringField(biz, "bill_type");
  const billDate = stringField(biz, "bill_date");
  if (billType !== "trade") throw invalidParameter("bill_type: only trade is simulated");
  if (!billDate || !/^\d{4}-\d{2}-\d{2}$/.test(billDate) || !parseAlipayTime(`${billDate} 00:00:00`)) {
    throw invalidParameter("bill_date must be yyyy-MM-dd (monthly bills are not simulated)");
  }
  if (billDate > toAlipayDate(new Date())) throw business("isp.bill_not_exist", "账单不存在");
  const token = randomBytes(16).toString("hex");
  const now = Date.now();
  keepLink(book.billTokens, token, { billDate, expiresAt: now + BILL_URL_VALIDITY_MS }, MAX_BILL_LINKS);
  const compactDate = billDate.replaceAll("-", "");
  return {
    code: "10000",
    msg: "Success",
    bill_download_url: `${request.origin}${request.mount}/bill/download?bizType=trade&fileType=csv.zip&bizDates=${compactDate}&token=${token}`,
  };
}

/** `GET /bill/download?token=...`: the zip, or a plain-text 404 for an unknown or expired token. */
export async function billDownload(book: AlipayBook, request: SimulatorRequest): Promise<SimulatorResponse> {
  const entry = book.billTokens.get(request.query.get("token") ?? "");
  if (!entry || entry.expiresAt < Date.now()) {
    return { status: 404, headers: TEXT, body: "bill download link unknown or expired (valid 30 s)\n" };
  }
  const account = { sellerId: book.keys.sellerId };
  const faults = book.context.faults.resolve(CHANNEL);
  const rows = billRows(book, entry.billDate);
  const body = await alipayBillArchiveBuffer(entry.billDate, rows, account, { truncate: faults.billTruncated === true });
  return {
    status: 200,
    headers: {
      "content-type": "application/octet-stream",
      "content-disposition": `attachment; filename="${alipayBillFileNames(entry.billDate, account).archive}"`,
    },
    body,
  };
}

/** The simulated service fee: 0.6 %, rounded half up to the fen. */
const FEE_RATE_PER_MILLE = 6n;
const fee = (amountMinor: bigint) => (amountMinor * FEE_RATE_PER_MILLE + 500n) / 1000n;
// The billExtraLine trade's number: never a real trade's, and the same on every download of a day.
const EXTRA_STEM = randomBytes(4).toString("hex");

/**
 * The day's detail rows (China time): payments by payment time, refunds by refund time, with the
 * bill faults applied (`billOmitLine`, `billAlterAmount`, `billAlterFee` per trade;
 * `billExtraLine` for the channel).
 */
function billRows(book: AlipayBook, billDate: string): AlipayBillRow[] {
  const rows: AlipayBillRow[] = [];
  for (const trade of book.context.trades.list(CHANNEL)) {
    const faults = book.context.faults.resolve(CHANNEL, trade.outTradeNo);
    if (faults.billOmitLine) continue;
    const common = {
      tradeNo: trade.channelTradeNo,
      outTradeNo: trade.outTradeNo,
      subject: trade.subject,
      createdAt: trade.openedAt ?? trade.createdAt,
      buyerAccount: trade.buyerId ? maskedLogonId(trade.buyerId) : "",
    };
    if (trade.paidAt && toAlipayDate(trade.paidAt) === billDate) {
      rows.push({
        ...common,
        kind: "payment",
        finishedAt: trade.paidAt,
        amountMinor: trade.amountMinor + (faults.billAlterAmount ? 1n : 0n),
        feeMinor: fee(trade.amountMinor) + (faults.billAlterFee ? 1n : 0n),
      });
    }
    for (const refund of trade.refunds) {
      if (refund.state !== "succeeded" || toAlipayDate(refund.createdAt) !== billDate) continue;
      rows.push({ ...common, kind: "refund", finishedAt: refund.createdAt, amountMinor: refund.amountMinor, feeMinor: fee(refund.amountMinor), refundNo: refund.refundNo });
    }
  }
  if (book.context.faults.resolve(CHANNEL).billExtraLine) {
    const at = parseAlipayTime(`${billDate} 12:00:00`) as Date;
    const compactDate = billDate.replaceAll("-", "");
    rows.push({
      kind: "payment",
      tradeNo: `${compactDate}22001499999${EXTRA_STEM}`,
      outTradeNo: `SIMX${compactDate}${EXTRA_STEM}`,
      subject: "never ordered",
      createdAt: at,
      finishedAt: at,
      amountMinor: 1_000n,
      feeMinor: fee(1_000n),
    });
  }
  return rows;
}
