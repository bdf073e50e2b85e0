import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  computeCardWebhookSignature,
  signCardWebhook,
  verifyCardWebhookSignature,
} from "../../src/channels/card/card-webhook-signature.js";

const SECRET = "whsec_test_secret_for_unit_tests";
const OTHER_SECRET = "whsec_some_other_secret";
const T = 1_767_225_600; // 2026-01-01T00:00:00Z
const BODY = Buffer.from('{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"amount":1999}}}');

function at(seconds: number) {
  return { now: () => seconds * 1000 };
}

describe("card webhook signature", () => {
  it("signs HMAC-SHA256 over \"<t>.<raw body>\" as lower-case hex", () => {
    const expected = createHmac("sha256", SECRET).update(`${T}.${BODY.toString("utf8")}`).digest("hex");
    expect(computeCardWebhookSignature(SECRET, BODY, T)).toBe(expected);
    expect(signCardWebhook(SECRET, BODY, T)).toBe(`t=${T},v1=${expected}`);
  });

  it("accepts a header it signed, at the same time", () => {
    expect(verifyCardWebhookSignature(SECRET, BODY, signCardWebhook(SECRET, BODY, T), at(T))).toEqual({ ok: true, timestamp: T });
  });

  it("accepts when one of several v1 signatures matches (secret rotation), in any position", () => {
    const good = computeCardWebhookSignature(SECRET, BODY, T);
    const other = computeCardWebhookSignature(OTHER_SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, `t=${T},v1=${other},v1=${good}`, at(T)).ok).toBe(true);
    expect(verifyCardWebhookSignature(SECRET, BODY, `t=${T},v1=${good},v1=${other}`, at(T)).ok).toBe(true);
  });

  it("ignores other schemes such as v0 and tolerates spaces around elements", () => {
    const good = computeCardWebhookSignature(SECRET, BODY, T);
    const header = `t=${T}, v0=${"ab".repeat(32)}, v1=${good}`;
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T)).ok).toBe(true);
  });

  it("accepts an upper-case hex signature", () => {
    const good = computeCardWebhookSignature(SECRET, BODY, T).toUpperCase();
    expect(verifyCardWebhookSignature(SECRET, BODY, `t=${T},v1=${good}`, at(T)).ok).toBe(true);
  });

  it("rejects a tampered body", () => {
    const header = signCardWebhook(SECRET, BODY, T);
    const tampered = Buffer.from(BODY.toString("utf8").replace("1999", "1"));
    expect(verifyCardWebhookSignature(SECRET, tampered, header, at(T))).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("rejects a signature made with another secret", () => {
    const header = signCardWebhook(OTHER_SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T))).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("rejects a signature whose t was changed after signing", () => {
    const good = computeCardWebhookSignature(SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, `t=${T + 1},v1=${good}`, at(T))).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("verifies over the raw bytes, not a re-decoded string", () => {
    const latin1 = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]); // {"a":"é"} in Latin-1: invalid UTF-8
    const header = signCardWebhook(SECRET, latin1, T);
    expect(verifyCardWebhookSignature(SECRET, latin1, header, at(T)).ok).toBe(true);
    expect(verifyCardWebhookSignature(SECRET, Buffer.from(latin1.toString("utf8")), header, at(T)).ok).toBe(false);
  });

  it("accepts t exactly 300 s away either way", () => {
    const header = signCardWebhook(SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T + 300)).ok).toBe(true);
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T - 300)).ok).toBe(true);
  });

  it("rejects a stale t more than 300 s old", () => {
    const header = signCardWebhook(SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T + 301))).toEqual({ ok: false, reason: "stale_timestamp" });
  });

  it("rejects a t more than 300 s in the future", () => {
    const header = signCardWebhook(SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T - 301))).toEqual({ ok: false, reason: "stale_timestamp" });
  });

  it("reports a forged old event as a bad signature, not as stale", () => {
    const header = signCardWebhook(OTHER_SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T + 10_000))).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("honours a custom tolerance", () => {
    const header = signCardWebhook(SECRET, BODY, T);
    expect(verifyCardWebhookSignature(SECRET, BODY, header, { ...at(T + 61), toleranceSeconds: 60 }).ok).toBe(false);
  });

  it("reports a missing or blank header as missing_signature", () => {
    expect(verifyCardWebhookSignature(SECRET, BODY, undefined, at(T))).toEqual({ ok: false, reason: "missing_signature" });
    expect(verifyCardWebhookSignature(SECRET, BODY, "  ", at(T))).toEqual({ ok: false, reason: "missing_signature" });
  });

  const good = computeCardWebhookSignature(SECRET, BODY, T);
  it.each([
    ["no t", `v1=${good}`],
    ["no v1", `t=${T}`],
    ["only v0", `t=${T},v0=${good}`],
    ["t not a number", `t=abc,v1=${good}`],
    ["negative t", `t=-${T},v1=${good}`],
    ["fractional t", `t=${T}.5,v1=${good}`],
    ["two different t", `t=${T},t=${T + 1},v1=${good}`],
    ["v1 not hex", `t=${T},v1=${"zz".repeat(32)}`],
    ["v1 too short", `t=${T},v1=${good.slice(0, 62)}`],
    ["v1 too long", `t=${T},v1=${good}00`],
    ["v1 empty", `t=${T},v1=`],
    ["no equals signs", "garbage"],
    ["only commas", ",,,"],
    ["binary junk", "\u0000\u00ff=\u0001,=,=="],
  ])("rejects a malformed header (%s) as bad_signature without throwing", (_name, header) => {
    expect(verifyCardWebhookSignature(SECRET, BODY, header, at(T))).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("skips a malformed v1 but still accepts a valid one beside it", () => {
    expect(verifyCardWebhookSignature(SECRET, BODY, `t=${T},v1=xyz,v1=${good}`, at(T)).ok).toBe(true);
  });
});
