/**
 * Card-only faults through the whole app on MySQL: a decline and a success delivered in reverse
 * order (the shopper retried on the same intent), then 1,000 randomly corrupted webhooks posted to
 * the shim (livemode, stale timestamps, wrong secrets among them). The faults every channel shares
 * (duplicated, delayed, dropped, early, forged and altered webhooks; acquirer 5xx and timeouts;
 * money after close) are in channel-contract.test.ts.
 */
import { createHash } from "node:crypto";
import type { EntityName, FilterQuery } from "@mikro-orm/core";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CallbackInbox, CallbackLog } from "../../src/callbacks/callback-entities.js";
import { signCardWebhook } from "../../src/channels/card/card-webhook-signature.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import type { SimulatorFaults } from "../../src/simulator/simulator.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Card Faults Shop");
  await t.registerCardWebhook();
});
afterAll(() => t?.stop());
afterEach(() => t.simulator.clearFaults());

function cardPayment(overrides: Record<string, unknown> = {}) {
  return {
    merchantOrderNo: `card-fault-${Date.now()}-${++orderSeq}`,
    currency: "USD",
    amount: 2500n,
    channel: Channel.CARD,
    subject: "Jasmine tea",
    paymentMethod: "pm_card_visa",
    ...overrides,
  };
}

async function createPayment(overrides: Record<string, unknown> = {}) {
  const created = await t.grpc.payments.createPayment(cardPayment(overrides), merchant.headers);
  return created.payment!;
}

function faultsFor(paymentNo: string, faults: SimulatorFaults) {
  t.simulator.setFaults({ channel: "card", outTradeNo: paymentNo, faults });
}

async function statusOf(id: string) {
  const read = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: id } } }, merchant.headers);
  return read.payment!.status;
}

function count<T extends object>(entity: EntityName<T>, where: FilterQuery<T>): Promise<number> {
  return t.app.db.em().count(entity, where);
}

describe("card webhooks out of order", () => {
  it("ends SUCCEEDED when payment_failed and then succeeded arrive in reverse order", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { outOfOrder: true, notifyDelayMs: 50 });
    t.simulator.pay("card", paymentNo, "fail");
    t.simulator.pay("card", paymentNo, "success");
    const logs = await eventually(
      () => t.app.db.em().find(CallbackLog, { paymentId: id }, { orderBy: { id: "asc" } }),
      (rows) => rows.length >= 2,
    );
    const types = logs.map((log) => JSON.parse(Buffer.from(log.rawBody).toString("utf8")).type);
    expect(types).toEqual(["payment_intent.succeeded", "payment_intent.payment_failed"]);
    expect(await statusOf(id)).toBe(PaymentStatus.SUCCEEDED);
    expect(await count(OutboxEvent, { aggregateId: id, eventType: "payment.failed" })).toBe(0);
  });
});

describe("randomly corrupted webhooks", () => {
  type Corruption =
    | { kind: "flipByte"; at: number; mask: number }
    | { kind: "insertBytes"; at: number; bytes: Uint8Array }
    | { kind: "deleteBytes"; at: number; length: number }
    | { kind: "dropHeader" }
    | { kind: "replaceHeaderChar"; at: number; char: string }
    | { kind: "truncateHeader"; length: number }
    | { kind: "randomHeader"; header: string }
    | { kind: "changeFieldKeepSignature"; field: "amount" | "currency" | "id" | "payment_no" | "type" | "event_id"; value: string | number }
    | { kind: "garbageSigned"; body: string }
    | { kind: "staleSigned"; offsetSeconds: number }
    | { kind: "wrongSecret"; secret: string }
    | { kind: "signedVariant"; variant: "amount" | "currency" | "livemode" | "noPaymentNo" | "otherPaymentNo" | "fractionalAmount"; delta: number };

  const corruption: fc.Arbitrary<Corruption> = fc.oneof(
    fc.record({ kind: fc.constant("flipByte" as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant("insertBytes" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant("deleteBytes" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
    fc.constant({ kind: "dropHeader" as const }),
    fc.record({ kind: fc.constant("replaceHeaderChar" as const), at: fc.nat(), char: fc.string({ minLength: 1, maxLength: 1, unit: "grapheme-ascii" }) }),
    fc.record({ kind: fc.constant("truncateHeader" as const), length: fc.nat() }),
    fc.record({ kind: fc.constant("randomHeader" as const), header: fc.string({ maxLength: 120 }) }),
    fc.record({
      kind: fc.constant("changeFieldKeepSignature" as const),
      field: fc.constantFrom("amount" as const, "currency" as const, "id" as const, "payment_no" as const, "type" as const, "event_id" as const),
      value: fc.oneof(fc.integer(), fc.string({ maxLength: 12 })),
    }),
    fc.record({
      kind: fc.constant("garbageSigned" as const),
      body: fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.json({ maxDepth: 3 }).filter((text) => !/"data"/.test(text)),
      ),
    }),
    fc.record({
      kind: fc.constant("staleSigned" as const),
      offsetSeconds: fc.oneof(fc.integer({ min: 400, max: 10_000_000 }), fc.integer({ min: -10_000_000, max: -400 })),
    }),
    fc.record({ kind: fc.constant("wrongSecret" as const), secret: fc.string({ maxLength: 40 }) }),
    fc.record({
      kind: fc.constant("signedVariant" as const),
      variant: fc.constantFrom(
        "amount" as const,
        "currency" as const,
        "livemode" as const,
        "noPaymentNo" as const,
        "otherPaymentNo" as const,
        "fractionalAmount" as const,
      ),
      delta: fc.integer({ min: 1, max: 1_000_000 }),
    }),
  );

  it("rejects 1,000 corrupted webhooks with a non-success answer and changes nothing", async () => {
    const payment = await createPayment();
    const intentId = payment.channelTradeNo;
    const secret = testKeys().card.webhookSecret;
    const intent = {
      id: intentId,
      object: "payment_intent",
      amount: 2500,
      amount_received: 2500,
      currency: "usd",
      metadata: { payment_no: payment.paymentNo },
      status: "succeeded",
      last_payment_error: null,
    };
    const event = (object: Record<string, unknown>, overrides: Record<string, unknown> = {}) => ({
      id: "evt_property_base",
      object: "event",
      api_version: "2024-06-20",
      created: Math.floor(Date.now() / 1000),
      data: { object },
      livemode: false,
      type: "payment_intent.succeeded",
      ...overrides,
    });
    const now = () => Math.floor(Date.now() / 1000);
    // Earlier tests' webhooks may still be re-sent meanwhile: this run's callbacks carry a marker header.
    // The log keeps known headers only, so this run's rows are found by the hashes of the bodies posted.
    const posted = new Set<string>();
    const started = new Date(Date.now() - 1000);

    /** The valid webhook first, then the corruption applied to it. */
    function corrupt(c: Corruption): { body: Buffer; header: string | undefined } {
      const body = Buffer.from(JSON.stringify(event(intent)));
      const header = signCardWebhook(secret, body, now());
      const signed = (text: string | Buffer, at = now()) => ({ body: Buffer.from(text), header: signCardWebhook(secret, text, at) });
      switch (c.kind) {
        case "flipByte": {
          const copy = Buffer.from(body);
          const at = c.at % copy.length;
          copy[at] = copy[at]! ^ c.mask;
          return { body: copy, header };
        }
        case "insertBytes": {
          const at = c.at % (body.length + 1);
          return { body: Buffer.concat([body.subarray(0, at), Buffer.from(c.bytes), body.subarray(at)]), header };
        }
        case "deleteBytes": {
          const at = c.at % body.length;
          return { body: Buffer.concat([body.subarray(0, at), body.subarray(at + c.length)]), header };
        }
        case "dropHeader":
          return { body, header: undefined };
        case "replaceHeaderChar": {
          const at = c.at % header.length;
          const old = header[at]!;
          // Hex digits compare case-insensitively, so a case change is no corruption: pick another character.
          const char = c.char.toLowerCase() === old.toLowerCase() ? (old === "x" ? "y" : "x") : c.char;
          return { body, header: header.slice(0, at) + char + header.slice(at + 1) };
        }
        case "truncateHeader":
          return { body, header: header.slice(0, c.length % header.length) };
        case "randomHeader":
          return { body, header: c.header };
        case "changeFieldKeepSignature": {
          const changed = structuredClone(event(intent)) as ReturnType<typeof event> & { data: { object: Record<string, unknown> } };
          const target = changed.data.object;
          // Every new value ends in "x", so it always differs from the signed one.
          if (c.field === "payment_no") target.metadata = { payment_no: `${payment.paymentNo}${c.value}x` };
          else if (c.field === "event_id") changed.id = `evt_${c.value}x`;
          else if (c.field === "type") changed.type = `payment_intent.${c.value}x`;
          else target[c.field] = `${c.value}x`;
          return { body: Buffer.from(JSON.stringify(changed)), header };
        }
        case "garbageSigned":
          return signed(c.body);
        case "staleSigned":
          return signed(body, now() + c.offsetSeconds);
        case "wrongSecret":
          return { body, header: signCardWebhook(c.secret === secret ? `${secret}x` : c.secret, body, now()) };
        case "signedVariant": {
          const variants: Record<typeof c.variant, () => Record<string, unknown>> = {
            amount: () => event({ ...intent, amount: 2500 + c.delta }),
            currency: () => event({ ...intent, currency: "eur" }),
            livemode: () => event(intent, { livemode: true }),
            noPaymentNo: () => event({ ...intent, metadata: {} }),
            otherPaymentNo: () => event({ ...intent, metadata: { payment_no: `P${c.delta}NOTOURS` } }),
            fractionalAmount: () => event({ ...intent, amount: 2500 + c.delta / 1000 + 0.5 }),
          };
          return signed(JSON.stringify(variants[c.variant]()));
        }
      }
    }

    const tried = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(corruption, async (c) => {
        const { body, header } = corrupt(c);
        posted.add(createHash("sha256").update(body).digest("hex"));
        const response = await fetch(`${t.app.httpUrl}/callbacks/card`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(header === undefined ? {} : { "stripe-signature": header }),
          },
          body,
        });
        await response.arrayBuffer();
        tried.set(c.kind, (tried.get(c.kind) ?? 0) + 1);
        expect(response.status, `corruption ${JSON.stringify(c)}`).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 1000 },
    );

    const total = [...tried.values()].reduce((sum, n) => sum + n, 0);
    expect(total).toBe(1000);
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
    expect(await count(CallbackInbox, { paymentId: payment.id })).toBe(0);
    expect(await count(OutboxEvent, { aggregateId: payment.id, eventType: { $ne: "payment.created" } })).toBe(0);
    const logged = (await t.app.db.em().find(CallbackLog, { channel: "card", receivedAt: { $gte: started } })).filter(
      (row) => posted.has(row.bodySha256 ?? ""),
    );
    expect(logged).toHaveLength(1000);
    const verdicts = new Map<string, number>();
    for (const row of logged) {
      const key = `${row.verdict}:${row.reason?.split(" ")[0]}`;
      verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
    }
    console.log(
      `card webhook corruption: ${total} tried; by kind ${JSON.stringify(Object.fromEntries(tried))}; verdicts ${JSON.stringify(Object.fromEntries(verdicts))}`,
    );
    expect(logged.filter((row) => !["rejected", "mismatch", "unknown_payment"].includes(row.verdict) || row.answerStatus < 400)).toEqual([]);

    // The uncorrupted webhook is accepted: the rejections were the corruptions' doing.
    const body = Buffer.from(JSON.stringify(event(intent)));
    const valid = await fetch(`${t.app.httpUrl}/callbacks/card`, {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": signCardWebhook(secret, body, now()) },
      body,
    });
    expect(valid.status).toBe(200);
    expect(await statusOf(payment.id)).toBe(PaymentStatus.SUCCEEDED);
  });
});
