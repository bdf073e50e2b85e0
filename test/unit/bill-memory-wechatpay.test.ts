/** Reading a 1,000,000-line WeChat Pay bill (backtick CSV) grows resident memory by less than 100 MB. */
import { readWechatBill } from "../../src/channels/wechatpay/wechatpay-bill.js";
import { type WechatBillRow, writeWechatBillFile } from "../../src/channels/wechatpay/wechatpay-bill-writer.js";
import { CHINA_DAY_START, itReadsMillionLineBill, MEMORY_CHECK_BILL_DATE, MEMORY_CHECK_LINES, rowAmount, rowAt, rowNo } from "../support/bill-memory.js";

function* rows(): Generator<WechatBillRow> {
  for (let i = 0; i < MEMORY_CHECK_LINES; i++) {
    yield { kind: "payment", paymentNo: rowNo(i), channelTradeNo: `4200${String(i).padStart(24, "0")}`, amountMinor: rowAmount(i), feeMinor: 1n, currency: "CNY", occurredAt: rowAt(CHINA_DAY_START, i) };
  }
}

itReadsMillionLineBill({
  name: "WeChat Pay",
  fileName: "wechatpay.csv",
  write: (path) => writeWechatBillFile(path, rows(), { appId: "wxd678efh567hg6787", mchId: "1900000001" }),
  read: (path) => readWechatBill(path, MEMORY_CHECK_BILL_DATE),
});
