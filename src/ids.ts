/**
 * Time-ordered unique ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32).
 * Sorting by id sorts by creation time, inserts append to the primary-key index instead of
 * landing on a hot spot, and no coordination is needed across replicas.
 */
import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function encodeTime(ms: number): string {
  let out = "";
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[rest % 32]! + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

function encodeRandom(bytes: Buffer): string {
  // 80 bits → 16 base32 characters, 5 bits at a time.
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let out = "";
  for (let i = 0; i < 16; i++) {
    out = ALPHABET[Number(value & 31n)]! + out;
    value >>= 5n;
  }
  return out;
}

/** A new 26-character ULID. */
export function newId(now: number = Date.now()): string {
  return encodeTime(now) + encodeRandom(randomBytes(10));
}

/**
 * A readable, unique payment number for channels' `out_trade_no` (at most 32 characters of
 * `[0-9A-Za-z]`): `P` + UTC date-time to the second + 16 random base32 characters. Unlike
 * "timestamp + 4 random digits" it does not collide under load (80 random bits per second).
 */
export function newTradeNo(prefix: "P" | "R", now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/\D/g, "").slice(0, 14);
  return `${prefix}${stamp}${encodeRandom(randomBytes(10))}`;
}
