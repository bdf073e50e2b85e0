import { describe, expect, it } from "vitest";
import { TokenBucketLimiter } from "../../src/rpc/rate-limiter.js";

function clock() {
  let now = 1_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("TokenBucketLimiter", () => {
  it("allows a burst, then refuses with the time until the next token", () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 5, burst: 5, now: time.now });
    for (let i = 0; i < 5; i++) expect(limiter.take("m1")).toBe(0);
    expect(limiter.take("m1")).toBe(200);
    expect(limiter.peek("m1")).toBe(200);
    time.advance(150);
    expect(limiter.take("m1")).toBe(50);
    time.advance(50);
    expect(limiter.peek("m1")).toBe(0);
    expect(limiter.take("m1")).toBe(0);
    expect(limiter.take("m1")).toBeGreaterThan(0);
  });

  it("keeps one bucket per key", () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 2, now: time.now });
    limiter.take("a");
    limiter.take("a");
    expect(limiter.take("a")).toBeGreaterThan(0);
    expect(limiter.take("b")).toBe(0);
  });

  it("refills no further than the burst", () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 3, now: time.now });
    limiter.take("m");
    time.advance(60_000);
    for (let i = 0; i < 3; i++) expect(limiter.take("m")).toBe(0);
    expect(limiter.take("m")).toBeGreaterThan(0);
  });

  it("never holds more than maxBuckets buckets, dropping the least recently used", () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1, maxBuckets: 3, now: time.now });
    for (const key of ["a", "b", "c"]) limiter.take(key);
    limiter.take("a"); // a is now the most recently used
    for (let i = 0; i < 1000; i++) {
      limiter.take(`flood-${i}`);
      expect(limiter.size).toBeLessThanOrEqual(3);
    }
    expect(limiter.size).toBe(3);
  });

  it("forgets buckets idle long enough to be full again", () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 20, now: time.now });
    for (let i = 0; i < 100; i++) limiter.take(`m${i}`);
    expect(limiter.size).toBe(100);
    time.advance(2_000); // 20 tokens at 10 a second: every bucket is full again
    // Each call drops up to two idle buckets (oldest first): 50 calls drop all 100.
    for (let i = 0; i < 50; i++) limiter.take("active");
    expect(limiter.size).toBe(1);
    // A dropped bucket was full, so its key starts again with a full burst: nothing changed for it.
    for (let i = 0; i < 20; i++) expect(limiter.take("m7")).toBe(0);
    expect(limiter.take("m7")).toBeGreaterThan(0);
  });

  it("refuses nonsense limits", () => {
    expect(() => new TokenBucketLimiter({ perSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new TokenBucketLimiter({ perSecond: 1, burst: 0 })).toThrow(RangeError);
  });
});
