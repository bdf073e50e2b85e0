/**
 * The official `stripe` npm client, unchanged, against the simulator's card acquirer served at the
 * root of its own listener (`simulator.channelUrls.card`): it calls `/v1/...` there, as it calls
 * api.stripe.com. Covers the calls the card adapter and a merchant's own code make, the browser's
 * confirm with the publishable key and client secret, Stripe-shaped errors (which the client turns
 * into its typed errors), and webhooks that the client's own verifier accepts.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cardPublishableKey, type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { testKeys } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

let simulator: Simulator;
/** The merchant's server: the secret key. */
let server: Stripe;
/** The shopper's browser: the publishable key (Stripe.js would make the same calls). */
let browser: Stripe;
let receiver: http.Server;
const received: { body: string; signature: string }[] = [];
let orderSeq = 0;

function clientFor(key: string): Stripe {
  const { hostname, port } = new URL(simulator.channelUrls.card);
  return new Stripe(key, { host: hostname, port: Number(port), protocol: "http", maxNetworkRetries: 0 });
}

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: "stripe-client-test-control-token" });
  server = clientFor(testKeys().card.secretKey);
  browser = clientFor(cardPublishableKey(testKeys().card.secretKey));
  receiver = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ body: Buffer.concat(chunks).toString("utf8"), signature: String(request.headers["stripe-signature"]) });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const endpoint = await server.webhookEndpoints.create({
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks`,
    enabled_events: ["payment_intent.succeeded", "payment_intent.payment_failed"],
  });
  expect(endpoint.secret).toBe(testKeys().card.webhookSecret);
});
afterAll(async () => {
  await simulator?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

/**
 * The browser's confirm (what Stripe.js sends: the publishable key and the intent's client secret);
 * the server-side client's types leave `client_secret` out, its wire format is the same.
 */
function browserConfirm(id: string, params: { payment_method?: string; client_secret?: string }): Promise<Stripe.PaymentIntent> {
  return browser.paymentIntents.confirm(id, params as Stripe.PaymentIntentConfirmParams);
}

const paymentNo = () => `stripe-client-${Date.now()}-${++orderSeq}`;

/** The events received for one intent, verified with the client's own webhook verifier. */
function eventsFor(intentId: string): Stripe.Event[] {
  return received
    .map(({ body, signature }) => server.webhooks.constructEvent(body, signature, testKeys().card.webhookSecret))
    .filter((event) => (event.data.object as { id?: string }).id === intentId);
}

describe("the official stripe client against the simulator's card root", () => {
  it("creates an intent without a payment method (client-confirmed flow); the browser confirms with the publishable key and client secret", async () => {
    const created = await server.paymentIntents.create({ amount: 2500, currency: "usd", metadata: { payment_no: paymentNo() } });
    expect(created.status).toBe("requires_payment_method");
    expect(created.client_secret).toMatch(new RegExp(`^${created.id}_secret_`));
    expect(created.payment_method).toBeNull();

    const seenByBrowser = await browser.paymentIntents.retrieve(created.id, { client_secret: created.client_secret! });
    expect(seenByBrowser.status).toBe("requires_payment_method");
    const confirmed = await browserConfirm(created.id, { payment_method: "pm_card_visa", client_secret: created.client_secret! });
    expect(confirmed).toMatchObject({ status: "succeeded", amount_received: 2500, payment_method: "pm_card_visa" });
    expect(confirmed.latest_charge).toMatch(/^ch_/);

    const retrieved = await server.paymentIntents.retrieve(created.id);
    expect(retrieved.status).toBe("succeeded");
    const [event] = await eventually(
      async () => eventsFor(created.id),
      (events) => events.length > 0,
    );
    expect(event).toMatchObject({ type: "payment_intent.succeeded", data: { object: { id: created.id, status: "succeeded" } } });
  });

  it("creates with payment_method and confirm (server-side): the intent waits for the shopper's 3-D Secure", async () => {
    const created = await server.paymentIntents.create({
      amount: 1999,
      currency: "usd",
      payment_method: "pm_card_visa",
      confirm: true,
      metadata: { payment_no: paymentNo() },
    });
    expect(created.status).toBe("requires_action");
    expect(created.next_action?.type).toBe("use_stripe_sdk");
  });

  it("confirms server-side with stripe.paymentIntents.confirm(id, {payment_method}), then the shopper finishes in the browser", async () => {
    const created = await server.paymentIntents.create({ amount: 700, currency: "eur", metadata: { payment_no: paymentNo() } });
    const confirmed = await server.paymentIntents.confirm(created.id, { payment_method: "pm_card_visa" });
    expect(confirmed.status).toBe("requires_action");
    const finished = await browserConfirm(created.id, { client_secret: created.client_secret! });
    expect(finished.status).toBe("succeeded");
    // Confirming again is a state error in Stripe's shape.
    const again = await server.paymentIntents.confirm(created.id, { payment_method: "pm_card_visa" }).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" });
  });

  it("a declined card in the browser is a StripeCardError (402 card_error), and payment_intent.payment_failed goes out", async () => {
    const created = await server.paymentIntents.create({ amount: 1200, currency: "usd", metadata: { payment_no: paymentNo() } });
    const error = await browserConfirm(created.id, { payment_method: "pm_card_chargeDeclined", client_secret: created.client_secret! })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(error).toMatchObject({ statusCode: 402, type: "StripeCardError", code: "card_declined", decline_code: "generic_decline" });
    expect((error as Stripe.errors.StripeCardError).payment_intent?.status).toBe("requires_payment_method");
    const [event] = await eventually(
      async () => eventsFor(created.id),
      (events) => events.length > 0,
    );
    expect(event?.type).toBe("payment_intent.payment_failed");
    // The shopper retries with another card on the same intent, as at Stripe.
    const retried = await browserConfirm(created.id, { payment_method: "pm_card_mastercard", client_secret: created.client_secret! });
    expect(retried.status).toBe("succeeded");
  });

  it("cancels an intent; a second cancel is StripeInvalidRequestError payment_intent_unexpected_state", async () => {
    const created = await server.paymentIntents.create({ amount: 300, currency: "usd", metadata: { payment_no: paymentNo() } });
    const canceled = await server.paymentIntents.cancel(created.id, { cancellation_reason: "abandoned" });
    expect(canceled).toMatchObject({ status: "canceled", cancellation_reason: "abandoned" });
    const error = await server.paymentIntents.cancel(created.id).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ code: "payment_intent_unexpected_state" });
  });

  it("refunds: create (partial, then the rest), retrieve, list; too much is amount_too_large", async () => {
    const created = await server.paymentIntents.create({ amount: 5000, currency: "usd", metadata: { payment_no: paymentNo() } });
    await browserConfirm(created.id, { payment_method: "pm_card_amex", client_secret: created.client_secret! });
    const first = await server.refunds.create({ payment_intent: created.id, amount: 1500, metadata: { refund_no: "r1" } });
    expect(first).toMatchObject({ status: "succeeded", amount: 1500, payment_intent: created.id });
    expect(await server.refunds.retrieve(first.id)).toMatchObject({ id: first.id, amount: 1500 });
    const tooMuch = await server.refunds.create({ payment_intent: created.id, amount: 3501 }).catch((caught: unknown) => caught);
    expect(tooMuch).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(tooMuch).toMatchObject({ code: "amount_too_large", param: "amount" });
    const rest = await server.refunds.create({ payment_intent: created.id });
    expect(rest.amount).toBe(3500);
    const list = await server.refunds.list({ payment_intent: created.id });
    expect(list.data.map((refund) => refund.id)).toEqual([rest.id, first.id]);
    expect((await server.refunds.retrieve("re_missing").catch((caught: unknown) => caught)) as object).toMatchObject({
      statusCode: 404,
      code: "resource_missing",
    });
  });

  it("replays an idempotent create: the same key returns the same intent", async () => {
    const params = { amount: 100, currency: "usd", metadata: { payment_no: paymentNo() } };
    const first = await server.paymentIntents.create(params, { idempotencyKey: `key-${orderSeq}` });
    const second = await server.paymentIntents.create(params, { idempotencyKey: `key-${orderSeq}` });
    expect(second.id).toBe(first.id);
    const reused = await server.paymentIntents.create({ ...params, amount: 101 }, { idempotencyKey: `key-${orderSeq}` }).catch((caught: unknown) => caught);
    expect(reused).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
  });

  it("answers a path it does not serve with a 404 in Stripe's shape (StripeInvalidRequestError, not an OAuth error)", async () => {
    const error = await server.customers.create({ email: "shopper@example.test" }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ statusCode: 404, message: expect.stringContaining("Unrecognized request URL (POST: /v1/customers)") });
    const raw = await fetch(`${simulator.channelUrls.card}/nothing/here`, { headers: { authorization: `Bearer ${testKeys().card.secretKey}` } });
    expect(raw.status).toBe(404);
    expect(await raw.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("refuses a wrong secret key (StripeAuthenticationError) and the publishable key outside the browser's calls or without the client secret", async () => {
    const stranger = clientFor("sk_test_not_the_simulators_key_0000");
    expect(await stranger.paymentIntents.list().catch((caught: unknown) => caught)).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);

    const created = await server.paymentIntents.create({ amount: 400, currency: "usd", metadata: { payment_no: paymentNo() } });
    const refund = await browser.refunds.create({ payment_intent: created.id }).catch((caught: unknown) => caught);
    expect(refund).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(refund).toMatchObject({ statusCode: 401, message: expect.stringContaining("publishable API key") });

    const withoutSecret = await browserConfirm(created.id, { payment_method: "pm_card_visa" }).catch((caught: unknown) => caught);
    expect(withoutSecret).toMatchObject({ statusCode: 400, code: "parameter_missing", param: "client_secret" });
    const wrongSecret = await browserConfirm(created.id, { payment_method: "pm_card_visa", client_secret: `${created.id}_secret_wrong` })
      .catch((caught: unknown) => caught);
    expect(wrongSecret).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(wrongSecret).toMatchObject({ param: "client_secret" });
    expect((await server.paymentIntents.retrieve(created.id)).status).toBe("requires_payment_method");
  });
});

describe("the official stripe client against the shared listener", () => {
  it("gets a Stripe-shaped 404 naming where the card acquirer is, not an OAuth error", async () => {
    const { hostname, port } = new URL(simulator.url);
    const misdirected = new Stripe(testKeys().card.secretKey, { host: hostname, port: Number(port), protocol: "http", maxNetworkRetries: 0 });
    const error = await misdirected.paymentIntents.retrieve("pi_anything").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect((error as Error).message).toContain(simulator.channelUrls.card);
  });
});
