/**
 * The webhook signature contract: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`,
 * one `v1` per signing secret, checked against an HMAC computed independently here and against
 * the verification snippet merchants copy from the README (examples/verify-webhook.mjs).
 */
import { createHmac } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { endpointOf } from "../../src/webhooks/webhook-dispatcher.js";
import { signatureHeader } from "../../src/webhooks/webhook-signature.js";

const VERIFY_SNIPPET = "../../examples/verify-webhook.mjs";
type Verify = (rawBody: Buffer | string, header: string, secret: string, toleranceSeconds?: number, nowSeconds?: number) => boolean;
let verifyWebhook: Verify;
beforeAll(async () => {
  verifyWebhook = ((await import(VERIFY_SNIPPET)) as { verifyWebhook: Verify }).verifyWebhook;
});

const body = Buffer.from('{"id":"01JEVENT","type":"payment.succeeded","data":{"note":"né"}}', "utf8");

describe("webhook signature", () => {
  it("is t, then a hex HMAC-SHA256 of '<t>.<raw body>' per secret, new secret first", () => {
    const header = signatureHeader(body, ["whsec_new", "whsec_old"], 1_796_000_000.9);
    const expected = (secret: string) => createHmac("sha256", secret).update(Buffer.concat([Buffer.from("1796000000."), body])).digest("hex");
    expect(header).toBe(`t=1796000000,v1=${expected("whsec_new")},v1=${expected("whsec_old")}`);
  });

  it("verifies with the README snippet within 5 minutes, with either v1, and not otherwise", () => {
    const header = signatureHeader(body, ["whsec_new", "whsec_old"], 1_796_000_000);
    expect(verifyWebhook(body, header, "whsec_new", 300, 1_796_000_100)).toBe(true);
    expect(verifyWebhook(body, header, "whsec_old", 300, 1_796_000_100)).toBe(true);
    expect(verifyWebhook(body, header, "whsec_other", 300, 1_796_000_100)).toBe(false);
    expect(verifyWebhook(body, header, "whsec_new", 300, 1_796_000_301)).toBe(false);
    expect(verifyWebhook(body, header, "whsec_new", 300, 1_795_999_699)).toBe(false);
    expect(verifyWebhook(Buffer.from(body.toString("utf8").replace("né", "ne")), header, "whsec_new", 300, 1_796_000_100)).toBe(false);
    expect(verifyWebhook(body, header.replace(/^t=\d+/, "t=1796000001"), "whsec_new", 300, 1_796_000_100)).toBe(false);
    expect(verifyWebhook(body, "", "whsec_new")).toBe(false);
    expect(verifyWebhook(body, "t=1796000000,v1=zz", "whsec_new", 300, 1_796_000_000)).toBe(false);
  });
});

describe("webhook endpoints", () => {
  it("are scheme, host and port, the default port spelled out", () => {
    expect(endpointOf("https://shop.example/hooks?a=1")).toBe("https://shop.example:443");
    expect(endpointOf("http://shop.example/a")).toBe("http://shop.example:80");
    expect(endpointOf("http://127.0.0.1:8080/a")).toBe("http://127.0.0.1:8080");
    expect(endpointOf("https://SHOP.example:8443/b")).toBe(endpointOf("https://shop.example:8443/c"));
  });
});

describe("webhook settings", () => {
  it("refuse an overlap past 7 days, and other unbounded values", () => {
    expect(loadConfig({ WEBHOOK_SECRET_OVERLAP_SECONDS: "604800" }).webhooks.secretOverlapSeconds).toBe(604_800);
    expect(() => loadConfig({ WEBHOOK_SECRET_OVERLAP_SECONDS: "604801" })).toThrow(/WEBHOOK_SECRET_OVERLAP_SECONDS/);
    expect(() => loadConfig({ WEBHOOK_TIMEOUT_MS: "300001" })).toThrow(/WEBHOOK_TIMEOUT_MS/);
    expect(() => loadConfig({ WEBHOOK_MAX_IN_FLIGHT: "4097" })).toThrow(/WEBHOOK_MAX_IN_FLIGHT/);
    expect(() => loadConfig({ WEBHOOK_MAX_PER_ENDPOINT: "0" })).toThrow(/WEBHOOK_MAX_PER_ENDPOINT/);
    expect(loadConfig({ WEBHOOK_RETRY_SCHEDULE: "100ms,2s" }).webhooks.retryScheduleMs).toEqual([100, 2000]);
  });
});
