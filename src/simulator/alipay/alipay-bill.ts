/**
 * Alipay's trade bill as `alipay.data.dataservice.bill.downloadurl.query` links to it: a zip of
 * two GBK CSV files (业务明细 and its 汇总), every value tab-padded as Alipay writes them, with
 * the simulated 0.6 % service fee (half up to the fen) on payments and returned on refunds.
 */
import { parseAlipayTime, toAlipayDate, toAlipayTime } from "../../channels/alipay/alipay-time.js";
import { buildZip, encodeGbk } from "../bill-files.js";
import type { SimTrade } from "../trade-store.js";
import { maskedLogonId, yuan } from "./alipay-params.js";

/** The simulated service fee: 0.6 %, rounded half up to the fen. */
const FEE_RATE_PER_MILLE = 6n;

/** The zip Alipay serves for `bill_type=trade` of one day: the detail and summary CSVs, GBK-encoded. */
export function alipayBillArchive(trades: readonly SimTrade[], sellerId: string, billDate: string): Buffer {
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

