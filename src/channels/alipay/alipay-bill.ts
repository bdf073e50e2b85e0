/**
 * Alipay's daily trade bill, read as a stream: a zip (read with yauzl) holding GBK-encoded CSV
 * files, of which the detail file (`..._业务明细.csv`) has one row per payment or refund. Layout
 * of the detail file:
 *
 *   #支付宝业务明细查询                         comment lines (`#`), among them
 *   #起始日期：[2024年05月01日 00:00:00] ...    the bill's day (China time), checked against the bill date
 *   支付宝交易号,商户订单号,业务类型,...        the header: columns are read by name, never position
 *   2024...\t,P2024...\t,交易\t,...             detail rows (values tab-padded, CSV quoting allowed)
 *   #----...业务明细列表结束----                a `#` line ends the detail
 *   #交易合计：2笔，退款合计：1笔              counts, checked against the detail
 *
 * A file that ends inside the detail, or in the middle of a line, is truncated.
 */
import iconv from "iconv-lite";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import { parseMinor } from "../../money/currency.js";
import { billAmount, type BillLimits, billLimits, type ByteLine, checkFileSize, chinaTimeParser, magnitude, signedFee, splitLines } from "../bill-file.js";
import { BillFormatError, type BillRecord } from "../channel.js";
import { parseAlipayTime } from "./alipay-time.js";

const CHANNEL = "alipay";

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

/** The business types of a trade bill: a payment, a refund. */
export const ALIPAY_BUSINESS_TYPES = Object.freeze({ payment: "交易", refund: "退款" });

/** The detail file inside the archive: `{account}_{yyyyMMdd}_业务明细.csv` (the summary is `..._业务明细(汇总).csv`). */
const DETAIL_FILE = /业务明细\.csv$/;
const START_DATE = /起始日期：\[(\d{4})年(\d{2})月(\d{2})日/;
const COUNTS = /交易合计：(\d+)笔，退款合计：(\d+)笔/;

/** Splits one CSV line; double quotes may wrap a field, `""` inside quotes is a quote. */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(",");
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

function normaliseHeader(name: string): string {
  return name.trim().replaceAll("（", "(").replaceAll("）", ")");
}

/** A zip entry's name: UTF-8 when flagged (bit 11, as yazl writes), else GBK (as Alipay writes). */
function entryName(entry: Entry): string {
  const raw = entry.fileNameRaw;
  return entry.generalPurposeBitFlag & 0x800 ? raw.toString("utf8") : iconv.decode(raw, "gbk");
}

async function openZip(zipPath: string): Promise<ZipFile> {
  try {
    return await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (error) {
    throw new BillFormatError(CHANNEL, `not a readable zip archive: ${(error as Error).message}`);
  }
}

/** The detail entry, checked against the size and compression-ratio limits (a zip bomb stops here). */
async function findDetailEntry(zip: ZipFile, limits: BillLimits): Promise<{ entry: Entry; name: string }> {
  try {
    for await (const entry of zip.eachEntry()) {
      const name = entryName(entry);
      if (!DETAIL_FILE.test(name)) continue;
      if (entry.isEncrypted()) throw new BillFormatError(CHANNEL, `zip entry ${name} is encrypted`);
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        throw new BillFormatError(CHANNEL, `zip entry ${name} uses compression method ${entry.compressionMethod}`);
      }
      if (entry.uncompressedSize > limits.maxEntryBytes) {
        throw new BillFormatError(CHANNEL, `oversized: zip entry ${name} holds ${entry.uncompressedSize} bytes, more than ${limits.maxEntryBytes}`);
      }
      const ratio = entry.uncompressedSize / Math.max(entry.compressedSize, 1);
      if (ratio > limits.maxCompressionRatio) {
        throw new BillFormatError(CHANNEL, `zip entry ${name} expands ${Math.round(ratio)}:1, more than ${limits.maxCompressionRatio}:1 (zip bomb?)`);
      }
      return { entry, name };
    }
  } catch (error) {
    if (error instanceof BillFormatError) throw error;
    throw new BillFormatError(CHANNEL, `zip archive: ${(error as Error).message}`);
  }
  throw new BillFormatError(CHANNEL, "no detail CSV (..._业务明细.csv) in the archive");
}

/** The entry's bytes, with the declared size enforced as they come (yauzl checks it too). */
async function* entryChunks(zip: ZipFile, entry: Entry, name: string, limits: BillLimits): AsyncGenerator<Buffer> {
  let stream: NodeJS.ReadableStream & { destroy(): void };
  try {
    stream = (await zip.openReadStreamPromise(entry)) as typeof stream;
  } catch (error) {
    throw new BillFormatError(CHANNEL, `zip entry ${name}: ${(error as Error).message}`);
  }
  let bytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > limits.maxEntryBytes) throw new BillFormatError(CHANNEL, `oversized: zip entry ${name} passed ${limits.maxEntryBytes} bytes`);
      yield chunk;
    }
  } catch (error) {
    if (error instanceof BillFormatError) throw error;
    throw new BillFormatError(CHANNEL, `zip entry ${name}: ${(error as Error).message}`);
  } finally {
    stream.destroy();
  }
}

interface DetailColumns {
  count: number;
  tradeNo: number | undefined;
  outTradeNo: number;
  businessType: number;
  createdAt: number | undefined;
  finishedAt: number | undefined;
  amount: number;
  amountName: string;
  refundRequestNo: number | undefined;
  serviceFee: number;
}

function detailColumns(header: string[], line: number): DetailColumns {
  const names = header.map(normaliseHeader);
  const optional = (name: string) => {
    const index = names.indexOf(name);
    return index < 0 ? undefined : index;
  };
  const required = (...candidates: string[]): [number, string] => {
    for (const name of candidates) {
      const index = optional(name);
      if (index !== undefined) return [index, name];
    }
    throw new BillFormatError(CHANNEL, `missing column ${candidates.join("/")}`, line);
  };
  const c = ALIPAY_BILL_COLUMNS;
  const [amount, amountName] = required(c.orderAmount, c.receivedAmount);
  const columns: DetailColumns = {
    count: names.length,
    tradeNo: optional(c.tradeNo),
    outTradeNo: required(c.outTradeNo)[0],
    businessType: required(c.businessType)[0],
    createdAt: optional(c.createdAt),
    finishedAt: optional(c.finishedAt),
    amount,
    amountName,
    refundRequestNo: optional(c.refundRequestNo),
    serviceFee: required(c.serviceFee)[0],
  };
  if (columns.createdAt === undefined && columns.finishedAt === undefined) throw new BillFormatError(CHANNEL, `missing column ${c.finishedAt}`, line);
  return columns;
}

function fieldOf(fields: string[], index: number | undefined): string {
  return index === undefined ? "" : (fields[index] ?? "").trim();
}

function detailRecord(fields: string[], columns: DetailColumns, line: number, parseTime: (text: string) => Date | undefined): BillRecord {
  const field = (index: number | undefined) => fieldOf(fields, index);
  const businessType = field(columns.businessType);
  const kind = businessType === ALIPAY_BUSINESS_TYPES.payment ? "payment" : businessType === ALIPAY_BUSINESS_TYPES.refund ? "refund" : undefined;
  if (!kind) throw new BillFormatError(CHANNEL, `unknown business type ${JSON.stringify(businessType.slice(0, 32))}`, line);
  const timeText = field(columns.finishedAt) || field(columns.createdAt);
  const occurredAt = parseTime(timeText);
  if (!occurredAt) throw new BillFormatError(CHANNEL, `bad date ${JSON.stringify(timeText.slice(0, 32))} in column ${ALIPAY_BILL_COLUMNS.finishedAt}`, line);
  const paymentNo = field(columns.outTradeNo);
  if (!paymentNo) throw new BillFormatError(CHANNEL, `empty ${ALIPAY_BILL_COLUMNS.outTradeNo}`, line);
  const amountText = field(columns.amount);
  const feeText = field(columns.serviceFee) || "0";
  const record: BillRecord = {
    kind,
    paymentNo,
    amountMinor: magnitude(billAmount(CHANNEL, line, columns.amountName, () => parseMinor(amountText, "CNY"), amountText)),
    feeMinor: signedFee(kind, billAmount(CHANNEL, line, ALIPAY_BILL_COLUMNS.serviceFee, () => parseMinor(feeText, "CNY"), feeText)),
    currency: "CNY",
    occurredAt,
    line,
  };
  const tradeNo = field(columns.tradeNo);
  if (tradeNo) record.channelTradeNo = tradeNo;
  const refundNo = field(columns.refundRequestNo);
  if (kind === "refund") {
    if (!refundNo) throw new BillFormatError(CHANNEL, `refund row without ${ALIPAY_BILL_COLUMNS.refundRequestNo}`, line);
    record.refundNo = refundNo;
  }
  return record;
}

const NEWLINE = Buffer.from("\n");

/**
 * The lines of a batch as text. One decode per batch, not per line (each call allocates): the
 * lines are joined with `\n`, which never occurs inside a GBK character, and split again.
 */
function decodeGbkLines(batch: ByteLine[]): string[] {
  const parts: Buffer[] = [];
  for (const { bytes } of batch) parts.push(bytes, NEWLINE);
  return iconv.decode(Buffer.concat(parts), "gbk").split("\n");
}

/**
 * Reads the detail CSV of a trade bill from its lines (GBK bytes), yielding one record per row:
 * business type `交易` a payment, `退款` a refund, anything else a {@link BillFormatError}.
 * `amountMinor` is the order amount as a magnitude (`订单金额`, else `商家实收`), `feeMinor` the
 * service fee charged (positive) or returned on a refund (not positive), whatever sign the bill prints.
 */
export async function* readAlipayDetailLines(
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
  billDate: string,
  limits: Pick<BillLimits, "maxLineBytes" | "maxLines">,
): AsyncGenerator<BillRecord> {
  let columns: DetailColumns | undefined;
  let closed = false;
  let lastLine = 0;
  const counted = { payment: 0, refund: 0 };
  const parseTime = chinaTimeParser(parseAlipayTime);
  for await (const batch of splitLines(chunks, CHANNEL, limits)) {
    const records: BillRecord[] = [];
    const texts = decodeGbkLines(batch);
    for (const [index, { line, terminated }] of batch.entries()) {
      lastLine = line;
      const text = texts[index] as string;
      if (!columns) {
        if (text.startsWith("#")) {
          const date = START_DATE.exec(text);
          if (date && `${date[1]}-${date[2]}-${date[3]}` !== billDate) {
            throw new BillFormatError(CHANNEL, `bill date mismatch: the file is for ${date[1]}-${date[2]}-${date[3]}, not ${billDate}`, line);
          }
          continue;
        }
        if (text.trim() === "") continue;
        if (!terminated) throw new BillFormatError(CHANNEL, "truncated: the file ends in the middle of the header", line);
        columns = detailColumns(splitCsvLine(text), line);
        continue;
      }
      if (text.startsWith("#")) {
        // The first `#` line after the rows closes the detail; the totals line may follow it.
        const counts = COUNTS.exec(text);
        if (counts) {
          const [payments, refunds] = [Number(counts[1]), Number(counts[2])];
          if (payments !== counted.payment || refunds !== counted.refund) {
            throw new BillFormatError(
              CHANNEL,
              `totals say ${payments} payments and ${refunds} refunds, the detail has ${counted.payment} and ${counted.refund} (truncated?)`,
              line,
            );
          }
          yield* records;
          return;
        }
        if (!closed && text.includes("结束")) {
          // `#...业务明细列表结束...`: the totals line (checked above) comes next, when the export has one.
          closed = true;
          continue;
        }
        yield* records;
        return;
      }
      if (closed) {
        yield* records;
        return;
      }
      if (text.trim() === "") continue;
      if (!terminated) throw new BillFormatError(CHANNEL, "truncated: the last line has no line end", line);
      const fields = splitCsvLine(text);
      if (fields.length !== columns.count) throw new BillFormatError(CHANNEL, `expected ${columns.count} columns, got ${fields.length}`, line);
      const record = detailRecord(fields, columns, line, parseTime);
      counted[record.kind] += 1;
      records.push(record);
    }
    yield* records;
  }
  if (!columns) throw new BillFormatError(CHANNEL, "no detail header (支付宝交易号, 业务类型, ...) in the detail file", lastLine || undefined);
  if (!closed) throw new BillFormatError(CHANNEL, "truncated: the file ends inside the detail, without its closing # line", lastLine);
}

/**
 * Reads a trade bill archive on disk lazily: the records of its detail CSV in file order, `line`
 * being the line of that CSV. Throws {@link BillFormatError} naming the line on anything
 * malformed, and for an archive that is not a zip, has no detail file, or breaks a limit.
 */
export async function* readAlipayBill(zipPath: string, billDate: string, limitOverrides?: Partial<BillLimits>): AsyncGenerator<BillRecord> {
  const limits = billLimits(limitOverrides);
  await checkFileSize(zipPath, CHANNEL, limits.maxFileBytes);
  const zip = await openZip(zipPath);
  try {
    const { entry, name } = await findDetailEntry(zip, limits);
    yield* readAlipayDetailLines(entryChunks(zip, entry, name, limits), billDate, limits);
  } finally {
    zip.close();
  }
}
