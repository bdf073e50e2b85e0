/** Reading a 1,000,000-line Alipay bill (zip of GBK CSV) grows resident memory by less than 100 MB. */
import { readAlipayBill } from "../../src/channels/alipay/alipay-bill.js";
import { type AlipayBillRow, writeAlipayBillFile } from "../../src/channels/alipay/alipay-bill-writer.js";
import { CHINA_DAY_START, itReadsMillionLineBill, MEMORY_CHECK_BILL_DATE, MEMORY_CHECK_LINES, rowAmount, rowAt, rowNo } from "../support/bill-memory.js";

function* rows(): Generator<AlipayBillRow> {
  for (let i = 0; i < MEMORY_CHECK_LINES; i++) {
    const when = rowAt(CHINA_DAY_START, i);
    yield { kind: "payment", tradeNo: `20240501220014${String(i).padStart(12, "0")}`, outTradeNo: rowNo(i), subject: "商品", createdAt: when, finishedAt: when, amountMinor: rowAmount(i), feeMinor: 1n };
  }
}

itReadsMillionLineBill({
  name: "Alipay",
  fileName: "alipay.zip",
  write: (path) => writeAlipayBillFile(path, MEMORY_CHECK_BILL_DATE, rows(), { sellerId: "2088000000000001" }),
  read: (path) => readAlipayBill(path, MEMORY_CHECK_BILL_DATE),
});
