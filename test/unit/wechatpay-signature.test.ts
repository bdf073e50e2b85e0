import { createCipheriv, generateKeyPairSync, type KeyObject, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  buildAuthorization,
  buildRequestSignMessage,
  buildResponseSignMessage,
  decryptResource,
  encryptResource,
  parseAuthorization,
  signWechatResponse,
  verifyAuthorization,
  verifyWechatSignature,
} from "../../src/channels/wechatpay/wechatpay-signature.js";

function rsaKeys(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("rsa", { modulusLength: 2048 });
}

const merchant = rsaKeys();
const platform = rsaKeys();
const otherKey = rsaKeys();
const PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000";
const API_V3_KEY = "abcdefghijklmnopqrstuvwxyz012345";
const NOW = new Date("2024-05-01T12:00:00Z");
const NOW_SECONDS = String(NOW.getTime() / 1000);

/** Lower-cased headers, as node:http delivers them. */
function lowerCase(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

function signedHeaders(body: string | Buffer, overrides: { timestamp?: string; nonce?: string } = {}): Record<string, string> {
  return lowerCase(
    signWechatResponse({
      body,
      privateKey: platform.privateKey,
      publicKeyId: PUBLIC_KEY_ID,
      timestamp: overrides.timestamp ?? NOW_SECONDS,
      nonce: overrides.nonce ?? "593BEC0C930BF1AFEB40B4A08C8FB242",
    }),
  );
}

function check(headers: Record<string, string>, body: string | Buffer, now = NOW) {
  return verifyWechatSignature({ headers, body, publicKey: platform.publicKey, publicKeyId: PUBLIC_KEY_ID, now });
}

describe("request signing", () => {
  it("signs METHOD, path with query, timestamp, nonce and body, each line ending in \\n", () => {
    expect(buildRequestSignMessage("POST", "/v3/pay/transactions/native", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", '{"a":1}')).toBe(
      'POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{"a":1}\n',
    );
  });

  it("keeps an empty line for the body of a GET", () => {
    expect(buildRequestSignMessage("GET", "/v3/pay/transactions/out-trade-no/P1?mchid=1900000001", "1", "N", "")).toBe(
      "GET\n/v3/pay/transactions/out-trade-no/P1?mchid=1900000001\n1\nN\n\n",
    );
  });

  it("builds the Authorization header whose signature verifies with the merchant public key", () => {
    const header = buildAuthorization({
      mchId: "1900000001",
      serialNo: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
      privateKey: merchant.privateKey,
      method: "POST",
      pathWithQuery: "/v3/refund/domestic/refunds",
      body: '{"out_refund_no":"R1"}',
      timestamp: "1554208460",
      nonce: "NONCE123",
    });
    expect(header).toMatch(
      /^WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="NONCE123",signature="[A-Za-z0-9+/]+=*",timestamp="1554208460",serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"$/,
    );
    const parsed = parseAuthorization(header);
    expect(parsed).toMatchObject({ mchid: "1900000001", nonceStr: "NONCE123", timestamp: "1554208460" });
    const message = 'POST\n/v3/refund/domestic/refunds\n1554208460\nNONCE123\n{"out_refund_no":"R1"}\n';
    expect(verify("sha256", Buffer.from(message), merchant.publicKey, Buffer.from(parsed!.signature, "base64"))).toBe(true);
  });

  it("lets WeChat's side verify the header, and rejects another path, body or mchid", () => {
    const input = { mchId: "1900000001", serialNo: "SERIAL", privateKey: merchant.privateKey, method: "GET", pathWithQuery: "/v3/x?a=1", body: "" };
    const header = buildAuthorization({ ...input, timestamp: NOW_SECONDS });
    const base = { header, method: "GET", pathWithQuery: "/v3/x?a=1", body: "", publicKey: merchant.publicKey, mchId: "1900000001", serialNo: "SERIAL", now: NOW };
    expect(verifyAuthorization(base).ok).toBe(true);
    expect(verifyAuthorization({ ...base, pathWithQuery: "/v3/x?a=2" })).toEqual({ ok: false, reason: "bad_signature" });
    expect(verifyAuthorization({ ...base, body: "{}" })).toEqual({ ok: false, reason: "bad_signature" });
    expect(verifyAuthorization({ ...base, mchId: "1900000002" })).toEqual({ ok: false, reason: "mchid_mismatch" });
    expect(verifyAuthorization({ ...base, serialNo: "OTHER" })).toEqual({ ok: false, reason: "unknown_serial" });
    expect(verifyAuthorization({ ...base, header: "Bearer x" })).toEqual({ ok: false, reason: "missing_headers" });
  });
});

describe("response and callback signature verification", () => {
  const body = '{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}';

  it("accepts a body signed by the WeChat Pay key with our public key id", () => {
    expect(check(signedHeaders(body), body)).toEqual({ ok: true });
  });

  it("verifies the raw bytes, including bytes that are not valid UTF-8", () => {
    const raw = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    expect(check(signedHeaders(raw), raw)).toEqual({ ok: true });
    expect(check(signedHeaders(raw), raw.toString("utf8"))).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("rejects a tampered body, timestamp or nonce", () => {
    const headers = signedHeaders(body);
    expect(check(headers, body.replace("abc", "abd"))).toEqual({ ok: false, reason: "bad_signature" });
    expect(check(headers, `${body} `)).toEqual({ ok: false, reason: "bad_signature" });
    expect(check({ ...headers, "wechatpay-timestamp": String(Number(NOW_SECONDS) + 1) }, body)).toEqual({ ok: false, reason: "bad_signature" });
    expect(check({ ...headers, "wechatpay-nonce": "593BEC0C930BF1AFEB40B4A08C8FB243" }, body)).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("rejects a signature by another key", () => {
    const headers = lowerCase(signWechatResponse({ body, privateKey: otherKey.privateKey, publicKeyId: PUBLIC_KEY_ID, timestamp: NOW_SECONDS }));
    expect(check(headers, body)).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("rejects timestamps more than 5 minutes off, either way", () => {
    const headers = signedHeaders(body);
    expect(check(headers, body, new Date(NOW.getTime() + 299_000))).toEqual({ ok: true });
    expect(check(headers, body, new Date(NOW.getTime() + 301_000))).toEqual({ ok: false, reason: "stale_timestamp" });
    expect(check(headers, body, new Date(NOW.getTime() - 301_000))).toEqual({ ok: false, reason: "stale_timestamp" });
    expect(check(signedHeaders(body, { timestamp: "soon" }), body)).toEqual({ ok: false, reason: "stale_timestamp" });
  });

  it("rejects a serial other than the configured public key id", () => {
    expect(check({ ...signedHeaders(body), "wechatpay-serial": "PUB_KEY_ID_OTHER" }, body)).toEqual({ ok: false, reason: "unknown_serial" });
  });

  it("returns a reason, never throws, on missing or garbage headers", () => {
    const headers = signedHeaders(body);
    const { "wechatpay-signature": _dropped, ...withoutSignature } = headers;
    expect(check(withoutSignature, body)).toEqual({ ok: false, reason: "missing_headers" });
    expect(check({}, body)).toEqual({ ok: false, reason: "missing_headers" });
    expect(check({ ...headers, "wechatpay-signature": "%%% not base64 %%%" }, body)).toEqual({ ok: false, reason: "bad_signature" });
    expect(check({ ...headers, "wechatpay-signature": "WECHATPAY/SIGNTEST/abc=" }, body)).toEqual({ ok: false, reason: "bad_signature" });
    expect(check({ ...headers, "wechatpay-signature": "AAAA" }, body)).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("signs exactly timestamp, nonce and body, each followed by \\n", () => {
    expect(buildResponseSignMessage("1", "N", "{}").toString()).toBe("1\nN\n{}\n");
  });
});

describe("AEAD_AES_256_GCM resources", () => {
  const plaintext = JSON.stringify({ mchid: "1900000001", out_trade_no: "P1", amount: { total: 100 } });

  it("round-trips through encryptResource and decryptResource", () => {
    const resource = encryptResource(plaintext, API_V3_KEY, { associatedData: "transaction", originalType: "transaction" });
    expect(resource).toMatchObject({ algorithm: "AEAD_AES_256_GCM", associated_data: "transaction", original_type: "transaction" });
    expect(resource.nonce).toMatch(/^[A-Za-z0-9]{12}$/);
    expect(decryptResource(resource, API_V3_KEY)).toBe(plaintext);
  });

  it("matches plain AES-256-GCM with ciphertext followed by the 16-byte tag", () => {
    const resource = encryptResource(plaintext, API_V3_KEY, { associatedData: "refund", nonce: "fdasflkja484" });
    const cipher = createCipheriv("aes-256-gcm", Buffer.from(API_V3_KEY), Buffer.from("fdasflkja484"));
    cipher.setAAD(Buffer.from("refund"));
    const expected = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
    expect(resource.ciphertext).toBe(expected.toString("base64"));
  });

  it("detects a wrong associated data, a flipped tag, altered ciphertext and a wrong key", () => {
    const resource = encryptResource(plaintext, API_V3_KEY, { associatedData: "transaction" });
    expect(() => decryptResource({ ...resource, associated_data: "refund" }, API_V3_KEY)).toThrow(/does not authenticate/);
    const sealed = Buffer.from(resource.ciphertext, "base64");
    const flippedTag = Buffer.from(sealed);
    flippedTag[flippedTag.length - 1] = (flippedTag[flippedTag.length - 1] as number) ^ 0x01;
    expect(() => decryptResource({ ...resource, ciphertext: flippedTag.toString("base64") }, API_V3_KEY)).toThrow(/does not authenticate/);
    const flippedBody = Buffer.from(sealed);
    flippedBody[0] = (flippedBody[0] as number) ^ 0x80;
    expect(() => decryptResource({ ...resource, ciphertext: flippedBody.toString("base64") }, API_V3_KEY)).toThrow(/does not authenticate/);
    expect(() => decryptResource(resource, "0123456789abcdef0123456789abcdef")).toThrow(/does not authenticate/);
  });

  it("rejects malformed input and keys that are not 32 bytes, without echoing the key", () => {
    expect(() => decryptResource({ ciphertext: "AAAA", nonce: "123456789012" }, API_V3_KEY)).toThrow(/shorter than its authentication tag/);
    expect(() => decryptResource({ ciphertext: "***", nonce: "123456789012" }, API_V3_KEY)).toThrow(/malformed/);
    expect(() => encryptResource(plaintext, "short-key")).toThrow(/exactly 32 bytes/);
    try {
      decryptResource({ ciphertext: "AAAA", nonce: "n" }, "secret-but-too-short");
    } catch (error) {
      expect((error as Error).message).not.toContain("secret-but-too-short");
    }
  });
});
