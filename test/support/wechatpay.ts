/**
 * Fixtures for the WeChat Pay integration tests: payment requests, callbacks signed and encrypted
 * like WeChat's (or forged on purpose).
 */
import { encryptResource, signWechatResponse } from "../../src/channels/wechatpay/wechatpay-signature.js";
import { toWechatTime } from "../../src/channels/wechatpay/wechatpay-time.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { type TestApp, testKeys } from "./test-app.js";

let sequence = 0;

/** A fresh merchant order number. */
export function orderNo(): string {
  sequence += 1;
  return `wx-ord-${Date.now()}-${sequence}`;
}

/** A CreatePayment request through WeChat Pay: 88.88 CNY for two items. */
export function wechatPayment(overrides: Record<string, unknown> = {}) {
  return {
    merchantOrderNo: orderNo(),
    currency: "CNY",
    amount: 8888n,
    channel: Channel.WECHAT_PAY,
    subject: "龙井茶 250g",
    items: [{ sku: "TEA-LJ-250", name: "龙井茶 250g", quantity: 2n, unitAmount: 4444n }],
    ...overrides,
  };
}

/** Polls `read` every 25 ms until `done` holds or the time is up; returns the last value either way. */
/** A decrypted `TRANSACTION.SUCCESS` resource for one of our payments, as WeChat writes it. */
export function transactionResource(paymentNo: string, amountMinor: number, overrides: Record<string, unknown> = {}) {
  const keys = testKeys().wechatpay;
  return {
    appid: keys.appId,
    mchid: keys.mchId,
    out_trade_no: paymentNo,
    transaction_id: `4200000001${Date.now()}`.slice(0, 28),
    trade_type: "NATIVE",
    trade_state: "SUCCESS",
    trade_state_desc: "支付成功",
    bank_type: "OTHERS",
    attach: "",
    success_time: toWechatTime(new Date()),
    payer: { openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
    amount: { total: amountMinor, payer_total: amountMinor, currency: "CNY", payer_currency: "CNY" },
    ...overrides,
  };
}

/** How to sign and encrypt a callback; the defaults are WeChat's own. */
export interface CallbackOptions {
  id?: string;
  eventType?: string;
  apiV3Key?: string;
  signingKeyPem?: string;
  publicKeyId?: string;
  timestamp?: string;
}

/** A callback request as WeChat posts it: JSON envelope with the encrypted resource, `Wechatpay-*` headers. */
export function wechatCallback(resource: unknown, options: CallbackOptions = {}): { headers: Record<string, string>; body: string } {
  const keys = testKeys().wechatpay;
  const originalType = (options.eventType ?? "TRANSACTION.SUCCESS").startsWith("REFUND.") ? "refund" : "transaction";
  const body = JSON.stringify({
    id: options.id ?? `EV-test-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    create_time: toWechatTime(new Date()),
    resource_type: "encrypt-resource",
    event_type: options.eventType ?? "TRANSACTION.SUCCESS",
    summary: "支付成功",
    resource: encryptResource(JSON.stringify(resource), options.apiV3Key ?? keys.apiV3Key, {
      associatedData: originalType,
      originalType,
    }),
  });
  const headers = signWechatResponse({
    body,
    privateKey: options.signingKeyPem ?? keys.platformPrivateKeyPem,
    publicKeyId: options.publicKeyId ?? keys.publicKeyId,
    ...(options.timestamp ? { timestamp: options.timestamp } : {}),
  });
  return { headers: { "content-type": "application/json", ...headers }, body };
}

/** Posts a callback to the app's shim and returns its answer. */
export async function postWechatCallback(t: TestApp, callback: { headers: Record<string, string>; body: string | Buffer }) {
  const response = await fetch(`${t.app.httpUrl}/callbacks/wechatpay`, { method: "POST", headers: callback.headers, body: callback.body });
  return { status: response.status, body: await response.text() };
}
