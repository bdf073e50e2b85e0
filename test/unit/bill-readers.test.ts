/**
 * The three bill readers on files written by the bill writers (and by hand where a writer would
 * never produce the fault): good files, every malformed line named by its number, truncation,
 * the size limits (lowered), hashes, the zip-bomb guard, GBK entry names, columns in another order.
 */
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import iconv from "iconv-lite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yazl from "yazl";
import { readAlipayBill, splitCsvLine } from "../../src/channels/alipay/alipay-bill.js";
import { type AlipayBillRow, alipayBillArchiveBuffer, writeAlipayBillFile } from "../../src/channels/alipay/alipay-bill-writer.js";
import {
  BILL_LIMITS,
  createBillTempFile,
  downloadBillFile,
  openCallerBillFile,
  splitLines,
} from "../../src/channels/bill-file.js";
import { CardBillWriter, type CardBillRow, readCardBill, writeCardBillFile } from "../../src/channels/card/card-bill.js";
import { BillFormatError, type BillRecord } from "../../src/channels/channel.js";
import { readWechatBill } from "../../src/channels/wechatpay/wechatpay-bill.js";
import { type WechatBillRow, wechatBillBuffer, writeWechatBillFile } from "../../src/channels/wechatpay/wechatpay-bill-writer.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bill-readers-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
const fileIn = (name: string) => join(dir, `${++fileCount}-${name}`);

async function collect(records: AsyncIterable<BillRecord>): Promise<BillRecord[]> {
  const out: BillRecord[] = [];
  for await (const record of records) out.push(record);
  return out;
}

/** The BillFormatError a read ends with (fails the test when the read succeeds). */
async function formatError(records: AsyncIterable<BillRecord> | Promise<unknown>): Promise<BillFormatError> {
  const error = await (records instanceof Promise ? records : collect(records)).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BillFormatError);
  return error as BillFormatError;
}

const BILL_DATE = "2024-05-01";
// 10:00:05 and 11:30:00 China time on the bill date.
const PAID_AT = new Date("2024-05-01T02:00:05Z");
const REFUNDED_AT = new Date("2024-05-01T03:30:00Z");

describe("Alipay bill (zip of GBK CSV)", () => {
  const account = { sellerId: "2088000000000001", exportedAt: new Date("2024-05-02T02:00:00Z") };
  const rows: AlipayBillRow[] = [
    { kind: "payment", tradeNo: "2024050122001400001", outTradeNo: "P1", subject: "商品, \"引号\"", createdAt: PAID_AT, finishedAt: PAID_AT, amountMinor: 12_345n, feeMinor: 74n },
    { kind: "refund", tradeNo: "2024050122001400001", outTradeNo: "P1", subject: "商品", createdAt: PAID_AT, finishedAt: REFUNDED_AT, amountMinor: 345n, feeMinor: 2n, refundNo: "R1" },
  ];

  /** The detail CSV as the writer makes it, as text, for hand-made variants. */
  async function detailText(): Promise<string> {
    const path = fileIn("detail.zip");
    await writeAlipayBillFile(path, BILL_DATE, rows, account);
    const entries = await unzipText(path);
    return entries.find(([name]) => name.endsWith("_业务明细.csv"))?.[1] ?? "";
  }

  async function zipWithDetail(text: string, name = "20880000000000010156_20240501_业务明细.csv"): Promise<string> {
    const path = fileIn("variant.zip");
    await writeFile(path, await zipOf([{ name, data: iconv.encode(text, "gbk") }]));
    return path;
  }

  it("reads payments and refunds with their CSV line numbers, positive fees on payments and returned fees not positive", async () => {
    const path = fileIn("good.zip");
    expect(await writeAlipayBillFile(path, BILL_DATE, rows, account)).toEqual({ payments: 1, refunds: 1 });
    expect(await collect(readAlipayBill(path, BILL_DATE))).toEqual([
      { kind: "payment", paymentNo: "P1", channelTradeNo: "2024050122001400001", amountMinor: 12_345n, feeMinor: 74n, currency: "CNY", occurredAt: PAID_AT, line: 6 },
      { kind: "refund", paymentNo: "P1", channelTradeNo: "2024050122001400001", refundNo: "R1", amountMinor: 345n, feeMinor: -2n, currency: "CNY", occurredAt: REFUNDED_AT, line: 7 },
    ]);
  });

  it("reads columns by header name: another order and fewer columns give the same records", async () => {
    const text = await detailText();
    const lines = text.split("\r\n");
    const headerIndex = lines.findIndex((line) => line.startsWith("支付宝交易号"));
    const wanted = ["服务费（元）", "业务类型", "商户订单号", "完成时间", "订单金额（元）", "支付宝交易号", "退款批次号/请求号"];
    const header = splitCsvLine(lines[headerIndex] as string);
    const quote = (field: string) => (/[",]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field);
    const pick = (line: string) => {
      const fields = splitCsvLine(line);
      return wanted.map((name) => quote(fields[header.indexOf(name)] ?? "")).join(",");
    };
    const reordered = lines.map((line, index) => (index === headerIndex || (index > headerIndex && !line.startsWith("#") && line !== "") ? pick(line) : line));
    const path = await zipWithDetail(reordered.join("\r\n"));
    const original = fileIn("original.zip");
    await writeAlipayBillFile(original, BILL_DATE, rows, account);
    expect(await collect(readAlipayBill(path, BILL_DATE))).toEqual(await collect(readAlipayBill(original, BILL_DATE)));
  });

  it.each([
    ["a bad amount", (row: string) => row.replace("123.45", "12.3.4"), /line 6: bad amount "12\.3\.4" in column 订单金额\(元\)/],
    ["an unknown business type", (row: string) => row.replace("交易", "冻结"), /line 6: unknown business type "冻结"/],
    ["a bad date", (row: string) => row.replaceAll("2024-05-01 10:00:05", "2024-02-30 10:00:05"), /line 6: bad date "2024-02-30 10:00:05"/],
    ["a wrong column count", (row: string) => `${row},extra`, /line 6: expected 25 columns, got 26/],
  ])("names the line of %s", async (_what, change, message) => {
    const lines = (await detailText()).split("\r\n");
    lines[5] = change(lines[5] as string);
    const error = await formatError(readAlipayBill(await zipWithDetail(lines.join("\r\n")), BILL_DATE));
    expect(error.message).toMatch(message);
    expect(error.line).toBe(6);
  });

  it("names the header line when a needed column is missing", async () => {
    const text = (await detailText()).replace("业务类型", "类型");
    const error = await formatError(readAlipayBill(await zipWithDetail(text), BILL_DATE));
    expect(error.message).toMatch(/line 5: missing column 业务类型/);
  });

  it("refuses a bill whose stated day is not the bill date", async () => {
    const path = fileIn("other-day.zip");
    await writeAlipayBillFile(path, BILL_DATE, rows, account);
    const error = await formatError(readAlipayBill(path, "2024-05-02"));
    expect(error.message).toMatch(/line 3: bill date mismatch: the file is for 2024-05-01, not 2024-05-02/);
  });

  it("refuses a detail cut in the middle of its last row, and one whose totals line disagrees", async () => {
    const cut = fileIn("cut.zip");
    await writeAlipayBillFile(cut, BILL_DATE, rows, account, { truncate: true });
    expect((await formatError(readAlipayBill(cut, BILL_DATE))).message).toMatch(/line 7: truncated/);

    const lines = (await detailText()).split("\r\n");
    lines.splice(6, 1);
    const error = await formatError(readAlipayBill(await zipWithDetail(lines.join("\r\n")), BILL_DATE));
    expect(error.message).toMatch(/line 8: totals say 1 payments and 1 refunds, the detail has 1 and 0/);

    const noEnd = (await detailText()).split("\r\n").slice(0, 7).join("\r\n");
    expect((await formatError(readAlipayBill(await zipWithDetail(`${noEnd}\r\n`), BILL_DATE))).message).toMatch(/truncated: the file ends inside the detail/);
  });

  it("finds the detail file by its GBK name (Alipay's own archives do not flag names as UTF-8)", async () => {
    const name = "20880000000000010156_20240501_业务明细.csv";
    const zip = await zipOf([
      { name: "20880000000000010156_20240501_业务明细(汇总).csv", data: iconv.encode("#汇总\r\n", "gbk"), gbkName: true },
      { name, data: iconv.encode(await detailText(), "gbk"), gbkName: true },
    ]);
    // The names are GBK bytes, without the UTF-8 flag.
    expect(zip.includes(iconv.encode(name, "gbk"))).toBe(true);
    expect(zip.includes(Buffer.from(name, "utf8"))).toBe(false);
    const path = fileIn("gbk-names.zip");
    await writeFile(path, zip);
    expect(await collect(readAlipayBill(path, BILL_DATE))).toHaveLength(2);
  });

  it("refuses an archive without a detail file, and a file that is not a zip", async () => {
    const path = await zipWithDetail("#nothing\r\n", "other.csv");
    expect((await formatError(readAlipayBill(path, BILL_DATE))).message).toMatch(/no detail CSV/);
    const notZip = fileIn("not.zip");
    await writeFile(notZip, "PK? not really");
    expect((await formatError(readAlipayBill(notZip, BILL_DATE))).message).toMatch(/not a readable zip archive/);
  });

  it("refuses a zip bomb by its compression ratio before inflating it", async () => {
    const zeros = Buffer.alloc(20 * 1024 * 1024);
    const path = fileIn("bomb.zip");
    await writeFile(path, await zipOf([{ name: "20880000000000010156_20240501_业务明细.csv", data: zeros }]));
    expect(statSync(path).size).toBeLessThan(100_000);
    const error = await formatError(readAlipayBill(path, BILL_DATE));
    expect(error.message).toMatch(/expands \d+:1, more than 100:1 \(zip bomb\?\)/);
    expect(BILL_LIMITS.maxCompressionRatio).toBe(100);
  });

  it("refuses a file, a zip entry or a line beyond the (lowered) limits, and more lines than allowed", async () => {
    const path = fileIn("limits.zip");
    await writeAlipayBillFile(path, BILL_DATE, rows, account);
    expect((await formatError(readAlipayBill(path, BILL_DATE, { maxFileBytes: 100 }))).message).toMatch(/oversized: \d+ bytes, more than 100/);
    expect((await formatError(readAlipayBill(path, BILL_DATE, { maxEntryBytes: 500 }))).message).toMatch(/oversized: zip entry .* more than 500/);
    expect((await formatError(readAlipayBill(path, BILL_DATE, { maxLineBytes: 100 }))).message).toMatch(/line 5: line longer than 100 bytes/);
    expect((await formatError(readAlipayBill(path, BILL_DATE, { maxLines: 5 }))).message).toMatch(/line 6: more than 5 lines/);
  });

  it("writes the same archive to a file and to memory, with the detail and summary entries", async () => {
    const path = fileIn("same.zip");
    await writeAlipayBillFile(path, BILL_DATE, rows, account);
    const entries = await unzipText(path);
    expect(entries.map(([name]) => name)).toEqual(["20880000000000010156_20240501_业务明细.csv", "20880000000000010156_20240501_业务明细(汇总).csv"]);
    expect(entries[1]?.[1]).toContain(",,1,1");
    const inMemory = fileIn("memory.zip");
    await writeFile(inMemory, await alipayBillArchiveBuffer(BILL_DATE, rows, account));
    expect(await collect(readAlipayBill(inMemory, BILL_DATE))).toEqual(await collect(readAlipayBill(path, BILL_DATE)));
  });
});

describe("WeChat Pay bill (backtick CSV)", () => {
  const account = { appId: "wxd678efh567hg6787", mchId: "1900000001" };
  const rows: WechatBillRow[] = [
    { kind: "payment", paymentNo: "P1", channelTradeNo: "4200000001", amountMinor: 8_888n, feeMinor: 53n, currency: "CNY", occurredAt: PAID_AT, subject: "QQ公仔, 蓝色" },
    { kind: "refund", paymentNo: "P1", channelTradeNo: "4200000001", refundNo: "R1", channelRefundNo: "5000001", amountMinor: 1_000n, feeMinor: 6n, currency: "CNY", occurredAt: REFUNDED_AT },
  ];

  async function billText(options: { truncate?: boolean } = {}): Promise<string> {
    return (await wechatBillBuffer(rows, account, options)).toString("utf8");
  }

  async function fileWith(text: string): Promise<string> {
    const path = fileIn("bill.csv");
    await writeFile(path, text);
    return path;
  }

  it("reads payments and refunds with line numbers; the writer reports the file's SHA1", async () => {
    const path = fileIn("good.csv");
    const { sha1, bytes } = await writeWechatBillFile(path, rows, account);
    const content = await readFile(path);
    expect(bytes).toBe(content.length);
    expect(sha1).toBe(createHash("sha1").update(content).digest("hex"));
    expect(await collect(readWechatBill(path, BILL_DATE))).toEqual([
      { kind: "payment", paymentNo: "P1", channelTradeNo: "4200000001", amountMinor: 8_888n, feeMinor: 53n, currency: "CNY", occurredAt: PAID_AT, line: 2 },
      { kind: "refund", paymentNo: "P1", channelTradeNo: "4200000001", refundNo: "R1", amountMinor: 1_000n, feeMinor: -6n, currency: "CNY", occurredAt: REFUNDED_AT, line: 3 },
    ]);
  });

  it("reads columns by header name, in any order", async () => {
    const [header = "", ...rest] = (await billText()).split("\r\n");
    const swap = <T>(fields: T[]) => [fields[6] as T, fields[0] as T, ...fields.slice(1, 6), ...fields.slice(7)];
    const reordered = [swap(header.split(",")).join(","), ...rest.slice(0, 2).map((line) => `\`${swap(line.slice(1).split(",`")).join(",`")}`), ...rest.slice(2)];
    expect(await collect(readWechatBill(await fileWith(reordered.join("\r\n")), BILL_DATE))).toEqual(await collect(readWechatBill(await fileWith(await billText()), BILL_DATE)));
  });

  it.each([
    ["a bad amount", (row: string) => row.replace("`88.88", "`88.8.8"), /line 2: bad amount "88\.8\.8" in column 应结订单金额/],
    ["an unknown trade state", (row: string) => row.replace("`SUCCESS", "`WEIRD"), /line 2: unknown trade state "WEIRD"/],
    ["a bad date", (row: string) => row.replace("`2024-05-01 10:00:05", "`2024-13-01 10:00:05"), /line 2: bad date "2024-13-01 10:00:05"/],
    ["a payment of another day", (row: string) => row.replace("`2024-05-01 10:00:05", "`2024-04-30 10:00:05"), /line 2: bill date mismatch/],
    ["a wrong column count", (row: string) => row.replace(",`NATIVE", ""), /line 2: expected 27 backtick-prefixed fields, got 26/],
    ["an unknown currency", (row: string) => row.replace("`CNY", "`XXX"), /line 2: unknown currency "XXX"/],
  ])("names the line of %s", async (_what, change, message) => {
    const lines = (await billText()).split("\r\n");
    lines[1] = change(lines[1] as string);
    const error = await formatError(readWechatBill(await fileWith(lines.join("\r\n")), BILL_DATE));
    expect(error.message).toMatch(message);
    expect(error.line).toBe(2);
  });

  it("names the header line when a needed column is missing", async () => {
    const error = await formatError(readWechatBill(await fileWith((await billText()).replace("商户订单号", "订单号")), BILL_DATE));
    expect(error.message).toMatch(/line 1: missing column 商户订单号/);
  });

  it("refuses a file cut in its last row, a file without its summary, and a summary that disagrees with the detail", async () => {
    expect((await formatError(readWechatBill(await fileWith(await billText({ truncate: true })), BILL_DATE))).message).toMatch(/line 3: truncated: the last line has no line end/);
    const lines = (await billText()).split("\r\n");
    expect((await formatError(readWechatBill(await fileWith(`${lines.slice(0, 3).join("\r\n")}\r\n`), BILL_DATE))).message).toMatch(
      /line 3: truncated: the file ends without its summary row/,
    );
    const missingRow = [lines[0], lines[1], ...lines.slice(3)].join("\r\n");
    expect((await formatError(readWechatBill(await fileWith(missingRow), BILL_DATE))).message).toMatch(/line 4: summary 总交易单数 says 2, the detail has 1 rows/);
    const otherFee = (await billText()).replace("`-0.06000", "`-0.07000");
    expect((await formatError(readWechatBill(await fileWith(otherFee), BILL_DATE))).message).toMatch(/line 5: summary 手续费总金额 says 0.47000, the detail adds up to 0.46/);
  });

  it("checks a caller's file against its SHA1, and refuses a wrong one as a format error", async () => {
    const path = fileIn("import.csv");
    const { sha1 } = await writeWechatBillFile(path, rows, account);
    const read = (file: string) => readWechatBill(file, BILL_DATE);
    const bill = await openCallerBillFile("wechatpay", path, BILL_DATE, { sha1: sha1.toUpperCase() }, read);
    expect(await collect(bill.records())).toHaveLength(2);
    await bill.dispose();
    // A caller's file stays where it is.
    expect(existsSync(path)).toBe(true);
    const wrong = await formatError(openCallerBillFile("wechatpay", path, BILL_DATE, { sha1: "0".repeat(40) }, read));
    expect(wrong.detail).toMatch(/^hash mismatch: the file's SHA1 is [0-9a-f]{40}, the bill states 0{40}$/);
    expect((await formatError(openCallerBillFile("wechatpay", path, BILL_DATE, { sha1: "abc" }, read))).detail).toMatch(/not a SHA1/);
    expect((await formatError(openCallerBillFile("wechatpay", path, "2024-02-30", {}, read))).detail).toMatch(/bill date must be YYYY-MM-DD/);
  });

  it("refuses a file and a line beyond the (lowered) limits", async () => {
    const path = await fileWith(await billText());
    expect((await formatError(readWechatBill(path, BILL_DATE, { maxFileBytes: 200 }))).message).toMatch(/oversized: \d+ bytes, more than 200/);
    expect((await formatError(readWechatBill(path, BILL_DATE, { maxLineBytes: 300 }))).message).toMatch(/line 1: line longer than 300 bytes/);
    expect(BILL_LIMITS).toMatchObject({ maxFileBytes: 1024 ** 3, maxLineBytes: 64 * 1024, maxLines: 10_000_000, maxEntryBytes: 4 * 1024 ** 3 });
  });
});

describe("card bill (JSON lines of balance transactions)", () => {
  const day = Date.UTC(2024, 4, 1) / 1000;
  const rows: CardBillRow[] = [
    { kind: "payment", paymentNo: "P1", intentId: "pi_1", amountMinor: 1_999n, feeMinor: 88n, currency: "USD", occurredAt: new Date(day * 1000) },
    { kind: "refund", paymentNo: "P1", intentId: "pi_1", refundNo: "R1", amountMinor: 500n, feeMinor: 0n, currency: "USD", occurredAt: new Date((day + 86_399) * 1000) },
  ];
  const payout = { id: "txn_po", object: "balance_transaction", type: "payout", amount: -5000, fee: 0, currency: "usd", created: day + 5, source: "po_1" };

  async function fileWith(lines: string[], end = "\n"): Promise<string> {
    const path = fileIn("bill.jsonl");
    await writeFile(path, `${lines.join("\n")}${end}`);
    return path;
  }

  it("reads charges and refunds with their positions, skipping other movements", async () => {
    const path = fileIn("good.jsonl");
    expect(await writeCardBillFile(path, [rows[0] as CardBillRow, payout, rows[1] as CardBillRow])).toEqual({ lines: 3 });
    expect(await collect(readCardBill(path, BILL_DATE))).toEqual([
      { kind: "payment", paymentNo: "P1", channelTradeNo: "pi_1", amountMinor: 1_999n, feeMinor: 88n, currency: "USD", occurredAt: new Date(day * 1000), line: 1 },
      { kind: "refund", paymentNo: "P1", channelTradeNo: "pi_1", refundNo: "R1", amountMinor: 500n, feeMinor: 0n, currency: "USD", occurredAt: new Date((day + 86_399) * 1000), line: 3 },
    ]);
  });

  it.each([
    ["a line that is not JSON", (line: string) => line.slice(0, 20), /line 2: not a JSON object/],
    ["a bad amount", (line: string) => line.replace('"amount":1999', '"amount":19.99'), /line 2: bad amount 19\.99/],
    ["a bad date", (line: string) => line.replace(`"created":${day}`, '"created":"yesterday"'), /line 2: bad date "yesterday"/],
    ["a transaction of another day", (line: string) => line.replace(`"created":${day}`, `"created":${day - 1}`), /line 2: bill date mismatch: a transaction of 2024-04-30/],
    ["an unknown currency", (line: string) => line.replace('"currency":"usd"', '"currency":"zzz"'), /line 2: unknown currency/],
    ["a transaction cut off", (line: string) => JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(line)).slice(0, 4))), /line 2: missing field type/],
  ])("names the line of %s", async (_what, change, message) => {
    const path = fileIn("source.jsonl");
    await writeCardBillFile(path, rows);
    const lines = (await readFile(path, "utf8")).trimEnd().split("\n");
    const error = await formatError(readCardBill(await fileWith([JSON.stringify(payout), change(lines[0] as string)]), BILL_DATE));
    expect(error.message).toMatch(message);
    expect(error.line).toBe(2);
  });

  it("refuses a file whose last line has no line end, and one beyond the (lowered) size limit", async () => {
    const path = fileIn("source.jsonl");
    await writeCardBillFile(path, rows);
    const lines = (await readFile(path, "utf8")).trimEnd().split("\n");
    expect((await formatError(readCardBill(await fileWith(lines, ""), BILL_DATE))).message).toMatch(/line 2: truncated/);
    expect((await formatError(readCardBill(path, BILL_DATE, { maxFileBytes: 64 }))).message).toMatch(/oversized/);
  });
});

describe("card bill writer (the adapter's download)", () => {
  it("refuses a list beyond the (lowered) file, line and line-count limits", async () => {
    const transaction = { id: "txn_1", type: "charge", amount: 1, currency: "usd", created: 0 };
    const tooMany = new CardBillWriter(fileIn("many.jsonl"), { maxFileBytes: 1_000_000, maxLineBytes: 1_000, maxLines: 2 });
    await tooMany.write(transaction);
    await tooMany.write(transaction);
    expect((await formatError(tooMany.write(transaction))).message).toMatch(/line 3: more than 2 lines/);
    tooMany.destroy();
    const tooLong = new CardBillWriter(fileIn("long.jsonl"), { maxFileBytes: 1_000_000, maxLineBytes: 20, maxLines: 10 });
    expect((await formatError(tooLong.write(transaction))).message).toMatch(/line 1: line longer than 20 bytes/);
    tooLong.destroy();
    const tooBig = new CardBillWriter(fileIn("big.jsonl"), { maxFileBytes: 100, maxLineBytes: 1_000, maxLines: 10 });
    await tooBig.write(transaction);
    expect((await formatError(tooBig.write(transaction))).detail).toMatch(/^oversized: the list passed 100 bytes/);
    tooBig.destroy();
  });
});

describe("bill files", () => {
  it("splits lines across chunks, drops \\r, flags a last line without its end", async () => {
    const batches = [];
    for await (const batch of splitLines(["a\r", "\nbb", "b\n\nc"], "card", BILL_LIMITS)) batches.push(...batch);
    expect(batches.map(({ line, bytes, terminated }) => [line, bytes.toString(), terminated])).toEqual([
      [1, "a", true],
      [2, "bbb", true],
      [3, "", true],
      [4, "c", false],
    ]);
  });

  it("keeps a download in a private temporary directory, removed with the file", async () => {
    const temp = await createBillTempFile("alipay", "bill.zip");
    expect(temp.path.startsWith(tmpdir())).toBe(true);
    expect(statSync(temp.path).mode & 0o777).toBe(0o600);
    await temp.remove();
    expect(existsSync(temp.path)).toBe(false);
    expect(existsSync(join(temp.path, ".."))).toBe(false);
  });

  it("stops a download past the size limit, and hashes what it writes", async () => {
    const body = Buffer.alloc(300_000, 0x41);
    const server = http.createServer((_request, response) => {
      response.writeHead(200);
      // Chunked, no content-length: the limit is checked on the bytes as they come.
      Readable.from([body.subarray(0, 100_000), body.subarray(100_000, 200_000), body.subarray(200_000)]).pipe(response);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bill`;
      const temp = await createBillTempFile("wechatpay", "bill.csv");
      const ok = await downloadBillFile({ channel: "wechatpay", url, path: temp.path, maxFileBytes: 1_000_000, idleTimeoutMs: 5_000 });
      expect(ok).toEqual({ status: 200, bytes: 300_000, sha1: createHash("sha1").update(body).digest("hex") });
      const error = await formatError(downloadBillFile({ channel: "wechatpay", url, path: temp.path, maxFileBytes: 150_000, idleTimeoutMs: 5_000 }));
      expect(error.detail).toMatch(/^oversized: the download passed 150000 bytes/);
      await temp.remove();
    } finally {
      server.close();
    }
  });
});

/** Zip entries for tests; `gbkName` writes the name as GBK bytes without the UTF-8 flag, as Alipay does. */
async function zipOf(entries: { name: string; data: Buffer; gbkName?: boolean }[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const swaps: { placeholder: Buffer; gbk: Buffer }[] = [];
  entries.forEach((entry, index) => {
    let name = entry.name;
    if (entry.gbkName) {
      const gbk = iconv.encode(entry.name, "gbk");
      // A placeholder of the same byte length, swapped for the GBK bytes afterwards.
      name = `${index}`.padEnd(gbk.length, "~");
      swaps.push({ placeholder: Buffer.from(name), gbk });
    }
    zip.addBuffer(entry.data, name, { compress: true, mtime: new Date("2024-05-02T00:00:00Z") });
  });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  for (const { placeholder, gbk } of swaps) {
    for (let at = bytes.indexOf(placeholder); at >= 0; at = bytes.indexOf(placeholder, at + 1)) gbk.copy(bytes, at);
  }
  if (swaps.length > 0) {
    // Clear the UTF-8 flag (bit 11) in every local header (flags at +6) and central directory record (+8).
    for (let at = bytes.indexOf(LOCAL); at >= 0; at = bytes.indexOf(LOCAL, at + 4)) bytes.writeUInt16LE(bytes.readUInt16LE(at + 6) & ~0x800, at + 6);
    for (let at = bytes.indexOf(CENTRAL); at >= 0; at = bytes.indexOf(CENTRAL, at + 4)) bytes.writeUInt16LE(bytes.readUInt16LE(at + 8) & ~0x800, at + 8);
  }
  return bytes;
}

const LOCAL = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const CENTRAL = Buffer.from([0x50, 0x4b, 0x01, 0x02]);

/** The entries of a zip as [name, GBK-decoded text], read with yauzl's own API. */
async function unzipText(path: string): Promise<[string, string][]> {
  const yauzl = (await import("yauzl")).default;
  const zip = await yauzl.openPromise(path, { lazyEntries: true });
  const out: [string, string][] = [];
  for await (const entry of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const chunk of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) chunks.push(chunk);
    out.push([entry.fileName, iconv.decode(Buffer.concat(chunks), "gbk")]);
  }
  return out;
}
