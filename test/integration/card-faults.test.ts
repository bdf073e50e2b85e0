/**
 * The card channel under every simulator fault, through the whole app on MySQL: duplicated,
 * reordered, delayed, dropped and early webhooks, forged and altered ones, acquirer 5xx and
 * timeouts, money arriving after close; then 1,000 randomly corrupted webhooks posted to the shim.
 */
import { createHash } from "node:crypto";
import type { EntityName, FilterQuery } from "@mikro-orm/core";
import { status as GrpcStatus } from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CallbackInbox, CallbackLog } from "../../src/callbacks/callback-entities.js";
import { signCardWebhook } from "../../src/channels/card/card-webhook-signature.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { Payment as PaymentEntity } from "../../src/payments/payment-entity.js";
import type { SimulatorFaults } from "../../src/simulator/simulator.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

/** Short, so that the timeout cases stay quick; still far above a local round trip. */
const CHANNEL_TIMEOUT_MS = 1000;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp({ channelTimeoutMs: CHANNEL_TIMEOUT_MS });
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

async function waitForStatus(id: string, status: PaymentStatus) {
  return eventually(
    () => statusOf(id),
    (current) => current === status,
  );
}

function count<T extends object>(entity: EntityName<T>, where: FilterQuery<T>): Promise<number> {
  return t.app.db.em().count(entity, where);
}

async function journalEntries(paymentId: string, entryType: string): Promise<number> {
  const rows = await t.app.db
    .em()
    .getConnection()
    .execute("select count(*) as n from journal_entry where payment_id = ? and entry_type = ?", [paymentId, entryType]);
  return Number(rows[0]?.n);
}

/**
 * Callback log rows whose stored body mentions the payment (rejected ones carry no payment id, and
 * keep only a 512-byte excerpt: it holds the intent id, not the payment number further on).
 */
async function logsMentioning(paymentNo: string) {
  const payment = await t.app.db.em().findOneOrFail(PaymentEntity, { paymentNo }, { disableIdentityMap: true });
  const marks = [paymentNo, payment.channelTradeNo].filter((mark): mark is string => !!mark);
  const rows = await t.app.db.em().find(CallbackLog, { channel: "card" }, { orderBy: { id: "asc" } });
  return rows.filter((row) => marks.some((mark) => Buffer.from(row.rawBody).toString("utf8").includes(mark)));
}

describe("card webhooks under faults", () => {
  it("applies ten concurrent copies of one event exactly once", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { duplicateNotifies: 10 });
    t.simulator.pay("card", paymentNo);
    await eventually(
      () => count(CallbackLog, { paymentId: id }),
      (n) => n >= 10,
    );
    expect(await statusOf(id)).toBe(PaymentStatus.SUCCEEDED);
    expect(await count(OutboxEvent, { aggregateId: id, eventType: "payment.succeeded" })).toBe(1);
    expect(await count(CallbackLog, { paymentId: id, verdict: "applied" })).toBe(1);
    expect(await count(CallbackLog, { paymentId: id, verdict: "duplicate" })).toBe(9);
    expect(await count(CallbackInbox, { paymentId: id })).toBe(1);
    expect(await journalEntries(id, "payment_succeeded")).toBe(1);
  });

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

  it("applies a delayed event when it comes", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { notifyDelayMs: 1500 });
    t.simulator.pay("card", paymentNo);
    expect(await statusOf(id)).toBe(PaymentStatus.PENDING);
    expect(await waitForStatus(id, PaymentStatus.SUCCEEDED)).toBe(PaymentStatus.SUCCEEDED);
  });

  it("finds a success whose event never comes by QueryPayment", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { dropNotifies: true });
    t.simulator.pay("card", paymentNo);
    expect(await statusOf(id)).toBe(PaymentStatus.PENDING);
    const queried = await t.grpc.payments.queryPayment({ lookup: { key: { case: "paymentId", value: id } } }, merchant.headers);
    expect(queried.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    expect(queried.payment?.channelTradeNo).toMatch(/^pi_/);
    expect(t.simulator.getTrade("card", paymentNo)!.notifications.map((n) => n.state)).toEqual(["dropped"]);
  });

  it("finds a success whose event never comes by the sweeper", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { dropNotifies: true });
    t.simulator.pay("card", paymentNo);
    await t.app.db.em().nativeUpdate(PaymentEntity, { id }, { nextQueryAt: new Date(Date.now() - 1000) });
    const result = await t.app.sweeper.runOnce();
    expect(result.settled).toBeGreaterThanOrEqual(1);
    expect(await statusOf(id)).toBe(PaymentStatus.SUCCEEDED);
  });

  it("applies an event sent before the create call returned, and the create call still answers", async () => {
    t.simulator.setFaults({ channel: "card", faults: { notifyBeforeCreateReturns: true } });
    const created = await t.grpc.payments.createPayment(cardPayment(), merchant.headers);
    const payment = created.payment!;
    expect(payment.status).toBe(PaymentStatus.SUCCEEDED);
    expect(payment.channelTradeNo).toMatch(/^pi_/);
    expect(await count(CallbackLog, { paymentId: payment.id, verdict: "applied" })).toBe(1);
    const row = await t.app.db.em().findOneOrFail(PaymentEntity, { id: payment.id }, { disableIdentityMap: true });
    expect(row.actionKind).toBe("client_secret");
  });

  it("rejects an event signed with the wrong secret, changing nothing", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { badSignature: true });
    t.simulator.pay("card", paymentNo);
    const logs = await eventually(
      () => logsMentioning(paymentNo),
      (rows) => rows.length >= 1,
    );
    expect(logs.map((log) => [log.verdict, log.reason, log.answerStatus])).toContainEqual(["rejected", "bad_signature", 400]);
    expect(logs.every((log) => log.verdict === "rejected")).toBe(true);
    expect(await statusOf(id)).toBe(PaymentStatus.PENDING);
    expect(await count(CallbackInbox, { paymentId: id })).toBe(0);
    expect(t.simulator.getTrade("card", paymentNo)!.notifications[0]!.state).not.toBe("acknowledged");
  });

  it("refuses a correctly signed event with an altered amount as a mismatch, changing nothing", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { alterAmount: true });
    t.simulator.pay("card", paymentNo);
    const mismatches = await eventually(
      () => t.app.db.em().find(CallbackLog, { paymentId: id, verdict: "mismatch" }),
      (rows) => rows.length >= 1,
    );
    expect(mismatches[0]!.reason).toContain("2501");
    expect(await statusOf(id)).toBe(PaymentStatus.PENDING);
    expect(await count(OutboxEvent, { aggregateId: id, eventType: "payment.succeeded" })).toBe(0);
    expect(await count(CallbackInbox, { paymentId: id })).toBe(0);
  });
});

describe("acquirer API failures", () => {
  it("answers UNAVAILABLE when create gets a 5xx, keeps the payment PENDING, and the same request later succeeds with the same payment", async () => {
    t.simulator.setFaults({ channel: "card", faults: { apiError: { method: "payment_intents.create", status: 503, times: 1 } } });
    const request = cardPayment();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    const stored = await t.app.db.em().findOneOrFail(PaymentEntity, { merchantOrderNo: request.merchantOrderNo }, { disableIdentityMap: true });
    expect(stored.status).toBe("PENDING");
    expect(t.simulator.getTrade("card", stored.paymentNo)).toBeUndefined();

    const retried = await t.grpc.payments.createPayment(request, merchant.headers);
    expect(retried.payment?.id).toBe(stored.id);
    expect(retried.payment?.status).toBe(PaymentStatus.PENDING);
    expect(retried.payment?.action?.action.case).toBe("clientSecret");
    expect(t.simulator.getTrade("card", stored.paymentNo)?.channelTradeNo).toBe(retried.payment?.channelTradeNo);
  });

  it("answers UNAVAILABLE when create times out, and the retry opens the same payment once at the acquirer", async () => {
    t.simulator.setFaults({ channel: "card", faults: { apiTimeout: { method: "payment_intents.create", times: 1 } } });
    const request = cardPayment();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    const stored = await t.app.db.em().findOneOrFail(PaymentEntity, { merchantOrderNo: request.merchantOrderNo }, { disableIdentityMap: true });
    expect(stored.status).toBe("PENDING");

    const retried = await t.grpc.payments.createPayment(request, merchant.headers);
    expect(retried.payment?.id).toBe(stored.id);
    expect(t.simulator.listTrades("card").filter((trade) => trade.outTradeNo === stored.paymentNo)).toHaveLength(1);
  });

  it("gets the intent created by a timed-out create back by the Idempotency-Key replay, not a second one", async () => {
    t.simulator.setFaults({ channel: "card", faults: { apiTimeout: { method: "payment_intents.create", times: 1, apply: true } } });
    const request = cardPayment();
    const error = await grpcError(t.grpc.payments.createPayment(request, merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    const stored = await t.app.db.em().findOneOrFail(PaymentEntity, { merchantOrderNo: request.merchantOrderNo }, { disableIdentityMap: true });
    const intentId = t.simulator.getTrade("card", stored.paymentNo)?.channelTradeNo;
    expect(intentId).toMatch(/^pi_/);
    expect(stored.channelTradeNo).toBeNull();

    const retried = await t.grpc.payments.createPayment(request, merchant.headers);
    expect(retried.payment?.id).toBe(stored.id);
    expect(retried.payment?.channelTradeNo).toBe(intentId);
  });

  for (const [name, faults] of [
    ["a 5xx", { apiError: { method: "payment_intents.retrieve", status: 500 } }],
    ["a timeout", { apiTimeout: { method: "payment_intents.retrieve" } }],
  ] as const) {
    it(`leaves a payment PENDING and reschedules it when the sweeper's query gets ${name}`, async () => {
      const { id, paymentNo } = await createPayment();
      t.simulator.pay("card", paymentNo);
      await waitForStatus(id, PaymentStatus.SUCCEEDED);
      // A second, unpaid payment is the one the sweeper asks about.
      const pending = await createPayment();
      await t.app.db.em().nativeUpdate(PaymentEntity, { id: pending.id }, { nextQueryAt: new Date(Date.now() - 1000) });
      faultsFor(pending.paymentNo, faults);
      const result = await t.app.sweeper.runOnce();
      expect(result.retried).toBeGreaterThanOrEqual(1);
      const row = await t.app.db.em().findOneOrFail(PaymentEntity, { id: pending.id }, { disableIdentityMap: true });
      expect(row.status).toBe("PENDING");
      expect(row.queryAttempts).toBe(1);
      expect(row.nextQueryAt!.getTime()).toBeGreaterThan(Date.now());
      expect(row.statusReason).toBeNull();
    });
  }

  it("keeps a payment CLOSED when the acquirer takes the money after the close, and raises PAID_AFTER_CLOSE", async () => {
    const { id, paymentNo } = await createPayment();
    faultsFor(paymentNo, { paidAfterClose: true });
    const closed = await t.grpc.payments.closePayment({ paymentId: id }, merchant.headers);
    expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);

    const log = await eventually(
      () => t.app.db.em().findOne(CallbackLog, { paymentId: id, verdict: "applied" }),
      (row) => row !== null,
    );
    expect(log?.effect).toBe("paid_after_close");
    const intentId = t.simulator.getTrade("card", paymentNo)!.channelTradeNo;
    expect(t.simulator.getTrade("card", paymentNo)?.channelState).toBe("succeeded");
    expect(await statusOf(id)).toBe(PaymentStatus.CLOSED);

    const listed = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
    const raised = listed.discrepancies.filter((d) => d.paymentId === id);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ kind: "PAID_AFTER_CLOSE", channel: Channel.CARD, channelTradeNo: intentId, amount: 2500n, currency: "USD" });
    const ledger = await checkLedger(t.app.uow.session());
    expect(ledger.violations).toEqual([]);
    expect(ledger.ok).toBe(true);
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
