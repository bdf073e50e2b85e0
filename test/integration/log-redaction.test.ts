/**
 * The logs of a busy run at LOG_LEVEL=trace hold none of the secrets the run used: the admin token,
 * merchants' API keys (including a wrong one tried), webhook secrets (first and rotated), a card
 * payment's client_secret, a payee account, the data encryption key and the channels' keys. The run
 * covers every kind of line the service writes (RPCs, channel calls, callbacks, webhook deliveries),
 * and the test checks those lines are there, so an empty log cannot pass it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { PayeeAccountType } from "../../gen/payments/v1/settlement_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { capturingLogger } from "../support/log-lines.js";
import { ADMIN_TOKEN, SIMULATOR_CONTROL_TOKEN, startTestApp, type TestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";
import { startReceiver, type WebhookReceiver } from "../support/webhook-fixtures.js";
import { fundMerchant } from "../support/funding.js";

const PAYEE_ACCOUNT = "2088777766665555";
const WRONG_API_KEY = "sk_live_wrong_key_that_is_long_enough_0123456789";

const logs = capturingLogger("trace");
let t: TestApp;
let receiver: WebhookReceiver;

beforeAll(async () => {
  const defaults = loadConfig({});
  receiver = await startReceiver();
  t = await startTestApp({
    logger: logs.logger,
    runEventWorkers: true,
    config: {
      notifyUrls: { allowHttp: true, allowPrivateNetworks: true },
      events: { ...defaults.events, pollIntervalMs: 50 },
    },
  });
  await t.registerCardWebhook();
});
afterAll(async () => {
  await t?.stop();
  await receiver?.close();
});


describe("a run's logs", () => {
  it("hold no secret the run used, while holding a line for every RPC, channel call, callback and delivery", async () => {
    const created = await t.grpc.merchants.createMerchant({ name: "Logged Shop", notifyUrl: receiver.url }, t.adminHeaders);
    const merchant = { id: created.merchant!.id, headers: { authorization: `Bearer ${created.apiKey}` } };

    // A payment paid through the simulator (the callback comes to the shim), then refunded.
    const alipay = (
      await t.grpc.payments.createPayment(
        { merchantOrderNo: "log-1", currency: "CNY", amount: 2000n, channel: Channel.ALIPAY, subject: "Tea" },
        merchant.headers,
      )
    ).payment!;
    t.simulator.pay("alipay", alipay.paymentNo);
    await eventually(() => logs.text(), (text) => text.includes('"callback":"alipay"') && text.includes('"verdict":"applied"'));
    await t.grpc.payments.refundPayment({ paymentId: alipay.id, merchantRefundNo: "log-r1", amount: 500n, reason: "chipped" }, merchant.headers);

    // A card payment the shopper's browser confirms: its action is a client_secret.
    const card = (
      await t.grpc.payments.createPayment(
        { merchantOrderNo: "log-2", currency: "USD", amount: 1999n, channel: Channel.CARD, subject: "Cup", paymentMethod: "pm_card_visa" },
        merchant.headers,
      )
    ).payment!;
    const clientSecret = card.action!.action.value as string;
    expect(clientSecret).toMatch(/_secret_/);
    t.simulator.pay("card", card.paymentNo);
    await eventually(() => logs.text(), (text) => text.includes('"callback":"card"'));

    // A wrong API key, refused.
    await grpcError(t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: alipay.id } } }, { authorization: `Bearer ${WRONG_API_KEY}` }));

    // A rotated webhook secret; a settlement account with a payee; a payout sent through the channel.
    const rotated = await t.grpc.merchants.rotateWebhookSecret({ merchantId: merchant.id, overlapSeconds: 60 }, t.adminHeaders);
    await t.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: PAYEE_ACCOUNT },
      t.adminHeaders,
    );
    await fundMerchant(t.app.uow, merchant.id, 20_000n);
    await t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 5_000n }, merchant.headers);
    await t.app.payouts.runOnce();

    // Webhooks for all of it reach the merchant's endpoint.
    await eventually(() => receiver.received.length, (n) => n >= 5);
    await eventually(() => logs.text(), (text) => text.includes('"msg":"webhook delivery"'));

    // A careless line carrying secrets in fields, as a future call site might write it: the
    // configured redaction removes them wherever they sit in the first three levels.
    t.app.telemetry.logger.info(
      { merchant: { apiKey: created.apiKey, settlement: { payee: PAYEE_ACCOUNT } }, webhook_secret: rotated.webhookSecret, action: { client_secret: clientSecret } },
      "probe",
    );
    const text = logs.text();
    expect(text).toContain('"apiKey":"[redacted]"');
    const records = logs.records();
    const messages = new Set(records.map((record) => record.msg));
    for (const message of ["rpc", "channel call", "callback", "webhook delivery"]) expect(messages, `no "${message}" line`).toContain(message);
    for (const record of records) expect(record).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) });
    expect(records.some((record) => record.msg === "rpc" && record.payment_id === alipay.id && record.merchant_id === merchant.id)).toBe(true);
    expect(records.some((record) => record.msg === "channel call" && record.operation === "sendPayout" && record.outcome === "answer")).toBe(true);

    const { config } = t;
    const secrets: Record<string, string> = {
      "admin token": ADMIN_TOKEN,
      "API key": created.apiKey,
      "wrong API key": WRONG_API_KEY,
      "webhook secret": created.webhookSecret,
      "rotated webhook secret": rotated.webhookSecret,
      "client secret": clientSecret,
      "payee account": PAYEE_ACCOUNT,
      "data encryption key": config.dataEncryptionKey,
      "simulator control token": SIMULATOR_CONTROL_TOKEN,
      "card secret key": config.card!.secretKey,
      "card webhook secret": config.card!.webhookSecret,
      "WeChat Pay API v3 key": config.wechatpay!.apiV3Key,
      "Alipay private key": pemBody(config.alipay!.appPrivateKeyPem),
      "WeChat Pay private key": pemBody(config.wechatpay!.mchPrivateKeyPem),
    };
    for (const [name, secret] of Object.entries(secrets)) {
      expect(secret.length, name).toBeGreaterThanOrEqual(16);
      expect(text.includes(secret), `the ${name} is in the log`).toBe(false);
    }
  });

  it("keep at most 64 characters of an id a request names, however long the request's is", async () => {
    const merchant = await t.createMerchant("Long Id Shop");
    const longId = "A".repeat(50_000);
    await grpcError(t.grpc.payments.refundPayment({ paymentId: longId, merchantRefundNo: "r-long", amount: 1n }, merchant.headers));
    const line = logs.records().find((record) => record.msg === "rpc" && typeof record.payment_id === "string" && record.payment_id.startsWith("AAAA"));
    expect(line).toMatchObject({ code: "INVALID_ARGUMENT", payment_id: `${"A".repeat(64)}...` });
    expect(logs.text().includes("A".repeat(65))).toBe(false);
  });
});

/** A stretch from the middle of a PEM key: what a leaked key would show. */
function pemBody(pem: string): string {
  const body = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return body.slice(100, 160);
}
