import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAlipayChannel } from "../../src/channels/alipay/alipay-channel.js";
import {
  CallbackRejectedError,
  type ChannelNotification,
  ChannelAnswerUntrustedError,
  ChannelTradePaidError,
  ChannelUnavailableError,
  type PaymentChannel,
  type PaymentNotification,
} from "../../src/channels/channel.js";
import { type DevChannelKeys, generateDevChannelKeys } from "../../src/channels/dev-keys.js";
import { signRequestParams, splitGatewayResponse, verifyGatewayResponse } from "../../src/channels/alipay/alipay-signature.js";
import { toAlipayTime } from "../../src/channels/alipay/alipay-time.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { ALIPAY_NOTIFY_RETRY_GAPS_MS } from "../../src/simulator/alipay/alipay-side.js";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { billRecords } from "../support/bill-records.js";

// 4 minutes become 120 ms.
const TIME_SCALE = 0.0005;
const CONTROL_TOKEN = "alipay-simulator-test-control-token";

interface ReceivedNotify {
  at: number;
  params: URLSearchParams;
  notification?: ChannelNotification;
  rejection?: string;
  answer: string;
}

/** A stand-in for our callback route: verifies with the adapter, answers as told. */
interface NotifyReceiver {
  url: string;
  received: ReceivedNotify[];
  /** Decides the answer to a verified notify; `success` unless a test says otherwise. */
  decide: (notify: ReceivedNotify) => "accept" | "reject";
  close(): Promise<void>;
}

async function startReceiver(channel: PaymentChannel): Promise<NotifyReceiver> {
  const receiver: NotifyReceiver = {
    url: "",
    received: [],
    decide: () => "accept",
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const rawBody = Buffer.concat(chunks);
      const notify: ReceivedNotify = { at: Date.now(), params: new URLSearchParams(rawBody.toString("utf8")), answer: "" };
      let answer = channel.rejectAnswer("unset");
      try {
        notify.notification = channel.parseCallback({ headers: request.headers as Record<string, string>, rawBody });
        if (receiver.decide(notify) === "accept") answer = channel.acceptAnswer();
      } catch (error) {
        if (!(error instanceof CallbackRejectedError)) throw error;
        notify.rejection = error.reason;
        answer = channel.rejectAnswer(error.reason);
      }
      notify.answer = answer.body;
      receiver.received.push(notify);
      response.writeHead(answer.status, { "content-type": answer.contentType });
      response.end(answer.body);
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callbacks/alipay`;
  return receiver;
}

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let keys: DevChannelKeys;
let simulator: Simulator;
let alipay: PaymentChannel;
let receiver: NotifyReceiver;
let sequence = 0;

function adapter(overrides: Partial<Parameters<typeof createAlipayChannel>[0]> = {}): PaymentChannel {
  return createAlipayChannel({
    gatewayUrl: `${simulator.url}/alipay/gateway.do`,
    appId: keys.alipay.appId,
    appPrivateKeyPem: keys.alipay.appPrivateKeyPem,
    alipayPublicKeyPem: keys.alipay.alipayPublicKeyPem,
    sellerId: keys.alipay.sellerId,
    timeoutMs: 2_000,
    ...overrides,
  });
}

function newPaymentNo(): string {
  sequence += 1;
  return `P${Date.now()}${String(sequence).padStart(4, "0")}`;
}

async function createTrade(amountMinor = 8888n, paymentNo = newPaymentNo()) {
  const created = await alipay.createPayment({
    paymentNo,
    amountMinor,
    currency: "CNY",
    subject: "测试商品 test item",
    expiresAt: new Date(Date.now() + 15 * 60_000),
    notifyUrl: receiver.url,
    idempotencyKey: paymentNo,
  });
  return { paymentNo, created, ref: { paymentNo, amountMinor, currency: "CNY" } };
}

function notifiesFor(paymentNo: string): ReceivedNotify[] {
  return receiver.received.filter((notify) => notify.params.get("out_trade_no") === paymentNo);
}

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${simulator.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${CONTROL_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  keys = generateDevChannelKeys();
  simulator = await startSimulator({ port: 0, timeScale: TIME_SCALE, keys, controlToken: CONTROL_TOKEN });
  alipay = adapter();
  receiver = await startReceiver(alipay);
});

afterEach(() => {
  simulator.clearFaults();
  receiver.decide = () => "accept";
});

afterAll(async () => {
  await simulator?.close();
  await receiver?.close();
  closeHttpAgents();
});

describe("Alipay adapter against the simulator: payment flow", () => {
  it("precreates a QR code, pays through the HTTP control API, and delivers a verifiable notify", async () => {
    const { paymentNo, created, ref } = await createTrade(8888n);
    expect(created.action.kind).toBe("qr_code_url");
    expect(created.action.value).toMatch(/^https:\/\/qr\.alipay\.com\/bax0[a-z0-9]+$/);

    // Like Alipay: the trade does not exist there until the QR code is scanned.
    expect((await alipay.queryPayment(ref)).state).toBe("not_found");
    expect((await control("POST", `/simulator/alipay/trades/${paymentNo}/scan`)).json.channelState).toBe("WAIT_BUYER_PAY");
    expect((await alipay.queryPayment(ref)).state).toBe("pending");

    const paid = await control("POST", `/simulator/alipay/trades/${encodeURIComponent(paymentNo)}/pay`);
    expect(paid.status).toBe(200);
    expect(paid.json).toMatchObject({ state: "paid", channelState: "TRADE_SUCCESS", amountMinor: "8888", amount: "88.88" });

    const [notify] = await waitFor(() => notifiesFor(paymentNo).length > 0 && notifiesFor(paymentNo), "the payment notify");
    const notification = notify!.notification as PaymentNotification;
    expect(notification).toMatchObject({
      kind: "payment",
      paymentNo,
      state: "succeeded",
      amountMinor: 8888n,
      currency: "CNY",
      channelStatus: "TRADE_SUCCESS",
      channelTradeNo: paid.json.channelTradeNo,
      notificationId: notify!.params.get("notify_id"),
    });
    expect(notification.paidAt?.getTime()).toBeLessThanOrEqual(Date.now());
    expect(notify!.answer).toBe("success");

    const trade = await waitFor(() => {
      const view = simulator.getTrade("alipay", paymentNo);
      return view?.notifications[0]?.state === "acknowledged" && view;
    }, "the acknowledgement");
    expect(trade.notifications[0]?.attempts).toHaveLength(1);

    const status = await alipay.queryPayment(ref);
    expect(status).toMatchObject({ state: "succeeded", amountMinor: 8888n, channelTradeNo: paid.json.channelTradeNo, detail: "TRADE_SUCCESS" });
    expect(status.paidAt).toBeInstanceOf(Date);
  });

  it("returns the same QR code when a create is retried, and refuses a changed amount", async () => {
    const { paymentNo, created } = await createTrade(100n);
    const again = await createTrade(100n, paymentNo);
    expect(again.created.action.value).toBe(created.action.value);
    await expect(createTrade(101n, paymentNo)).rejects.toMatchObject({ code: "ACQ.CONTEXT_INCONSISTENT" });
  });

  it("re-sends an unacknowledged notify on Alipay's schedule (scaled), with the same notify_id", async () => {
    const { paymentNo } = await createTrade();
    let failuresLeft = 2;
    receiver.decide = (notify) => (notify.params.get("out_trade_no") === paymentNo && failuresLeft-- > 0 ? "reject" : "accept");
    simulator.pay("alipay", paymentNo);

    const notifies = await waitFor(() => notifiesFor(paymentNo).length >= 3 && notifiesFor(paymentNo), "three deliveries");
    expect(notifies.map((notify) => notify.answer)).toEqual(["fail", "fail", "success"]);
    expect(new Set(notifies.map((notify) => notify.params.get("notify_id"))).size).toBe(1);
    const firstGap = notifies[1]!.at - notifies[0]!.at;
    expect(firstGap).toBeGreaterThanOrEqual(ALIPAY_NOTIFY_RETRY_GAPS_MS[0]! * TIME_SCALE - 20);

    const view = await waitFor(() => {
      const trade = simulator.getTrade("alipay", paymentNo);
      return trade?.notifications[0]?.state === "acknowledged" && trade;
    }, "acknowledged state");
    expect(view.notifications[0]?.attempts.map((attempt) => attempt.body)).toEqual(["fail", "fail", "success"]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(notifiesFor(paymentNo)).toHaveLength(3);
  });

  it("rejects foreign currencies and out-of-range amounts before calling Alipay", async () => {
    await expect(
      alipay.createPayment({
        paymentNo: newPaymentNo(),
        amountMinor: 100n,
        currency: "USD",
        subject: "x",
        expiresAt: new Date(Date.now() + 60_000),
        notifyUrl: receiver.url,
        idempotencyKey: "k",
      }),
    ).rejects.toMatchObject({ code: "CURRENCY_NOT_SUPPORTED" });
    await expect(createTrade(0n)).rejects.toMatchObject({ code: "AMOUNT_OUT_OF_RANGE" });
  });
});

describe("close", () => {
  it("closes a scanned trade, which then queries as closed and notifies TRADE_CLOSED", async () => {
    const { paymentNo, ref } = await createTrade();
    simulator.scan("alipay", paymentNo);
    await alipay.closePayment(ref);
    expect(await alipay.queryPayment(ref)).toMatchObject({ state: "closed", detail: "TRADE_CLOSED" });
    const [notify] = await waitFor(() => notifiesFor(paymentNo).length > 0 && notifiesFor(paymentNo), "the close notify");
    expect(notify!.notification).toMatchObject({ kind: "payment", state: "closed", channelStatus: "TRADE_CLOSED" });
    // Closing again is fine.
    await alipay.closePayment(ref);
  });

  it("resolves for a trade Alipay never saw (unscanned), which stays payable like the real QR code", async () => {
    const { paymentNo, ref } = await createTrade();
    await alipay.closePayment(ref);
    simulator.pay("alipay", paymentNo);
    expect((await alipay.queryPayment(ref)).state).toBe("succeeded");
  });

  it("throws ChannelTradePaidError when the trade is paid", async () => {
    const { paymentNo, ref } = await createTrade();
    simulator.pay("alipay", paymentNo);
    await expect(alipay.closePayment(ref)).rejects.toBeInstanceOf(ChannelTradePaidError);
  });

  it("paidAfterClose: the close answers success, then the trade is paid and notified", async () => {
    const { paymentNo, ref } = await createTrade();
    simulator.scan("alipay", paymentNo);
    simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { paidAfterClose: true } });
    await alipay.closePayment(ref);
    const [notify] = await waitFor(() => notifiesFor(paymentNo).length > 0 && notifiesFor(paymentNo), "the late success notify");
    expect(notify!.notification).toMatchObject({ state: "succeeded" });
    expect((await alipay.queryPayment(ref)).state).toBe("succeeded");
  });
});

describe("refunds", () => {
  it("refunds partially, is idempotent on the refund number, refuses over-refunds and reports via query", async () => {
    const { paymentNo, ref } = await createTrade(10_000n);
    simulator.pay("alipay", paymentNo);
    const trade = { ...ref, channelTradeNo: simulator.getTrade("alipay", paymentNo)!.channelTradeNo };
    const refund = (refundNo: string, amountMinor: bigint) => ({ trade, refundNo, amountMinor, notifyUrl: receiver.url, reason: "退货" });

    expect(await alipay.refund(refund("R1", 3_000n))).toMatchObject({ state: "succeeded" });
    // A retry after a lost answer: fund_change N, confirmed through the refund query.
    expect(await alipay.refund(refund("R1", 3_000n))).toMatchObject({ state: "succeeded", detail: "REFUND_SUCCESS" });
    expect(await alipay.refund(refund("R1", 2_000n))).toMatchObject({ state: "failed", detail: expect.stringContaining("ACQ.DISCORDANT_REPEAT_REQUEST") });
    expect(await alipay.refund(refund("R2", 7_001n))).toMatchObject({ state: "failed", detail: expect.stringContaining("ACQ.REASON_TRADE_REFUND_FEE_ERR") });

    expect(await alipay.queryRefund(refund("R1", 3_000n))).toMatchObject({ state: "succeeded" });
    expect(await alipay.queryRefund(refund("R-unknown", 1n))).toMatchObject({ state: "not_found" });
    expect(simulator.getTrade("alipay", paymentNo)).toMatchObject({ refundedMinor: "3000", channelState: "TRADE_SUCCESS" });

    // Refund notifies are verified but carry nothing to apply yet.
    const refundNotify = await waitFor(() => notifiesFor(paymentNo).find((notify) => notify.params.get("out_biz_no") === "R1"), "the refund notify");
    expect(refundNotify.notification).toMatchObject({ kind: "ignored", channelStatus: "TRADE_SUCCESS:refund" });
    expect(refundNotify.params.get("refund_fee")).toBe("30.00");

    // A full refund leaves the trade TRADE_CLOSED at Alipay; it still counts as a payment that succeeded.
    expect(await alipay.refund(refund("R2", 7_000n))).toMatchObject({ state: "succeeded" });
    expect(await alipay.queryPayment(trade)).toMatchObject({ state: "succeeded", detail: "TRADE_CLOSED" });
    const closingNotify = await waitFor(() => notifiesFor(paymentNo).find((notify) => notify.params.get("out_biz_no") === "R2"), "the full-refund notify");
    expect(closingNotify.params.get("trade_status")).toBe("TRADE_CLOSED");
    expect(closingNotify.notification?.kind).toBe("ignored");
  });

  it("reports a refund of an unpaid trade as failed", async () => {
    const { paymentNo, ref } = await createTrade();
    simulator.scan("alipay", paymentNo);
    const result = await alipay.refund({ trade: ref, refundNo: "R1", amountMinor: 1n, notifyUrl: receiver.url });
    expect(result).toMatchObject({ state: "failed", detail: expect.stringContaining("ACQ.TRADE_STATUS_ERROR") });
  });
});

describe("faults", () => {
  it("apiError: 5xx becomes ChannelUnavailableError, for `times` calls of that method only", async () => {
    const { ref } = await createTrade();
    simulator.setFaults({ channel: "alipay", faults: { apiError: { method: "alipay.trade.query", status: 503, times: 1 } } });
    await expect(alipay.queryPayment(ref)).rejects.toBeInstanceOf(ChannelUnavailableError);
    expect((await alipay.queryPayment(ref)).state).toBe("not_found");
  });

  it("apiTimeout: a hung gateway becomes ChannelUnavailableError after the adapter's timeout", async () => {
    const impatient = adapter({ timeoutMs: 200 });
    simulator.setFaults({ faults: { apiTimeout: { method: "alipay.trade.precreate", times: 1 } } });
    const started = Date.now();
    const paymentNo = newPaymentNo();
    const request = { paymentNo, amountMinor: 1n, currency: "CNY", subject: "x", expiresAt: new Date(Date.now() + 60_000), notifyUrl: receiver.url, idempotencyKey: "k" };
    await expect(impatient.createPayment(request)).rejects.toBeInstanceOf(ChannelUnavailableError);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(simulator.getTrade("alipay", paymentNo)).toBeUndefined();
    expect((await impatient.createPayment(request)).action.kind).toBe("qr_code_url");
  });

  it("apiTimeout with apply: the refund happened although the answer was lost, and the retry is idempotent", async () => {
    const { paymentNo, ref } = await createTrade(500n);
    simulator.pay("alipay", paymentNo);
    const impatient = adapter({ timeoutMs: 200 });
    simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { apiTimeout: { method: "alipay.trade.refund", times: 1, apply: true } } });
    const request = { trade: ref, refundNo: "R1", amountMinor: 500n, notifyUrl: receiver.url };
    await expect(impatient.refund(request)).rejects.toBeInstanceOf(ChannelUnavailableError);
    expect(simulator.getTrade("alipay", paymentNo)?.refundedMinor).toBe("500");
    expect(await impatient.refund(request)).toMatchObject({ state: "succeeded" });
    expect(simulator.getTrade("alipay", paymentNo)?.refunds).toHaveLength(1);
  });

  it("badSignature: a forged notify is rejected as bad_signature and re-sent", async () => {
    const { paymentNo } = await createTrade();
    simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { badSignature: true } });
    simulator.pay("alipay", paymentNo);
    const [first] = await waitFor(() => notifiesFor(paymentNo).length > 0 && notifiesFor(paymentNo), "the forged notify");
    expect(first).toMatchObject({ rejection: "bad_signature", answer: "fail" });
    simulator.clearFaults({ channel: "alipay", outTradeNo: paymentNo });
    const resent = await waitFor(() => notifiesFor(paymentNo)[1], "the re-send");
    expect(resent.notification).toMatchObject({ state: "succeeded" });
  });

  it("alterAmount: a correctly signed notify states another total, which parsing reports as is", async () => {
    const { paymentNo } = await createTrade(8888n);
    simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { alterAmount: 100 } });
    simulator.pay("alipay", paymentNo);
    const [notify] = await waitFor(() => notifiesFor(paymentNo).length > 0 && notifiesFor(paymentNo), "the notify");
    expect(notify!.notification).toMatchObject({ kind: "payment", amountMinor: 8988n });
  });

  it("badResponseSignature: an answer not signed by Alipay is never trusted", async () => {
    simulator.setFaults({ faults: { badResponseSignature: true } });
    await expect(createTrade()).rejects.toSatisfy(
      (error) => error instanceof ChannelAnswerUntrustedError && error.code === "RESPONSE_SIGNATURE_INVALID",
    );
  });

  it("notifyBeforeCreateReturns: the notify arrives before the create call answers", async () => {
    const paymentNo = newPaymentNo();
    simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { notifyBeforeCreateReturns: true } });
    await createTrade(8888n, paymentNo);
    expect(notifiesFor(paymentNo)).toHaveLength(1);
    expect(notifiesFor(paymentNo)[0]?.notification).toMatchObject({ state: "succeeded" });
  });

  it("duplicateNotifies: every copy carries the same notify_id", async () => {
    const { paymentNo } = await createTrade();
    simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { duplicateNotifies: 3 } });
    simulator.pay("alipay", paymentNo);
    const copies = await waitFor(() => notifiesFor(paymentNo).length === 3 && notifiesFor(paymentNo), "three copies");
    expect(new Set(copies.map((notify) => notify.notification?.notificationId)).size).toBe(1);
  });

  it("dropNotifies: nothing arrives, and an active query still finds the payment", async () => {
    const { paymentNo, ref } = await createTrade();
    simulator.setFaults({ channel: "alipay", faults: { dropNotifies: true } });
    simulator.pay("alipay", paymentNo);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(notifiesFor(paymentNo)).toHaveLength(0);
    expect(simulator.getTrade("alipay", paymentNo)?.notifications[0]?.state).toBe("dropped");
    expect((await alipay.queryPayment(ref)).state).toBe("succeeded");
  });

  it("outOfOrder with notifyDelayMs: the refund notify overtakes the payment notify", async () => {
    const { paymentNo, ref } = await createTrade(1_000n);
    simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { outOfOrder: true, notifyDelayMs: 150 } });
    simulator.pay("alipay", paymentNo);
    await alipay.refund({ trade: ref, refundNo: "R1", amountMinor: 100n, notifyUrl: receiver.url });
    const notifies = await waitFor(() => notifiesFor(paymentNo).length === 2 && notifiesFor(paymentNo), "both notifies");
    expect(notifies.map((notify) => notify.notification?.kind)).toEqual(["ignored", "payment"]);
  });
});

describe("callback checks", () => {
  it("rejects a genuine notify addressed to another app_id or seller", async () => {
    const { paymentNo } = await createTrade();
    simulator.pay("alipay", paymentNo);
    const [notify] = await waitFor(() => notifiesFor(paymentNo).length > 0 && notifiesFor(paymentNo), "the notify");
    const rawBody = Buffer.from(notify!.params.toString());
    expect(() => adapter({ appId: "2021000000000001" }).parseCallback({ headers: {}, rawBody })).toThrow(
      expect.objectContaining({ reason: "app_id_mismatch" }),
    );
    expect(() => adapter({ sellerId: "2088000000000001" }).parseCallback({ headers: {}, rawBody })).toThrow(
      expect.objectContaining({ reason: "seller_id_mismatch" }),
    );
    expect(() => alipay.parseCallback({ headers: {}, rawBody: Buffer.from(`${notify!.params.toString()}&x=1`) })).toThrow(
      expect.objectContaining({ reason: "bad_signature" }),
    );
    expect(alipay.acceptAnswer()).toEqual({ status: 200, contentType: "text/plain", body: "success" });
    expect(alipay.rejectAnswer("bad_signature")).toEqual({ status: 400, contentType: "text/plain", body: "fail" });
  });

  it("the gateway refuses requests signed with another app key", async () => {
    const stranger = adapter({ appPrivateKeyPem: keys.wechatpay.mchPrivateKeyPem });
    await expect(stranger.queryPayment({ paymentNo: "x", amountMinor: 1n, currency: "CNY" })).rejects.toMatchObject({
      code: "isv.invalid-signature",
    });
  });
});

describe("gateway method names", () => {
  it("answers isv.invalid-method for a method name that is an Object.prototype member, signed, under error_response", async () => {
    for (const method of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
      const params: Record<string, string> = {
        app_id: keys.alipay.appId,
        method,
        charset: "utf-8",
        sign_type: "RSA2",
        timestamp: toAlipayTime(new Date()),
        version: "1.0",
        biz_content: JSON.stringify({ out_trade_no: "P-prototype" }),
      };
      params.sign = signRequestParams(params, keys.alipay.appPrivateKeyPem);
      const response = await fetch(`${simulator.url}/alipay/gateway.do`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
        body: new URLSearchParams(params).toString(),
      });
      const body = await response.text();
      expect(response.status).toBe(200);
      const parts = splitGatewayResponse(body, "error");
      expect(parts, `${method}: ${body}`).toBeDefined();
      expect(verifyGatewayResponse(parts!, keys.alipay.alipayPublicKeyPem)).toBe(true);
      expect(JSON.parse(parts!.responseText)).toMatchObject({ code: "40002", sub_code: "isv.invalid-method" });
    }
  });
});

describe("bill", () => {
  it("downloads today's bill and reads payments and refunds from the GBK zip", async () => {
    const { paymentNo, ref } = await createTrade(12_345n);
    simulator.pay("alipay", paymentNo);
    await alipay.refund({ trade: ref, refundNo: "BILL-R1", amountMinor: 345n, notifyUrl: receiver.url });
    const today = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    const records = await billRecords(alipay.fetchBill(today));
    const mine = records.filter((record) => record.paymentNo === paymentNo);
    expect(mine).toEqual([
      expect.objectContaining({ kind: "payment", amountMinor: 12_345n, feeMinor: 74n, currency: "CNY" }),
      expect.objectContaining({ kind: "refund", refundNo: "BILL-R1", amountMinor: 345n, feeMinor: -2n }),
    ]);
    expect(mine[0]?.channelTradeNo).toBe(simulator.getTrade("alipay", paymentNo)?.channelTradeNo);
    await expect(alipay.fetchBill("2999-01-01")).rejects.toMatchObject({ code: "isp.bill_not_exist" });
  });
});

describe("control API over HTTP", () => {
  it("sets, lists and clears faults, and answers 404 for unknown trades and channels", async () => {
    const set = await control("POST", "/simulator/faults", { channel: "alipay", faults: { apiError: { status: 500 } } });
    expect(set.json.scopes).toEqual([{ channel: "alipay", faults: { apiError: { status: 500 } } }]);
    expect((await control("POST", "/simulator/faults", { faults: { nonsense: true } })).status).toBe(400);
    expect((await control("DELETE", "/simulator/faults")).json.scopes).toEqual([]);
    expect((await control("GET", "/simulator/alipay/trades/nope")).status).toBe(404);
    expect((await control("POST", "/simulator/wechatpay/trades/x/pay")).status).toBe(404);
  });

  it("refuses to pay a trade twice", async () => {
    const { paymentNo } = await createTrade();
    expect((await control("POST", `/simulator/alipay/trades/${paymentNo}/pay`, { outcome: "success" })).status).toBe(200);
    expect((await control("POST", `/simulator/alipay/trades/${paymentNo}/pay`)).status).toBe(409);
  });
});
