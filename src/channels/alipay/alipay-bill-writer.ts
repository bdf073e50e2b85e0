/**
 * Writes Alipay trade bills in Alipay's layout (see alipay-bill.ts): a zip (yazl) holding the GBK
 * detail CSV `{account}_{yyyyMMdd}_业务明细.csv` and its summary `..._业务明细(汇总).csv`, every
 * value tab-padded as Alipay writes them. Rows are streamed: a bill of any length is written
 * without holding it. For the simulator, tests and benchmarks. yazl marks entry names UTF-8
 * (Alipay's own archives write GBK names unflagged); the reader takes both.
 */
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import iconv from "iconv-lite";
import yazl from "yazl";
import { formatMinor } from "../../money/currency.js";
import { lastTimeTextCache } from "../bill-time-text.js";
import { ALIPAY_BUSINESS_TYPES } from "./alipay-bill.js";
import { parseAlipayTime, toAlipayDate, toAlipayTime } from "./alipay-time.js";

/** One detail row. Amounts are magnitudes in fen; the writer prints the signs Alipay prints. */
export interface AlipayBillRow {
  kind: "payment" | "refund";
  /** `支付宝交易号`. */
  tradeNo: string;
  /** `商户订单号`: our payment number. */
  outTradeNo: string;
  subject: string;
  createdAt: Date;
  finishedAt: Date;
  /** The order amount (payment) or the refunded amount (refund). */
  amountMinor: bigint;
  /** The service fee charged (payment) or returned (refund). */
  feeMinor: bigint;
  /** `退款批次号/请求号`: our refund number, on refunds. */
  refundNo?: string;
  /** `对方账户`, masked. */
  buyerAccount?: string;
}

/** The account the bill is for. */
export interface AlipayBillAccount {
  /** The seller id (PID, `2088...`); the bill's account is `{sellerId}0156`. */
  sellerId: string;
  /** `#导出时间`; now when absent. */
  exportedAt?: Date;
}

export interface AlipayBillWriteOptions {
  /** Cut the detail file in the middle of its last row, with no closing lines (the simulator's `billTruncated`). */
  truncate?: boolean;
}

/** The detail header, as Alipay writes it (full-width parentheses). */
export const ALIPAY_DETAIL_HEADER: readonly string[] = Object.freeze([
  "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员", "终端号",
  "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）",
  "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注",
]);

// Alipay pads every value with a tab so spreadsheets keep long numbers as text; a value with a
// comma, quote or line break is quoted.
const csvField = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);
const yuan = (minor: bigint) => formatMinor(minor, "CNY");

/**
 * One detail row in {@link ALIPAY_DETAIL_HEADER}'s 25 columns. Only the free-text fields can need
 * CSV quoting; the rest is written as one template (a field array per row is slow for a million rows).
 */
function detailRow(row: AlipayBillRow, created: (date: Date) => string, finished: (date: Date) => string): string {
  const isRefund = row.kind === "refund";
  const amount = yuan(isRefund ? -row.amountMinor : row.amountMinor);
  const fee = yuan(isRefund ? row.feeMinor : -row.feeMinor);
  const type = isRefund ? ALIPAY_BUSINESS_TYPES.refund : ALIPAY_BUSINESS_TYPES.payment;
  const refundNo = isRefund ? csvField(row.refundNo ?? "") : "";
  return (
    `${csvField(row.tradeNo)}\t,${csvField(row.outTradeNo)}\t,${type}\t,${csvField(row.subject)}\t,` +
    `${created(row.createdAt)}\t,${finished(row.finishedAt)}\t,\t,\t,\t,\t,${csvField(row.buyerAccount ?? "")}\t,` +
    `${amount}\t,${amount}\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,${refundNo}\t,${fee}\t,0.00\t,\t`
  );
}

function chineseDate(date: string): string {
  const [year, month, day] = date.split("-");
  return `${year}年${month}月${day}日`;
}

function accountOf(account: AlipayBillAccount): string {
  return `${account.sellerId}0156`;
}

/** The zip's file names for a bill of `billDate`. */
export function alipayBillFileNames(billDate: string, account: AlipayBillAccount): { detail: string; summary: string; archive: string } {
  const stem = `${accountOf(account)}_${billDate.replaceAll("-", "")}`;
  return { detail: `${stem}_业务明细.csv`, summary: `${stem}_业务明细(汇总).csv`, archive: `${stem}.csv.zip` };
}

/**
 * The bill archive as a byte stream (yazl's output): the detail file streamed from `rows`, then
 * the summary with the counts. Nothing but one row is held at a time.
 */
export function alipayBillArchive(
  billDate: string,
  rows: AsyncIterable<AlipayBillRow> | Iterable<AlipayBillRow>,
  account: AlipayBillAccount,
  options: AlipayBillWriteOptions = {},
): NodeJS.ReadableStream {
  const names = alipayBillFileNames(billDate, account);
  const dayStart = parseAlipayTime(`${billDate} 00:00:00`);
  if (!dayStart) throw new RangeError(`bill date must be yyyy-MM-dd, got ${JSON.stringify(billDate)}`);
  const nextDay = toAlipayDate(new Date(dayStart.getTime() + 86_400_000));
  const exportedAt = toAlipayTime(account.exportedAt ?? new Date());
  const counts = { payment: 0, refund: 0 };
  const gbk = (text: string) => iconv.encode(text, "gbk");

  async function* detail(): AsyncGenerator<Buffer> {
    const [created, finished] = [lastTimeTextCache(toAlipayTime), lastTimeTextCache(toAlipayTime)];
    yield gbk(
      [
        "#支付宝业务明细查询",
        `#账号：[${accountOf(account)}]`,
        `#起始日期：[${chineseDate(billDate)} 00:00:00]   终止日期：[${chineseDate(nextDay)} 00:00:00]`,
        "#-----------------------------------------业务明细列表----------------------------------------",
        ALIPAY_DETAIL_HEADER.join(","),
        "",
      ].join("\r\n"),
    );
    let held: string | undefined;
    // Rows go out in batches of about 64 KiB: one chunk per row is slow for a million rows.
    let batch: string[] = [];
    let batchLength = 0;
    for await (const row of rows) {
      if (held !== undefined) {
        batch.push(held, "\r\n");
        batchLength += held.length + 2;
        if (batchLength >= 65_536) {
          yield gbk(batch.join(""));
          batch = [];
          batchLength = 0;
        }
      }
      held = detailRow(row, created, finished);
      counts[row.kind] += 1;
    }
    if (batch.length > 0) yield gbk(batch.join(""));
    if (options.truncate) {
      if (held !== undefined) yield gbk(held.slice(0, Math.ceil(held.length / 2)));
      return;
    }
    if (held !== undefined) yield gbk(`${held}\r\n`);
    yield gbk(
      [
        "#-----------------------------------------业务明细列表结束------------------------------------",
        `#交易合计：${counts.payment}笔，退款合计：${counts.refund}笔`,
        `#导出时间：[${exportedAt}]`,
        "",
      ].join("\r\n"),
    );
  }

  const zip = new yazl.ZipFile();
  const mtime = new Date();
  zip.addReadStream(Readable.from(detail()), names.detail, { mtime, compress: true });
  // Lazy: the counts are known once the detail stream is done.
  zip.addReadStreamLazy(names.summary, { mtime, compress: true }, (callback) => {
    const summary = [
      "#支付宝业务汇总查询",
      `#账号：[${accountOf(account)}]`,
      "门店编号,门店名称,交易订单总笔数,退款订单总笔数",
      `,,${counts.payment},${counts.refund}`,
      "#-----------------------------------------业务汇总列表结束-----------------------------------",
      `#导出时间：[${exportedAt}]`,
      "",
    ].join("\r\n");
    callback(null, Readable.from([gbk(summary)]));
  });
  zip.end();
  return zip.outputStream;
}

/** Streams a bill archive of `rows` into a new file at `path` (mode 0600); resolves with the counts. */
export async function writeAlipayBillFile(
  path: string,
  billDate: string,
  rows: AsyncIterable<AlipayBillRow> | Iterable<AlipayBillRow>,
  account: AlipayBillAccount,
  options: AlipayBillWriteOptions = {},
): Promise<{ payments: number; refunds: number }> {
  const counts = { payments: 0, refunds: 0 };
  async function* counted(): AsyncGenerator<AlipayBillRow> {
    for await (const row of rows) {
      if (row.kind === "payment") counts.payments += 1;
      else counts.refunds += 1;
      yield row;
    }
  }
  await pipeline(alipayBillArchive(billDate, counted(), account, options), createWriteStream(path, { mode: 0o600 }));
  return counts;
}

/** The bill archive in memory, for the simulator's download answer (its bills are bounded by its trade store). */
export async function alipayBillArchiveBuffer(
  billDate: string,
  rows: AsyncIterable<AlipayBillRow> | Iterable<AlipayBillRow>,
  account: AlipayBillAccount,
  options: AlipayBillWriteOptions = {},
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of alipayBillArchive(billDate, rows, account, options) as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
