import { createHash, generateKeyPairSync } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  BillFormatError,
  type CallbackRequest,
  CallbackRejectedError,
  type ChannelRefundRequest,
  ChannelAnswerUntrustedError,
  ChannelRejectedError,
  type ChannelTradeRef,
  ChannelTradePaidError,
  ChannelUnavailableError,
  type PaymentChannel,
} from "../../src/channels/channel.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { billRecords } from "../support/bill-records.js";
import { BILL_LIMITS } from "../../src/channels/bill-file.js";
import { readWechatBillLines } from "../../src/channels/wechatpay/wechatpay-bill.js";
import { wechatBillChunks } from "../../src/channels/wechatpay/wechatpay-bill-writer.js";
import { createWechatPayChannel, type WechatPayChannelConfig } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { encryptResource, signWechatResponse, verifyAuthorization } from "../../src/channels/wechatpay/wechatpay-signature.js";

function pemKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

const merchantKeys = pemKeyPair();
const platformKeys = pemKeyPair();
const impostorKeys = pemKeyPair();
const MCH_ID = "1900000001";
const APP_ID = "wxd678efh567hg6787";
const MCH_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
const PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000012024050100000000";
const API_V3_KEY = "0123456789abcdefghijABCDEFGHIJ01";

/** What the fake WeChat answers; `signing` says how the answer is signed. */
interface FakeAnswer {
  status: number;
  body?: string | Buffer;
  signing?: "platform" | "none" | "impostor" | "tampered";
  contentType?: string;
}

interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Plays WeChat Pay's side just enough: checks our Authorization header, answers what a test scripts. */
class FakeWechatPay {
  readonly received: ReceivedRequest[] = [];
  readonly authorizationFailures: string[] = [];
  answer: (request: ReceivedRequest) => FakeAnswer = () => ({ status: 404, body: '{"code":"NOT_FOUND","message":"no route"}' });
  private server = http.createServer((req, res) => this.serve(req, res));

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    closeHttpAgents();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request: ReceivedRequest = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      this.received.push(request);
      const auth = verifyAuthorization({
        header: req.headers.authorization,
        method: request.method,
        pathWithQuery: request.path,
        body: request.body,
        publicKey: merchantKeys.publicKeyPem,
        mchId: MCH_ID,
        serialNo: MCH_SERIAL,
      });
      if (!auth.ok) this.authorizationFailures.push(`${request.method} ${request.path}: ${auth.reason}`);
      const answer = auth.ok ? this.answer(request) : { status: 401, body: '{"code":"SIGN_ERROR","message":"bad signature"}' };
      const body = answer.body ?? "";
      const signing = answer.signing ?? "platform";
      const headers: Record<string, string> = { "content-type": answer.contentType ?? "application/json" };
      if (signing !== "none") {
        const privateKey = signing === "impostor" ? impostorKeys.privateKeyPem : platformKeys.privateKeyPem;
        Object.assign(headers, signWechatResponse({ body, privateKey, publicKeyId: PUBLIC_KEY_ID }));
      }
      res.writeHead(answer.status, headers);
      res.end(signing === "tampered" ? Buffer.concat([Buffer.from(body), Buffer.from(" ")]) : body);
    });
  }
}

const fake = new FakeWechatPay();
let baseUrl = "";
let channel: PaymentChannel;

function config(overrides: Partial<WechatPayChannelConfig> = {}): WechatPayChannelConfig {
  return {
    baseUrl,
    mchId: MCH_ID,
    appId: APP_ID,
    mchSerialNo: MCH_SERIAL,
    mchPrivateKeyPem: merchantKeys.privateKeyPem,
    platformPublicKeyPem: platformKeys.publicKeyPem,
    publicKeyId: PUBLIC_KEY_ID,
    apiV3Key: API_V3_KEY,
    timeoutMs: 2_000,
    ...overrides,
  };
}

function trade(overrides: Partial<ChannelTradeRef> = {}): ChannelTradeRef {
  return { paymentNo: "P20240501000001", amountMinor: 8888n, currency: "CNY", ...overrides };
}

function refundRequest(overrides: Partial<ChannelRefundRequest> = {}): ChannelRefundRequest {
  return { trade: trade(), refundNo: "R20240501000001", amountMinor: 1000n, reason: "damaged", notifyUrl: "https://pay.example.com/callbacks/wechatpay", ...overrides };
}

const json = (value: unknown) => JSON.stringify(value);

beforeAll(async () => {
  baseUrl = await fake.start();
  channel = createWechatPayChannel(config());
});

afterAll(async () => {
  await fake.stop();
});

beforeEach(() => {
  fake.received.length = 0;
  fake.authorizationFailures.length = 0;
});

describe("createPayment (Native)", () => {
  it("posts the native order with a signed Authorization header and returns the code_url", async () => {
    fake.answer = () => ({ status: 200, body: json({ code_url: "weixin://wxpay/bizpayurl?pr=p4lpSuKzz" }) });
    const created = await channel.createPayment({
      paymentNo: "P20240501000001",
      amountMinor: 8888n,
      currency: "CNY",
      subject: "Image形象店-深圳腾大-QQ公仔",
      expiresAt: new Date("2024-05-01T04:30:00Z"),
      notifyUrl: "https://pay.example.com/callbacks/wechatpay",
      idempotencyKey: "P20240501000001",
    });
    expect(created).toEqual({ action: { kind: "code_url", value: "weixin://wxpay/bizpayurl?pr=p4lpSuKzz" } });
    expect(fake.authorizationFailures).toEqual([]);
    const [request] = fake.received;
    expect(request?.method).toBe("POST");
    expect(request?.path).toBe("/v3/pay/transactions/native");
    expect(request?.headers["content-type"]).toBe("application/json");
    expect(request?.headers["user-agent"]).toBeTruthy();
    expect(JSON.parse(request?.body ?? "")).toEqual({
      appid: APP_ID,
      mchid: MCH_ID,
      description: "Image形象店-深圳腾大-QQ公仔",
      out_trade_no: "P20240501000001",
      time_expire: "2024-05-01T12:30:00+08:00",
      notify_url: "https://pay.example.com/callbacks/wechatpay",
      amount: { total: 8888, currency: "CNY" },
    });
  });

  it("refuses other currencies and unsafe amounts before calling WeChat", async () => {
    const base = { paymentNo: "P1", subject: "s", expiresAt: new Date(), notifyUrl: "https://x/cb", idempotencyKey: "P1" };
    await expect(channel.createPayment({ ...base, amountMinor: 100n, currency: "USD" })).rejects.toMatchObject({ code: "CURRENCY_NOT_SUPPORTED" });
    await expect(
      channel.createPayment({ ...base, amountMinor: BigInt(Number.MAX_SAFE_INTEGER) + 1n, currency: "CNY" }),
    ).rejects.toMatchObject({ code: "AMOUNT_OUT_OF_RANGE" });
    expect(fake.received).toEqual([]);
  });

  it("passes WeChat's business error code on as a ChannelRejectedError", async () => {
    fake.answer = () => ({ status: 400, body: json({ code: "PARAM_ERROR", message: "time_expire 格式错误" }) });
    const error = await channel.createPayment({
      paymentNo: "P1",
      amountMinor: 1n,
      currency: "CNY",
      subject: "s",
      expiresAt: new Date(),
      notifyUrl: "https://x/cb",
      idempotencyKey: "P1",
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelRejectedError);
    expect(error).toMatchObject({ code: "PARAM_ERROR" });
    expect((error as Error).message).toContain("time_expire 格式错误");
  });
});

describe("queryPayment", () => {
  const cases = [
    ["SUCCESS", "succeeded"],
    ["REFUND", "succeeded"],
    ["NOTPAY", "pending"],
    ["USERPAYING", "pending"],
    ["CLOSED", "closed"],
    ["REVOKED", "closed"],
    ["PAYERROR", "failed"],
  ] as const;

  for (const [tradeState, expected] of cases) {
    it(`maps trade_state ${tradeState} to ${expected}`, async () => {
      const paid = tradeState === "SUCCESS" || tradeState === "REFUND";
      fake.answer = () => ({
        status: 200,
        body: json({
          appid: APP_ID,
          mchid: MCH_ID,
          out_trade_no: "P20240501000001",
          trade_state: tradeState,
          trade_state_desc: "desc",
          ...(paid ? { transaction_id: "4200000914202405015554393855", success_time: "2024-05-01T12:01:02+08:00" } : {}),
          amount: { total: 8888, payer_total: 8888, currency: "CNY", payer_currency: "CNY" },
        }),
      });
      const status = await channel.queryPayment(trade());
      expect(status.state).toBe(expected);
      expect(status.amountMinor).toBe(8888n);
      expect(status.currency).toBe("CNY");
      if (paid) {
        expect(status.channelTradeNo).toBe("4200000914202405015554393855");
        expect(status.paidAt?.toISOString()).toBe("2024-05-01T04:01:02.000Z");
      } else {
        expect(status.paidAt).toBeUndefined();
      }
      expect(fake.received[0]?.path).toBe(`/v3/pay/transactions/out-trade-no/P20240501000001?mchid=${MCH_ID}`);
      expect(fake.authorizationFailures).toEqual([]);
    });
  }

  it("reports not_found for ORDER_NOT_EXIST and RESOURCE_NOT_EXISTS", async () => {
    for (const code of ["ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"]) {
      fake.answer = () => ({ status: 404, body: json({ code, message: "订单不存在" }) });
      await expect(channel.queryPayment(trade())).resolves.toMatchObject({ state: "not_found" });
    }
  });

  it("rejects an amount that does not fit a safe integer", async () => {
    fake.answer = () => ({ status: 200, body: '{"trade_state":"SUCCESS","amount":{"total":9007199254740993,"currency":"CNY"}}' });
    await expect(channel.queryPayment(trade())).rejects.toMatchObject({ code: "UNEXPECTED_RESPONSE" });
  });
});

describe("closePayment", () => {
  it("resolves on 204", async () => {
    fake.answer = () => ({ status: 204 });
    await expect(channel.closePayment(trade())).resolves.toBeUndefined();
    expect(fake.received[0]?.path).toBe("/v3/pay/transactions/out-trade-no/P20240501000001/close");
    expect(JSON.parse(fake.received[0]?.body ?? "")).toEqual({ mchid: MCH_ID });
    expect(fake.authorizationFailures).toEqual([]);
  });

  it("throws ChannelTradePaidError when WeChat says ORDERPAID", async () => {
    fake.answer = () => ({ status: 400, body: json({ code: "ORDERPAID", message: "订单已支付" }) });
    await expect(channel.closePayment(trade())).rejects.toBeInstanceOf(ChannelTradePaidError);
  });

  it("resolves when the order does not exist or is already closed", async () => {
    for (const [status, code] of [
      [404, "ORDER_NOT_EXIST"],
      [400, "ORDER_CLOSED"],
    ] as const) {
      fake.answer = () => ({ status, body: json({ code, message: "..." }) });
      await expect(channel.closePayment(trade())).resolves.toBeUndefined();
    }
  });
});

describe("availability and response signatures", () => {
  it("turns HTTP 500 and 429 into ChannelUnavailableError", async () => {
    for (const status of [500, 429]) {
      fake.answer = () => ({ status, body: json({ code: "SYSTEM_ERROR", message: "系统异常" }), signing: "none" });
      await expect(channel.queryPayment(trade())).rejects.toBeInstanceOf(ChannelUnavailableError);
    }
  });

  it("names the PaymentChannel method, then WeChat's path, in every error", async () => {
    fake.answer = () => ({ status: 503, body: json({ code: "SYSTEM_ERROR", message: "系统异常" }), signing: "none" });
    const create = { paymentNo: "P1", amountMinor: 1n, currency: "CNY", subject: "s", expiresAt: new Date(), notifyUrl: "https://x/cb", idempotencyKey: "P1" };
    const calls: Array<[string, () => Promise<unknown>, string]> = [
      ["createPayment", () => channel.createPayment(create), "POST /v3/pay/transactions/native"],
      ["queryPayment", () => channel.queryPayment(trade()), "GET /v3/pay/transactions/out-trade-no/{out_trade_no}"],
      ["closePayment", () => channel.closePayment(trade()), "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close"],
      ["refund", () => channel.refund(refundRequest()), "POST /v3/refund/domestic/refunds"],
      ["queryRefund", () => channel.queryRefund(refundRequest()), "GET /v3/refund/domestic/refunds/{out_refund_no}"],
      ["fetchBill", () => channel.fetchBill("2024-05-01"), "GET /v3/bill/tradebill"],
    ];
    for (const [operation, run, wireMethod] of calls) {
      const error = await run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChannelUnavailableError);
      expect((error as Error).message).toBe(`wechatpay: ${operation} (${wireMethod}): HTTP 503 (unverified code SYSTEM_ERROR)`);
    }
  });

  it("names the field when a signed answer has one of the wrong type", async () => {
    fake.answer = () => ({ status: 200, body: json({ trade_state: "SUCCESS", transaction_id: 4200, amount: { total: 8888, currency: "CNY" } }) });
    const error = await channel.queryPayment(trade()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "UNEXPECTED_RESPONSE" });
    expect((error as Error).message).toContain("transaction_id is not a string: 4200");
  });

  it("turns a refused connection into ChannelUnavailableError", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = createWechatPayChannel(config({ baseUrl: `http://127.0.0.1:${port}` }));
    await expect(unreachable.queryPayment(trade())).rejects.toBeInstanceOf(ChannelUnavailableError);
  });

  for (const signing of ["none", "impostor", "tampered"] as const) {
    it(`rejects a ${signing === "none" ? "missing" : signing === "impostor" ? "foreign" : "no longer matching"} response signature`, async () => {
      fake.answer = () => ({ status: 200, body: json({ trade_state: "SUCCESS", amount: { total: 8888, currency: "CNY" } }), signing });
      const error = await channel.queryPayment(trade()).catch((e: unknown) => e);
      // Unverifiable means unknown, like an unreachable channel: never a rejection to act on.
      expect(error).toBeInstanceOf(ChannelAnswerUntrustedError);
      expect(error).toBeInstanceOf(ChannelUnavailableError);
      expect(error).toMatchObject({ code: "RESPONSE_SIGNATURE_INVALID" });
    });
  }

  it("does not act on an unsigned ORDERPAID answer", async () => {
    fake.answer = () => ({ status: 400, body: json({ code: "ORDERPAID", message: "订单已支付" }), signing: "none" });
    await expect(channel.closePayment(trade())).rejects.toMatchObject({ code: "RESPONSE_SIGNATURE_INVALID" });
  });

  it("rejects a response signed under another public key id", async () => {
    const other = createWechatPayChannel(config({ publicKeyId: "PUB_KEY_ID_SOMEONE_ELSE" }));
    fake.answer = () => ({ status: 200, body: json({ trade_state: "NOTPAY", amount: { total: 1, currency: "CNY" } }) });
    const error = await other.queryPayment(trade()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "RESPONSE_SIGNATURE_INVALID" });
    expect((error as Error).message).toContain("unknown_serial");
  });
});

describe("refunds", () => {
  it("posts the refund and maps PROCESSING", async () => {
    fake.answer = () => ({
      status: 200,
      body: json({ refund_id: "50000000382019052709732678859", out_refund_no: "R20240501000001", status: "PROCESSING", amount: { refund: 1000, total: 8888 } }),
    });
    await expect(channel.refund(refundRequest())).resolves.toEqual({
      state: "processing",
      channelRefundNo: "50000000382019052709732678859",
      detail: "PROCESSING",
    });
    expect(fake.received[0]?.path).toBe("/v3/refund/domestic/refunds");
    expect(JSON.parse(fake.received[0]?.body ?? "")).toEqual({
      out_trade_no: "P20240501000001",
      out_refund_no: "R20240501000001",
      reason: "damaged",
      notify_url: "https://pay.example.com/callbacks/wechatpay",
      amount: { refund: 1000, total: 8888, currency: "CNY" },
    });
  });

  it("passes a refusal on with WeChat's code", async () => {
    fake.answer = () => ({ status: 403, body: json({ code: "NOT_ENOUGH", message: "基本账户余额不足" }) });
    await expect(channel.refund(refundRequest())).rejects.toMatchObject({ code: "NOT_ENOUGH" });
  });

  it("queries a refund by out_refund_no", async () => {
    for (const [status, state] of [
      ["SUCCESS", "succeeded"],
      ["PROCESSING", "processing"],
      ["CLOSED", "failed"],
      ["ABNORMAL", "failed"],
    ] as const) {
      fake.answer = () => ({ status: 200, body: json({ refund_id: "5000", out_refund_no: "R20240501000001", status }) });
      await expect(channel.queryRefund(refundRequest())).resolves.toMatchObject({ state });
    }
    expect(fake.received[0]?.path).toBe("/v3/refund/domestic/refunds/R20240501000001");
    expect(fake.received[0]?.method).toBe("GET");
  });

  it("reports an unknown refund as not found, never as failed", async () => {
    fake.answer = () => ({ status: 404, body: json({ code: "RESOURCE_NOT_EXISTS", message: "退款单不存在" }) });
    await expect(channel.queryRefund(refundRequest())).resolves.toMatchObject({ state: "not_found" });
  });
});

describe("parseCallback", () => {
  function callback(
    eventType: string,
    resourcePlaintext: unknown,
    options: { associatedData?: string; apiV3Key?: string; signWith?: string; timestamp?: string; serial?: string } = {},
  ): CallbackRequest {
    const resource = encryptResource(JSON.stringify(resourcePlaintext), options.apiV3Key ?? API_V3_KEY, {
      associatedData: options.associatedData ?? "transaction",
      originalType: "transaction",
    });
    const body = json({
      id: "EV-2018022511223320873",
      create_time: "2024-05-01T12:01:03+08:00",
      resource_type: "encrypt-resource",
      event_type: eventType,
      summary: "支付成功",
      resource,
    });
    const signed = signWechatResponse({
      body,
      privateKey: options.signWith ?? platformKeys.privateKeyPem,
      publicKeyId: options.serial ?? PUBLIC_KEY_ID,
      ...(options.timestamp ? { timestamp: options.timestamp } : {}),
    });
    const headers = Object.fromEntries(Object.entries(signed).map(([name, value]) => [name.toLowerCase(), value]));
    return { headers: { ...headers, "content-type": "application/json" }, rawBody: Buffer.from(body) };
  }

  const transaction = {
    appid: APP_ID,
    mchid: MCH_ID,
    out_trade_no: "P20240501000001",
    transaction_id: "4200000914202405015554393855",
    trade_type: "NATIVE",
    trade_state: "SUCCESS",
    trade_state_desc: "支付成功",
    success_time: "2024-05-01T12:01:02+08:00",
    payer: { openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
    amount: { total: 8888, payer_total: 8888, currency: "CNY", payer_currency: "CNY" },
  };

  function rejection(request: CallbackRequest): string | undefined {
    try {
      channel.parseCallback(request);
      return undefined;
    } catch (error) {
      expect(error).toBeInstanceOf(CallbackRejectedError);
      return (error as CallbackRejectedError).reason;
    }
  }

  it("parses a verified TRANSACTION.SUCCESS into a payment notification", () => {
    expect(channel.parseCallback(callback("TRANSACTION.SUCCESS", transaction))).toEqual({
      kind: "payment",
      notificationId: "EV-2018022511223320873",
      paymentNo: "P20240501000001",
      channelTradeNo: "4200000914202405015554393855",
      state: "succeeded",
      amountMinor: 8888n,
      currency: "CNY",
      paidAt: new Date("2024-05-01T04:01:02Z"),
      channelStatus: "SUCCESS",
    });
  });

  it("parses REFUND.SUCCESS and REFUND.ABNORMAL into refund notifications", () => {
    const refund = {
      mchid: MCH_ID,
      out_trade_no: "P20240501000001",
      transaction_id: "4200000914202405015554393855",
      out_refund_no: "R20240501000001",
      refund_id: "50000000382019052709732678859",
      refund_status: "SUCCESS",
      success_time: "2024-05-01T13:00:00+08:00",
      user_received_account: "招商银行信用卡0403",
      amount: { total: 8888, refund: 1000, payer_total: 8888, payer_refund: 1000 },
    };
    expect(channel.parseCallback(callback("REFUND.SUCCESS", refund, { associatedData: "refund" }))).toEqual({
      kind: "refund",
      notificationId: "EV-2018022511223320873",
      paymentNo: "P20240501000001",
      refundNo: "R20240501000001",
      channelRefundNo: "50000000382019052709732678859",
      state: "succeeded",
      amountMinor: 1000n,
      channelStatus: "SUCCESS",
    });
    const abnormal = channel.parseCallback(callback("REFUND.ABNORMAL", { ...refund, refund_status: "ABNORMAL" }, { associatedData: "refund" }));
    expect(abnormal).toMatchObject({ kind: "refund", state: "failed", channelStatus: "ABNORMAL" });
  });

  it("ignores other verified event types", () => {
    expect(channel.parseCallback(callback("MCHTRANSFER.BILL.FINISHED", {}))).toEqual({
      kind: "ignored",
      notificationId: "EV-2018022511223320873",
      channelStatus: "MCHTRANSFER.BILL.FINISHED",
    });
  });

  it("rejects a bad signature before looking at the body", () => {
    expect(rejection(callback("TRANSACTION.SUCCESS", transaction, { signWith: impostorKeys.privateKeyPem }))).toBe("bad_signature");
    const tampered = callback("TRANSACTION.SUCCESS", transaction);
    expect(rejection({ ...tampered, rawBody: Buffer.from(tampered.rawBody.toString().replace("EV-", "EW-")) })).toBe("bad_signature");
    expect(rejection({ headers: {}, rawBody: Buffer.from("not json") })).toBe("missing_headers");
  });

  it("rejects stale timestamps and unknown serials", () => {
    const old = String(Math.floor(Date.now() / 1000) - 600);
    expect(rejection(callback("TRANSACTION.SUCCESS", transaction, { timestamp: old }))).toBe("stale_timestamp");
    expect(rejection(callback("TRANSACTION.SUCCESS", transaction, { serial: "PUB_KEY_ID_OTHER" }))).toBe("unknown_serial");
  });

  it("rejects a notification for another merchant or app", () => {
    expect(rejection(callback("TRANSACTION.SUCCESS", { ...transaction, mchid: "1900000002" }))).toBe("mchid_mismatch");
    expect(rejection(callback("TRANSACTION.SUCCESS", { ...transaction, appid: "wx0000000000000000" }))).toBe("appid_mismatch");
  });

  it("rejects a resource that does not decrypt with our APIv3 key", () => {
    expect(rejection(callback("TRANSACTION.SUCCESS", transaction, { apiV3Key: "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ" }))).toBe("decrypt_failed");
  });

  it("answers 204 with an empty body to accept, and 400 {code: FAIL} to reject", () => {
    expect(channel.acceptAnswer()).toEqual({ status: 204, contentType: "text/plain", body: "" });
    const answer = channel.rejectAnswer("bad_signature");
    expect(answer.status).toBe(400);
    expect(answer.contentType).toBe("application/json");
    expect(JSON.parse(answer.body)).toEqual({ code: "FAIL", message: "bad_signature" });
  });
});

const SAMPLE_BILL = [
  "\uFEFF交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注",
  "`2024-05-01 12:01:02,`wxd678efh567hg6787,`1900000001,`0,`,`4200000914202405015554393855,`P20240501000001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`88.88,`0.00,`0,`0,`0.00,`0.00,`,`,`Image形象店-深圳腾大-QQ公仔, 蓝色,`,`0.53000,`0.60%,`88.88,`0.00,`",
  "`2024-05-01 13:00:00,`wxd678efh567hg6787,`1900000001,`0,`,`4200000914202405015554393855,`P20240501000001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50000000382019052709732678859,`R20240501000001,`10.00,`0.00,`ORIGINAL,`SUCCESS,`Image形象店-深圳腾大-QQ公仔, 蓝色,`,`-0.06000,`0.60%,`0.00,`10.00,`",
  "`2024-05-01 14:00:00,`wxd678efh567hg6787,`1900000001,`0,`,`4200000914202405015554393856,`P20240501000002,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`MICROPAY,`REVOKED,`OTHERS,`CNY,`1.00,`0.00,`0,`0,`0.00,`0.00,`,`,`x,`,`0.00000,`0.60%,`1.00,`0.00,`",
  "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
  "`3,`89.88,`10.00,`0.00,`0.47000,`89.88,`10.00",
  "",
].join("\r\n");

/** The records of a bill's text, read as the adapter reads a downloaded file. */
async function readBill(text: string, billDate = "2024-05-01") {
  const records = [];
  for await (const record of readWechatBillLines([text], billDate, BILL_LIMITS)) records.push(record);
  return records;
}

describe("trade bill", () => {
  it("reads payments and refunds by header name, in minor units, skipping other states", async () => {
    expect(await readBill(SAMPLE_BILL)).toEqual([
      {
        kind: "payment",
        paymentNo: "P20240501000001",
        channelTradeNo: "4200000914202405015554393855",
        amountMinor: 8888n,
        feeMinor: 53n,
        currency: "CNY",
        occurredAt: new Date("2024-05-01T04:01:02Z"),
        line: 2,
      },
      {
        kind: "refund",
        paymentNo: "P20240501000001",
        channelTradeNo: "4200000914202405015554393855",
        refundNo: "R20240501000001",
        amountMinor: 1000n,
        feeMinor: -6n,
        currency: "CNY",
        occurredAt: new Date("2024-05-01T05:00:00Z"),
        line: 3,
      },
    ]);
  });

  it("reads columns by name, not position", async () => {
    const [header = "", ...rest] = SAMPLE_BILL.replace("\uFEFF", "").split("\r\n");
    const names = header.split(",");
    const swap = (fields: string[]) => [fields[6], fields[0], ...fields.slice(1, 6), ...fields.slice(7)];
    const reordered = [
      swap(names).join(","),
      ...rest.slice(0, 3).map((line) => `\`${swap(line.slice(1).split(",`") as string[]).join(",`")}`),
      ...rest.slice(3),
    ].join("\n");
    expect(await readBill(reordered)).toEqual(await readBill(SAMPLE_BILL));
  });

  it("refuses fees with sub-fen digits, rows that do not fit the header and a file without a header, naming the line", async () => {
    await expect(readBill(SAMPLE_BILL.replace("`0.53000", "`0.53400"))).rejects.toThrow(/line 2: bad amount "0.53400" in column 手续费/);
    await expect(readBill(SAMPLE_BILL.replace(",`0.60%,`88.88", ",`88.88"))).rejects.toThrow(/line 2: expected 27/);
    await expect(readBill("nothing here\r\n")).rejects.toThrow(/line 1: no detail header/);
  });

  it("writes a bill the reader reads back", async () => {
    const records = await readBill(SAMPLE_BILL);
    const rows = records.map(({ line: _line, ...record }) => ({ ...record, feeMinor: record.feeMinor < 0n ? -record.feeMinor : record.feeMinor }));
    let written = "";
    for await (const chunk of wechatBillChunks(rows, { appId: APP_ID, mchId: MCH_ID })) written += chunk;
    expect(written.startsWith("\uFEFF交易时间,公众账号ID,")).toBe(true);
    expect(written).toContain("`-0.06000");
    expect(written).toContain("\r\n总交易单数,");
    expect(await readBill(written)).toEqual(records);
  });
});

describe("fetchBill", () => {
  function serveBill(bill: string, hashOverride?: string) {
    fake.answer = (request) => {
      if (request.path.startsWith("/v3/bill/tradebill")) {
        const hash = hashOverride ?? createHash("sha1").update(bill).digest("hex");
        return { status: 200, body: json({ hash_type: "SHA1", hash_value: hash, download_url: `${baseUrl}/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO` }) };
      }
      // WeChat does not sign bill files.
      return { status: 200, body: bill, signing: "none", contentType: "application/octet-stream" };
    };
  }

  it("applies for the bill, downloads it with a signed request, checks its SHA1 and parses it", async () => {
    serveBill(SAMPLE_BILL);
    const records = await billRecords(channel.fetchBill("2024-05-01"));
    expect(records.map((record) => [record.kind, record.amountMinor])).toEqual([
      ["payment", 8888n],
      ["refund", 1000n],
    ]);
    expect(fake.received.map((request) => request.path)).toEqual([
      "/v3/bill/tradebill?bill_date=2024-05-01&bill_type=ALL",
      "/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO",
    ]);
    expect(fake.authorizationFailures).toEqual([]);
  });

  it("refuses a file whose SHA1 does not match, as a bill format error", async () => {
    serveBill(SAMPLE_BILL, "0".repeat(40));
    const error = await channel.fetchBill("2024-05-01").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BillFormatError);
    expect((error as BillFormatError).detail).toMatch(/^hash mismatch/);
  });

  it("returns no records when WeChat has no statement for the day", async () => {
    fake.answer = () => ({ status: 400, body: json({ code: "NO_STATEMENT_EXIST", message: "请求的账单文件不存在" }) });
    expect(await billRecords(channel.fetchBill("2024-05-02"))).toEqual([]);
  });

  it("validates the bill date", async () => {
    await expect(channel.fetchBill("20240501")).rejects.toMatchObject({ code: "INVALID_BILL_DATE" });
  });
});
