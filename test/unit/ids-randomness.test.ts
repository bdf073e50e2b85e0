/**
 * The random part of ids and trade numbers: all 80 bits are random, so every base32 character
 * turns up at every one of its 16 positions (a slip in the bit arithmetic fixes some of them).
 */
import { describe, expect, it } from "vitest";
import { newId, newTradeNo } from "../../src/ids.js";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function charactersSeenPerPosition(randomParts: string[]): number[] {
  const seen = Array.from({ length: 16 }, () => new Set<string>());
  for (const part of randomParts) for (let i = 0; i < 16; i++) seen[i]!.add(part[i]!);
  return seen.map((set) => set.size);
}

describe("random part of ids", () => {
  it("uses every base32 character at every position of an id", () => {
    const parts = Array.from({ length: 20_000 }, () => newId().slice(10));
    expect(parts.every((part) => /^[0-9A-HJKMNP-TV-Z]{16}$/.test(part))).toBe(true);
    expect(charactersSeenPerPosition(parts)).toEqual(Array(16).fill(ALPHABET.length));
  });

  it("uses every base32 character at every position of a trade number", () => {
    const parts = Array.from({ length: 20_000 }, () => newTradeNo("P").slice(15));
    expect(charactersSeenPerPosition(parts)).toEqual(Array(16).fill(ALPHABET.length));
  });

  it("stamps trade numbers with the given second, also when the second changes between calls", () => {
    expect(newTradeNo("P", new Date("2026-11-22T08:30:00.999Z")).slice(0, 15)).toBe("P20261122083000");
    expect(newTradeNo("R", new Date("2026-11-22T08:30:01.000Z")).slice(0, 15)).toBe("R20261122083001");
    expect(newTradeNo("P", new Date("2026-11-22T08:30:00.000Z")).slice(0, 15)).toBe("P20261122083000");
  });
});
