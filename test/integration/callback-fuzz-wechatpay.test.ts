/**
 * 1,000 corrupted WeChat Pay callbacks, generated with fast-check from one valid signed and
 * encrypted callback for a pending payment, posted over HTTP to `/callbacks/wechatpay`: byte
 * edits of the body, missing or altered `Wechatpay-*` headers, stale timestamps, another key id,
 * a resource encrypted with another APIv3 key, correctly signed callbacks that are wrong for the
 * payment (amount, mchid, appid, order number), garbage and oversized bodies. Every one must be
 * answered non-2xx and change nothing: the payment stays PENDING, no inbox row, no success event.
 */
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallbackInbox, CallbackLog } from "../../src/callbacks/callback-entities.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { postWechatCallback, transactionResource, wechatCallback, wechatPayment } from "../support/wechatpay.js";

const RUNS = 1000;

interface Delivery {
  kind: string;
  headers: Record<string, string>;
  body: Buffer;
}

let t: TestApp;
let merchantHeaders: Record<string, string>;
let paymentId: string;
let paymentNo: string;
let valid: { headers: Record<string, string>; body: string };
const otherKeyPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();

beforeAll(async () => {
  t = await startTestApp();
  const merchant = await t.createMerchant("Fuzzed WeChat Tea");
  merchantHeaders = merchant.headers;
  const created = await t.grpc.payments.createPayment(wechatPayment(), merchant.headers);
  paymentId = created.payment!.id;
  paymentNo = created.payment!.paymentNo;
  valid = wechatCallback(transactionResource(paymentNo, 8888), { id: "EV-fuzz-valid" });
});
afterAll(() => t?.stop());

const position = fc.nat({ max: 1 << 20 });

/** The valid body with one to four bytes flipped, inserted or deleted (and so not the valid body); headers as signed. */
const editedBody = (): fc.Arbitrary<Delivery> =>
  fc
    .array(
      fc.oneof(
        fc.record({ op: fc.constant("flip" as const), at: position, mask: fc.integer({ min: 1, max: 255 }) }),
        fc.record({ op: fc.constant("insert" as const), at: position, byte: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ op: fc.constant("delete" as const), at: position }),
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((edits) => {
      let body = Buffer.from(valid.body);
      for (const edit of edits) {
        const at = edit.at % body.length;
        if (edit.op === "flip") body[at] = (body[at] as number) ^ edit.mask;
        else if (edit.op === "insert") body = Buffer.concat([body.subarray(0, at), Buffer.from([edit.byte]), body.subarray(at)]);
        else body = Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
      }
      return { kind: "body-bytes", headers: valid.headers, body };
    })
    // Edits can cancel out (an insert then a delete at the same place, a byte flipped twice):
    // the valid callback itself is rightly accepted, so it is not a corruption.
    .filter((delivery) => !delivery.body.equals(Buffer.from(valid.body)));

/** A `Wechatpay-*` header dropped or changed; the body as signed. */
const brokenHeaders = (): fc.Arbitrary<Delivery> =>
  fc
    .record({
      header: fc.constantFrom("wechatpay-signature", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial"),
      how: fc.constantFrom("drop", "empty", "change"),
      noise: fc.string({ minLength: 1, maxLength: 40 }),
    })
    .map(({ header, how, noise }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(valid.headers)) headers[name.toLowerCase()] = value;
      if (how === "drop") delete headers[header];
      else if (how === "empty") headers[header] = "";
      else if (header === "wechatpay-timestamp") headers[header] = String(Number(headers[header]) + 1 + (noise.length % 50));
      // HTTP drops the spaces that end a header value, so noise ending in one must end otherwise to change anything.
      else headers[header] = `${headers[header]}${noise}`.replace(/[^\x20-\x7e]/g, "x").replace(/ +$/, "x");
      return { kind: `header:${header}:${how}`, headers, body: Buffer.from(valid.body) };
    });

/** Signed and encrypted by the rules, but not acceptable: old, another key, or wrong for the payment. */
const signedButWrong = (): fc.Arbitrary<Delivery> =>
  fc
    .constantFrom(
      "stale-timestamp",
      "future-timestamp",
      "other-signing-key",
      "other-key-id",
      "other-apiv3-key",
      "amount",
      "mchid",
      "appid",
      "unknown-order",
    )
    .map((how) => {
      const now = Math.floor(Date.now() / 1000);
      let callback: { headers: Record<string, string>; body: string };
      switch (how) {
        case "stale-timestamp":
          callback = wechatCallback(transactionResource(paymentNo, 8888), { timestamp: String(now - 3600) });
          break;
        case "future-timestamp":
          callback = wechatCallback(transactionResource(paymentNo, 8888), { timestamp: String(now + 3600) });
          break;
        case "other-signing-key":
          callback = wechatCallback(transactionResource(paymentNo, 8888), { signingKeyPem: otherKeyPem });
          break;
        case "other-key-id":
          callback = wechatCallback(transactionResource(paymentNo, 8888), { publicKeyId: "PUB_KEY_ID_0000000000000000000000000000" });
          break;
        case "other-apiv3-key":
          callback = wechatCallback(transactionResource(paymentNo, 8888), { apiV3Key: "0123456789abcdef0123456789abcdef" });
          break;
        case "amount":
          callback = wechatCallback(transactionResource(paymentNo, 8889));
          break;
        case "mchid":
          callback = wechatCallback(transactionResource(paymentNo, 8888, { mchid: "1900000000" }));
          break;
        case "appid":
          callback = wechatCallback(transactionResource(paymentNo, 8888, { appid: "wx0000000000000000" }));
          break;
        default:
          callback = wechatCallback(transactionResource("P20261122000000AAAAAAAAAAAAAAAA", 8888));
      }
      return { kind: `signed:${how}`, headers: callback.headers, body: Buffer.from(callback.body) };
    });

/** Not a callback at all, or over the size limit. */
const garbage = (): fc.Arbitrary<Delivery> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 1024 }).map((bytes) => ({ kind: "garbage:bytes", headers: valid.headers, body: Buffer.from(bytes) })),
    fc.constant<Delivery>({ kind: "garbage:empty", headers: valid.headers, body: Buffer.alloc(0) }),
    fc.constant<Delivery>({ kind: "garbage:huge", headers: valid.headers, body: Buffer.alloc(70 * 1024, "{") }),
  );

const deliveries = (): fc.Arbitrary<Delivery> =>
  fc.oneof(
    { arbitrary: editedBody(), weight: 5 },
    { arbitrary: brokenHeaders(), weight: 3 },
    { arbitrary: signedButWrong(), weight: 2 },
    { arbitrary: garbage(), weight: 1 },
  );

describe("corrupted WeChat Pay callbacks", () => {
  it(`answers ${RUNS} corrupted callbacks non-2xx and changes nothing`, async () => {
    const tally = new Map<string, number>();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(deliveries(), async (delivery) => {
        tried++;
        tally.set(delivery.kind.split(":").slice(0, 2).join(":"), (tally.get(delivery.kind.split(":").slice(0, 2).join(":")) ?? 0) + 1);
        const answer = await postWechatCallback(t, { headers: delivery.headers, body: delivery.body });
        expect(answer.status, `${delivery.kind} was accepted`).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: RUNS },
    );
    expect(tried).toBe(RUNS);

    const em = t.app.db.em();
    const status = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: paymentId } } }, merchantHeaders);
    expect(status.payment?.status).toBe(PaymentStatus.PENDING);
    expect(await em.count(CallbackInbox, {})).toBe(0);
    expect(await em.count(OutboxEvent, { aggregateId: paymentId, eventType: "payment.succeeded" })).toBe(0);
    expect(await em.count(CallbackLog, { channel: "wechatpay", verdict: "applied" })).toBe(0);

    // The uncorrupted callback is accepted afterwards: the rejections came from the corruptions.
    const accepted = await postWechatCallback(t, valid);
    expect(accepted.status).toBeLessThan(300);
    const after = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: paymentId } } }, merchantHeaders);
    expect(after.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    console.log(`corrupted WeChat Pay callbacks tried: ${tried}`, Object.fromEntries(tally));
  }, 180_000);
});
