/**
 * Time-ordered unique ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32).
 * Sorting by id sorts by creation time, inserts append to the primary-key index instead of
 * landing on a hot spot, and no coordination is needed across replicas.
 */
import { randomFillSync } from "node:crypto";

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

// Random bytes are drawn from the CSPRNG a pool at a time (each byte used once): one
// randomBytes(10) per id was a measurable part of a create, which makes five ids.
const RANDOM_POOL_BYTES = 1000;
const randomPool = Buffer.allocUnsafe(RANDOM_POOL_BYTES);
let randomOffset = RANDOM_POOL_BYTES;

/** 40 bits (5 bytes at `at`) → 8 base32 characters, most significant first. */
function encode40(bytes: Uint8Array, at: number): string {
  // Below 2^53, so plain numbers are exact; no BigInt needed.
  const low32 = ((bytes[at + 1]! << 24) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!) >>> 0;
  let value = bytes[at]! * 2 ** 32 + low32;
  let out = "";
  for (let i = 0; i < 8; i++) {
    out = ALPHABET[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/** 80 fresh random bits as 16 base32 characters. */
function randomPart(): string {
  if (randomOffset + 10 > RANDOM_POOL_BYTES) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const at = randomOffset;
  randomOffset += 10;
  return encode40(randomPool, at) + encode40(randomPool, at + 5);
}

/** A new 26-character ULID. */
export function newId(now: number = Date.now()): string {
  return encodeTime(now) + randomPart();
}

let stampSecond = Number.NaN;
let stampText = "";

/** `yyyyMMddHHmmss` in UTC, computed once per second. */
function utcStamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== stampSecond) {
    stampText = new Date(second * 1000).toISOString().replace(/\D/g, "").slice(0, 14);
    stampSecond = second;
  }
  return stampText;
}

/**
 * A readable, unique payment number for channels' `out_trade_no` (at most 32 characters of
 * `[0-9A-Za-z]`): `P` (payments; `R` refunds, `S` settlement orders, `T` payouts) + UTC date-time to the second + 16 random base32 characters. Unlike
 * "timestamp + 4 random digits" it does not collide under load (80 random bits per second).
 */
export function newTradeNo(prefix: "P" | "R" | "S" | "T", now: Date = new Date()): string {
  return `${prefix}${utcStamp(now.getTime())}${randomPart()}`;
}
