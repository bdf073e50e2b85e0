/** Reading a 1,000,000-line Alipay bill (zip of GBK CSV) grows resident memory by less than 100 MB. */
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readAlipayBill } from "../../src/channels/alipay/alipay-bill.js";
import { type AlipayBillRow, writeAlipayBillFile } from "../../src/channels/alipay/alipay-bill-writer.js";
import {
  CHINA_DAY_START,
  expectedTotal,
  MAX_RSS_GROWTH_BYTES,
  MEMORY_CHECK_BILL_DATE,
  MEMORY_CHECK_LINES,
  memoryCheckDir,
  readMeasured,
  rowAmount,
  rowAt,
  rowNo,
} from "../support/bill-memory.js";

let dir: Awaited<ReturnType<typeof memoryCheckDir>>;
beforeAll(async () => {
  dir = await memoryCheckDir();
});
afterAll(() => dir?.remove());

it("reads a 1,000,000-line Alipay bill with resident memory growing by less than 100 MB", async () => {
  const path = join(dir.path, "alipay.zip");
  function* rows(): Generator<AlipayBillRow> {
    for (let i = 0; i < MEMORY_CHECK_LINES; i++) {
      const when = rowAt(CHINA_DAY_START, i);
      yield { kind: "payment", tradeNo: `20240501220014${String(i).padStart(12, "0")}`, outTradeNo: rowNo(i), subject: "商品", createdAt: when, finishedAt: when, amountMinor: rowAmount(i), feeMinor: 1n };
    }
  }
  await writeAlipayBillFile(path, MEMORY_CHECK_BILL_DATE, rows(), { sellerId: "2088000000000001" });
  const result = await readMeasured(readAlipayBill(path, MEMORY_CHECK_BILL_DATE));
  expect({ count: result.count, total: result.total }).toEqual({ count: MEMORY_CHECK_LINES, total: expectedTotal() });
  expect(result.growth).toBeLessThan(MAX_RSS_GROWTH_BYTES);
});
