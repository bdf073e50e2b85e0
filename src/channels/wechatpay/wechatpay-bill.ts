/**
 * WeChat Pay's daily trade bill (`bill_type=ALL`), as the download URL of `GET /v3/bill/tradebill`
 * serves it uncompressed: UTF-8 text (often with a BOM), one detail header row, one row per payment
 * or refund with every field prefixed by a backtick, then a summary header row and a summary row.
 * Amounts are yuan. Columns are read by header name, never by position: WeChat adds columns over time.
 */
import { currencyExponent, formatMinor, parseMinor } from "../../money/currency.js";
import type { BillRecord } from "../channel.js";
import { parseWechatBillTime, toWechatBillTime } from "./wechatpay-time.js";

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

const SUMMARY_FIRST_COLUMN = "总交易单数";

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

/** A fee as the bill prints it: five decimals for cent currencies (`0.06000`). */
function formatWechatBillFee(amountMinor: bigint, currency: string): string {
  const text = formatMinor(amountMinor, currency);
  return currencyExponent(currency) > 0 ? text.padEnd(text.indexOf(".") + 6, "0") : text;
}

function absolute(amount: bigint): bigint {
  return amount < 0n ? -amount : amount;
}

/** Splits a data row: every field starts with a backtick, so `,\`` separates fields even when a value holds a comma. */
function splitDataRow(line: string): string[] | undefined {
  if (!line.startsWith("`")) return undefined;
  return line.slice(1).split(",`");
}

/**
 * Parses the text of an ALL trade bill into records. Rows with trade state `SUCCESS` become
 * payments and `REFUND` refunds; others (`REVOKED`) are skipped. Amounts are positive magnitudes:
 * `amountMinor` is the order amount (payment; `订单金额`, else the legacy `总金额`/`应结订单金额`)
 * or the requested refund (refund; `申请退款金额`, else `退款金额`); `feeMinor` the fee charged or
 * returned. Throws on a missing column or an unreadable row, naming the line.
 */
export function parseWechatTradeBill(text: string): BillRecord[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const headerIndex = lines.findIndex(
    (line) => !line.startsWith("`") && line.includes(WECHAT_BILL_COLUMNS.tradeTime) && line.includes(WECHAT_BILL_COLUMNS.outTradeNo),
  );
  if (headerIndex < 0) throw new Error("WeChat bill: detail header (交易时间, 商户订单号, ...) not found");
  const header = (lines[headerIndex] as string).split(",").map((name) => name.trim());
  const optionalColumn = (...names: string[]): number | undefined => {
    for (const name of names) {
      const index = header.indexOf(name);
      if (index >= 0) return index;
    }
    return undefined;
  };
  const column = (...names: string[]): number => {
    const index = optionalColumn(...names);
    if (index === undefined) throw new Error(`WeChat bill: column ${names.join("/")} missing`);
    return index;
  };
  const c = WECHAT_BILL_COLUMNS;
  const columns = {
    tradeTime: column(c.tradeTime),
    transactionId: column(c.transactionId),
    outTradeNo: column(c.outTradeNo),
    tradeState: column(c.tradeState),
    currency: optionalColumn(c.currency),
    orderAmount: column(c.orderAmount, c.legacyTotal, c.settlementTotal),
    outRefundNo: optionalColumn(c.outRefundNo),
    refundAmount: optionalColumn(c.requestedRefund, c.settlementRefund),
    fee: column(c.fee),
  };

  const records: BillRecord[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "") continue;
    if (line.startsWith(SUMMARY_FIRST_COLUMN)) break;
    const where = `WeChat bill line ${i + 1}`;
    const fields = splitDataRow(line);
    if (!fields || fields.length !== header.length) {
      throw new Error(`${where}: expected ${header.length} backtick-prefixed fields, got ${fields?.length ?? "a row without backticks"}`);
    }
    const field = (index: number | undefined) => (index === undefined ? "" : (fields[index] ?? "").trim());

    const tradeState = field(columns.tradeState);
    const kind = tradeState === "SUCCESS" ? "payment" : tradeState === "REFUND" ? "refund" : undefined;
    if (!kind) continue;
    const currency = field(columns.currency) || "CNY";
    const occurredAt = parseWechatBillTime(field(columns.tradeTime));
    if (!occurredAt) throw new Error(`${where}: bad ${c.tradeTime} ${JSON.stringify(field(columns.tradeTime))}`);
    const amount = (index: number | undefined, name: string): bigint => {
      try {
        return absolute(parseWechatBillAmount(field(index) || "0", currency));
      } catch (error) {
        throw new Error(`${where}: ${name}: ${(error as Error).message}`);
      }
    };

    const record: BillRecord = {
      kind,
      paymentNo: field(columns.outTradeNo),
      amountMinor: kind === "payment" ? amount(columns.orderAmount, "order amount") : amount(columns.refundAmount, "refund amount"),
      feeMinor: amount(columns.fee, c.fee),
      currency,
      occurredAt,
    };
    if (!record.paymentNo) throw new Error(`${where}: empty ${c.outTradeNo}`);
    const transactionId = field(columns.transactionId);
    if (transactionId) record.channelTradeNo = transactionId;
    if (kind === "refund") {
      const refundNo = field(columns.outRefundNo);
      if (!refundNo) throw new Error(`${where}: refund row without ${c.outRefundNo}`);
      record.refundNo = refundNo;
    }
    records.push(record);
  }
  return records;
}

/** A record to write into a bill, with the extra bits a real bill shows. */
export interface WechatTradeBillRow extends BillRecord {
  /** WeChat's refund id (`微信退款单号`), for refunds. */
  channelRefundNo?: string;
  /** `商品名称`: the order's description. */
  subject?: string;
}

/** Account details printed on every row. */
export interface WechatTradeBillAccount {
  appId: string;
  mchId: string;
  /** Printed in the `费率` column; default `0.60%`. */
  feeRate?: string;
}

/** A field as WeChat writes it: backtick-prefixed, and never containing the `,\`` separator or a line break. */
function cell(value: string): string {
  return `\`${value.replace(/[\r\n]+/g, " ").replaceAll(",`", ", `")}`;
}

/**
 * Writes records as an ALL trade bill, byte for byte in WeChat's layout (UTF-8 with BOM, CRLF),
 * so {@link parseWechatTradeBill} and a real client read it alike. Refund rows carry a negative fee.
 */
export function formatWechatTradeBill(rows: readonly WechatTradeBillRow[], account: WechatTradeBillAccount): string {
  const c = WECHAT_BILL_COLUMNS;
  const lines = [WECHAT_ALL_BILL_HEADER.join(",")];
  let settlementTotal = 0n;
  let refundTotal = 0n;
  let feeTotal = 0n;
  let orderTotal = 0n;
  for (const row of rows) {
    const yuan = (minor: bigint) => formatMinor(minor, row.currency);
    const isRefund = row.kind === "refund";
    const values: Record<string, string> = {
      [c.tradeTime]: toWechatBillTime(row.occurredAt),
      [c.appId]: account.appId,
      [c.mchId]: account.mchId,
      [c.subMchId]: "0",
      [c.deviceInfo]: "",
      [c.transactionId]: row.channelTradeNo ?? "",
      [c.outTradeNo]: row.paymentNo,
      [c.openId]: "",
      [c.tradeType]: "NATIVE",
      [c.tradeState]: isRefund ? "REFUND" : "SUCCESS",
      [c.bankType]: "OTHERS",
      [c.currency]: row.currency,
      [c.settlementTotal]: yuan(isRefund ? 0n : row.amountMinor),
      [c.couponAmount]: yuan(0n),
      [c.refundId]: isRefund ? (row.channelRefundNo ?? "") : "0",
      [c.outRefundNo]: isRefund ? (row.refundNo ?? "") : "0",
      [c.settlementRefund]: yuan(isRefund ? row.amountMinor : 0n),
      [c.rechargeCouponRefund]: yuan(0n),
      [c.refundType]: isRefund ? "ORIGINAL" : "",
      [c.refundStatus]: isRefund ? "SUCCESS" : "",
      [c.goodsName]: row.subject ?? "",
      [c.attach]: "",
      [c.fee]: formatWechatBillFee(isRefund ? -row.feeMinor : row.feeMinor, row.currency),
      [c.feeRate]: account.feeRate ?? "0.60%",
      [c.orderAmount]: yuan(isRefund ? 0n : row.amountMinor),
      [c.requestedRefund]: yuan(isRefund ? row.amountMinor : 0n),
      [c.feeRateRemark]: "",
    };
    lines.push(WECHAT_ALL_BILL_HEADER.map((name) => cell(values[name] ?? "")).join(","));
    if (isRefund) {
      refundTotal += row.amountMinor;
      feeTotal -= row.feeMinor;
    } else {
      settlementTotal += row.amountMinor;
      orderTotal += row.amountMinor;
      feeTotal += row.feeMinor;
    }
  }
  const currency = rows[0]?.currency ?? "CNY";
  const yuan = (minor: bigint) => formatMinor(minor, currency);
  lines.push(WECHAT_ALL_BILL_SUMMARY_HEADER.join(","));
  lines.push(
    [String(rows.length), yuan(settlementTotal), yuan(refundTotal), yuan(0n), formatWechatBillFee(feeTotal, currency), yuan(orderTotal), yuan(refundTotal)]
      .map(cell)
      .join(","),
  );
  return `\uFEFF${lines.join("\r\n")}\r\n`;
}
