/**
 * The wire pieces of Alipay and WeChat Pay payouts that need no network: WeChat's `user_name`
 * encryption, payee shape checks and their bounds, status mappings, and the simulators' payout
 * book bounds.
 */
import { constants, createPrivateKey, generateKeyPairSync, privateDecrypt } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ALIPAY_PAYEE_NAME_MAX_CHARS,
  mapAlipayTransferStatus,
  readAlipayTransferAnswer,
  validateAlipayPayee,
} from "../../src/channels/alipay/alipay-payouts.js";
import { type DevChannelKeys, generateDevChannelKeys } from "../../src/channels/dev-keys.js";
import {
  decryptWechatSensitiveField,
  encryptWechatSensitiveField,
  mapWechatDetailStatus,
  readWechatTransferDetail,
  validateWechatPayee,
  WECHATPAY_PAYEE_NAME_MAX_CHARS,
} from "../../src/channels/wechatpay/wechatpay-payouts.js";
import { loadWechatPublicKey } from "../../src/channels/wechatpay/wechatpay-signature.js";
import { WireFieldError, WireReader } from "../../src/channels/wire-fields.js";
import { AlipayBook } from "../../src/simulator/alipay/alipay-book.js";
import { GatewayError } from "../../src/simulator/alipay/alipay-params.js";
import { alipayPayouts, MAX_ALIPAY_PAYOUTS, transfer } from "../../src/simulator/alipay/alipay-payouts.js";
import type { SimulatorContext } from "../../src/simulator/channel-side.js";
import { FaultRegistry } from "../../src/simulator/faults.js";
import { TimerSet } from "../../src/simulator/notifier.js";
import { TradeStore } from "../../src/simulator/trade-store.js";
import { WechatBook } from "../../src/simulator/wechatpay/wechatpay-book.js";
import { WechatApiError } from "../../src/simulator/wechatpay/wechatpay-params.js";
import { createTransferBatch, MAX_WECHATPAY_PAYOUT_BATCHES, wechatPayoutBatches } from "../../src/simulator/wechatpay/wechatpay-payouts.js";

let keys: DevChannelKeys;

beforeAll(() => {
  keys = generateDevChannelKeys();
});

/** A simulator context with no listener: timers stopped, so nothing runs after a call. */
function quietContext(): SimulatorContext {
  const timers = new TimerSet();
  timers.stop();
  return { trades: new TradeStore(), faults: new FaultRegistry(), timers, notifier: undefined as never, timeScale: 1 };
}

describe("WeChat Pay user_name encryption", () => {
  it("encrypts with RSA-OAEP (SHA-1) under the WeChat Pay public key, so the platform's private key decrypts it", () => {
    const publicKey = loadWechatPublicKey(keys.wechatpay.platformPublicKeyPem);
    const ciphertext = encryptWechatSensitiveField("张三", publicKey);
    const plaintext = privateDecrypt(
      { key: keys.wechatpay.platformPrivateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      Buffer.from(ciphertext, "base64"),
    );
    expect(plaintext.toString("utf8")).toBe("张三");
    expect(Buffer.from(ciphertext, "base64")).toHaveLength(256);
  });

  it("is randomised (a new ciphertext each time) and does not decrypt with another key or as PKCS#1 v1.5", () => {
    const publicKey = loadWechatPublicKey(keys.wechatpay.platformPublicKeyPem);
    const first = encryptWechatSensitiveField("李四", publicKey);
    const second = encryptWechatSensitiveField("李四", publicKey);
    expect(first).not.toBe(second);
    expect(decryptWechatSensitiveField(second, createPrivateKey(keys.wechatpay.platformPrivateKeyPem))).toBe("李四");

    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    expect(() => decryptWechatSensitiveField(first, other)).toThrow();
    expect(() =>
      privateDecrypt({ key: keys.wechatpay.platformPrivateKeyPem, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(first, "base64")),
    ).toThrow();
  });
});

describe("payee checks", () => {
  it("Alipay: ALIPAY_USER_ID is 2088 and 12 digits; ALIPAY_LOGON_ID is an e-mail (at most 100 characters) or a mainland mobile, with a name", () => {
    expect(validateAlipayPayee({ type: "ALIPAY_USER_ID", account: "2088000000000001" })).toBeUndefined();
    for (const account of ["2088", "20880000000000011", "1088000000000001", "2088abcdefghijkl"]) {
      expect(validateAlipayPayee({ type: "ALIPAY_USER_ID", account })).toBeDefined();
    }
    const name = "王五";
    expect(validateAlipayPayee({ type: "ALIPAY_LOGON_ID", account: "13800138000", name })).toBeUndefined();
    expect(validateAlipayPayee({ type: "ALIPAY_LOGON_ID", account: "12800138000", name })).toBeDefined();
    expect(validateAlipayPayee({ type: "ALIPAY_LOGON_ID", account: "payee@example.com", name })).toBeUndefined();
    expect(validateAlipayPayee({ type: "ALIPAY_LOGON_ID", account: "payee@example.com" })).toMatch(/name/);
    const longEmail = `${"a".repeat(64)}@${"b".repeat(30)}.example`;
    expect(longEmail.length).toBeGreaterThan(100);
    expect(validateAlipayPayee({ type: "ALIPAY_LOGON_ID", account: longEmail, name })).toBeDefined();
    expect(validateAlipayPayee({ type: "BANK_ACCOUNT", account: "ba_123456", name })).toMatch(/not BANK_ACCOUNT/);
  });

  it("names are 1 to 64 characters without control characters, on both channels", () => {
    const checks: [string, (name: string) => string | undefined, number][] = [
      ["alipay", (name) => validateAlipayPayee({ type: "ALIPAY_USER_ID", account: "2088000000000001", name }), ALIPAY_PAYEE_NAME_MAX_CHARS],
      ["wechatpay", (name) => validateWechatPayee({ type: "WECHAT_OPENID", account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", name }), WECHATPAY_PAYEE_NAME_MAX_CHARS],
    ];
    for (const [channel, check, max] of checks) {
      expect(max, channel).toBe(64);
      expect(check("名".repeat(max)), channel).toBeUndefined();
      expect(check("名".repeat(max + 1)), channel).toMatch(/1 to 64/);
      expect(check(""), channel).toMatch(/1 to 64/);
      expect(check("   "), channel).toMatch(/1 to 64/);
      expect(check("a\u0000b"), channel).toMatch(/control/);
    }
  });

  it("WeChat: an openid is 16 to 64 of [A-Za-z0-9_-]", () => {
    const openid = (account: string) => validateWechatPayee({ type: "WECHAT_OPENID", account });
    expect(openid("a".repeat(16))).toBeUndefined();
    expect(openid("a".repeat(64))).toBeUndefined();
    expect(openid("a".repeat(15))).toBeDefined();
    expect(openid("a".repeat(65))).toBeDefined();
    expect(openid("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")).toBeUndefined();
    expect(openid("oUpF8uMuAJO M2pxb1Q9zNjWeS6o")).toBeDefined();
  });
});

describe("status mapping", () => {
  it("Alipay: SUCCESS paid; DEALING, WAIT_PAY, INIT processing; FAIL, REFUND (bounced), CLOSED failed; anything else unexpected", () => {
    expect(["SUCCESS", "DEALING", "WAIT_PAY", "INIT", "FAIL", "REFUND", "CLOSED"].map(mapAlipayTransferStatus)).toEqual([
      "paid",
      "processing",
      "processing",
      "processing",
      "failed",
      "failed",
      "failed",
    ]);
    expect(() => readAlipayTransferAnswer(new WireReader({ status: "PENDING" }))).toThrow(WireFieldError);
    expect(readAlipayTransferAnswer(new WireReader({ status: "FAIL", order_id: "1", fail_reason: "x", trans_amount: "1.00" }))).toEqual({
      status: "FAIL",
      state: "failed",
      orderId: "1",
      failReason: "x",
      transAmountMinor: 100n,
    });
  });

  it("WeChat: INIT, WAIT_PAY, PROCESSING processing; SUCCESS paid; FAIL, REFUND failed; a detail without its amount is unexpected", () => {
    expect(["INIT", "WAIT_PAY", "PROCESSING", "SUCCESS", "FAIL", "REFUND", "CLOSED"].map(mapWechatDetailStatus)).toEqual([
      "processing",
      "processing",
      "processing",
      "paid",
      "failed",
      "failed",
      undefined,
    ]);
    expect(() => readWechatTransferDetail(new WireReader({ detail_status: "SUCCESS", batch_id: "131" }))).toThrow(/transfer_amount is missing/);
    expect(() => readWechatTransferDetail(new WireReader({ detail_status: "SUCCESS", batch_id: "131", transfer_amount: -1 }))).toThrow(
      WireFieldError,
    );
  });
});

describe("simulator payout books", () => {
  it(`Alipay keeps at most ${MAX_ALIPAY_PAYOUTS} transfers, forgetting the oldest`, () => {
    const book = new AlipayBook(quietContext(), keys.alipay);
    const biz = (n: number) => ({
      out_biz_no: `T${n}`,
      trans_amount: "1.00",
      product_code: "TRANS_ACCOUNT_NO_PWD",
      biz_scene: "DIRECT_TRANSFER",
      order_title: "t",
      payee_info: { identity: "2088000000000001", identity_type: "ALIPAY_USER_ID" },
    });
    for (let n = 0; n <= MAX_ALIPAY_PAYOUTS; n++) transfer(book, biz(n));
    const payouts = alipayPayouts(book);
    expect(payouts.size).toBe(MAX_ALIPAY_PAYOUTS);
    expect(payouts.has("T0")).toBe(false);
    expect(payouts.has("T1")).toBe(true);
    expect(payouts.has(`T${MAX_ALIPAY_PAYOUTS}`)).toBe(true);
  });

  it(`WeChat Pay keeps at most ${MAX_WECHATPAY_PAYOUT_BATCHES} batches, forgetting the oldest`, () => {
    const book = new WechatBook(quietContext(), keys.wechatpay);
    const body = (n: number) => ({
      appid: keys.wechatpay.appId,
      out_batch_no: `T${String(n).padStart(6, "0")}`,
      batch_name: "t",
      batch_remark: "t",
      total_amount: 100,
      total_num: 1,
      transfer_detail_list: [{ out_detail_no: `D${String(n).padStart(6, "0")}`, transfer_amount: 100, transfer_remark: "t", openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" }],
    });
    for (let n = 0; n <= MAX_WECHATPAY_PAYOUT_BATCHES; n++) createTransferBatch(book, body(n), undefined);
    const batches = wechatPayoutBatches(book);
    expect(batches.size).toBe(MAX_WECHATPAY_PAYOUT_BATCHES);
    expect(batches.has("T000000")).toBe(false);
    expect(batches.has("T000001")).toBe(true);
  });
});

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected a refusal");
}

describe("simulator payout refusals", () => {
  const openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
  const batch = (detail: Record<string, unknown>, amount = 100) => ({
    appid: keys.wechatpay.appId,
    out_batch_no: `B${Date.now()}`,
    batch_name: "t",
    batch_remark: "t",
    total_amount: amount,
    total_num: 1,
    transfer_detail_list: [{ out_detail_no: "D00001", transfer_amount: amount, transfer_remark: "t", openid, ...detail }],
  });
  const paramError = (run: () => unknown) => {
    const error = thrown(run) as WechatApiError;
    expect(error).toBeInstanceOf(WechatApiError);
    expect([error.status, error.code]).toEqual([400, "PARAM_ERROR"]);
    return error.message;
  };

  it("WeChat: a user_name needs Wechatpay-Serial = the public key id and must decrypt with the platform key; 2000 yuan and more need one", () => {
    const book = new WechatBook(quietContext(), keys.wechatpay);
    const publicKey = loadWechatPublicKey(keys.wechatpay.platformPublicKeyPem);
    const name = encryptWechatSensitiveField("张三", publicKey);
    expect(paramError(() => createTransferBatch(book, batch({ user_name: name }), undefined))).toMatch(/Wechatpay-Serial/);
    expect(paramError(() => createTransferBatch(book, batch({ user_name: "bm90IGVuY3J5cHRlZA==" }), keys.wechatpay.publicKeyId))).toMatch(/解密失败/);
    expect(paramError(() => createTransferBatch(book, batch({}, 200_000), undefined))).toMatch(/user_name/);
    expect(paramError(() => createTransferBatch(book, batch({}, 9), undefined))).toMatch(/0\.1/);
    expect(paramError(() => createTransferBatch(book, batch({ transfer_remark: "x".repeat(33) }), undefined))).toMatch(/32/);
    expect(createTransferBatch(book, batch({ user_name: name }, 200_000), keys.wechatpay.publicKeyId).status).toBe(200);
    expect([...wechatPayoutBatches(book).values()].at(-1)?.details[0]?.userName).toBe("张三");
  });

  it("Alipay: the same out_biz_no with another payee is PAYMENT_INFO_INCONSISTENCY; under 0.10 yuan is EXCEED_LIMIT_SM_MIN_AMOUNT", () => {
    const book = new AlipayBook(quietContext(), keys.alipay);
    const biz = (identity: string, amount = "1.00") => ({
      out_biz_no: "T1",
      trans_amount: amount,
      product_code: "TRANS_ACCOUNT_NO_PWD",
      biz_scene: "DIRECT_TRANSFER",
      order_title: "t",
      payee_info: { identity, identity_type: "ALIPAY_USER_ID" },
    });
    const first = transfer(book, biz("2088000000000001"));
    expect(transfer(book, biz("2088000000000001"))).toEqual(first);
    const refusal = (run: () => unknown) => {
      const error = thrown(run);
      expect(error).toBeInstanceOf(GatewayError);
      return [(error as GatewayError).code, (error as GatewayError).subCode];
    };
    expect(refusal(() => transfer(book, biz("2088000000000002")))).toEqual(["40004", "PAYMENT_INFO_INCONSISTENCY"]);
    expect(refusal(() => transfer(book, { ...biz("2088000000000001", "0.09"), out_biz_no: "T2" }))).toEqual(["40004", "EXCEED_LIMIT_SM_MIN_AMOUNT"]);
  });
});
