import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { newId, newTradeNo } from "../../src/ids.js";
import { SecretBox, hashApiKey, newApiKey, secretsEqual } from "../../src/merchants/credentials.js";

describe("ids", () => {
  it("are 26-character ULIDs that sort by creation time", () => {
    const a = newId(1_700_000_000_000);
    const b = newId(1_700_000_000_001);
    expect(a).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a < b).toBe(true);
  });

  it("do not collide in a burst within one millisecond", () => {
    const now = Date.now();
    const ids = new Set(Array.from({ length: 50_000 }, () => newId(now)));
    const tradeNos = new Set(Array.from({ length: 50_000 }, () => newTradeNo("P")));
    expect(ids.size).toBe(50_000);
    expect(tradeNos.size).toBe(50_000);
  });

  it("make readable trade numbers within channels' 32-character limit", () => {
    const no = newTradeNo("P", new Date("2026-11-22T08:30:00Z"));
    expect(no).toMatch(/^P20261122083000[0-9A-Z]{16}$/);
    expect(no.length).toBeLessThanOrEqual(32);
  });
});

describe("configuration", () => {
  it("uses documented defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ grpcPort: 50051, httpPort: 8080, host: "127.0.0.1", databaseUrl: undefined });
    expect(config.publicBaseUrl).toBe("http://127.0.0.1:8080");
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("names the variable that is wrong", () => {
    expect(() => loadConfig({ GRPC_PORT: "abc" })).toThrow(/GRPC_PORT/);
    expect(() => loadConfig({ DATABASE_URL: "postgres://x" })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: "mysql://root@localhost/db" })).toThrow(/ADMIN_TOKEN/);
    expect(() => loadConfig({ ALIPAY_APP_ID: "2021" })).toThrow(ConfigError);
    expect(() => loadConfig({ ALIPAY_APP_ID: "2021" })).toThrow(/ALIPAY_GATEWAY_URL/);
  });
});

describe("credentials", () => {
  it("store API keys only as a hash and compare secrets in constant time", () => {
    const key = newApiKey();
    expect(key).toMatch(/^sk_live_[0-9A-Za-z]{32}$/);
    expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(secretsEqual(key, key)).toBe(true);
    expect(secretsEqual(key, `${key}x`)).toBe(false);
  });

  it("seal webhook secrets so that a dump does not reveal them, and open them again", () => {
    const box = new SecretBox("k".repeat(32));
    const sealed = box.seal("whsec_abc");
    expect(sealed).not.toContain("whsec_abc");
    expect(box.open(sealed)).toBe("whsec_abc");
    expect(() => new SecretBox("other-key-other-key-other-key-xx").open(sealed)).toThrow();
  });
});
