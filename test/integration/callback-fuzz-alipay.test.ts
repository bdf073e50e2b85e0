/**
 * 1,000 corrupted Alipay notifies, generated with fast-check from one valid signed notify for a
 * pending payment, posted over HTTP to `/callbacks/alipay`: byte flips, insertions and deletions,
 * a dropped or broken `sign`, signed fields changed under the old signature, wrong fields signed
 * with Alipay's key, other charsets, garbage, an empty body and bodies over the 64 KiB limit. None may be answered `success`, and
 * none may change anything: the payment stays PENDING, no outbox event, no inbox row.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signNotifyParams } from "../../src/channels/alipay/alipay-signature.js";
import { CallbackInbox, CallbackLog } from "../../src/callbacks/callback-entities.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { encodeGbk } from "../../src/simulator/bill-files.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";

const RUNS = 1000;
const MAX_CALLBACK_BYTES = 64 * 1024;
const FORM = "application/x-www-form-urlencoded; charset=utf-8";

/** One corrupted delivery: what was done (for the tally) and the bytes sent. */
interface Corruption {
  kind: string;
  body: Buffer;
  contentType: string;
}

let t: TestApp;
let merchantHeaders: Record<string, string>;
let paymentId: string;
let baseParams: Record<string, string>;
let baseBody: Buffer;

beforeAll(async () => {
  t = await startTestApp();
  const merchant = await t.createMerchant("Fuzzed Tea");
  merchantHeaders = merchant.headers;
  const created = await t.grpc.payments.createPayment(
    { merchantOrderNo: "fuzz-1", currency: "CNY", amount: 8888n, channel: Channel.ALIPAY, subject: "乌龙茶 250g" },
    merchant.headers,
  );
  const payment = created.payment!;
  paymentId = payment.id;
  const keys = testKeys().alipay;
  baseParams = {
    notify_time: "2026-11-22 10:00:00",
    notify_type: "trade_status_sync",
    notify_id: "fuzz0000000000000000000000000000001",
    app_id: keys.appId,
    auth_app_id: keys.appId,
    charset: "utf-8",
    version: "1.0",
    sign_type: "RSA2",
    trade_no: "2026112222001400000000000042",
    out_trade_no: payment.paymentNo,
    seller_id: keys.sellerId,
    buyer_id: "2088102177846880",
    trade_status: "TRADE_SUCCESS",
    total_amount: "88.88",
    receipt_amount: "88.88",
    buyer_pay_amount: "88.88",
    subject: "乌龙茶 250g",
    gmt_create: "2026-11-22 09:59:30",
    gmt_payment: "2026-11-22 10:00:00",
  };
  baseParams.sign = signNotifyParams(baseParams, keys.alipayPrivateKeyPem);
  baseBody = Buffer.from(new URLSearchParams(baseParams).toString());
});
afterAll(() => t?.stop());

function form(params: Record<string, string>): Buffer {
  return Buffer.from(new URLSearchParams(params).toString());
}

/** Percent-encodes every parameter in GBK instead of UTF-8 (what a sender with charset=gbk does). */
function gbkForm(params: Record<string, string>): Buffer {
  const encode = (text: string) => [...encodeGbk(text)].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`).join("");
  return Buffer.from(Object.entries(params).map(([key, value]) => `${encode(key)}=${encode(value)}`).join("&"));
}

const position = fc.nat({ max: 1 << 20 });

type BytesEdit =
  | { op: "flip"; at: number; mask: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; length: number };

const byteEdit: fc.Arbitrary<BytesEdit> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: position, mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant("insert" as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant("delete" as const), at: position, length: fc.integer({ min: 1, max: 16 }) }),
);

function applyEdit(body: Buffer, edit: BytesEdit): Buffer {
  if (body.length === 0) return edit.op === "insert" ? Buffer.from(edit.bytes) : body;
  const at = edit.at % body.length;
  switch (edit.op) {
    case "flip": {
      const copy = Buffer.from(body);
      copy[at] = (copy[at] as number) ^ edit.mask;
      return copy;
    }
    case "insert":
      return Buffer.concat([body.subarray(0, at), Buffer.from(edit.bytes), body.subarray(at)]);
    case "delete":
      return Buffer.concat([body.subarray(0, at), body.subarray(at + edit.length)]);
  }
}

/** Raw bytes of the valid body, edited one to four times. */
const editedBytes = (): fc.Arbitrary<Corruption> =>
  fc
    .array(byteEdit, { minLength: 1, maxLength: 4 })
    .map((edits) => ({
      kind: `bytes:${edits.map((edit) => edit.op).join("+")}`,
      body: edits.reduce(applyEdit, baseBody),
      contentType: FORM,
    }))
    // Edits can cancel out (an insert then a delete of the same bytes, a byte flipped twice): the
    // valid notification itself is rightly accepted, so it is not a corruption.
    .filter((corruption) => !Buffer.from(corruption.body).equals(Buffer.from(baseBody)));

/** The signature dropped, emptied, cut, replaced by noise, made with a key that is not Alipay's, or of another type. */
const brokenSign = (): fc.Arbitrary<Corruption> =>
  fc.record({
    how: fc.constantFrom("drop", "empty", "truncate", "wrong-key", "sign-type-rsa", "noise"),
    noise: fc.uint8Array({ minLength: 256, maxLength: 256 }),
  }).map(({ how, noise }) => {
    const params = { ...baseParams };
    if (how === "drop") delete params.sign;
    if (how === "empty") params.sign = "";
    if (how === "truncate") params.sign = (params.sign as string).slice(0, 100);
    if (how === "wrong-key") params.sign = signNotifyParams(baseParams, testKeys().alipay.appPrivateKeyPem);
    if (how === "sign-type-rsa") params.sign_type = "RSA";
    if (how === "noise") params.sign = Buffer.from(noise).toString("base64");
    return { kind: `sign:${how}`, body: form(params), contentType: FORM };
  });

/** A field that matters changed, the old signature kept. */
const changedField = (): fc.Arbitrary<Corruption> =>
  fc
    .oneof(
      fc.record({ name: fc.constant("total_amount"), value: fc.constantFrom("88.89", "0.01", "8888.00", "88.8", "-88.88", "1e2") }),
      fc.record({ name: fc.constant("out_trade_no"), value: fc.constantFrom("P20261122000000AAAAAAAAAAAAAAAA", "", "fuzz-1") }),
      fc.record({ name: fc.constant("app_id"), value: fc.constantFrom("2021000000000001", "", "0") }),
      fc.record({
        name: fc.constant("trade_status"),
        value: fc.constantFrom("TRADE_FINISHED", "TRADE_CLOSED", "WAIT_BUYER_PAY", "trade_success", ""),
      }),
      fc.record({ name: fc.constant("seller_id"), value: fc.constantFrom("2088000000000001", "") }),
      fc.record({ name: fc.constant("notify_id"), value: fc.string({ minLength: 1, maxLength: 40 }) }),
      fc.record({ name: fc.constant("refund_fee"), value: fc.constantFrom("88.88", "0.01") }),
    )
    .map(({ name, value }) => ({ kind: `field:${name}`, body: form({ ...baseParams, [name]: value }), contentType: FORM }));

/**
 * Correctly signed with Alipay's key but wrong for this payment (a leaked key, a misrouted notify):
 * the checks after the signature must refuse each one.
 */
const wrongButSigned = (): fc.Arbitrary<Corruption> =>
  fc
    .oneof(
      fc.record({ name: fc.constant("total_amount"), value: fc.constantFrom("88.89", "88.87", "8888.00", "0.01", "abc", "88.8.8") }),
      fc.record({ name: fc.constant("app_id"), value: fc.constantFrom("2021000000000001", "") }),
      fc.record({ name: fc.constant("seller_id"), value: fc.constantFrom("2088000000000001", "") }),
      fc.record({ name: fc.constant("out_trade_no"), value: fc.constantFrom("P20261122000000AAAAAAAAAAAAAAAA", "") }),
      fc.record({ name: fc.constant("notify_id"), value: fc.constant("") }),
    )
    .map(({ name, value }) => {
      const params: Record<string, string> = { ...baseParams, [name]: value };
      delete params.sign;
      params.sign = signNotifyParams(params, testKeys().alipay.alipayPrivateKeyPem);
      return { kind: `signed:${name}`, body: form(params), contentType: FORM };
    });

/** The same notify in another charset, or declaring one. */
const otherCharset = (): fc.Arbitrary<Corruption> =>
  fc.constantFrom("gbk-bytes", "latin1-bytes", "declared-gbk").map((how) => {
    if (how === "gbk-bytes") {
      return { kind: `charset:${how}`, body: gbkForm(baseParams), contentType: "application/x-www-form-urlencoded; charset=gbk" };
    }
    if (how === "latin1-bytes") {
      const raw = Object.entries(baseParams)
        .map(([key, value]) => `${key}=${value}`)
        .join("&");
      return { kind: `charset:${how}`, body: Buffer.from(raw, "latin1"), contentType: FORM };
    }
    return { kind: `charset:${how}`, body: form({ ...baseParams, charset: "gbk" }), contentType: FORM };
  });

/** Not a notify at all, or one parameter twice. */
const garbage = (): fc.Arbitrary<Corruption> =>
  fc.oneof(
    fc.constant<Corruption>({ kind: "garbage:empty", body: Buffer.alloc(0), contentType: FORM }),
    fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({ kind: "garbage:bytes", body: Buffer.from(bytes), contentType: FORM })),
    fc.string({ unit: "binary", maxLength: 512 }).map((text) => ({ kind: "garbage:text", body: Buffer.from(text), contentType: FORM })),
    fc.constant<Corruption>({ kind: "garbage:json", body: Buffer.from(JSON.stringify(baseParams)), contentType: "application/json" }),
    fc.constant<Corruption>({
      kind: "garbage:repeated-param",
      body: Buffer.concat([baseBody, Buffer.from("&trade_status=TRADE_SUCCESS")]),
      contentType: FORM,
    }),
  );

/** The valid notify padded past the shim's 64 KiB limit. */
const huge = (): fc.Arbitrary<Corruption> =>
  fc.integer({ min: 1, max: 16 * 1024 }).map((extra) => ({
    kind: "huge",
    body: Buffer.concat([baseBody, Buffer.from("&padding="), Buffer.alloc(MAX_CALLBACK_BYTES + extra - baseBody.length, "a")]),
    contentType: FORM,
  }));

/** Every kind of corruption; built once the valid notify exists. */
const corruptions = (): fc.Arbitrary<Corruption> =>
  fc.oneof(
    { arbitrary: editedBytes(), weight: 5 },
    { arbitrary: brokenSign(), weight: 1 },
    { arbitrary: changedField(), weight: 2 },
    { arbitrary: wrongButSigned(), weight: 1 },
    { arbitrary: otherCharset(), weight: 1 },
    { arbitrary: garbage(), weight: 1 },
    { arbitrary: huge(), weight: 1 },
  );

/**
 * True when `body` is still the authentic notify, only written differently (percent-escape case,
 * `+` for a space, parameter order, an empty extra parameter, whitespace inside `sign`): the same
 * signed content and the same signature bytes. Such a body is not a corruption and is skipped.
 */
function isSameNotify(body: Buffer): boolean {
  const entries = [...new URLSearchParams(body.toString("utf8"))];
  if (new Set(entries.map(([key]) => key)).size !== entries.length) return false;
  const params = Object.fromEntries(entries);
  if (params.sign_type !== undefined && params.sign_type !== "RSA2") return false;
  const signed = (source: Record<string, string>) =>
    JSON.stringify(
      Object.entries(source)
        .filter(([key, value]) => key !== "sign" && key !== "sign_type" && value !== "")
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  if (signed(params) !== signed(baseParams)) return false;
  const signature = (params.sign ?? "").replace(/\s+/g, "");
  if (signature.length === 0 || signature.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  return Buffer.from(signature, "base64").equals(Buffer.from(baseParams.sign as string, "base64"));
}

async function paymentStatus(): Promise<PaymentStatus | undefined> {
  const response = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: paymentId } } }, merchantHeaders);
  return response.payment?.status;
}

async function post(body: Buffer, contentType: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${t.app.httpUrl}/callbacks/alipay`, { method: "POST", headers: { "content-type": contentType }, body });
  return { status: response.status, body: await response.text() };
}

function count(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

describe("corrupted Alipay notifies", () => {
  it(`answers ${RUNS} corrupted notifies non-success and changes nothing`, async () => {
    const tally = new Map<string, number>();
    const answers = new Map<string, number>();
    let skippedAsSameNotify = 0;
    let posted = 0;

    await fc.assert(
      fc.asyncProperty(corruptions(), async ({ kind, body, contentType }) => {
        const sameNotify = isSameNotify(body);
        if (sameNotify) skippedAsSameNotify++;
        fc.pre(!sameNotify);
        const answer = await post(body, contentType);
        posted++;
        count(tally, kind.split(":")[0] as string);
        count(answers, `${answer.status} ${answer.body}`);
        expect(answer.body).not.toBe("success");
        expect(answer.status).toBeGreaterThanOrEqual(400);
        if (kind === "huge") expect(answer.status).toBe(413);
      }),
      { numRuns: RUNS },
    );

    expect(posted).toBe(RUNS);
    expect(await paymentStatus()).toBe(PaymentStatus.PENDING);
    const em = t.app.db.em();
    expect(await em.count(OutboxEvent, { aggregateId: paymentId, eventType: "payment.succeeded" })).toBe(0);
    expect(await em.count(CallbackInbox, {})).toBe(0);
    expect(await em.count(CallbackLog, { verdict: { $nin: ["rejected", "mismatch", "unknown_payment"] } })).toBe(0);

    const reasons = (await em
      .getConnection()
      .execute("select verdict, reason, count(*) as n from callback_log group by verdict, reason order by n desc")) as {
      verdict: string;
      reason: string;
      n: number | bigint;
    }[];
    const logged = reasons.reduce((sum, row) => sum + Number(row.n), 0);
    // Every callback that got past the size limit is in the log; the oversized ones never reach the pipeline.
    expect(logged).toBe(RUNS - (answers.get("413 callback too large") ?? 0));
    console.log(
      [
        `Alipay callback fuzz: ${posted} corrupted notifies posted (${skippedAsSameNotify} generated bodies skipped: the authentic notify re-encoded)`,
        `by corruption: ${JSON.stringify(Object.fromEntries(tally))}`,
        `answers: ${JSON.stringify(Object.fromEntries(answers))}`,
        `callback_log: ${reasons.map((row) => `${row.verdict}/${row.reason}=${Number(row.n)}`).join(", ")}`,
      ].join("\n"),
    );

    // The uncorrupted notify is accepted: the rejections above were the corruptions' doing.
    expect(await post(baseBody, FORM)).toEqual({ status: 200, body: "success" });
    expect(await paymentStatus()).toBe(PaymentStatus.SUCCEEDED);
  });
});
