/**
 * File formats channels use for bills: zip archives and GBK text. Node decodes GBK but cannot
 * encode it, so the encoder table is built once by decoding every GBK double-byte code.
 */
import { TextDecoder } from "node:util";
import { crc32, deflateRawSync } from "node:zlib";

let gbkTable: Map<string, Buffer> | undefined;

function buildGbkTable(): Map<string, Buffer> {
  const decoder = new TextDecoder("gbk", { fatal: true });
  const table = new Map<string, Buffer>();
  for (let lead = 0x81; lead <= 0xfe; lead++) {
    for (let trail = 0x40; trail <= 0xfe; trail++) {
      if (trail === 0x7f) continue;
      const bytes = Buffer.from([lead, trail]);
      let char: string;
      try {
        char = decoder.decode(bytes);
      } catch {
        continue;
      }
      if (char.length > 0 && !table.has(char)) table.set(char, bytes);
    }
  }
  return table;
}

/** Encodes text as GBK; characters GBK lacks become `?`. */
export function encodeGbk(text: string): Buffer {
  gbkTable ??= buildGbkTable();
  const parts: Buffer[] = [];
  let ascii = "";
  for (const char of text) {
    if (char.charCodeAt(0) < 0x80) {
      ascii += char;
      continue;
    }
    if (ascii) {
      parts.push(Buffer.from(ascii, "latin1"));
      ascii = "";
    }
    parts.push(gbkTable.get(char) ?? Buffer.from("?"));
  }
  if (ascii) parts.push(Buffer.from(ascii, "latin1"));
  return Buffer.concat(parts);
}

/** A file to put in a zip archive; `name` bytes are written as given (e.g. GBK, as Alipay does). */
export interface ZipFileInput {
  name: Buffer;
  data: Buffer;
  modifiedAt: Date;
}

function dosDateTime(date: Date): { time: number; date: number } {
  return {
    time: (date.getHours() << 11) | (date.getMinutes() << 5) | Math.floor(date.getSeconds() / 2),
    date: ((Math.max(date.getFullYear(), 1980) - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  };
}

/** Builds a deflated zip archive (no ZIP64; the files here are small). */
export function buildZip(files: readonly ZipFileInput[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const file of files) {
    const compressed = deflateRawSync(file.data);
    const checksum = crc32(file.data);
    const stamp = dosDateTime(file.modifiedAt);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt16LE(stamp.time, 10);
    local.writeUInt16LE(stamp.date, 12);
    local.writeUInt32LE(checksum, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(file.data.length, 22);
    local.writeUInt16LE(file.name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, file.name, compressed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(stamp.time, 12);
    central.writeUInt16LE(stamp.date, 14);
    central.writeUInt32LE(checksum, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(file.data.length, 24);
    central.writeUInt16LE(file.name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, file.name);
    offset += local.length + file.name.length + compressed.length;
  }
  const centralDirectory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(centralDirectory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, centralDirectory, end]);
}
