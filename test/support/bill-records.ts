/**
 * Collects a bill's records for tests (a small bill; the service itself never holds them all),
 * and disposes of the bill file.
 */
import type { BillFile, BillRecord } from "../../src/channels/channel.js";

/** Every record of `bill` in file order; the bill is disposed of afterwards, also on error. */
export async function billRecords(bill: BillFile | Promise<BillFile>): Promise<BillRecord[]> {
  const file = await bill;
  try {
    const records: BillRecord[] = [];
    for await (const record of file.records()) records.push(record);
    return records;
  } finally {
    await file.dispose();
  }
}
