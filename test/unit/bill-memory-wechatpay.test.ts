/** Reading a 1,000,000-line WeChat Pay bill (backtick CSV) grows resident memory by less than 100 MB. */
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readWechatBill } from "../../src/channels/wechatpay/wechatpay-bill.js";
import { type WechatBillRow, writeWechatBillFile } from "../../src/channels/wechatpay/wechatpay-bill-writer.js";
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

it("reads a 1,000,000-line WeChat Pay bill with resident memory growing by less than 100 MB", async () => {
  const path = join(dir.path, "wechatpay.csv");
  function* rows(): Generator<WechatBillRow> {
    for (let i = 0; i < MEMORY_CHECK_LINES; i++) {
      yield { kind: "payment", paymentNo: rowNo(i), channelTradeNo: `4200${String(i).padStart(24, "0")}`, amountMinor: rowAmount(i), feeMinor: 1n, currency: "CNY", occurredAt: rowAt(CHINA_DAY_START, i) };
    }
  }
  await writeWechatBillFile(path, rows(), { appId: "wxd678efh567hg6787", mchId: "1900000001" });
  const result = await readMeasured(readWechatBill(path, MEMORY_CHECK_BILL_DATE));
  expect({ count: result.count, total: result.total }).toEqual({ count: MEMORY_CHECK_LINES, total: expectedTotal() });
  expect(result.growth).toBeLessThan(MAX_RSS_GROWTH_BYTES);
});
