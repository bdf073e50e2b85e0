/**
 * The card acquirer's bill as a file. The acquirer has no bill file, only the paged list
 * `GET /v1/balance_transactions` (filtered to one UTC day); the adapter writes the list into a
 * JSON-lines file, which this module reads back lazily, so reconciliation sees one shape for
 * every channel. The same file is what ImportStatement takes for the card channel:
 *
 *   - UTF-8, one balance transaction per line, each a JSON object exactly as the acquirer's API
 *     returns it (`{"id":"txn_...","type":"charge","amount":1999,"fee":88,"currency":"usd",
 *     "created":1767312000,"source":..., "metadata":{...}}`), in the list's order, `\n` after each;
 *   - `line` of a record is its line number, i.e. its position in the list (1-based);
 *   - `type` `charge`/`payment` is a payment, `refund`/`payment_refund` a refund, any other type
 *     (payouts, fees, adjustments) and transactions without our `payment_no` metadata are skipped;
 *   - every transaction's `created` must fall on the bill's UTC day.
 */
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isKnownCurrency } from "../../money/currency.js";
import { type BillLimits, billLimits, checkFileSize, isBillDate, magnitude, readFileChunks, signedFee, splitLines } from "../bill-file.js";
import { BillFormatError, type BillRecord } from "../channel.js";
import { isWireObject, safeIntegerOf, textOf, type WireObject } from "../wire-fields.js";

const CHANNEL = "card";
const SECONDS_PER_DAY = 86_400;

/** Unix seconds at 00:00 UTC of a `yyyy-MM-dd` date; undefined unless it is a real calendar date. */
export function utcDayStart(billDate: string): number | undefined {
  return isBillDate(billDate) ? Date.parse(`${billDate}T00:00:00Z`) / 1000 : undefined;
}

function metadataOf(object: WireObject): WireObject {
  return isWireObject(object.metadata) ? object.metadata : {};
}

/**
 * A balance transaction → a bill record; undefined for other movements (payouts, fees) and rows
 * not ours. Malformed fields of one of ours, or a `created` outside the UTC day starting at
 * `dayStart`, are a {@link BillFormatError} naming the line.
 */
export function cardBillRecord(transaction: WireObject, line: number, dayStart: number): BillRecord | undefined {
  const type = textOf(transaction.type);
  if (type === undefined) throw new BillFormatError(CHANNEL, "missing field type (a transaction cut off?)", line);
  const kind = type === "charge" || type === "payment" ? "payment" : type === "refund" || type === "payment_refund" ? "refund" : undefined;
  if (!kind) return undefined;

  const source = isWireObject(transaction.source) ? transaction.source : undefined;
  const metadata = isWireObject(transaction.metadata) ? transaction.metadata : source ? metadataOf(source) : {};
  const paymentNo = textOf(metadata.payment_no);
  if (!paymentNo) return undefined;
  const created = transaction.created;
  if (typeof created !== "number" || !Number.isSafeInteger(created)) throw new BillFormatError(CHANNEL, `bad date ${JSON.stringify(created ?? null)} in field created`, line);
  if (created < dayStart || created >= dayStart + SECONDS_PER_DAY) {
    const day = new Date(created * 1000).toISOString().slice(0, 10);
    throw new BillFormatError(CHANNEL, `bill date mismatch: a transaction of ${day} in the bill of ${new Date(dayStart * 1000).toISOString().slice(0, 10)}`, line);
  }
  const amount = safeIntegerOf(transaction.amount);
  if (amount === undefined) throw new BillFormatError(CHANNEL, `bad amount ${JSON.stringify(transaction.amount ?? null)} in field amount`, line);
  const fee = transaction.fee === undefined || transaction.fee === null ? 0n : safeIntegerOf(transaction.fee);
  if (fee === undefined) throw new BillFormatError(CHANNEL, `bad amount ${JSON.stringify(transaction.fee)} in field fee`, line);
  const currency = textOf(transaction.currency)?.toUpperCase();
  if (!currency || !isKnownCurrency(currency)) throw new BillFormatError(CHANNEL, `unknown currency ${JSON.stringify(String(transaction.currency ?? "")).slice(0, 16)}`, line);

  // Amounts are magnitudes, as in the other channels' bills: the acquirer books refunds negative.
  const record: BillRecord = {
    kind,
    paymentNo,
    amountMinor: magnitude(amount),
    feeMinor: signedFee(kind, fee),
    currency,
    occurredAt: new Date(created * 1000),
    line,
  };
  // An expanded charge or refund names its intent; an unexpanded source may be the intent itself.
  const sourceId = typeof transaction.source === "string" ? transaction.source : undefined;
  const intentId = source ? textOf(source.payment_intent) : sourceId?.startsWith("pi_") ? sourceId : undefined;
  if (intentId) record.channelTradeNo = intentId;
  const refundNo = textOf(metadata.refund_no);
  if (kind === "refund") {
    if (!refundNo) throw new BillFormatError(CHANNEL, "refund without metadata refund_no", line);
    record.refundNo = refundNo;
  }
  return record;
}

/** Reads a JSON-lines bill (see the module comment) from its bytes. */
export async function* readCardBillLines(
  chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  billDate: string,
  limits: Pick<BillLimits, "maxLineBytes" | "maxLines">,
): AsyncGenerator<BillRecord> {
  const dayStart = utcDayStart(billDate);
  if (dayStart === undefined) throw new RangeError(`bill date must be yyyy-MM-dd, got ${JSON.stringify(billDate)}`);
  for await (const batch of splitLines(chunks, CHANNEL, limits)) {
    const records: BillRecord[] = [];
    for (const { line, bytes, terminated } of batch) {
      if (!terminated) throw new BillFormatError(CHANNEL, "truncated: the last line has no line end", line);
      let transaction: unknown;
      try {
        transaction = JSON.parse(bytes.toString("utf8"));
      } catch {
        throw new BillFormatError(CHANNEL, "not a JSON object", line);
      }
      if (!isWireObject(transaction)) throw new BillFormatError(CHANNEL, "not a JSON object", line);
      const record = cardBillRecord(transaction, line, dayStart);
      if (record) records.push(record);
    }
    yield* records;
  }
}

/** Reads a JSON-lines bill file lazily (a fresh pass per call). */
export async function* readCardBill(path: string, billDate: string, limitOverrides?: Partial<BillLimits>): AsyncGenerator<BillRecord> {
  const limits = billLimits(limitOverrides);
  await checkFileSize(path, CHANNEL, limits.maxFileBytes);
  yield* readCardBillLines(readFileChunks(path), billDate, limits);
}

/** Appends balance transactions to a JSON-lines bill file within the limits; `close()` once done. */
export class CardBillWriter {
  #bytes = 0;
  #lines = 0;
  readonly #file: WriteStream;

  constructor(
    path: string,
    private readonly limits: Pick<BillLimits, "maxFileBytes" | "maxLineBytes" | "maxLines"> = billLimits(),
  ) {
    this.#file = createWriteStream(path, { flags: "w", mode: 0o600 });
  }

  /** Lines written so far. */
  get lines(): number {
    return this.#lines;
  }

  async write(transaction: WireObject): Promise<void> {
    const text = `${JSON.stringify(transaction)}\n`;
    const size = Buffer.byteLength(text, "utf8");
    this.#lines += 1;
    if (this.#lines > this.limits.maxLines) throw new BillFormatError(CHANNEL, `more than ${this.limits.maxLines} lines`, this.#lines);
    if (size - 1 > this.limits.maxLineBytes) throw new BillFormatError(CHANNEL, `line longer than ${this.limits.maxLineBytes} bytes`, this.#lines);
    this.#bytes += size;
    if (this.#bytes > this.limits.maxFileBytes) throw new BillFormatError(CHANNEL, `oversized: the list passed ${this.limits.maxFileBytes} bytes`);
    if (!this.#file.write(text)) await once(this.#file, "drain");
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    if (this.#file.closed) return;
    await new Promise<void>((resolve, reject) => {
      this.#file.once("error", reject);
      this.#file.end(() => resolve());
    });
  }

  /** Closes without waiting for anything (after an error). */
  destroy(): void {
    this.#file.destroy();
  }
}

/** A card bill row for tests and benchmarks; {@link cardBalanceTransaction} turns it into the acquirer's shape. */
export interface CardBillRow {
  kind: "payment" | "refund";
  paymentNo: string;
  /** The payment intent (`pi_...`). */
  intentId: string;
  refundNo?: string;
  /** Magnitudes in minor units; refunds are written negative, as the acquirer books them. */
  amountMinor: bigint;
  feeMinor: bigint;
  currency: string;
  occurredAt: Date;
  /** The balance transaction id; `txn_{n}` by position when absent. */
  id?: string;
}

/** A balance transaction as the acquirer's list returns it (with `expand[]=data.source`). */
export function cardBalanceTransaction(row: CardBillRow, position: number): WireObject {
  const isRefund = row.kind === "refund";
  const amount = Number(isRefund ? -row.amountMinor : row.amountMinor);
  const fee = Number(isRefund ? -row.feeMinor : row.feeMinor);
  const metadata: WireObject = isRefund ? { payment_no: row.paymentNo, refund_no: row.refundNo ?? "" } : { payment_no: row.paymentNo };
  return {
    id: row.id ?? `txn_${position}`,
    object: "balance_transaction",
    amount,
    created: Math.floor(row.occurredAt.getTime() / 1000),
    currency: row.currency.toLowerCase(),
    fee,
    metadata,
    net: amount - fee,
    reporting_category: isRefund ? "refund" : "charge",
    source: { id: isRefund ? `re_${position}` : `ch_${position}`, object: isRefund ? "refund" : "charge", payment_intent: row.intentId, metadata },
    status: "available",
    type: isRefund ? "refund" : "charge",
  };
}

/**
 * Streams a JSON-lines card bill of `rows` into a new file at `path` (mode 0600); each row may be
 * a {@link CardBillRow} or an already-shaped balance transaction. Resolves with the line count.
 */
export async function writeCardBillFile(path: string, rows: AsyncIterable<CardBillRow | WireObject> | Iterable<CardBillRow | WireObject>): Promise<{ lines: number }> {
  let lines = 0;
  async function* text(): AsyncGenerator<string> {
    let batch: string[] = [];
    let length = 0;
    for await (const row of rows) {
      lines += 1;
      const transaction = "intentId" in row && "occurredAt" in row ? cardBalanceTransaction(row as CardBillRow, lines) : (row as WireObject);
      const line = `${JSON.stringify(transaction)}\n`;
      batch.push(line);
      length += line.length;
      if (length >= 65_536) {
        yield batch.join("");
        batch = [];
        length = 0;
      }
    }
    if (batch.length > 0) yield batch.join("");
  }
  await pipeline(Readable.from(text()), createWriteStream(path, { mode: 0o600 }));
  return { lines };
}
