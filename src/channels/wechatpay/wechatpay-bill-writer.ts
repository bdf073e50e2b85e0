/**
 * Writes WeChat Pay ALL trade bills byte for byte in WeChat's layout (UTF-8 with BOM, CRLF,
 * backtick-prefixed fields, summary header and row), streamed: a bill of any length is written
 * without holding it. For the simulator, tests and benchmarks.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { currencyExponent, formatMinor } from "../../money/currency.js";
import { lastTimeTextCache } from "../bill-time-text.js";
import { WECHAT_ALL_BILL_HEADER, WECHAT_ALL_BILL_SUMMARY_HEADER, WECHAT_BILL_COLUMNS } from "./wechatpay-bill.js";
import { toWechatBillTime } from "./wechatpay-time.js";

/** One detail row. Amounts are magnitudes in minor units; the writer prints the signs WeChat prints. */
export interface WechatBillRow {
  kind: "payment" | "refund";
  /** `商户订单号`: our payment number. */
  paymentNo: string;
  /** `微信订单号`. */
  channelTradeNo?: string;
  /** `商户退款单号`, for refunds. */
  refundNo?: string;
  /** `微信退款单号`, for refunds. */
  channelRefundNo?: string;
  /** The order amount (payment) or the refund (refund). */
  amountMinor: bigint;
  /** The fee charged (payment) or returned (refund); refund rows print it negative. */
  feeMinor: bigint;
  currency: string;
  occurredAt: Date;
  /** `商品名称`: the order's description. */
  subject?: string;
}

/** Account details printed on every row. */
export interface WechatBillAccount {
  appId: string;
  mchId: string;
  /** Printed in the `费率` column; default `0.60%`. */
  feeRate?: string;
}

export interface WechatBillWriteOptions {
  /** Cut the file in the middle of its last detail row, without the summary (the simulator's `billTruncated`). */
  truncate?: boolean;
}

/** A fee as the bill prints it: five decimals for cent currencies (`0.06000`). */
function formatWechatBillFee(amountMinor: bigint, currency: string): string {
  const text = formatMinor(amountMinor, currency);
  return currencyExponent(currency) > 0 ? text.padEnd(text.indexOf(".") + 6, "0") : text;
}

/** A field as WeChat writes it: backtick-prefixed, and never containing the `,\`` separator or a line break. */
function cell(value: string): string {
  if (!value.includes("`") && !value.includes("\n") && !value.includes("\r")) return `\`${value}`;
  return `\`${value.replace(/[\r\n]+/g, " ").replaceAll(",`", ", `")}`;
}

const c = WECHAT_BILL_COLUMNS;
/** The detail columns in {@link WECHAT_ALL_BILL_HEADER}'s order, as {@link detailRow} writes them. */
const ROW_ORDER = [
  c.tradeTime, c.appId, c.mchId, c.subMchId, c.deviceInfo, c.transactionId, c.outTradeNo, c.openId, c.tradeType, c.tradeState,
  c.bankType, c.currency, c.settlementTotal, c.couponAmount, c.refundId, c.outRefundNo, c.settlementRefund, c.rechargeCouponRefund,
  c.refundType, c.refundStatus, c.goodsName, c.attach, c.fee, c.feeRate, c.orderAmount, c.requestedRefund, c.feeRateRemark,
];
if (ROW_ORDER.join() !== WECHAT_ALL_BILL_HEADER.join()) throw new Error("wechatpay-bill-writer: row order differs from the header");

/** One detail row, fields in header order (built as an array: a keyed object per row is slow for a million rows). */
function detailRow(row: WechatBillRow, account: WechatBillAccount, tradeTime: string): string {
  const yuan = (minor: bigint) => formatMinor(minor, row.currency);
  const zero = yuan(0n);
  const isRefund = row.kind === "refund";
  const amount = yuan(row.amountMinor);
  return [
    tradeTime,
    account.appId,
    account.mchId,
    "0",
    "",
    row.channelTradeNo ?? "",
    row.paymentNo,
    "",
    "NATIVE",
    isRefund ? "REFUND" : "SUCCESS",
    "OTHERS",
    row.currency,
    isRefund ? zero : amount,
    zero,
    isRefund ? (row.channelRefundNo ?? "") : "0",
    isRefund ? (row.refundNo ?? "") : "0",
    isRefund ? amount : zero,
    zero,
    isRefund ? "ORIGINAL" : "",
    isRefund ? "SUCCESS" : "",
    row.subject ?? "",
    "",
    formatWechatBillFee(isRefund ? -row.feeMinor : row.feeMinor, row.currency),
    account.feeRate ?? "0.60%",
    isRefund ? zero : amount,
    isRefund ? amount : zero,
    "",
  ]
    .map(cell)
    .join(",");
}

/** The bill's text in chunks (one per line), from `rows`; holds one row at a time. */
export async function* wechatBillChunks(
  rows: AsyncIterable<WechatBillRow> | Iterable<WechatBillRow>,
  account: WechatBillAccount,
  options: WechatBillWriteOptions = {},
): AsyncGenerator<string> {
  yield `\uFEFF${WECHAT_ALL_BILL_HEADER.join(",")}\r\n`;
  const time = lastTimeTextCache(toWechatBillTime);
  let count = 0;
  let settlementTotal = 0n;
  let refundTotal = 0n;
  let feeTotal = 0n;
  let orderTotal = 0n;
  let currency = "CNY";
  let held: string | undefined;
  for await (const row of rows) {
    if (held !== undefined) yield `${held}\r\n`;
    held = detailRow(row, account, time(row.occurredAt));
    count += 1;
    currency = row.currency;
    if (row.kind === "refund") {
      refundTotal += row.amountMinor;
      feeTotal -= row.feeMinor;
    } else {
      settlementTotal += row.amountMinor;
      orderTotal += row.amountMinor;
      feeTotal += row.feeMinor;
    }
  }
  if (options.truncate) {
    if (held !== undefined) yield held.slice(0, Math.ceil(held.length / 2));
    return;
  }
  if (held !== undefined) yield `${held}\r\n`;
  const yuan = (minor: bigint) => formatMinor(minor, currency);
  yield `${WECHAT_ALL_BILL_SUMMARY_HEADER.join(",")}\r\n`;
  const summary = [String(count), yuan(settlementTotal), yuan(refundTotal), yuan(0n), formatWechatBillFee(feeTotal, currency), yuan(orderTotal), yuan(refundTotal)];
  yield `${summary.map(cell).join(",")}\r\n`;
}

/** Streams a bill of `rows` into a new file at `path` (mode 0600); resolves with its size and SHA1 (hex), as `hash_value` states it. */
export async function writeWechatBillFile(
  path: string,
  rows: AsyncIterable<WechatBillRow> | Iterable<WechatBillRow>,
  account: WechatBillAccount,
  options: WechatBillWriteOptions = {},
): Promise<{ bytes: number; sha1: string }> {
  const hash = createHash("sha1");
  let bytes = 0;
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const text of batched(wechatBillChunks(rows, account, options))) {
      const chunk = Buffer.from(text, "utf8");
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  }
  await pipeline(Readable.from(hashed()), createWriteStream(path, { mode: 0o600 }));
  return { bytes, sha1: hash.digest("hex") };
}

/** Joins small pieces of text into chunks of about 64 KiB: one write per line is slow for a million lines. */
async function* batched(pieces: AsyncIterable<string>): AsyncGenerator<string> {
  let buffer: string[] = [];
  let length = 0;
  for await (const piece of pieces) {
    buffer.push(piece);
    length += piece.length;
    if (length >= 65_536) {
      yield buffer.join("");
      buffer = [];
      length = 0;
    }
  }
  if (buffer.length > 0) yield buffer.join("");
}

/** The bill in memory, for the simulator's download (its bills are bounded by its trade store). */
export async function wechatBillBuffer(
  rows: AsyncIterable<WechatBillRow> | Iterable<WechatBillRow>,
  account: WechatBillAccount,
  options: WechatBillWriteOptions = {},
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const text of wechatBillChunks(rows, account, options)) chunks.push(Buffer.from(text, "utf8"));
  return Buffer.concat(chunks);
}
