/**
 * Alipay's trade bill: `alipay.data.dataservice.bill.downloadurl.query` answers a link valid 30 s,
 * and `GET /bill/download?token=...` serves a zip of two GBK CSV files (业务明细 and its 汇总),
 * every value tab-padded as Alipay writes them, with the simulated 0.6 % service fee (half up to
 * the fen) on payments and returned on refunds. Bills are served for today as well (Alipay: T+1
 * after 10:00).
 */
import { randomBytes } from "node:crypto";
import { parseAlipayTime, toAlipayDate, toAlipayTime } from "../../channels/alipay/alipay-time.js";
import { buildZip, encodeGbk } from "../bill-files.js";
import type { SimulatorRequest, SimulatorResponse } from "../channel-side.js";
import { keepLink } from "../download-links.js";
import type { SimTrade } from "../trade-store.js";
import { type AlipayBook, CHANNEL } from "./alipay-book.js";
import { business, type Content, invalidParameter, maskedLogonId, stringField, yuan } from "./alipay-params.js";

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
export function billDownload(book: AlipayBook, request: SimulatorRequest): SimulatorResponse {
  const entry = book.billTokens.get(request.query.get("token") ?? "");
  if (!entry || entry.expiresAt < Date.now()) {
    return { status: 404, headers: TEXT, body: "bill download link unknown or expired (valid 30 s)\n" };
  }
  const { sellerId } = book.keys;
  return {
    status: 200,
    headers: {
      "content-type": "application/octet-stream",
      "content-disposition": `attachment; filename="${sellerId}0156_${entry.billDate.replaceAll("-", "")}.csv.zip"`,
    },
    body: alipayBillArchive(book.context.trades.list(CHANNEL), sellerId, entry.billDate),
  };
}

/** The simulated service fee: 0.6 %, rounded half up to the fen. */
const FEE_RATE_PER_MILLE = 6n;

/** The zip Alipay serves for `bill_type=trade` of one day: the detail and summary CSVs, GBK-encoded. */
function alipayBillArchive(trades: readonly SimTrade[], sellerId: string, billDate: string): Buffer {
  const accountId = `${sellerId}0156`;
  const compactDate = billDate.replaceAll("-", "");
  const header = [
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员", "终端号",
    "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）",
    "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注",
  ];
  const csvField = (value: string) => (/[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);
  // Alipay pads every value with a tab so spreadsheets keep long numbers as text.
  const row = (values: string[]) => values.map((value) => `${csvField(value)}\t`).join(",");
  const fee = (amountMinor: bigint) => (amountMinor * FEE_RATE_PER_MILLE + 500n) / 1000n;
  const detailRow = (trade: SimTrade, kind: "交易" | "退款", finishedAt: Date, amount: string, refundNo: string, serviceFee: string) => {
    const account = trade.buyerId ? maskedLogonId(trade.buyerId) : "";
    const created = toAlipayTime(trade.openedAt ?? trade.createdAt);
    const zero = "0.00";
    return row([
      trade.channelTradeNo, trade.outTradeNo, kind, trade.subject, created, toAlipayTime(finishedAt), "", "", "", "", account,
      amount, amount, zero, zero, zero, zero, zero, "", zero, zero, refundNo, serviceFee, zero, "",
    ]);
  };
  const rows: string[] = [];
  let paymentCount = 0;
  let refundCount = 0;
  for (const trade of trades) {
    if (trade.paidAt && toAlipayDate(trade.paidAt) === billDate) {
      paymentCount++;
      rows.push(detailRow(trade, "交易", trade.paidAt, yuan(trade.amountMinor), "", yuan(-fee(trade.amountMinor))));
    }
    for (const refundRecord of trade.refunds) {
      if (refundRecord.state !== "succeeded" || toAlipayDate(refundRecord.createdAt) !== billDate) continue;
      refundCount++;
      const refundAmount = yuan(-refundRecord.amountMinor);
      const returnedFee = yuan(fee(refundRecord.amountMinor));
      rows.push(detailRow(trade, "退款", refundRecord.createdAt, refundAmount, refundRecord.refundNo, returnedFee));
    }
  }
  const day = billDate.split("-");
  const next = toAlipayDate(new Date((parseAlipayTime(`${billDate} 00:00:00`) as Date).getTime() + 86_400_000)).split("-");
  const exportedAt = toAlipayTime(new Date());
  const detail = [
    "#支付宝业务明细查询",
    `#账号：[${accountId}]`,
    `#起始日期：[${day[0]}年${day[1]}月${day[2]}日 00:00:00]   终止日期：[${next[0]}年${next[1]}月${next[2]}日 00:00:00]`,
    "#-----------------------------------------业务明细列表----------------------------------------",
    header.join(","),
    ...rows,
    "#-----------------------------------------业务明细列表结束------------------------------------",
    `#交易合计：${paymentCount}笔，退款合计：${refundCount}笔`,
    `#导出时间：[${exportedAt}]`,
  ].join("\r\n");
  const summary = [
    "#支付宝业务汇总查询",
    `#账号：[${accountId}]`,
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数",
    `,,${paymentCount},${refundCount}`,
    "#-----------------------------------------业务汇总列表结束-----------------------------------",
    `#导出时间：[${exportedAt}]`,
  ].join("\r\n");
  const modifiedAt = new Date();
  return buildZip([
    { name: encodeGbk(`${accountId}_${compactDate}_业务明细.csv`), data: encodeGbk(`${detail}\r\n`), modifiedAt },
    { name: encodeGbk(`${accountId}_${compactDate}_业务明细(汇总).csv`), data: encodeGbk(`${summary}\r\n`), modifiedAt },
  ]);
}

