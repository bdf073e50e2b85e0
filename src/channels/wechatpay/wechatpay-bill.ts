/**
 * WeChat Pay's daily trade bill (`bill_type=ALL`), as the download URL of `GET /v3/bill/tradebill`
 * serves it uncompressed: UTF-8 text (often with a BOM), one detail header row, one row per payment
 * or refund with every field prefixed by a backtick, then a summary header row and a summary row.
 * Amounts are yuan. Columns are read by header name, never by position: WeChat adds columns over time.
 * Read as a stream, line by line; the summary is checked against the detail, which is how a
 * truncated file shows.
 */
import { currencyExponent, formatMinor, isKnownCurrency, parseMinor } from "../../money/currency.js";
import {
  billAmount,
  type BillLimits,
  billLimits,
  checkFileSize,
  checkSha1,
  chinaTimeParser,
  magnitude,
  readFileChunks,
  sha1OfFile,
  signedFee,
  splitLines,
} from "../bill-file.js";
import { BillFormatError, type BillRecord } from "../channel.js";
import { parseWechatBillTime } from "./wechatpay-time.js";

/** Header names of the detail section as WeChat writes them (ALL bill). */
export const WECHAT_BILL_COLUMNS = Object.freeze({
  tradeTime: "交易时间",
  appId: "公众账号ID",
  mchId: "商户号",
  subMchId: "特约商户号",
  deviceInfo: "设备号",
  transactionId: "微信订单号",
  outTradeNo: "商户订单号",
  openId: "用户标识",
  tradeType: "交易类型",
  tradeState: "交易状态",
  bankType: "付款银行",
  currency: "货币种类",
  settlementTotal: "应结订单金额",
  couponAmount: "代金券金额",
  refundId: "微信退款单号",
  outRefundNo: "商户退款单号",
  settlementRefund: "退款金额",
  rechargeCouponRefund: "充值券退款金额",
  refundType: "退款类型",
  refundStatus: "退款状态",
  goodsName: "商品名称",
  attach: "商户数据包",
  fee: "手续费",
  feeRate: "费率",
  orderAmount: "订单金额",
  requestedRefund: "申请退款金额",
  feeRateRemark: "费率备注",
  /** Older bill format (before coupon-free settlement): the order amount column. */
  legacyTotal: "总金额",
});

/** The detail header of an ALL bill, in WeChat's order. */
export const WECHAT_ALL_BILL_HEADER: readonly string[] = Object.freeze([
  WECHAT_BILL_COLUMNS.tradeTime,
  WECHAT_BILL_COLUMNS.appId,
  WECHAT_BILL_COLUMNS.mchId,
  WECHAT_BILL_COLUMNS.subMchId,
  WECHAT_BILL_COLUMNS.deviceInfo,
  WECHAT_BILL_COLUMNS.transactionId,
  WECHAT_BILL_COLUMNS.outTradeNo,
  WECHAT_BILL_COLUMNS.openId,
  WECHAT_BILL_COLUMNS.tradeType,
  WECHAT_BILL_COLUMNS.tradeState,
  WECHAT_BILL_COLUMNS.bankType,
  WECHAT_BILL_COLUMNS.currency,
  WECHAT_BILL_COLUMNS.settlementTotal,
  WECHAT_BILL_COLUMNS.couponAmount,
  WECHAT_BILL_COLUMNS.refundId,
  WECHAT_BILL_COLUMNS.outRefundNo,
  WECHAT_BILL_COLUMNS.settlementRefund,
  WECHAT_BILL_COLUMNS.rechargeCouponRefund,
  WECHAT_BILL_COLUMNS.refundType,
  WECHAT_BILL_COLUMNS.refundStatus,
  WECHAT_BILL_COLUMNS.goodsName,
  WECHAT_BILL_COLUMNS.attach,
  WECHAT_BILL_COLUMNS.fee,
  WECHAT_BILL_COLUMNS.feeRate,
  WECHAT_BILL_COLUMNS.orderAmount,
  WECHAT_BILL_COLUMNS.requestedRefund,
  WECHAT_BILL_COLUMNS.feeRateRemark,
]);

/** The summary header of an ALL bill. */
export const WECHAT_ALL_BILL_SUMMARY_HEADER: readonly string[] = Object.freeze([
  "总交易单数",
  "应结订单总金额",
  "退款总金额",
  "充值券退款总金额",
  "手续费总金额",
  "订单总金额",
  "申请退款总金额",
]);

/** What each summary column totals in the detail. */
const SUMMARY_TOTALS: Readonly<Record<string, string>> = Object.freeze({
  应结订单总金额: WECHAT_BILL_COLUMNS.settlementTotal,
  退款总金额: WECHAT_BILL_COLUMNS.settlementRefund,
  充值券退款总金额: WECHAT_BILL_COLUMNS.rechargeCouponRefund,
  手续费总金额: WECHAT_BILL_COLUMNS.fee,
  订单总金额: WECHAT_BILL_COLUMNS.orderAmount,
  申请退款总金额: WECHAT_BILL_COLUMNS.requestedRefund,
});
const SUMMARY_COUNT = "总交易单数";
const CHANNEL = "wechatpay";

const ZERO_TEXTS = new Set(["", "0", "0.00", "0.00000"]);

/** Refund states of a refund row; only SUCCESS becomes a record, the others are known and skipped. */
const REFUND_STATES = new Set(["SUCCESS", "PROCESSING", "CLOSED", "ABNORMAL", "CHANGE", "FAIL"]);

/**
 * Yuan text to minor units. The fee column carries five decimals (`0.06000`); digits past the
 * currency's exponent are accepted only when they are zeros, so nothing is ever rounded.
 */
export function parseWechatBillAmount(text: string, currency: string): bigint {
  const exponent = currencyExponent(currency);
  const match = /^(-?\d+)\.(\d+)$/.exec(text.trim());
  if (match) {
    const [, whole, fraction = ""] = match;
    if (fraction.length > exponent && /^0+$/.test(fraction.slice(exponent))) {
      return parseMinor(exponent > 0 ? `${whole}.${fraction.slice(0, exponent)}` : `${whole}`, currency);
    }
  }
  return parseMinor(text, currency);
}

/** Splits a data row: every field starts with a backtick, so `,\`` separates fields even when a value holds a comma. */
function splitDataRow(line: string): string[] | undefined {
  if (!line.startsWith("`")) return undefined;
  return line.slice(1).split(",`");
}

interface DetailColumns {
  names: string[];
  tradeTime: number;
  transactionId: number | undefined;
  outTradeNo: number;
  tradeState: number;
  currency: number | undefined;
  orderAmount: [number, string];
  outRefundNo: number | undefined;
  refundAmount: [number, string] | undefined;
  refundStatus: number | undefined;
  fee: number;
}

function detailColumns(names: string[], line: number): DetailColumns {
  const optional = (...candidates: string[]): [number, string] | undefined => {
    for (const name of candidates) {
      const index = names.indexOf(name);
      if (index >= 0) return [index, name];
    }
    return undefined;
  };
  const required = (...candidates: string[]): [number, string] => {
    const found = optional(...candidates);
    if (!found) throw new BillFormatError(CHANNEL, `missing column ${candidates.join("/")}`, line);
    return found;
  };
  const c = WECHAT_BILL_COLUMNS;
  return {
    names,
    tradeTime: required(c.tradeTime)[0],
    transactionId: optional(c.transactionId)?.[0],
    outTradeNo: required(c.outTradeNo)[0],
    tradeState: required(c.tradeState)[0],
    currency: optional(c.currency)?.[0],
    orderAmount: required(c.orderAmount, c.legacyTotal, c.settlementTotal),
    outRefundNo: optional(c.outRefundNo)?.[0],
    refundAmount: optional(c.requestedRefund, c.settlementRefund),
    refundStatus: optional(c.refundStatus)?.[0],
    fee: required(c.fee)[0],
  };
}

/** Running totals of the detail, for the summary check. */
class DetailTotals {
  rows = 0;
  readonly sums = new Map<string, bigint>();
  readonly indexes: [string, number][];

  constructor(names: string[]) {
    this.indexes = Object.values(SUMMARY_TOTALS)
      .map((name): [string, number] => [name, names.indexOf(name)])
      .filter(([, index]) => index >= 0);
  }

  add(fields: string[], currency: string, line: number): Map<string, bigint> {
    this.rows += 1;
    const values = new Map<string, bigint>();
    for (const [name, index] of this.indexes) {
      const text = (fields[index] ?? "").trim();
      // Most of these columns are zero on any one row.
      const value = ZERO_TEXTS.has(text) ? 0n : billAmount(CHANNEL, line, name, () => parseWechatBillAmount(text, currency), text);
      values.set(name, value);
      this.sums.set(name, (this.sums.get(name) ?? 0n) + value);
    }
    return values;
  }
}

function checkSummary(header: string[], row: string[] | undefined, totals: DetailTotals, currency: string, line: number): void {
  if (!row || row.length !== header.length) {
    throw new BillFormatError(CHANNEL, `summary row: expected ${header.length} backtick-prefixed fields, got ${row?.length ?? "a row without backticks"}`, line);
  }
  header.forEach((name, index) => {
    const text = (row[index] ?? "").trim();
    if (name === SUMMARY_COUNT) {
      if (!/^\d{1,12}$/.test(text)) throw new BillFormatError(CHANNEL, `bad count ${JSON.stringify(text.slice(0, 32))} in column ${name}`, line);
      if (Number(text) !== totals.rows) {
        throw new BillFormatError(CHANNEL, `summary ${name} says ${text}, the detail has ${totals.rows} rows (truncated?)`, line);
      }
      return;
    }
    const detailName = SUMMARY_TOTALS[name];
    const sum = detailName === undefined ? undefined : totals.sums.get(detailName);
    if (sum === undefined) return;
    const stated = billAmount(CHANNEL, line, name, () => parseWechatBillAmount(text, currency), text);
    if (stated !== sum) {
      throw new BillFormatError(CHANNEL, `summary ${name} says ${text}, the detail adds up to ${formatMinor(sum, currency)} (truncated?)`, line);
    }
  });
}

function fieldOf(fields: string[], index: number | undefined): string {
  return index === undefined ? "" : (fields[index] ?? "").trim();
}

/** One detail row → a record; undefined for a revoked trade or an unfinished refund. */
function detailRecord(
  fields: string[],
  columns: DetailColumns,
  summed: Map<string, bigint>,
  currency: string,
  line: number,
  billDate: string,
  parseTime: (text: string) => Date | undefined,
): BillRecord | undefined {
  const c = WECHAT_BILL_COLUMNS;
  const tradeState = fieldOf(fields, columns.tradeState);
  let kind: BillRecord["kind"] | undefined;
  if (tradeState === "SUCCESS") kind = "payment";
  else if (tradeState === "REFUND") {
    const refundState = fieldOf(fields, columns.refundStatus) || "SUCCESS";
    if (!REFUND_STATES.has(refundState)) throw new BillFormatError(CHANNEL, `unknown refund state ${JSON.stringify(refundState.slice(0, 32))}`, line);
    if (refundState === "SUCCESS") kind = "refund";
  } else if (tradeState !== "REVOKED") {
    throw new BillFormatError(CHANNEL, `unknown trade state ${JSON.stringify(tradeState.slice(0, 32))}`, line);
  }
  const timeText = fieldOf(fields, columns.tradeTime);
  const occurredAt = parseTime(timeText);
  if (!occurredAt) throw new BillFormatError(CHANNEL, `bad date ${JSON.stringify(timeText.slice(0, 32))} in column ${c.tradeTime}`, line);
  if (!kind) return undefined;
  // Bill times are China time, so the text's own date is the China date.
  if (kind === "payment" && timeText.slice(0, 10) !== billDate) {
    throw new BillFormatError(CHANNEL, `bill date mismatch: a payment of ${timeText.slice(0, 10)} in the bill of ${billDate}`, line);
  }
  const amount = (column: [number, string] | undefined): bigint => {
    if (!column) throw new BillFormatError(CHANNEL, `missing column ${c.requestedRefund}/${c.settlementRefund}`, line);
    const known = summed.get(column[1]);
    if (known !== undefined) return magnitude(known);
    const text = fieldOf(fields, column[0]) || "0";
    return magnitude(billAmount(CHANNEL, line, column[1], () => parseWechatBillAmount(text, currency), text));
  };
  const feeText = fieldOf(fields, columns.fee) || "0";
  const record: BillRecord = {
    kind,
    paymentNo: fieldOf(fields, columns.outTradeNo),
    amountMinor: kind === "payment" ? amount(columns.orderAmount) : amount(columns.refundAmount),
    feeMinor: signedFee(kind, summed.get(c.fee) ?? billAmount(CHANNEL, line, c.fee, () => parseWechatBillAmount(feeText, currency), feeText)),
    currency,
    occurredAt,
    line,
  };
  if (!record.paymentNo) throw new BillFormatError(CHANNEL, `empty ${c.outTradeNo}`, line);
  const transactionId = fieldOf(fields, columns.transactionId);
  if (transactionId) record.channelTradeNo = transactionId;
  if (kind === "refund") {
    const refundNo = fieldOf(fields, columns.outRefundNo);
    if (!refundNo) throw new BillFormatError(CHANNEL, `refund row without ${c.outRefundNo}`, line);
    record.refundNo = refundNo;
  }
  return record;
}

/**
 * Reads an ALL trade bill from its bytes, yielding one record per payment (trade state `SUCCESS`)
 * and per successful refund (`REFUND` with 退款状态 `SUCCESS`); revoked trades and unfinished
 * refunds are skipped. Amounts are magnitudes: `amountMinor` is the order amount (payment;
 * `订单金额`, else the legacy `总金额`/`应结订单金额`) or the requested refund (refund;
 * `申请退款金额`, else `退款金额`); `feeMinor` the fee charged (positive) or returned (not
 * positive). Payments must fall on `billDate` (China time). The summary row must agree with the
 * detail (count and totals). Anything else is a {@link BillFormatError} naming the line.
 */
export async function* readWechatBillLines(
  chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  billDate: string,
  limits: Pick<BillLimits, "maxLineBytes" | "maxLines">,
): AsyncGenerator<BillRecord> {
  let columns: DetailColumns | undefined;
  let totals: DetailTotals | undefined;
  let summaryHeader: string[] | undefined;
  let currency = "CNY";
  let lastLine = 0;
  const parseTime = chinaTimeParser(parseWechatBillTime);
  for await (const batch of splitLines(chunks, CHANNEL, limits)) {
    const records: BillRecord[] = [];
    for (const { line, bytes, terminated } of batch) {
      lastLine = line;
      let text = bytes.toString("utf8");
      if (line === 1) text = text.replace(/^\uFEFF/, "");
      if (text.trim() === "") continue;
      if (!terminated) throw new BillFormatError(CHANNEL, "truncated: the last line has no line end", line);
      if (!columns || !totals) {
        const names = text.split(",").map((name) => name.trim());
        if (text.startsWith("`") || !names.includes(WECHAT_BILL_COLUMNS.tradeTime)) {
          throw new BillFormatError(CHANNEL, "no detail header (交易时间, 商户订单号, ...) before the first row", line);
        }
        columns = detailColumns(names, line);
        totals = new DetailTotals(names);
        continue;
      }
      if (summaryHeader) {
        checkSummary(summaryHeader, splitDataRow(text.trim()), totals, currency, line);
        yield* records;
        return;
      }
      if (text.startsWith(SUMMARY_COUNT)) {
        summaryHeader = text.split(",").map((name) => name.trim());
        continue;
      }
      const fields = splitDataRow(text.trim());
      if (!fields || fields.length !== columns.names.length) {
        throw new BillFormatError(CHANNEL, `expected ${columns.names.length} backtick-prefixed fields, got ${fields?.length ?? "a row without backticks"}`, line);
      }
      const rowCurrency = fieldOf(fields, columns.currency) || "CNY";
      if (rowCurrency !== currency && !isKnownCurrency(rowCurrency)) {
        throw new BillFormatError(CHANNEL, `unknown currency ${JSON.stringify(rowCurrency.slice(0, 8))}`, line);
      }
      currency = rowCurrency;
      const record = detailRecord(fields, columns, totals.add(fields, currency, line), currency, line, billDate, parseTime);
      if (record) records.push(record);
    }
    yield* records;
  }
  if (!columns) throw new BillFormatError(CHANNEL, "no detail header (交易时间, 商户订单号, ...): the file is empty", lastLine || undefined);
  throw new BillFormatError(CHANNEL, `truncated: the file ends without its summary row (${SUMMARY_COUNT}, ...)`, lastLine);
}

/**
 * Reads a trade bill file lazily (a fresh pass per call). The caller checks the hash first
 * ({@link checkWechatBillFile}); the size limit is checked here too.
 */
export async function* readWechatBill(path: string, billDate: string, limitOverrides?: Partial<BillLimits>): AsyncGenerator<BillRecord> {
  const limits = billLimits(limitOverrides);
  await checkFileSize(path, CHANNEL, limits.maxFileBytes);
  yield* readWechatBillLines(readFileChunks(path), billDate, limits);
}

/** Checks a caller's bill file before reading: its size, and its SHA1 when one is given. */
export async function checkWechatBillFile(path: string, options: { sha1?: string } = {}, limitOverrides?: Partial<BillLimits>): Promise<void> {
  await checkFileSize(path, CHANNEL, billLimits(limitOverrides).maxFileBytes);
  if (options.sha1 !== undefined) checkSha1(CHANNEL, await sha1OfFile(path), options.sha1);
}
