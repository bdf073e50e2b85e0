/**
 * Card payouts: the adapter's `payouts` (createCardPayouts) against the simulated acquirer over real
 * HTTP, the payout webhooks it delivers parsed by the adapter's parseCallback, the official `stripe`
 * client against the simulator's payouts, and the bounds (search pages, payout book, description).
 * No database: this is the channel side only.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCardChannel, signCardWebhook } from "../../src/channels/card/card-channel.js";
import { CARD_PAYEE_NAME_MAX_CHARS, CARD_PAYOUT_DESCRIPTION_MAX_CHARS, CARD_PAYOUT_SEARCH_MAX_PAGES } from "../../src/channels/card/card-payouts.js";
import {
  CallbackRejectedError,
  type ChannelPayoutRequest,
  ChannelRejectedError,
  ChannelUnavailableError,
  type PaymentChannel,
} from "../../src/channels/channel.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { CardBook } from "../../src/simulator/card/card-book.js";
import type { StripeError } from "../../src/simulator/card/card-errors.js";
import { parseParams } from "../../src/simulator/card/card-params.js";
import { createPayout, listPayouts, MAX_PAYOUT_DESCRIPTION_CHARS, MAX_PAYOUTS, retrievePayout } from "../../src/simulator/card/card-payouts.js";
import { registerCardWebhookEndpoint } from "../../src/simulator/card-webhook-endpoint.js";
import { FaultRegistry } from "../../src/simulator/faults.js";
import { Notifier, TimerSet } from "../../src/simulator/notifier.js";
import { type Simulator, type SimulatorFaults, startSimulator } from "../../src/simulator/simulator.js";
import { TradeStore } from "../../src/simulator/trade-store.js";
import { testKeys } from "../support/test-app.js";
import { eventually, rejection } from "../support/waiting.js";

/** One webhook delivery as the shim would receive it. */
interface Delivery {
  rawBody: Buffer;
  signature: string;
  event: { id: string; type: string; data: { object: { id: string; metadata?: Record<string, string> } } };
}

let simulator: Simulator;
let channel: PaymentChannel;
let receiver: http.Server;
const deliveries: Delivery[] = [];
let seq = 0;

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: "card-payouts-test-control-token" });
  receiver = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const rawBody = Buffer.concat(chunks);
      deliveries.push({ rawBody, signature: String(request.headers["stripe-signature"]), event: JSON.parse(rawBody.toString("utf8")) });
      response.writeHead(200, { "content-type": "application/json" }).end('{"received":true}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const { card } = testKeys();
  await registerCardWebhookEndpoint(simulator.url, card.secretKey, `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/callbacks/card`);
  channel = cardChannel();
});
afterEach(() => simulator.clearFaults());
afterAll(async () => {
  closeHttpAgents();
  await simulator?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

function cardChannel(timeoutMs = 5_000): PaymentChannel {
  const { card } = testKeys();
  return createCardChannel({ baseUrl: `${simulator.url}/card`, secretKey: card.secretKey, webhookSecret: card.webhookSecret, timeoutMs });
}

/** A payout request with a fresh payout number and a fresh bank account (so lists by destination hold only its payouts). */
function payoutRequest(overrides: Partial<ChannelPayoutRequest> = {}): ChannelPayoutRequest {
  const n = `${Date.now().toString(36)}${++seq}`;
  return {
    payoutNo: `T-card-payout-${n}`,
    amountMinor: 12_345n,
    currency: "USD",
    payee: { type: "BANK_ACCOUNT", account: `ba_test${n}` },
    remark: `Settlement S-${n}`,
    ...overrides,
  };
}

function faultsFor(payoutNo: string, faults: SimulatorFaults): void {
  simulator.setFaults({ channel: "card", outTradeNo: payoutNo, faults });
}

/** The deliveries of one event type about one payout (by our payout number). */
function deliveriesOf(payoutNo: string, type: string): Delivery[] {
  return deliveries.filter((delivery) => delivery.event.type === type && delivery.event.data.object.metadata?.payout_no === payoutNo);
}

async function awaitDeliveries(payoutNo: string, type: string, count = 1): Promise<Delivery[]> {
  const found = await eventually(
    () => deliveriesOf(payoutNo, type),
    (list) => list.length >= count,
  );
  expect(found.length).toBeGreaterThanOrEqual(count);
  return found;
}

function parse(delivery: Delivery) {
  return channel.parseCallback({ headers: { "stripe-signature": delivery.signature }, rawBody: delivery.rawBody });
}

/** Every payout at the simulator to one bank account, through its list API. */
async function payoutsAt(destination: string): Promise<{ id: string; status: string; metadata: Record<string, string> }[]> {
  const { card } = testKeys();
  const response = await fetch(`${simulator.url}/card/v1/payouts?destination=${encodeURIComponent(destination)}&limit=100`, {
    headers: { authorization: `Bearer ${card.secretKey}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { id: string; status: string; metadata: Record<string, string> }[] }).data;
}

describe("card payouts through the adapter", () => {
  it("sends a payout (processing), and the acquirer's payout.paid webhook parses into a paid PayoutNotification", async () => {
    const request = payoutRequest();
    const sent = await channel.payouts.sendPayout(request);
    expect(sent.state).toBe("processing");
    expect(sent.channelPayoutNo).toMatch(/^po_/);

    const [paid] = await awaitDeliveries(request.payoutNo, "payout.paid");
    expect(parse(paid!)).toEqual({
      kind: "payout",
      notificationId: paid!.event.id,
      payoutNo: request.payoutNo,
      channelPayoutNo: sent.channelPayoutNo,
      state: "paid",
      amountMinor: 12_345n,
      currency: "USD",
      channelStatus: "payout.paid",
    });
    // payout.created came first and is no outcome.
    const [created] = await awaitDeliveries(request.payoutNo, "payout.created");
    expect(parse(created!)).toMatchObject({ kind: "ignored", notificationId: created!.event.id, channelStatus: "payout.created" });

    expect(await channel.payouts.queryPayout({ ...request, channelPayoutNo: sent.channelPayoutNo! })).toEqual({
      state: "paid",
      channelPayoutNo: sent.channelPayoutNo,
      detail: "paid",
    });
    const [atAcquirer] = await payoutsAt(request.payee.account);
    expect(atAcquirer).toMatchObject({ id: sent.channelPayoutNo, status: "paid", metadata: { payout_no: request.payoutNo } });
  });

  it("sends the wire fields: amount in minor units, lower-case currency, destination, the remark as description, metadata[payout_no]", async () => {
    const { card } = testKeys();
    const request = payoutRequest({ amountMinor: 1_000n, currency: "JPY", remark: "x".repeat(CARD_PAYOUT_DESCRIPTION_MAX_CHARS + 100) });
    const sent = await channel.payouts.sendPayout(request);
    const response = await fetch(`${simulator.url}/card/v1/payouts/${sent.channelPayoutNo}`, { headers: { authorization: `Bearer ${card.secretKey}` } });
    const payout = (await response.json()) as Record<string, unknown>;
    expect(payout).toMatchObject({ object: "payout", amount: 1_000, currency: "jpy", destination: request.payee.account, metadata: { payout_no: request.payoutNo } });
    // The remark is cut to the bound, never refused: it is ours, not the merchant's.
    expect(payout.description).toBe("x".repeat(CARD_PAYOUT_DESCRIPTION_MAX_CHARS));
  });

  it("reports a payout the bank refuses as failed, by payout.failed (failure code and message) and by query", async () => {
    const request = payoutRequest();
    faultsFor(request.payoutNo, { payoutFails: true });
    const sent = await channel.payouts.sendPayout(request);
    expect(sent.state).toBe("processing");

    const [failed] = await awaitDeliveries(request.payoutNo, "payout.failed");
    expect(parse(failed!)).toEqual({
      kind: "payout",
      notificationId: failed!.event.id,
      payoutNo: request.payoutNo,
      channelPayoutNo: sent.channelPayoutNo,
      state: "failed",
      amountMinor: 12_345n,
      currency: "USD",
      channelStatus: "payout.failed: account_closed: The bank account has been closed.",
    });
    expect(await channel.payouts.queryPayout({ ...request, channelPayoutNo: sent.channelPayoutNo! })).toEqual({
      state: "failed",
      channelPayoutNo: sent.channelPayoutNo,
      detail: "account_closed: The bank account has been closed.",
    });
  });

  it("keeps a delayed payout processing, then finds it paid by query, by id and (id unknown) by listing the bank account's payouts", async () => {
    const request = payoutRequest();
    faultsFor(request.payoutNo, { payoutDelayMs: 1_500 });
    const sent = await channel.payouts.sendPayout(request);
    expect(sent.state).toBe("processing");
    expect(await channel.payouts.queryPayout(request)).toMatchObject({ state: "processing", channelPayoutNo: sent.channelPayoutNo, detail: "pending" });

    const byId = await eventually(
      () => channel.payouts.queryPayout({ ...request, channelPayoutNo: sent.channelPayoutNo! }),
      (status) => status.state !== "processing",
    );
    expect(byId).toEqual({ state: "paid", channelPayoutNo: sent.channelPayoutNo, detail: "paid" });
    expect(await channel.payouts.queryPayout(request)).toEqual(byId);
    await awaitDeliveries(request.payoutNo, "payout.paid");
  });

  it("re-sends under the same payout number without a second payout: the acquirer replays the first answer", async () => {
    const request = payoutRequest();
    const first = await channel.payouts.sendPayout(request);
    const second = await channel.payouts.sendPayout(request);
    expect(second.channelPayoutNo).toBe(first.channelPayoutNo);
    await awaitDeliveries(request.payoutNo, "payout.paid");
    const third = await channel.payouts.sendPayout(request);
    expect(third.channelPayoutNo).toBe(first.channelPayoutNo);
    expect(await payoutsAt(request.payee.account)).toHaveLength(1);
  });

  it("refuses a re-send of the same payout number with another amount (the acquirer's idempotency_error) without calling it failed", async () => {
    const request = payoutRequest();
    await channel.payouts.sendPayout(request);
    const error = await rejection(channel.payouts.sendPayout({ ...request, amountMinor: request.amountMinor + 1n }));
    expect(error).toBeInstanceOf(ChannelRejectedError);
    expect(error).toMatchObject({ code: "idempotency_error" });
    expect((error as Error).message).toContain("sendPayout (payouts.create)");
    expect(await payoutsAt(request.payee.account)).toHaveLength(1);
  });

  it("delivers duplicated payout webhooks with one event id, each parsing to the same notification", async () => {
    const request = payoutRequest();
    faultsFor(request.payoutNo, { duplicatePayoutWebhooks: 3 });
    await channel.payouts.sendPayout(request);
    const paid = await awaitDeliveries(request.payoutNo, "payout.paid", 3);
    expect(paid).toHaveLength(3);
    const notifications = paid.map(parse);
    expect(new Set(notifications.map((notification) => notification.notificationId)).size).toBe(1);
    expect(notifications.every((notification) => notification.kind === "payout" && notification.state === "paid")).toBe(true);
    expect(await payoutsAt(request.payee.account)).toHaveLength(1);
  });

  it("throws ChannelUnavailableError on the acquirer's 5xx, for send and query, and the re-send then makes the payout once", async () => {
    const request = payoutRequest();
    simulator.setFaults({ channel: "card", faults: { apiError: { method: "payouts.create", status: 503, times: 1 } } });
    const error = await rejection(channel.payouts.sendPayout(request));
    expect(error).toBeInstanceOf(ChannelUnavailableError);
    expect((error as Error).message).toContain("sendPayout (payouts.create): HTTP 503");
    expect(await payoutsAt(request.payee.account)).toHaveLength(0);

    const sent = await channel.payouts.sendPayout(request);
    simulator.setFaults({ channel: "card", faults: { apiError: { method: "payouts.retrieve", status: 500, times: 1 } } });
    expect(await rejection(channel.payouts.queryPayout({ ...request, channelPayoutNo: sent.channelPayoutNo! }))).toBeInstanceOf(ChannelUnavailableError);
    simulator.setFaults({ channel: "card", faults: { apiError: { method: "payouts.list", status: 500, times: 1 } } });
    expect(await rejection(channel.payouts.queryPayout(request))).toBeInstanceOf(ChannelUnavailableError);
    expect(await payoutsAt(request.payee.account)).toHaveLength(1);
  });

  it("finds a payout whose create answer was lost (timeout after the acquirer made it) by listing, and a re-send replays it", async () => {
    const request = payoutRequest();
    simulator.setFaults({ channel: "card", faults: { apiTimeout: { method: "payouts.create", apply: true, times: 1 } } });
    const error = await rejection(cardChannel(300).payouts.sendPayout(request));
    expect(error).toBeInstanceOf(ChannelUnavailableError);

    const found = await channel.payouts.queryPayout(request);
    expect(found.channelPayoutNo).toMatch(/^po_/);
    expect(["processing", "paid"]).toContain(found.state);
    expect((await channel.payouts.sendPayout(request)).channelPayoutNo).toBe(found.channelPayoutNo);
    expect(await payoutsAt(request.payee.account)).toHaveLength(1);
  });

  it("answers a payout to a bank account the acquirer does not know as failed (resource_missing), with no payout made", async () => {
    const request = payoutRequest({ payee: { type: "BANK_ACCOUNT", account: `ba_missing${Date.now()}` } });
    const sent = await channel.payouts.sendPayout(request);
    expect(sent.state).toBe("failed");
    expect(sent.channelPayoutNo).toBeUndefined();
    expect(sent.detail).toContain("resource_missing");
    expect(await payoutsAt(request.payee.account)).toHaveLength(0);
  });

  it("queries a payout the acquirer never made as not_found, by id and by listing", async () => {
    const request = payoutRequest();
    expect(await channel.payouts.queryPayout({ ...request, channelPayoutNo: "po_never_made_here" })).toMatchObject({ state: "not_found" });
    expect(await channel.payouts.queryPayout(request)).toMatchObject({ state: "not_found" });
  });

  it("refuses a payout answer that belongs to another payout number or amount (PAYOUT_MISMATCH)", async () => {
    const request = payoutRequest();
    const sent = await channel.payouts.sendPayout(request);
    const other = await rejection(channel.payouts.queryPayout({ ...request, payoutNo: `${request.payoutNo}-other`, channelPayoutNo: sent.channelPayoutNo! }));
    expect(other).toMatchObject({ code: "PAYOUT_MISMATCH" });
    const amount = await rejection(channel.payouts.queryPayout({ ...request, amountMinor: 1n, channelPayoutNo: sent.channelPayoutNo! }));
    expect(amount).toMatchObject({ code: "PAYOUT_MISMATCH" });
  });
});

describe("card payees and requests refused before anything is sent", () => {
  it("validatePayee accepts a ba_ bank account id and names what is wrong otherwise, without echoing the account", () => {
    const { validatePayee } = channel.payouts;
    expect(validatePayee({ type: "BANK_ACCOUNT", account: "ba_1Nv0aB2eZvKYlo2C" })).toBeUndefined();
    expect(validatePayee({ type: "ALIPAY_USER_ID", account: "2088000000000001" })).toContain("BANK_ACCOUNT");
    const iban = "DE89370400440532013000";
    const problem = validatePayee({ type: "BANK_ACCOUNT", account: iban });
    expect(problem).toContain("ba_");
    expect(problem).not.toContain(iban);
    expect(validatePayee({ type: "BANK_ACCOUNT", account: "ba_12345" })).toBeDefined();
    expect(validatePayee({ type: "BANK_ACCOUNT", account: `ba_${"a".repeat(65)}` })).toBeDefined();
    expect(validatePayee({ type: "BANK_ACCOUNT", account: `ba_${"a".repeat(64)}` })).toBeUndefined();
    expect(validatePayee({ type: "BANK_ACCOUNT", account: "ba_1Nv0aB2eZvKYlo2C", name: "n".repeat(CARD_PAYEE_NAME_MAX_CHARS) })).toBeUndefined();
    expect(validatePayee({ type: "BANK_ACCOUNT", account: "ba_1Nv0aB2eZvKYlo2C", name: "n".repeat(CARD_PAYEE_NAME_MAX_CHARS + 1) })).toContain("name");
  });

  it("sendPayout throws ChannelRejectedError for a bad payee, amount or currency, and the acquirer sees no payout", async () => {
    const request = payoutRequest();
    const cases: [Partial<ChannelPayoutRequest>, string][] = [
      [{ payee: { type: "WECHAT_OPENID", account: "o0000000000000000" } }, "INVALID_PAYEE"],
      [{ amountMinor: 0n }, "INVALID_AMOUNT"],
      [{ currency: "US$" }, "INVALID_CURRENCY"],
    ];
    for (const [overrides, code] of cases) {
      const error = await rejection(channel.payouts.sendPayout({ ...request, ...overrides }));
      expect(error).toBeInstanceOf(ChannelRejectedError);
      expect(error).toMatchObject({ code });
    }
    expect(await payoutsAt(request.payee.account)).toHaveLength(0);
  });
});

describe("card payout webhooks in parseCallback", () => {
  const { card } = testKeys();
  const signed = (event: object) => {
    const rawBody = Buffer.from(JSON.stringify(event));
    return { headers: { "stripe-signature": signCardWebhook(card.webhookSecret, rawBody, Math.floor(Date.now() / 1000)) }, rawBody };
  };
  const payoutEvent = (type: string, payout: object) => ({
    id: `evt_${++seq}`,
    object: "event",
    type,
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: { object: { id: "po_1", object: "payout", amount: 500, currency: "eur", status: "paid", metadata: { payout_no: "T1" }, ...payout } },
  });

  it("ignores payouts without our payout_no (the acquirer's automatic payouts) and the other payout.* events", () => {
    expect(channel.parseCallback(signed(payoutEvent("payout.paid", { metadata: {} })))).toMatchObject({
      kind: "ignored",
      channelStatus: "payout.paid: payout without our payout_no",
    });
    for (const type of ["payout.created", "payout.updated", "payout.canceled", "payout.reconciliation_completed"]) {
      expect(channel.parseCallback(signed(payoutEvent(type, {})))).toMatchObject({ kind: "ignored", channelStatus: type });
    }
  });

  it("rejects a payout event with a malformed amount or no currency, and one with a bad signature", () => {
    for (const [payout, reason] of [
      [{ amount: -1 }, "bad_amount"],
      [{ amount: "500" }, "bad_amount"],
      [{ currency: null }, "missing_currency"],
    ] as const) {
      const error = (() => {
        try {
          channel.parseCallback(signed(payoutEvent("payout.failed", payout)));
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(CallbackRejectedError);
      expect(error).toMatchObject({ reason });
    }
    const forged = signed(payoutEvent("payout.paid", {}));
    forged.headers["stripe-signature"] = signCardWebhook("whsec_someone_else", forged.rawBody, Math.floor(Date.now() / 1000));
    expect(() => channel.parseCallback(forged)).toThrow(CallbackRejectedError);
  });
});

describe("bounds", () => {
  it(`answers not_found for a lost payout only after the whole list; past ${CARD_PAYOUT_SEARCH_MAX_PAGES} pages to one account the outcome stays unknown`, async () => {
    const { card } = testKeys();
    const destination = `ba_bound${Date.now()}`;
    // Many payouts, none of them announced: keep the webhook receiver quiet.
    simulator.setFaults({ channel: "card", faults: { dropNotifies: true } });
    const create = (n: number) =>
      fetch(`${simulator.url}/card/v1/payouts`, {
        method: "POST",
        headers: { authorization: `Bearer ${card.secretKey}`, "content-type": "application/x-www-form-urlencoded", "idempotency-key": `bound-${destination}-${n}` },
        body: new URLSearchParams({ amount: "1", currency: "usd", destination, "metadata[payout_no]": `bound-${n}` }).toString(),
      }).then((response) => expect(response.status).toBe(200));
    const total = CARD_PAYOUT_SEARCH_MAX_PAGES * 100;
    for (let start = 0; start < total; start += 25) {
      await Promise.all(Array.from({ length: Math.min(25, total - start) }, (_, i) => create(start + i)));
    }
    const lost = { ...payoutRequest(), payee: { type: "BANK_ACCOUNT" as const, account: destination }, amountMinor: 1n };
    // Exactly the bound: the list ends on the last page read.
    expect(await channel.payouts.queryPayout(lost)).toMatchObject({ state: "not_found" });
    // The oldest is the last one the search reaches.
    expect(await channel.payouts.queryPayout({ ...lost, payoutNo: "bound-0" })).toMatchObject({ state: "paid" });
    await create(total);
    const error = await rejection(channel.payouts.queryPayout(lost));
    expect(error).toBeInstanceOf(ChannelUnavailableError);
    expect((error as Error).message).toContain("outcome is unknown");
  });

  it(`keeps at most ${MAX_PAYOUTS} payouts at the simulated acquirer, forgetting the oldest`, () => {
    const faults = new FaultRegistry();
    const timers = new TimerSet();
    const book = new CardBook({ trades: new TradeStore(), faults, timers, notifier: new Notifier(faults, timers, 1), timeScale: 1 }, testKeys().card);
    // Never finished: no timer per payout.
    faults.set({ channel: "card", faults: { payoutDelayMs: 2 ** 31 } });
    const params = parseParams("amount=1&currency=usd&destination=ba_book_bound");
    try {
      const first = createPayout(book, params).id as string;
      let last = first;
      for (let i = 0; i < MAX_PAYOUTS; i++) last = createPayout(book, params).id as string;
      expect(retrievePayout(book, last)).toMatchObject({ id: last, status: "pending" });
      expect((() => {
        try {
          retrievePayout(book, first);
        } catch (error) {
          return (error as StripeError).detail;
        }
      })()).toMatchObject({ code: "resource_missing" });
      expect((listPayouts(book, parseParams("limit=1")).data as { id: string }[])[0]?.id).toBe(last);
    } finally {
      timers.stop();
    }
  });
});

describe("the official stripe client against the simulator's payouts", () => {
  const stripeClient = () => {
    const { hostname, port } = new URL(simulator.channelUrls.card);
    return new Stripe(testKeys().card.secretKey, { host: hostname, port: Number(port), protocol: "http", maxNetworkRetries: 0 });
  };

  it("creates, retrieves and lists payouts, and constructEvent accepts the simulator's payout.paid webhook", async () => {
    const stripe = stripeClient();
    const destination = `ba_stripe${Date.now()}`;
    const payoutNo = `T-stripe-${++seq}`;
    const created = await stripe.payouts.create({ amount: 4200, currency: "usd", destination, description: "Settlement", metadata: { payout_no: payoutNo } });
    expect(created).toMatchObject({ object: "payout", amount: 4200, currency: "usd", destination, status: "pending", metadata: { payout_no: payoutNo } });
    expect(created.id).toMatch(/^po_/);
    expect((await stripe.payouts.retrieve(created.id)).id).toBe(created.id);
    const listed = await stripe.payouts.list({ destination, limit: 10 });
    expect(listed.data.map((payout) => payout.id)).toEqual([created.id]);
    expect(listed.has_more).toBe(false);

    const [delivery] = await awaitDeliveries(payoutNo, "payout.paid");
    const event = stripe.webhooks.constructEvent(delivery!.rawBody, delivery!.signature, testKeys().card.webhookSecret);
    expect(event.type).toBe("payout.paid");
    expect(event.data.object).toMatchObject({ id: created.id, object: "payout", status: "paid" });
    expect((await stripe.payouts.retrieve(created.id)).status).toBe("paid");
  });

  it("gets Stripe's errors: missing destination, an unknown bank account, an amount below 1, a description past the bound", async () => {
    const stripe = stripeClient();
    const missing = await stripe.payouts.create({ amount: 100, currency: "usd" }).catch((caught: unknown) => caught);
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 400, code: "parameter_missing", param: "destination" });
    const unknown = await stripe.payouts.create({ amount: 100, currency: "usd", destination: "ba_missing_account" }).catch((caught: unknown) => caught);
    expect(unknown).toMatchObject({ statusCode: 404, code: "resource_missing", param: "destination" });
    const zero = await stripe.payouts.create({ amount: 0, currency: "usd", destination: "ba_stripe_zero" }).catch((caught: unknown) => caught);
    expect(zero).toMatchObject({ statusCode: 400, code: "amount_too_small", param: "amount" });
    const longText = await stripe.payouts
      .create({ amount: 100, currency: "usd", destination: "ba_stripe_long", description: "d".repeat(MAX_PAYOUT_DESCRIPTION_CHARS + 1) })
      .catch((caught: unknown) => caught);
    expect(longText).toMatchObject({ statusCode: 400, param: "description" });
    const atBound = await stripe.payouts.create({ amount: 100, currency: "usd", destination: "ba_stripe_long", description: "d".repeat(MAX_PAYOUT_DESCRIPTION_CHARS) });
    expect(atBound.description).toHaveLength(MAX_PAYOUT_DESCRIPTION_CHARS);
    expect(await stripe.payouts.retrieve("po_missing").catch((caught: unknown) => caught)).toMatchObject({ statusCode: 404, code: "resource_missing" });
  });
});
