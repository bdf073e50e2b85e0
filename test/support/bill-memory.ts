/**
 * The memory check of the bill readers: a 1,000,000-line bill written by a bill writer (streamed,
 * never held) is read back record by record while resident memory is sampled. Each format's test
 * file only says how to write and read its bill (`itReadsMillionLineBill`); the files stay one per
 * format because vitest runs each file in its own process (pool "forks"): a format's resident
 * memory is then measured without the heap another format's million lines left behind, and the
 * files run side by side.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { BillRecord } from "../../src/channels/channel.js";

/** Lines in each generated bill. */
export const MEMORY_CHECK_LINES = 1_000_000;
/** The bound on resident memory growth while reading (a bound, not a timing). */
export const MAX_RSS_GROWTH_BYTES = 100 * 1024 * 1024;
export const MEMORY_CHECK_BILL_DATE = "2024-05-01";
/** 00:00 China time on the bill date. */
export const CHINA_DAY_START = Date.parse("2024-04-30T16:00:00Z");
/** 00:00 UTC on the bill date. */
export const UTC_DAY_START = Date.parse("2024-05-01T00:00:00Z");

/** Row `i`'s payment number, time (spread over the day from `dayStart`) and amount. */
export const rowNo = (i: number) => `P20240501${String(i).padStart(16, "0")}`;
export const rowAt = (dayStart: number, i: number) => new Date(dayStart + Math.floor((i * 86_000_000) / MEMORY_CHECK_LINES));
export const rowAmount = (i: number) => BigInt(100 + (i % 99_900));

/** The sum of every row's amount. */
export function expectedTotal(): bigint {
  let total = 0n;
  for (let i = 0; i < MEMORY_CHECK_LINES; i++) total += rowAmount(i);
  return total;
}

/** Reads every record, sampling resident memory; the count, the amount total and the largest growth seen. */
export async function readMeasured(records: AsyncIterable<BillRecord>): Promise<{ count: number; total: bigint; growth: number }> {
  const start = process.memoryUsage().rss;
  let peak = start;
  let count = 0;
  let total = 0n;
  for await (const record of records) {
    count += 1;
    total += record.amountMinor;
    if (count % 10_000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return { count, total, growth: peak - start };
}

/** A private directory for the generated bill, and its removal. */
export async function memoryCheckDir(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "bill-memory-test-"));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** How one format's memory check writes its 1,000,000-line bill and reads it back. */
export interface MemoryCheckedBill {
  /** The format as the test name says it, e.g. "Alipay". */
  name: string;
  /** The bill's file name in the check's private directory. */
  fileName: string;
  write(path: string): Promise<unknown>;
  read(path: string): AsyncIterable<BillRecord>;
}

/**
 * Registers the memory check of one format: the bill written by `bill.write` is read back by
 * `bill.read` with every line counted, the amounts summed and resident memory growing by less than
 * MAX_RSS_GROWTH_BYTES.
 */
export function itReadsMillionLineBill(bill: MemoryCheckedBill): void {
  let dir: Awaited<ReturnType<typeof memoryCheckDir>>;
  beforeAll(async () => {
    dir = await memoryCheckDir();
  });
  afterAll(() => dir?.remove());

  it(`reads a 1,000,000-line ${bill.name} bill with resident memory growing by less than 100 MB`, async () => {
    const path = join(dir.path, bill.fileName);
    await bill.write(path);
    const result = await readMeasured(bill.read(path));
    expect({ count: result.count, total: result.total }).toEqual({ count: MEMORY_CHECK_LINES, total: expectedTotal() });
    expect(result.growth).toBeLessThan(MAX_RSS_GROWTH_BYTES);
  });
}
