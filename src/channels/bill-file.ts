/**
 * What the three bill formats share: the size limits, temporary files, a streamed download that
 * hashes while it writes, a byte-line splitter with bounded memory, and the {@link BillFile} every
 * adapter hands out. Nothing here holds a whole bill or all its records.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BillFile, BillFormatError, type BillRecord, type ChannelName } from "./channel.js";
import { HttpTransportError } from "./http-client.js";

/** Limits on one bill; readers take lowered ones in tests. */
export interface BillLimits {
  /** The downloaded or imported file. */
  maxFileBytes: number;
  /** One line, without its line end. */
  maxLineBytes: number;
  maxLines: number;
  /** One zip entry, uncompressed (Alipay). */
  maxEntryBytes: number;
  /** Uncompressed over compressed size of a zip entry (Alipay): a zip bomb goes far beyond. */
  maxCompressionRatio: number;
}

/** 1 GiB file, 64 KiB line, 10,000,000 lines, 4 GiB zip entry, 100:1 compression. */
export const BILL_LIMITS: Readonly<BillLimits> = Object.freeze({
  maxFileBytes: 1024 * 1024 * 1024,
  maxLineBytes: 64 * 1024,
  maxLines: 10_000_000,
  maxEntryBytes: 4 * 1024 * 1024 * 1024,
  // Text bills deflate about 5-15:1; deflate itself tops out near 1032:1.
  maxCompressionRatio: 100,
});

/** The limits with `overrides` applied. */
export function billLimits(overrides?: Partial<BillLimits>): BillLimits {
  return { ...BILL_LIMITS, ...overrides };
}

/** A private temporary directory (under `os.tmpdir()`) holding one bill file. */
export interface BillTempFile {
  readonly path: string;
  /** Removes the directory and the file; safe to call twice. */
  remove(): Promise<void>;
}

/** Makes a `mkdtemp` directory with an empty file `name` in it, mode 0600. */
export async function createBillTempFile(channel: ChannelName, name: string): Promise<BillTempFile> {
  const dir = await mkdtemp(join(tmpdir(), `bill-${channel}-`));
  const path = join(dir, name);
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const handle = await open(path, "wx", 0o600);
    await handle.close();
  } catch (error) {
    await remove();
    throw error;
  }
  return { path, remove };
}

/** A byte line of a bill: 1-based number, the bytes without `\r\n`/`\n`, and whether a line end followed. */
export interface ByteLine {
  line: number;
  bytes: Buffer;
  terminated: boolean;
}

/**
 * Splits a byte stream into lines (`\n`, with a `\r` before it dropped), handed out in batches
 * (the lines of one chunk: one await per chunk, not per line). Memory stays within one line plus
 * one chunk: a line longer than `maxLineBytes`, or more than `maxLines` lines, is a
 * {@link BillFormatError}. The last line comes with `terminated: false` when the stream ends
 * without a line end (a cut file); an empty last line after a final `\n` is not yielded.
 * GBK is safe to split this way: its second bytes are never 0x0A or 0x0D.
 */
export async function* splitLines(
  chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  channel: ChannelName,
  limits: Pick<BillLimits, "maxLineBytes" | "maxLines">,
): AsyncGenerator<ByteLine[]> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const next = (): number => {
    line += 1;
    if (line > limits.maxLines) throw new BillFormatError(channel, `more than ${limits.maxLines} lines`, line);
    return line;
  };
  const tooLong = (at: number) => new BillFormatError(channel, `line longer than ${limits.maxLineBytes} bytes`, at);
  for await (const piece of chunks) {
    const chunk = typeof piece === "string" ? Buffer.from(piece, "utf8") : piece;
    const batch: ByteLine[] = [];
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(0x0a, start);
      if (end < 0) break;
      let bytes = chunk.subarray(start, end);
      if (pendingBytes > 0) {
        pending.push(bytes);
        bytes = Buffer.concat(pending, pendingBytes + bytes.length);
        pending = [];
        pendingBytes = 0;
      }
      if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
      const number = next();
      if (bytes.length > limits.maxLineBytes) throw tooLong(number);
      batch.push({ line: number, bytes, terminated: true });
      start = end + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      // A copy: the reader may reuse the chunk's memory.
      pending.push(Buffer.from(rest));
      pendingBytes += rest.length;
      if (pendingBytes > limits.maxLineBytes + 1) throw tooLong(line + 1);
    }
    if (batch.length > 0) yield batch;
  }
  if (pendingBytes > 0) {
    const bytes = Buffer.concat(pending, pendingBytes);
    const number = next();
    if (bytes.length > limits.maxLineBytes) throw tooLong(number);
    yield [{ line: number, bytes, terminated: false }];
  }
}

const CHINA_TIME = /^(\d{4}-\d{2}-\d{2}) ([01]\d|2[0-3]):([0-5]\d):([0-5]\d)$/;

/**
 * A parser for `yyyy-MM-dd HH:mm:ss` China time (no daylight saving) that asks the channel's own
 * helper (`parseDay`, e.g. parseAlipayTime) about each calendar day once and adds the time of day:
 * a bill's million rows fall on one or two days.
 */
export function chinaTimeParser(parseDay: (text: string) => Date | undefined): (text: string) => Date | undefined {
  let day = "";
  let dayStart: number | undefined;
  return (text) => {
    const match = CHINA_TIME.exec(text);
    if (!match) return undefined;
    if (match[1] !== day) {
      day = match[1] as string;
      dayStart = parseDay(`${day} 00:00:00`)?.getTime();
    }
    if (dayStart === undefined) return undefined;
    return new Date(dayStart + ((Number(match[2]) * 60 + Number(match[3])) * 60 + Number(match[4])) * 1000);
  };
}

/** Streams `path` in chunks. */
export function readFileChunks(path: string): AsyncIterable<Buffer> {
  return createReadStream(path, { highWaterMark: 256 * 1024 });
}

/** Refuses a file above `maxFileBytes` (oversized) before reading it. */
export async function checkFileSize(path: string, channel: ChannelName, maxFileBytes: number): Promise<number> {
  const { size } = await stat(path);
  if (size > maxFileBytes) throw new BillFormatError(channel, `oversized: ${size} bytes, more than ${maxFileBytes}`);
  return size;
}

/** The SHA-1 of a file, read in chunks, as lowercase hex. */
export async function sha1OfFile(path: string): Promise<string> {
  const hash = createHash("sha1");
  for await (const chunk of readFileChunks(path)) hash.update(chunk);
  return hash.digest("hex");
}

/** Compares a file's SHA-1 with the one stated for it (WeChat's `hash_value`, ImportStatement's `sha1`); a mismatch is a BillFormatError. */
export function checkSha1(channel: ChannelName, actualHex: string, expected: string): void {
  if (!/^[0-9a-fA-F]{40}$/.test(expected)) throw new BillFormatError(channel, `hash: ${JSON.stringify(expected.slice(0, 64))} is not a SHA1 in hex`);
  if (!timingSafeEqual(Buffer.from(actualHex, "hex"), Buffer.from(expected, "hex"))) {
    throw new BillFormatError(channel, `hash mismatch: the file's SHA1 is ${actualHex}, the bill states ${expected.toLowerCase()}`);
  }
}

/** Where a bill's bytes live: a temporary download (removed by dispose) or a caller's file (kept). */
export interface BillFileSource {
  channel: ChannelName;
  billDate: string;
  /** Undefined for a day without a bill (no records). */
  path?: string;
  /** The reader: a fresh pass over the file on each call. */
  read(path: string): AsyncIterable<BillRecord>;
  /** Removes the temporary file; absent for a caller's file. */
  remove?: () => Promise<void>;
}

/** A {@link BillFile} over a file on disk. */
export function billFileOf(source: BillFileSource): BillFile {
  let disposed = false;
  return {
    channel: source.channel,
    billDate: source.billDate,
    records(): AsyncIterable<BillRecord> {
      if (disposed) throw new Error(`${source.channel} bill ${source.billDate} was disposed`);
      const { path } = source;
      return path === undefined ? emptyRecords() : source.read(path);
    },
    async dispose(): Promise<void> {
      disposed = true;
      await source.remove?.();
    },
  };
}

async function* emptyRecords(): AsyncGenerator<BillRecord> {}

/** A streamed download: its HTTP status and, for a 200, the bytes written and their SHA-1. */
export type BillDownload =
  | { status: 200; bytes: number; sha1: string }
  /** Any other status: the first bytes of the body (at most 64 KiB) for the error message. */
  | { status: number; body: Buffer };

/** One download of a bill file into `path`. */
export interface BillDownloadRequest {
  channel: ChannelName;
  url: string;
  headers?: Readonly<Record<string, string>>;
  path: string;
  maxFileBytes: number;
  /** Longest pause without a byte arriving (the whole download of a big bill takes longer). */
  idleTimeoutMs: number;
}

const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * GETs `url` into `path` (already created, mode 0600), hashing as it writes. A body above
 * `maxFileBytes` stops the download: {@link BillFormatError} "oversized". Transport failures and
 * a silent peer are {@link HttpTransportError}, as in `http-client.ts`.
 */
export function downloadBillFile(request: BillDownloadRequest): Promise<BillDownload> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch (error) {
    return Promise.reject(new HttpTransportError("network", "bill download URL is not a URL", { cause: error }));
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new HttpTransportError("network", `unsupported protocol ${url.protocol}`));
  }
  const transport = url.protocol === "https:" ? https : http;
  const target = `GET ${url.origin}${url.pathname}`;
  return new Promise<BillDownload>((resolve, reject) => {
    let settled = false;
    let file: WriteStream | undefined;
    const finish = (error: Error | undefined, result?: BillDownload) => {
      if (settled) return;
      settled = true;
      if (error) {
        file?.destroy();
        outgoing.destroy();
        reject(error);
      } else resolve(result as BillDownload);
    };
    const outgoing = transport.request(url, { method: "GET", headers: { ...request.headers } }, (incoming) => {
      const status = incoming.statusCode ?? 0;
      if (status !== 200) {
        const chunks: Buffer[] = [];
        let kept = 0;
        incoming.on("data", (chunk: Buffer) => {
          if (kept >= MAX_ERROR_BODY_BYTES) return;
          chunks.push(chunk.subarray(0, MAX_ERROR_BODY_BYTES - kept));
          kept += Math.min(chunk.length, MAX_ERROR_BODY_BYTES - kept);
        });
        incoming.on("end", () => finish(undefined, { status, body: Buffer.concat(chunks) }));
        incoming.on("error", (error) => finish(new HttpTransportError("network", `${target}: ${error.message}`, { cause: error })));
        return;
      }
      const declared = Number(incoming.headers["content-length"]);
      if (Number.isFinite(declared) && declared > request.maxFileBytes) {
        finish(new BillFormatError(request.channel, `oversized: the download declares ${declared} bytes, more than ${request.maxFileBytes}`));
        return;
      }
      const hash = createHash("sha1");
      const output = createWriteStream(request.path, { flags: "w", mode: 0o600 });
      file = output;
      let bytes = 0;
      output.on("error", (error) => finish(error));
      incoming.on("data", (chunk: Buffer) => {
        if (settled) return;
        bytes += chunk.length;
        if (bytes > request.maxFileBytes) {
          finish(new BillFormatError(request.channel, `oversized: the download passed ${request.maxFileBytes} bytes`));
          return;
        }
        hash.update(chunk);
        if (!output.write(chunk)) {
          incoming.pause();
          output.once("drain", () => incoming.resume());
        }
      });
      incoming.on("error", (error) => finish(new HttpTransportError("network", `${target}: ${error.message}`, { cause: error })));
      incoming.on("end", () => {
        if (settled) return;
        if (!incoming.complete) {
          finish(new HttpTransportError("network", `${target}: connection closed mid-download`));
          return;
        }
        output.end(() => finish(undefined, { status: 200, bytes, sha1: hash.digest("hex") }));
      });
    });
    outgoing.setTimeout(request.idleTimeoutMs, () =>
      finish(new HttpTransportError("timeout", `${target}: no byte for ${request.idleTimeoutMs} ms`)),
    );
    outgoing.on("error", (error) => finish(new HttpTransportError("network", `${target}: ${error.message}`, { cause: error })));
    outgoing.end();
  });
}

/** Parses a minor-unit amount for a reader, turning a bad one into a BillFormatError naming the column and line. */
export function billAmount(channel: ChannelName, line: number, column: string, parse: () => bigint, text: string): bigint {
  try {
    // No amount a channel bills runs to 32 characters; longer text is not an amount.
    if (text.length <= MAX_AMOUNT_CHARS) return parse();
  } catch {
    // Falls through to the error below.
  }
  throw new BillFormatError(channel, `bad amount ${JSON.stringify(text.slice(0, MAX_AMOUNT_CHARS))} in column ${column}`, line);
}

const MAX_AMOUNT_CHARS = 32;

/** A magnitude: payments and refunds are positive in a {@link BillRecord}. */
export function magnitude(amount: bigint): bigint {
  return amount < 0n ? -amount : amount;
}

/** The fee sign of a {@link BillRecord}: charged on a payment (positive), returned on a refund (not positive). */
export function signedFee(kind: BillRecord["kind"], fee: bigint): bigint {
  return kind === "payment" ? magnitude(fee) : -magnitude(fee);
}

/** A `YYYY-MM-DD` that is a real calendar date. */
export function isBillDate(text: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** A caller's file (ImportStatement) as a {@link BillFile}: size checked, SHA1 checked when given; dispose leaves the file. */
export async function openCallerBillFile(
  channel: ChannelName,
  path: string,
  billDate: string,
  options: { sha1?: string } | undefined,
  read: (path: string) => AsyncIterable<BillRecord>,
): Promise<BillFile> {
  if (!isBillDate(billDate)) throw new BillFormatError(channel, `bill date must be YYYY-MM-DD, got ${JSON.stringify(billDate.slice(0, 32))}`);
  await checkFileSize(path, channel, BILL_LIMITS.maxFileBytes);
  if (options?.sha1 !== undefined) checkSha1(channel, await sha1OfFile(path), options.sha1);
  return billFileOf({ channel, billDate, path, read });
}

/** One bill download as an adapter asks for it. */
export interface FetchBillRequest {
  channel: ChannelName;
  billDate: string;
  /** The temporary file's name, e.g. `alipay-2024-05-01.csv.zip`. */
  fileName: string;
  url: string;
  headers?: Readonly<Record<string, string>>;
  idleTimeoutMs: number;
  /** The SHA1 the channel stated for the file (WeChat); a mismatch is a BillFormatError "hash ...". */
  sha1?: string;
  read: (path: string) => AsyncIterable<BillRecord>;
  /** The adapter's ChannelUnavailableError for a transport failure or a non-200 answer (`body`: its first bytes). */
  unavailable: (detail: string, cause?: unknown, body?: Buffer) => Error;
}

/**
 * Downloads a bill into a private temporary file and hands it out as a {@link BillFile} whose
 * dispose() removes it. On any error the file is removed before the error is thrown.
 */
export async function fetchBillFile(request: FetchBillRequest): Promise<BillFile> {
  const temp = await createBillTempFile(request.channel, request.fileName);
  try {
    let download: BillDownload;
    try {
      const target: BillDownloadRequest = {
        channel: request.channel,
        url: request.url,
        path: temp.path,
        maxFileBytes: BILL_LIMITS.maxFileBytes,
        idleTimeoutMs: request.idleTimeoutMs,
      };
      if (request.headers) target.headers = request.headers;
      download = await downloadBillFile(target);
    } catch (error) {
      if (error instanceof HttpTransportError) throw request.unavailable(error.message, error);
      throw error;
    }
    if (download.status !== 200 || !("sha1" in download)) {
      throw request.unavailable(`HTTP ${download.status}`, undefined, "body" in download ? download.body : undefined);
    }
    if (request.sha1 !== undefined) checkSha1(request.channel, download.sha1, request.sha1);
    return billFileOf({ channel: request.channel, billDate: request.billDate, path: temp.path, read: request.read, remove: temp.remove });
  } catch (error) {
    await temp.remove();
    throw error;
  }
}

/** The {@link BillFile} of a day without a bill: no records, nothing to remove. */
export function emptyBillFile(channel: ChannelName, billDate: string): BillFile {
  return billFileOf({ channel, billDate, read: emptyRecords });
}
