/**
 * Payouts through Alipay (`alipay.fund.trans.uni.transfer` / `alipay.fund.trans.common.query`) and
 * WeChat Pay (`POST /v3/transfer/batches` and its queries): the adapters' `payouts` against the
 * simulator over real HTTP, with the simulator's payout faults and API faults.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAlipayChannel } from "../../src/channels/alipay/alipay-channel.js";
import {
  ChannelAnswerUntrustedError,
  type ChannelPayoutRequest,
  ChannelRejectedError,
  ChannelUnavailableError,
  type PayeeAccount,
  type PaymentChannel,
} from "../../src/channels/channel.js";
import { type DevChannelKeys, generateDevChannelKeys } from "../../src/channels/dev-keys.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { createWechatPayChannel } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { eventually, rejection } from "../support/waiting.js";

const CONTROL_TOKEN = "payouts-simulator-test-control-token";
const TIMEOUT_MS = 400;
const ALIPAY_PAYEE: PayeeAccount = { type: "ALIPAY_USER_ID", account: "2088123412341234" };
const WECHAT_PAYEE: PayeeAccount = { type: "WECHAT_OPENID", account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" };

let keys: DevChannelKeys;
let simulator: Simulator;
let alipay: PaymentChannel;
let wechat: PaymentChannel;
let sequence = 0;

beforeAll(async () => {
  keys = generateDevChannelKeys();
  simulator = await startSimulator({ port: 0, keys, controlToken: CONTROL_TOKEN });
  alipay = createAlipayChannel({
    gatewayUrl: `${simulator.url}/alipay/gateway.do`,
    appId: keys.alipay.appId,
    appPrivateKeyPem: keys.alipay.appPrivateKeyPem,
    alipayPublicKeyPem: keys.alipay.alipayPublicKeyPem,
    timeoutMs: TIMEOUT_MS,
  });
  const w = keys.wechatpay;
  wechat = createWechatPayChannel({
    baseUrl: `${simulator.url}/wechatpay`,
    mchId: w.mchId,
    appId: w.appId,
    mchSerialNo: w.mchSerialNo,
    mchPrivateKeyPem: w.mchPrivateKeyPem,
    platformPublicKeyPem: w.platformPublicKeyPem,
    publicKeyId: w.publicKeyId,
    apiV3Key: w.apiV3Key,
    timeoutMs: TIMEOUT_MS,
  });
});
afterEach(() => simulator.clearFaults());
afterAll(async () => {
  await simulator?.close();
  closeHttpAgents();
});

function payoutNo(): string {
  sequence += 1;
  return `T${Date.now()}${String(sequence).padStart(4, "0")}`;
}

function payout(payee: PayeeAccount, overrides: Partial<ChannelPayoutRequest> = {}): ChannelPayoutRequest {
  return { payoutNo: payoutNo(), amountMinor: 12_345n, currency: "CNY", payee, remark: "Settlement S20261202 test", ...overrides };
}

describe("Alipay payouts (alipay.fund.trans.uni.transfer)", () => {
  it("pays a transfer at once (SUCCESS), and the query reports it paid under the same order_id", async () => {
    // A remark past Alipay's 128-character order_title is cut, not refused.
    const request = payout(ALIPAY_PAYEE, { remark: "结算".repeat(150) });
    const sent = await alipay.payouts.sendPayout(request);
    expect(sent).toMatchObject({ state: "paid", detail: "SUCCESS" });
    expect(sent.channelPayoutNo).toMatch(/^\d{32}$/);
    expect(await alipay.payouts.queryPayout(request)).toEqual({ state: "paid", detail: "SUCCESS", channelPayoutNo: sent.channelPayoutNo });
  });

  it("pays an ALIPAY_LOGON_ID with the payee's name", async () => {
    const payee: PayeeAccount = { type: "ALIPAY_LOGON_ID", account: "13800138000", name: "张三" };
    expect((await alipay.payouts.sendPayout(payout(payee))).state).toBe("paid");
  });

  it("answers DEALING (processing) under payoutDelayMs, then the query finds it paid", async () => {
    const request = payout(ALIPAY_PAYEE);
    simulator.setFaults({ channel: "alipay", outTradeNo: request.payoutNo, faults: { payoutDelayMs: 300 } });
    const sent = await alipay.payouts.sendPayout(request);
    expect(sent).toMatchObject({ state: "processing", detail: "DEALING" });
    expect((await alipay.payouts.queryPayout(request)).state).toBe("processing");
    const paid = await eventually(
      () => alipay.payouts.queryPayout(request),
      (status) => status.state !== "processing",
    );
    expect(paid).toEqual({ state: "paid", detail: "SUCCESS", channelPayoutNo: sent.channelPayoutNo });
  });

  it("reports a refused transfer (40004 PAYEE_NOT_EXIST) as failed, and Alipay then has no such transfer", async () => {
    const request = payout(ALIPAY_PAYEE);
    simulator.setFaults({ channel: "alipay", outTradeNo: request.payoutNo, faults: { payoutFails: true } });
    const sent = await alipay.payouts.sendPayout(request);
    expect(sent.state).toBe("failed");
    expect(sent.detail).toContain("PAYEE_NOT_EXIST");
    expect((await alipay.payouts.queryPayout(request)).state).toBe("not_found");
  });

  it("reports a transfer that fails while DEALING as failed with its fail_reason", async () => {
    const request = payout(ALIPAY_PAYEE);
    simulator.setFaults({ channel: "alipay", outTradeNo: request.payoutNo, faults: { payoutFails: true, payoutDelayMs: 100 } });
    expect((await alipay.payouts.sendPayout(request)).state).toBe("processing");
    const failed = await eventually(
      () => alipay.payouts.queryPayout(request),
      (status) => status.state !== "processing",
    );
    expect(failed.state).toBe("failed");
    expect(failed.detail).toMatch(/^FAIL: /);
  });

  it("answers a resend under the same out_biz_no with the original transfer, and refuses the number with another amount", async () => {
    const request = payout(ALIPAY_PAYEE);
    const first = await alipay.payouts.sendPayout(request);
    const again = await alipay.payouts.sendPayout(request);
    expect(again).toEqual(first);
    const changed = await rejection(alipay.payouts.sendPayout({ ...request, amountMinor: request.amountMinor + 1n }));
    expect(changed).toBeInstanceOf(ChannelRejectedError);
    expect((changed as ChannelRejectedError).code).toBe("PAYMENT_INFO_INCONSISTENCY");
  });

  it("reports an unknown out_biz_no as not_found", async () => {
    expect(await alipay.payouts.queryPayout(payout(ALIPAY_PAYEE))).toMatchObject({ state: "not_found" });
  });

  it("throws ChannelUnavailableError on HTTP 5xx and on a timeout; a transfer made before the answer was lost is found by the query", async () => {
    const request = payout(ALIPAY_PAYEE);
    simulator.setFaults({ channel: "alipay", faults: { apiError: { method: "alipay.fund.trans.uni.transfer", status: 503, times: 1 } } });
    const down = await rejection(alipay.payouts.sendPayout(request));
    expect(down).toBeInstanceOf(ChannelUnavailableError);
    expect((down as Error).message).toContain("sendPayout (alipay.fund.trans.uni.transfer)");
    expect((await alipay.payouts.queryPayout(request)).state).toBe("not_found");

    simulator.setFaults({ channel: "alipay", outTradeNo: request.payoutNo, faults: { apiTimeout: { times: 1, apply: true } } });
    expect(await rejection(alipay.payouts.sendPayout(request))).toBeInstanceOf(ChannelUnavailableError);
    expect((await alipay.payouts.queryPayout(request)).state).toBe("paid");

    simulator.setFaults({ channel: "alipay", faults: { apiTimeout: { method: "alipay.fund.trans.common.query", times: 1 } } });
    expect(await rejection(alipay.payouts.queryPayout(request))).toBeInstanceOf(ChannelUnavailableError);
  });

  it("does not trust an answer whose signature does not verify", async () => {
    const request = payout(ALIPAY_PAYEE);
    simulator.setFaults({ channel: "alipay", outTradeNo: request.payoutNo, faults: { badResponseSignature: true } });
    const untrusted = await rejection(alipay.payouts.sendPayout(request));
    expect(untrusted).toBeInstanceOf(ChannelAnswerUntrustedError);
    expect((untrusted as ChannelAnswerUntrustedError).code).toBe("RESPONSE_SIGNATURE_INVALID");
  });

  it("refuses an invalid payee, a foreign currency and amounts outside 0.10..100000000.00 without sending anything", async () => {
    expect(alipay.payouts.validatePayee({ type: "ALIPAY_USER_ID", account: "208812341234" })).toMatch(/2088 followed by 12 digits/);
    expect(alipay.payouts.validatePayee({ type: "ALIPAY_LOGON_ID", account: "payee@example.com" })).toMatch(/name/);
    expect(alipay.payouts.validatePayee({ type: "WECHAT_OPENID", account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" })).toMatch(/not WECHAT_OPENID/);
    expect(alipay.payouts.validatePayee(ALIPAY_PAYEE)).toBeUndefined();

    const badPayee = payout({ type: "ALIPAY_USER_ID", account: "1234" });
    const refused = await rejection(alipay.payouts.sendPayout(badPayee));
    expect(refused).toBeInstanceOf(ChannelRejectedError);
    expect((refused as ChannelRejectedError).code).toBe("PAYEE_INVALID");
    expect((await alipay.payouts.queryPayout(badPayee)).state).toBe("not_found");

    for (const [overrides, code] of [
      [{ currency: "USD" }, "CURRENCY_NOT_SUPPORTED"],
      [{ amountMinor: 9n }, "AMOUNT_OUT_OF_RANGE"],
      [{ amountMinor: 10_000_000_001n }, "AMOUNT_OUT_OF_RANGE"],
    ] as const) {
      const error = await rejection(alipay.payouts.sendPayout(payout(ALIPAY_PAYEE, overrides)));
      expect((error as ChannelRejectedError).code).toBe(code);
    }
    expect((await alipay.payouts.sendPayout(payout(ALIPAY_PAYEE, { amountMinor: 10n }))).state).toBe("paid");
  });
});

describe("WeChat Pay payouts (POST /v3/transfer/batches)", () => {
  it("accepts the batch (processing), and the detail query then reports it paid under the batch_id", async () => {
    // A remark past WeChat's 32 characters is cut, not refused (the simulator refuses longer texts).
    const request = payout(WECHAT_PAYEE, { remark: "Settlement S20261202 for merchant 01J... (a long remark)" });
    const sent = await wechat.payouts.sendPayout(request);
    expect(sent).toMatchObject({ state: "processing" });
    expect(sent.channelPayoutNo).toMatch(/^131\d+$/);
    const paid = await eventually(
      () => wechat.payouts.queryPayout(request),
      (status) => status.state !== "processing",
    );
    expect(paid).toEqual({ state: "paid", detail: "SUCCESS", channelPayoutNo: sent.channelPayoutNo });
  });

  it("sends the payee's name encrypted (Wechatpay-Serial), and from 2000 yuan only with a name", async () => {
    const named = payout({ ...WECHAT_PAYEE, name: "李四" }, { amountMinor: 250_000n });
    expect((await wechat.payouts.sendPayout(named)).state).toBe("processing");
    await eventually(
      () => wechat.payouts.queryPayout(named),
      (status) => status.state === "paid",
    );

    const nameless = payout(WECHAT_PAYEE, { amountMinor: 200_000n });
    const refused = await rejection(wechat.payouts.sendPayout(nameless));
    expect((refused as ChannelRejectedError).code).toBe("PAYEE_NAME_REQUIRED");
    expect((await wechat.payouts.queryPayout(nameless)).state).toBe("not_found");
  });

  it("keeps the detail PROCESSING under payoutDelayMs, then reports it paid", async () => {
    const request = payout(WECHAT_PAYEE);
    simulator.setFaults({ channel: "wechatpay", outTradeNo: request.payoutNo, faults: { payoutDelayMs: 300 } });
    await wechat.payouts.sendPayout(request);
    expect(await wechat.payouts.queryPayout(request)).toMatchObject({ state: "processing", detail: "PROCESSING" });
    const paid = await eventually(
      () => wechat.payouts.queryPayout(request),
      (status) => status.state !== "processing",
    );
    expect(paid.state).toBe("paid");
  });

  it("reports a detail that fails (payoutFails) as failed with its fail_reason", async () => {
    const request = payout(WECHAT_PAYEE);
    simulator.setFaults({ channel: "wechatpay", outTradeNo: request.payoutNo, faults: { payoutFails: true } });
    expect((await wechat.payouts.sendPayout(request)).state).toBe("processing");
    const failed = await eventually(
      () => wechat.payouts.queryPayout(request),
      (status) => status.state !== "processing",
    );
    expect(failed).toMatchObject({ state: "failed", detail: "FAIL: ACCOUNT_FROZEN" });
  });

  it("answers a resend under the same out_batch_no with the original batch, and refuses the number with another amount", async () => {
    const request = payout(WECHAT_PAYEE);
    const first = await wechat.payouts.sendPayout(request);
    const again = await wechat.payouts.sendPayout(request);
    expect(again.channelPayoutNo).toBe(first.channelPayoutNo);
    const changed = await rejection(wechat.payouts.sendPayout({ ...request, amountMinor: request.amountMinor + 1n }));
    expect(changed).toBeInstanceOf(ChannelRejectedError);
    expect((changed as ChannelRejectedError).code).toBe("INVALID_REQUEST");
  });

  it("reports an unknown out_batch_no as not_found (no detail, no batch)", async () => {
    expect(await wechat.payouts.queryPayout(payout(WECHAT_PAYEE))).toMatchObject({ state: "not_found" });
  });

  it("throws ChannelUnavailableError on HTTP 5xx and on a timeout; a batch accepted before the answer was lost is found by the query", async () => {
    const request = payout(WECHAT_PAYEE);
    simulator.setFaults({ channel: "wechatpay", faults: { apiError: { method: "POST /v3/transfer/batches", status: 500, times: 1 } } });
    const down = await rejection(wechat.payouts.sendPayout(request));
    expect(down).toBeInstanceOf(ChannelUnavailableError);
    expect((down as Error).message).toContain("sendPayout (POST /v3/transfer/batches)");
    expect((await wechat.payouts.queryPayout(request)).state).toBe("not_found");

    simulator.setFaults({ channel: "wechatpay", outTradeNo: request.payoutNo, faults: { apiTimeout: { times: 1, apply: true } } });
    expect(await rejection(wechat.payouts.sendPayout(request))).toBeInstanceOf(ChannelUnavailableError);
    const found = await eventually(
      () => wechat.payouts.queryPayout(request),
      (status) => status.state !== "processing",
    );
    expect(found.state).toBe("paid");

    const detailQuery = "GET /v3/transfer/batches/out-batch-no/{out_batch_no}/details/out-detail-no/{out_detail_no}";
    simulator.setFaults({ channel: "wechatpay", faults: { apiError: { method: detailQuery, status: 503, times: 1 } } });
    expect(await rejection(wechat.payouts.queryPayout(request))).toBeInstanceOf(ChannelUnavailableError);
  });

  it("refuses an invalid openid, a foreign currency and less than 0.10 yuan without sending anything", async () => {
    expect(wechat.payouts.validatePayee({ type: "WECHAT_OPENID", account: "short" })).toMatch(/16 to 64/);
    expect(wechat.payouts.validatePayee({ type: "ALIPAY_USER_ID", account: "2088123412341234" })).toMatch(/not ALIPAY_USER_ID/);
    expect(wechat.payouts.validatePayee(WECHAT_PAYEE)).toBeUndefined();

    const badPayee = payout({ type: "WECHAT_OPENID", account: "bad openid with spaces" });
    expect(((await rejection(wechat.payouts.sendPayout(badPayee))) as ChannelRejectedError).code).toBe("PAYEE_INVALID");
    expect((await wechat.payouts.queryPayout(badPayee)).state).toBe("not_found");
    expect(((await rejection(wechat.payouts.sendPayout(payout(WECHAT_PAYEE, { currency: "USD" })))) as ChannelRejectedError).code).toBe(
      "CURRENCY_NOT_SUPPORTED",
    );
    expect(((await rejection(wechat.payouts.sendPayout(payout(WECHAT_PAYEE, { amountMinor: 9n })))) as ChannelRejectedError).code).toBe(
      "AMOUNT_OUT_OF_RANGE",
    );
    expect((await wechat.payouts.sendPayout(payout(WECHAT_PAYEE, { amountMinor: 10n }))).state).toBe("processing");
  });
});
