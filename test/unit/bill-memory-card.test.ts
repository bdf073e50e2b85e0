/** Reading a 1,000,000-line card bill (JSON lines of balance transactions) grows resident memory by less than 100 MB. */
import { type CardBillRow, readCardBill, writeCardBillFile } from "../../src/channels/card/card-bill.js";
import { itReadsMillionLineBill, MEMORY_CHECK_BILL_DATE, MEMORY_CHECK_LINES, rowAmount, rowAt, rowNo, UTC_DAY_START } from "../support/bill-memory.js";

function* rows(): Generator<CardBillRow> {
  for (let i = 0; i < MEMORY_CHECK_LINES; i++) {
    yield { kind: "payment", paymentNo: rowNo(i), intentId: `pi_${i}`, amountMinor: rowAmount(i), feeMinor: 30n, currency: "USD", occurredAt: rowAt(UTC_DAY_START, i) };
  }
}

itReadsMillionLineBill({
  name: "card",
  fileName: "card.jsonl",
  write: (path) => writeCardBillFile(path, rows()),
  read: (path) => readCardBill(path, MEMORY_CHECK_BILL_DATE),
});
