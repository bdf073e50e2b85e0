/** What the callback log keeps of a request: bounded excerpts, capped headers, redacted secrets. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  MAX_STORED_BODY_BYTES,
  redactFormText,
  redactJsonText,
  STORED_HEADER_NAMES,
  storedBody,
  storedHeaders,
  UNVERIFIED_EXCERPT_BYTES,
  UNVERIFIED_HEADERS_JSON_CHARS,
  utf8Prefix,
} from "../../src/callbacks/callback-record.js";

describe("utf8Prefix", () => {
  it("never splits a character, whatever its width", () => {
    for (const char of ["a", "é", "茶", "🍵"]) {
      const bytes = Buffer.from(char.repeat(600), "utf8");
      for (let limit = 500; limit < 520; limit++) {
        const prefix = utf8Prefix(bytes, limit);
        expect(prefix.length).toBeLessThanOrEqual(limit);
        expect(prefix.length).toBeGreaterThan(limit - Buffer.byteLength(char));
        expect(Buffer.from(prefix.toString("utf8"), "utf8").equals(prefix)).toBe(true);
      }
    }
  });
});

describe("storedBody", () => {
  it("keeps 512 bytes of an unverified body, with the hash and length of all of it", () => {
    const raw = Buffer.alloc(64 * 1024, "x");
    const stored = storedBody("card", raw, false);
    expect(stored.form).toBe("excerpt");
    expect(stored.body.length).toBe(UNVERIFIED_EXCERPT_BYTES);
    expect(stored.bytes).toBe(raw.length);
    expect(stored.sha256).toBe(createHash("sha256").update(raw).digest("hex"));
  });

  it("keeps a verified card event whole except its client_secret, bytes and number precision intact", () => {
    const event = `{"id":"evt_1","data":{"object":{"amount":123456789012345678901,"client_secret" : "pi_1_secret_abc","metadata":{"note":"a \\"quoted\\" _secret_ value"},"nested":{"webhook_secret":"whsec_x"}}}}`;
    const stored = storedBody("card", Buffer.from(event), true);
    expect(stored.form).toBe("redacted");
    expect(stored.body.toString()).toBe(
      `{"id":"evt_1","data":{"object":{"amount":123456789012345678901,"client_secret" : "[redacted]","metadata":{"note":"[redacted]"},"nested":{"webhook_secret":"[redacted]"}}}}`,
    );
    expect(stored.sha256).toBe(createHash("sha256").update(event).digest("hex"));
  });

  it("redacts an unverified excerpt too, even a secret cut in half", () => {
    const event = `{"id":"evt_1","client_secret":"pi_1_secret_${"k".repeat(600)}"}`;
    const stored = storedBody("card", Buffer.from(event), false);
    expect(stored.body.toString()).toBe(`{"id":"evt_1","client_secret":"[redacted]"`);
  });

  it("keeps at most 32 KiB of a verified body", () => {
    const stored = storedBody("wechatpay", Buffer.from(`{"pad":"${"y".repeat(40_000)}"}`), true);
    expect(stored.form).toBe("excerpt");
    expect(stored.body.length).toBeLessThanOrEqual(MAX_STORED_BODY_BYTES);
  });
});

describe("redaction", () => {
  it("replaces secret-named and client-secret-like values in a form body, nothing else", () => {
    expect(redactFormText("notify_id=n1&app_secret=abc&x=pi_1_secret_2&sign=SIG%2B%3D&total_amount=1.00")).toBe(
      "notify_id=n1&app_secret=%5Bredacted%5D&x=%5Bredacted%5D&sign=SIG%2B%3D&total_amount=1.00",
    );
  });

  it("reads names written with escapes, ends strings only at unescaped quotes, and redacts an unterminated secret", () => {
    const text = String.raw`{"client\u005fsecret":"abc","note":"say \"api_key\": x","id":"a\\","k":"v"}`;
    expect(redactJsonText(text)).toBe(String.raw`{"client\u005fsecret":"[redacted]","note":"say \"api_key\": x","id":"a\\","k":"v"}`);
    expect(redactJsonText('{"client_secret":"pi_1_sec')).toBe('{"client_secret":"[redacted]"');
    expect(redactJsonText('{"password": {"x": "y"}, "a": "b"}')).toBe('{"password": {"x": "y"}, "a": "b"}');
  });

  it("leaves JSON without secrets byte for byte", () => {
    const text = '{ "a" : [1, "two", {"b": null}], "sign":"c2ln" }';
    expect(redactJsonText(text)).toBe(text);
  });
});

describe("storedHeaders", () => {
  const headers = {
    authorization: "Bearer sk_live_123",
    cookie: "session=abc",
    "proxy-authorization": "Basic eA==",
    "content-type": "application/json",
    "x-junk": "z".repeat(10_000),
    "stripe-signature": `t=1,v1=${"a".repeat(5_000)}`,
    "wechatpay-signature": "s".repeat(5_000),
    "wechatpay-nonce": "n".repeat(5_000),
    "user-agent": "u".repeat(5_000),
  };

  it("keeps known names only, never credentials", () => {
    const kept = storedHeaders(headers, true);
    for (const name of Object.keys(kept)) expect(STORED_HEADER_NAMES).toContain(name);
    expect(kept).not.toHaveProperty("authorization");
    expect(kept).not.toHaveProperty("cookie");
    expect(kept).not.toHaveProperty("x-junk");
    expect(kept["stripe-signature"]?.length).toBe(1024);
  });

  it("caps an unverified request's headers at 1 KiB of JSON", () => {
    const kept = storedHeaders(headers, false);
    expect(JSON.stringify(kept).length).toBeLessThanOrEqual(UNVERIFIED_HEADERS_JSON_CHARS);
    expect(kept["content-type"]).toBe("application/json");
  });
});
