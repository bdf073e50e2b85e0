/**
 * WeChat Pay-only faults through the whole app on MySQL: requests WeChat refuses for their
 * signature, and callbacks corrupted or forged in every way WeChat's scheme can be (body changed
 * after signing, another key or key id, a timestamp outside the window, another APIv3 key, a
 * corrupted ciphertext, another merchant or app). The faults every channel shares are in
 * channel-contract.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { FilterQuery } from "@mikro-orm/core";
import { CallbackLog, type CallbackLogRow } from "../../src/callbacks/callback-entities.js";
import { ChannelRejectedError } from "../../src/channels/channel.js";
import { buildAuthorization, signWechatResponse } from "../../src/channels/wechatpay/wechatpay-signature.js";
import { createWechatPayChannel } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { postWechatCallback, transactionResource, wechatCallback, wechatPayment } from "../support/wechatpay.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("WeChat Fault Shop");
});
afterEach(() => t.simulator.clearFaults());
afterAll(() => t?.stop());

function lookup(id: string) {
  return { lookup: { key: { case: "paymentId" as const, value: id } } };
}

async function statusOf(id: string) {
  return (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment?.status;
}

async function create(overrides: Record<string, unknown> = {}) {
  return (await t.grpc.payments.createPayment(wechatPayment(overrides), merchant.headers)).payment!;
}

function logCount(where: FilterQuery<CallbackLogRow>): Promise<number> {
  return t.app.db.em().count(CallbackLog, where);
}

describe("requests WeChat refuses", () => {
  it("WeChat refuses a request signed with another merchant key (401 SIGN_ERROR) or not signed at all", async () => {
    const keys = testKeys().wechatpay;
    const config = { ...t.config.wechatpay!, timeoutMs: 2_000 };
    const impostor = createWechatPayChannel({ ...config, mchPrivateKeyPem: keys.platformPrivateKeyPem });
    const refused = await impostor
      .queryPayment({ paymentNo: "P-unknown-000001", amountMinor: 1n, currency: "CNY" })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ChannelRejectedError);
    expect(refused).toMatchObject({ code: "SIGN_ERROR" });

    const path = `/wechatpay/v3/pay/transactions/out-trade-no/P-unknown-000001?mchid=${keys.mchId}`;
    const unsigned = await fetch(`${t.simulator.url}${path}`);
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ code: "SIGN_ERROR" });
    expect(unsigned.headers.get("wechatpay-signature")).toBeTruthy();

    // The signature covers the full request target: signing the path without the query does not pass.
    const partial = buildAuthorization({
      mchId: keys.mchId,
      serialNo: keys.mchSerialNo,
      privateKey: keys.mchPrivateKeyPem,
      method: "GET",
      pathWithQuery: path.split("?")[0]!,
      body: "",
    });
    expect((await fetch(`${t.simulator.url}${path}`, { headers: { authorization: partial } })).status).toBe(401);
    const whole = buildAuthorization({
      mchId: keys.mchId,
      serialNo: keys.mchSerialNo,
      privateKey: keys.mchPrivateKeyPem,
      method: "GET",
      pathWithQuery: path,
      body: "",
    });
    const answer = await fetch(`${t.simulator.url}${path}`, { headers: { authorization: whole } });
    expect(answer.status).toBe(404);
    expect(await answer.json()).toMatchObject({ code: "ORDER_NOT_EXIST" });
  });
});

describe("corrupted and forged callbacks", () => {
  it("refuses every corrupted callback with its reason, changing nothing, and applies the genuine one once", async () => {
    const payment = await create();
    const keys = testKeys().wechatpay;
    const resource = transactionResource(payment.paymentNo, 8888);
    const genuine = wechatCallback(resource);
    const flipped = JSON.parse(genuine.body);
    const sealed = Buffer.from(flipped.resource.ciphertext, "base64");
    sealed[0] = (sealed[0] as number) ^ 0xff;
    flipped.resource.ciphertext = sealed.toString("base64");

    const cases: { name: string; callback: { headers: Record<string, string>; body: string }; reason: string }[] = [
      {
        name: "body changed after signing",
        callback: { ...genuine, body: genuine.body.replace('"summary":"支付成功"', '"summary":"支付成功 "') },
        reason: "bad_signature",
      },
      {
        name: "signed by another key",
        callback: wechatCallback(resource, { signingKeyPem: keys.mchPrivateKeyPem }),
        reason: "bad_signature",
      },
      {
        name: "no signature headers",
        callback: { headers: { "content-type": "application/json" }, body: genuine.body },
        reason: "missing_headers",
      },
      {
        name: "signed a quarter of an hour ago",
        callback: wechatCallback(resource, { timestamp: String(Math.floor(Date.now() / 1000) - 900) }),
        reason: "stale_timestamp",
      },
      {
        name: "another public key id",
        callback: wechatCallback(resource, { publicKeyId: "PUB_KEY_ID_0000000000000000000000000000" }),
        reason: "unknown_serial",
      },
      {
        name: "encrypted with another APIv3 key",
        callback: wechatCallback(resource, { apiV3Key: "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ" }),
        reason: "decrypt_failed",
      },
      { name: "ciphertext corrupted, then signed", callback: signedBody(JSON.stringify(flipped)), reason: "decrypt_failed" },
      { name: "another merchant's transaction", callback: wechatCallback({ ...resource, mchid: "1900000999" }), reason: "mchid_mismatch" },
      {
        name: "another app's transaction",
        callback: wechatCallback({ ...resource, appid: "wx0000000000000000" }),
        reason: "appid_mismatch",
      },
      { name: "signed, but not JSON", callback: signedBody("id=EV-1&event_type=TRANSACTION.SUCCESS"), reason: "malformed_body" },
    ];
    for (const { name, callback, reason } of cases) {
      const answer = await postWechatCallback(t, callback);
      expect({ name, status: answer.status, body: JSON.parse(answer.body) }).toEqual({
        name,
        status: 400,
        body: { code: "FAIL", message: reason },
      });
    }
    const rejected = await t.app.db
      .em()
      .find(CallbackLog, { channel: "wechatpay", verdict: "rejected" }, { orderBy: { id: "desc" }, limit: cases.length });
    expect(rejected.map((log) => log.reason).reverse()).toEqual(cases.map((c) => c.reason));
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);

    expect(await postWechatCallback(t, genuine)).toEqual({ status: 204, body: "" });
    expect(await postWechatCallback(t, genuine)).toEqual({ status: 204, body: "" });
    expect(await statusOf(payment.id)).toBe(PaymentStatus.SUCCEEDED);
    expect(await logCount({ paymentId: payment.id, verdict: "applied" })).toBe(1);
    expect(await logCount({ paymentId: payment.id, verdict: "duplicate" })).toBe(1);
  });
});

/** Any body, with valid `Wechatpay-*` signature headers over it. */
function signedBody(body: string): { headers: Record<string, string>; body: string } {
  const keys = testKeys().wechatpay;
  const headers = signWechatResponse({ body, privateKey: keys.platformPrivateKeyPem, publicKeyId: keys.publicKeyId });
  return { headers: { "content-type": "application/json", ...headers }, body };
}
