/**
 * Each channel is also served at the root of its own listener (`simulator.channelUrls`), where the
 * channel's clients, which know only a host and port, find the paths they use at the real channel;
 * a path a channel does not serve is answered in that channel's own error shape. The adapters work
 * unchanged against those roots (WeChat Pay's signature covers the path as sent, with no prefix).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAlipayChannel } from "../../src/channels/alipay/alipay-channel.js";
import { signRequestParams } from "../../src/channels/alipay/alipay-signature.js";
import { toAlipayTime } from "../../src/channels/alipay/alipay-time.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { createWechatPayChannel } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { billRecords } from "../support/bill-records.js";
import { testKeys } from "../support/test-app.js";

let simulator: Simulator;
let sequence = 0;
const paymentNo = () => `ROOT${Date.now()}${String(++sequence).padStart(4, "0")}`;

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: "channel-roots-test-control-token" });
});
afterAll(async () => {
  await simulator?.close();
  closeHttpAgents();
});

describe("each channel at its own root", () => {
  it("lists one loopback listener per channel, apart from the shared one, in the control API too", async () => {
    for (const channel of ["alipay", "wechatpay", "card"] as const) {
      const url = new URL(simulator.channelUrls[channel]);
      expect(url.hostname).toBe("127.0.0.1");
      expect(url.origin).not.toBe(new URL(simulator.url).origin);
    }
    const status = await fetch(`${simulator.url}/simulator`, { headers: { authorization: "Bearer channel-roots-test-control-token" } });
    expect(await status.json()).toMatchObject({ channelUrls: simulator.channelUrls });
  });

  it("Alipay: the adapter pays, queries and fetches the bill through <root>/gateway.do, downloading the bill from the link the root hands out", async () => {
    const keys = testKeys().alipay;
    const alipay = createAlipayChannel({
      gatewayUrl: `${simulator.channelUrls.alipay}/gateway.do`,
      appId: keys.appId,
      appPrivateKeyPem: keys.appPrivateKeyPem,
      alipayPublicKeyPem: keys.alipayPublicKeyPem,
      sellerId: keys.sellerId,
    });
    const no = paymentNo();
    const ref = { paymentNo: no, amountMinor: 1234n, currency: "CNY" };
    const created = await alipay.createPayment({ ...ref, subject: "root test", expiresAt: new Date(Date.now() + 600_000), notifyUrl: "http://127.0.0.1:9/none", idempotencyKey: no });
    expect(created.action.kind).toBe("qr_code_url");
    simulator.pay("alipay", no);
    expect((await alipay.queryPayment(ref)).state).toBe("succeeded");
    const bill = await billRecords(alipay.fetchBill(toAlipayTime(new Date()).slice(0, 10)));
    expect(bill.some((record) => record.paymentNo === no)).toBe(true);
  });

  it("Alipay: an unknown method is a signed error_response 40002 isv.invalid-method; an unknown path a plain 404", async () => {
    const keys = testKeys().alipay;
    const params: Record<string, string> = {
      app_id: keys.appId,
      method: "alipay.trade.nothing",
      charset: "utf-8",
      sign_type: "RSA2",
      timestamp: toAlipayTime(new Date()),
      version: "1.0",
      biz_content: "{}",
    };
    params.sign = signRequestParams(params, keys.appPrivateKeyPem);
    const answer = await fetch(`${simulator.channelUrls.alipay}/gateway.do`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(params).toString(),
    });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as Record<string, Record<string, string>>;
    expect(body.error_response).toMatchObject({ code: "40002", sub_code: "isv.invalid-method" });
    expect(typeof body.sign).toBe("string");

    const elsewhere = await fetch(`${simulator.channelUrls.alipay}/nothing`);
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.text()).toContain("POST /gateway.do");
  });

  it("WeChat Pay: the adapter's requests, signed over /v3/... without a prefix, are accepted; an unknown path is 404 {code: NOT_FOUND}", async () => {
    const keys = testKeys().wechatpay;
    const wechat = createWechatPayChannel({ ...keys, baseUrl: simulator.channelUrls.wechatpay });
    const no = paymentNo();
    const ref = { paymentNo: no, amountMinor: 500n, currency: "CNY" };
    const created = await wechat.createPayment({ ...ref, subject: "root test", expiresAt: new Date(Date.now() + 600_000), notifyUrl: "https://127.0.0.1:9/none", idempotencyKey: no });
    expect(created.action.kind).toBe("code_url");
    simulator.pay("wechatpay", no);
    expect((await wechat.queryPayment(ref)).state).toBe("succeeded");

    const unknown = await fetch(`${simulator.channelUrls.wechatpay}/v3/nothing/here`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ code: "NOT_FOUND", message: "GET /v3/nothing/here 不存在" });
    // The shared listener keeps the prefixed paths, and names them with the prefix.
    const prefixed = await fetch(`${simulator.url}/wechatpay/v3/nothing/here`);
    expect(await prefixed.json()).toMatchObject({ code: "NOT_FOUND", message: "GET /wechatpay/v3/nothing/here 不存在" });
  });

  it("card: the acquirer's paths are at the root, and the shared listener keeps /card/v1", async () => {
    const headers = { authorization: `Bearer ${testKeys().card.secretKey}` };
    const atRoot = await fetch(`${simulator.channelUrls.card}/v1/webhook_endpoints`, { headers });
    expect(atRoot.status).toBe(200);
    const prefixed = await fetch(`${simulator.url}/card/v1/webhook_endpoints`, { headers });
    expect(prefixed.status).toBe(200);
    const unknown = await fetch(`${simulator.channelUrls.card}/v1/charges/ch_1/capture/x`, { headers });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { type: "invalid_request_error", message: expect.stringContaining("Unrecognized request URL") } });
  });
});
