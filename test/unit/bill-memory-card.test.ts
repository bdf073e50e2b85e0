/** Reading a 1,000,000-line card bill (JSON lines of balance transactions) grows resident memory by less than 100 MB. */
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type CardBillRow, readCardBill, writeCardBillFile } from "../../src/channels/card/card-bill.js";
import {
  expectedTotal,
  MAX_RSS_GROWTH_BYTES,
  MEMORY_CHECK_BILL_DATE,
  MEMORY_CHECK_LINES,
  memoryCheckDir,
  readMeasured,
  rowAmount,
  rowAt,
  rowNo,
  UTC_DAY_START,
} from "../support/bill-memory.js";

let dir: Awaited<ReturnType<typeof memoryCheckDir>>;
beforeAll(async () => {
  dir = await memoryCheckDir();
});
afterAll(() => dir?.remove());

it("reads a 1,000,000-line card bill with resident memory growing by less than 100 MB", async () => {
  const path = join(dir.path, "card.jsonl");
  function* rows(): Generator<CardBillRow> {
    for (let i = 0; i < MEMORY_CHECK_LINES; i++) {
      yield { kind: "payment", paymentNo: rowNo(i), intentId: `pi_${i}`, amountMinor: rowAmount(i), feeMinor: 30n, currency: "USD", occurredAt: rowAt(UTC_DAY_START, i) };
    }
  }
  await writeCardBillFile(path, rows());
  const result = await readMeasured(readCardBill(path, MEMORY_CHECK_BILL_DATE));
  expect({ count: result.count, total: result.total }).toEqual({ count: MEMORY_CHECK_LINES, total: expectedTotal() });
  expect(result.growth).toBeLessThan(MAX_RSS_GROWTH_BYTES);
});
