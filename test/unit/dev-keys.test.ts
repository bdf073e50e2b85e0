import { execFile } from "node:child_process";
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { DEV_KEYS_FILE_NAME, loadOrCreateDevChannelKeys } from "../../src/channels/dev-keys.js";

const run = promisify(execFile);
const devKeysModule = fileURLToPath(new URL("../../src/channels/dev-keys.ts", import.meta.url));
const directories: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dev-keys-"));
  directories.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of directories.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe("loadOrCreateDevChannelKeys", () => {
  it("generates matching key pairs and well-formed ids once, then reads the same file back", () => {
    const dir = path.join(tempDir(), "nested");
    const keys = loadOrCreateDevChannelKeys(dir);
    const file = path.join(dir, DEV_KEYS_FILE_NAME);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(loadOrCreateDevChannelKeys(dir)).toEqual(keys);
    expect(fs.readdirSync(dir)).toEqual([DEV_KEYS_FILE_NAME]);

    for (const [privatePem, publicPem] of [
      [keys.alipay.appPrivateKeyPem, keys.alipay.appPublicKeyPem],
      [keys.alipay.alipayPrivateKeyPem, keys.alipay.alipayPublicKeyPem],
      [keys.wechatpay.mchPrivateKeyPem, keys.wechatpay.mchPublicKeyPem],
      [keys.wechatpay.platformPrivateKeyPem, keys.wechatpay.platformPublicKeyPem],
    ] as const) {
      const publicKey = createPublicKey(publicPem);
      expect(publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      expect(verify("sha256", Buffer.from("x"), publicKey, sign("sha256", Buffer.from("x"), createPrivateKey(privatePem)))).toBe(true);
    }
    expect(keys.alipay.appId).toMatch(/^\d{16}$/);
    expect(keys.alipay.sellerId).toMatch(/^2088\d{12}$/);
    expect(keys.wechatpay.publicKeyId).toMatch(/^PUB_KEY_ID_\d+$/);
    expect(keys.wechatpay.apiV3Key).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(keys.wechatpay.mchSerialNo).toMatch(/^[0-9A-F]{40}$/);
    expect(keys.card.secretKey).toMatch(/^sk_test_/);
    expect(keys.card.webhookSecret).toMatch(/^whsec_/);
  });

  it("gives every process the same keys when several start at once", async () => {
    const dir = tempDir();
    const script = path.join(dir, "load.ts");
    fs.writeFileSync(
      script,
      `import { loadOrCreateDevChannelKeys } from ${JSON.stringify(devKeysModule)};\n` +
        `console.log(loadOrCreateDevChannelKeys(${JSON.stringify(path.join(dir, "data"))}).alipay.appId);\n`,
    );
    const outputs = await Promise.all(Array.from({ length: 4 }, () => run(process.execPath, ["--import", "tsx", script])));
    const stored = JSON.parse(fs.readFileSync(path.join(dir, "data", DEV_KEYS_FILE_NAME), "utf8"));
    for (const { stdout } of outputs) expect(stdout.trim()).toBe(stored.alipay.appId);
    expect(fs.readdirSync(path.join(dir, "data"))).toEqual([DEV_KEYS_FILE_NAME]);
  });

  it("refuses a damaged file instead of silently replacing keys other processes use", () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, DEV_KEYS_FILE_NAME), JSON.stringify({ alipay: { appId: "1" } }));
    expect(() => loadOrCreateDevChannelKeys(dir)).toThrow(/lacks alipay\.sellerId; delete it/);
    fs.writeFileSync(path.join(dir, DEV_KEYS_FILE_NAME), "{");
    expect(() => loadOrCreateDevChannelKeys(dir)).toThrow(/not valid JSON/);
  });
});
