/**
 * Alipay's daily trade bill: a zip holding GBK-encoded CSV files (`..._业务明细.csv` with one row
 * per payment or refund, and a summary file). Columns are read by header name, never position.
 */
import { TextDecoder } from "node:util";
import { inflateRawSync } from "node:zlib";
import type { BillRecord } from "../channel.js";
import { parseMinor } from "../../money/currency.js";
import { parseAlipayTime } from "./alipay-time.js";

/** One file inside a zip archive. */
export interface ZipEntry {
  name: string;
  data: Buffer;
}

const MAX_ENTRY_BYTES = 256 * 1024 * 1024;

/** Reads every file of a (non-ZIP64) zip archive; stored and deflated entries. Throws on anything else. */
export function readZipEntries(zip: Buffer): ZipEntry[] {
  const endOffset = findEndOfCentralDirectory(zip);
  const count = zip.readUInt16LE(endOffset + 10);
  let offset = zip.readUInt32LE(endOffset + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (offset + 46 > zip.length || zip.readUInt32LE(offset) !== 0x02014b50) throw new Error("zip: bad central directory");
    const flags = zip.readUInt16LE(offset + 8);
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localOffset = zip.readUInt32LE(offset + 42);
    const nameBytes = zip.subarray(offset + 46, offset + 46 + nameLength);
    // Bit 11 marks UTF-8 names; Alipay's archives leave it clear and write GBK names.
    const name = flags & 0x800 ? nameBytes.toString("utf8") : decodeGbk(nameBytes);
    offset += 46 + nameLength + extraLength + commentLength;

    if (localOffset + 30 > zip.length || zip.readUInt32LE(localOffset) !== 0x04034b50) throw new Error("zip: bad local header");
    const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const compressed = zip.subarray(dataStart, dataStart + compressedSize);
    if (compressed.length !== compressedSize) throw new Error(`zip: entry ${name} is truncated`);
    if (name.endsWith("/")) continue;
    if (method === 0) entries.push({ name, data: Buffer.from(compressed) });
    else if (method === 8) entries.push({ name, data: inflateRawSync(compressed, { maxOutputLength: MAX_ENTRY_BYTES }) });
    else throw new Error(`zip: entry ${name} uses unsupported compression method ${method}`);
  }
  return entries;
}

function findEndOfCentralDirectory(zip: Buffer): number {
  const earliest = Math.max(0, zip.length - 22 - 0xffff);
  for (let offset = zip.length - 22; offset >= earliest; offset--) {
    if (zip.readUInt32LE(offset) === 0x06054b50) return offset;
  }
  throw new Error("zip: end of central directory not found (not a zip archive?)");
}

let gbkDecoder: TextDecoder | undefined;

/** GBK bytes to text, with Node's ICU decoder (present in standard Node builds). */
export function decodeGbk(bytes: Uint8Array): string {
  if (!gbkDecoder) {
    try {
      gbkDecoder = new TextDecoder("gbk");
    } catch (error) {
      throw new Error("this Node build has no GBK decoder (built without full ICU); Alipay bills need one", { cause: error });
    }
  }
  return gbkDecoder.decode(bytes);
}

/** Splits one CSV line; double quotes may wrap a field, `""` inside quotes is a quote. */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i] as string;
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      fields.push(field);
      field = "";
    } else field += char;
  }
  fields.push(field);
  return fields;
}

/** Header names as Alipay writes them; full-width parentheses are normalised before matching. */
export const ALIPAY_BILL_COLUMNS = Object.freeze({
  tradeNo: "支付宝交易号",
  outTradeNo: "商户订单号",
  businessType: "业务类型",
  createdAt: "创建时间",
  finishedAt: "完成时间",
  orderAmount: "订单金额(元)",
  receivedAmount: "商家实收(元)",
  refundRequestNo: "退款批次号/请求号",
  serviceFee: "服务费(元)",
});

function normaliseHeader(name: string): string {
  return name.trim().replaceAll("（", "(").replaceAll("）", ")");
}

function absolute(amount: bigint): bigint {
  return amount < 0n ? -amount : amount;
}

/**
 * Parses the detail CSV text of a trade bill. Rows of business type `交易` become payments and
 * `退款` refunds; others are skipped. Amounts are positive magnitudes in fen whatever sign the bill
 * prints: `amountMinor` is the order amount (payment) or refunded amount (refund), `feeMinor` the
 * service fee charged (payment) or returned (refund). Returns undefined when `text` has no detail header.
 */
export function parseAlipayBillCsv(text: string): BillRecord[] | undefined {
  const lines = text.split(/\r?\n/);
  let headerIndex = -1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith("#") || line.trim() === "") continue;
    if (line.includes(ALIPAY_BILL_COLUMNS.tradeNo) && line.includes(ALIPAY_BILL_COLUMNS.businessType)) headerIndex = i;
    break;
  }
  if (headerIndex < 0) return undefined;
  const header = splitCsvLine(lines[headerIndex] as string).map(normaliseHeader);
  const column = (name: string): number => {
    const index = header.indexOf(name);
    if (index < 0) throw new Error(`Alipay bill: column ${name} missing`);
    return index;
  };
  const columns = {
    tradeNo: column(ALIPAY_BILL_COLUMNS.tradeNo),
    outTradeNo: column(ALIPAY_BILL_COLUMNS.outTradeNo),
    businessType: column(ALIPAY_BILL_COLUMNS.businessType),
    createdAt: column(ALIPAY_BILL_COLUMNS.createdAt),
    finishedAt: column(ALIPAY_BILL_COLUMNS.finishedAt),
    orderAmount: column(ALIPAY_BILL_COLUMNS.orderAmount),
    refundRequestNo: column(ALIPAY_BILL_COLUMNS.refundRequestNo),
    serviceFee: column(ALIPAY_BILL_COLUMNS.serviceFee),
  };

  const records: BillRecord[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith("#")) break;
    if (line.trim() === "") continue;
    const fields = splitCsvLine(line).map((field) => field.trim());
    const field = (index: number) => fields[index] ?? "";
    const businessType = field(columns.businessType);
    const kind = businessType === "交易" ? "payment" : businessType === "退款" ? "refund" : undefined;
    if (!kind) continue;
    const timeText = field(columns.finishedAt) || field(columns.createdAt);
    const occurredAt = parseAlipayTime(timeText);
    if (!occurredAt) throw new Error(`Alipay bill line ${i + 1}: bad time ${JSON.stringify(timeText)}`);
    const record: BillRecord = {
      kind,
      paymentNo: field(columns.outTradeNo),
      amountMinor: absolute(parseMinor(field(columns.orderAmount) || "0", "CNY")),
      feeMinor: absolute(parseMinor(field(columns.serviceFee) || "0", "CNY")),
      currency: "CNY",
      occurredAt,
    };
    const tradeNo = field(columns.tradeNo);
    if (tradeNo) record.channelTradeNo = tradeNo;
    const refundNo = field(columns.refundRequestNo);
    if (kind === "refund" && refundNo) record.refundNo = refundNo;
    records.push(record);
  }
  return records;
}

/** Parses a downloaded trade bill archive: unzips, decodes GBK, reads the detail file. */
export function parseAlipayTradeBill(zip: Buffer): BillRecord[] {
  for (const entry of readZipEntries(zip)) {
    if (!entry.name.toLowerCase().endsWith(".csv")) continue;
    const records = parseAlipayBillCsv(decodeGbk(entry.data));
    if (records) return records;
  }
  throw new Error("Alipay bill: no detail CSV (业务明细) in the archive");
}
