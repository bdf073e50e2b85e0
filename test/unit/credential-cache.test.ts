/**
 * The API-key cache's rules without a database: entries are trusted only for the TTL, failures are
 * never kept, the size is capped, 0 turns it off, and a rotation on this replica wins over a lookup
 * that was already under way.
 */
import { describe, expect, it } from "vitest";
import { CredentialCache } from "../../src/merchants/credential-cache.js";

function counter(found: { value: string; merchantId: string } | undefined) {
  const loader = async () => {
    loader.calls++;
    return found;
  };
  loader.calls = 0;
  return loader;
}

describe("CredentialCache", () => {
  it("answers from the cache within the TTL and reads again once it has passed", async () => {
    let now = 1_000;
    const cache = new CredentialCache<string>({ ttlMs: 100, now: () => now });
    const load = counter({ value: "m1", merchantId: "m1" });
    expect(await cache.get("k", load)).toBe("m1");
    now += 99;
    expect(await cache.get("k", load)).toBe("m1");
    expect(load.calls).toBe(1);
    now += 1;
    expect(await cache.get("k", load)).toBe("m1");
    expect(load.calls).toBe(2);
  });

  it("never keeps a failed lookup: an unknown key is read every time", async () => {
    const cache = new CredentialCache<string>({ ttlMs: 60_000 });
    const unknown = counter(undefined);
    expect(await cache.get("k", unknown)).toBeUndefined();
    expect(await cache.get("k", unknown)).toBeUndefined();
    expect(unknown.calls).toBe(2);
    expect(cache.size).toBe(0);
    // The same key starting to work is seen at once.
    expect(await cache.get("k", counter({ value: "m1", merchantId: "m1" }))).toBe("m1");
  });

  it("keeps at most maxEntries keys, pushing out the oldest", async () => {
    const cache = new CredentialCache<string>({ ttlMs: 60_000, maxEntries: 3 });
    for (let i = 0; i < 10; i++) await cache.get(`k${i}`, counter({ value: `m${i}`, merchantId: `m${i}` }));
    expect(cache.size).toBe(3);
    const oldest = counter({ value: "m0", merchantId: "m0" });
    await cache.get("k0", oldest);
    expect(oldest.calls).toBe(1);
    const newest = counter({ value: "m9", merchantId: "m9" });
    await cache.get("k9", newest);
    expect(newest.calls).toBe(0);
    expect(cache.size).toBe(3);
  });

  it("with a TTL of 0 reads on every lookup and holds nothing", async () => {
    const cache = new CredentialCache<string>({ ttlMs: 0 });
    const load = counter({ value: "m1", merchantId: "m1" });
    await cache.get("k", load);
    await cache.get("k", load);
    expect(load.calls).toBe(2);
    expect(cache.size).toBe(0);
  });

  it("forgets a merchant's keys, and does not store a lookup that was under way when it did", async () => {
    const cache = new CredentialCache<string>({ ttlMs: 60_000 });
    await cache.get("old", counter({ value: "m1", merchantId: "m1" }));
    await cache.get("other", counter({ value: "m2", merchantId: "m2" }));
    cache.forgetMerchant("m1");
    expect(cache.size).toBe(1);

    let finish!: (found: { value: string; merchantId: string }) => void;
    const pending = cache.get("old", () => new Promise((resolve) => (finish = resolve)));
    cache.forgetMerchant("m1");
    finish({ value: "m1", merchantId: "m1" });
    expect(await pending).toBe("m1");
    const reread = counter(undefined);
    expect(await cache.get("old", reread)).toBeUndefined();
    expect(reread.calls).toBe(1);
  });

  it("refuses a negative TTL and an empty capacity", () => {
    expect(() => new CredentialCache({ ttlMs: -1 })).toThrow(/ttlMs/);
    expect(() => new CredentialCache({ ttlMs: 10, maxEntries: 0 })).toThrow(/maxEntries/);
  });
});
