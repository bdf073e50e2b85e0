/**
 * The card flow Stripe users expect: CreatePayment without a payment method creates the intent
 * unconfirmed and answers PENDING with the client secret; the shopper's browser confirms at the
 * acquirer with the publishable key and that secret (the simulator's confirm endpoint plays
 * Stripe.js); the payment settles by webhook, or by QueryPayment when the webhook is lost.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { cardPublishableKey } from "../../src/simulator/simulator.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Client-confirmed Card Shop");
  await t.registerCardWebhook();
});
afterAll(() => t?.stop());
afterEach(() => t.simulator.clearFaults());

async function createWithoutPaymentMethod() {
  const created = await t.grpc.payments.createPayment(
    {
      merchantOrderNo: `card-cc-${Date.now()}-${++orderSeq}`,
      currency: "USD",
      amount: 4200n,
      channel: Channel.CARD,
      subject: "Oolong tea",
      paymentMethod: "",
    },
    merchant.headers,
  );
  return created.payment!;
}

/** What Stripe.js does in the shopper's browser: the intent id is the client secret's prefix. */
async function browserConfirms(clientSecret: string, paymentMethod: string) {
  const intentId = clientSecret.slice(0, clientSecret.indexOf("_secret_"));
  const response = await fetch(`${t.simulator.channelUrls.card}/v1/payment_intents/${intentId}/confirm`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${cardPublishableKey(testKeys().card.secretKey)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ payment_method: paymentMethod, client_secret: clientSecret }).toString(),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, read field by field in assertions
  return { status: response.status, body: (await response.json()) as any };
}

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });
const statusOf = async (id: string) => (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment!.status;

describe("a client-confirmed card payment", () => {
  it("is created PENDING with the client secret and no confirmation; the browser confirms; the webhook makes it SUCCEEDED", async () => {
    const payment = await createWithoutPaymentMethod();
    expect(payment.status).toBe(PaymentStatus.PENDING);
    expect(payment.action?.action.case).toBe("clientSecret");
    const clientSecret = payment.action!.action.value as string;
    expect(clientSecret).toMatch(new RegExp(`^${payment.channelTradeNo}_secret_`));
    expect(t.simulator.getTrade("card", payment.paymentNo)?.channelState).toBe("requires_payment_method");

    const confirmed = await browserConfirms(clientSecret, "pm_card_visa");
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ status: "succeeded", payment_method: "pm_card_visa" });
    const settled = await eventually(
      () => statusOf(payment.id),
      (status) => status === PaymentStatus.SUCCEEDED,
    );
    expect(settled).toBe(PaymentStatus.SUCCEEDED);
  });

  it("settles by QueryPayment when the webhook is dropped", async () => {
    const payment = await createWithoutPaymentMethod();
    t.simulator.setFaults({ channel: "card", outTradeNo: payment.paymentNo, faults: { dropNotifies: true } });
    const confirmed = await browserConfirms(payment.action!.action.value as string, "pm_card_mastercard");
    expect(confirmed.body.status).toBe("succeeded");
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
    const queried = await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers);
    expect(queried.payment?.status).toBe(PaymentStatus.SUCCEEDED);
    expect(queried.payment?.paidAt).toBeDefined();
  });

  it("a card declined in the browser is a 402 card_error there, and the payment_failed webhook makes it FAILED", async () => {
    const payment = await createWithoutPaymentMethod();
    const declined = await browserConfirms(payment.action!.action.value as string, "pm_card_chargeDeclined");
    expect(declined.status).toBe(402);
    expect(declined.body.error).toMatchObject({ type: "card_error", code: "card_declined" });
    const settled = await eventually(
      () => statusOf(payment.id),
      (status) => status === PaymentStatus.FAILED,
    );
    expect(settled).toBe(PaymentStatus.FAILED);
  });

  it("the browser cannot confirm with another intent's client secret", async () => {
    const payment = await createWithoutPaymentMethod();
    const other = await createWithoutPaymentMethod();
    const intentId = payment.channelTradeNo;
    const borrowed = (other.action!.action.value as string).replace(other.channelTradeNo, intentId);
    const refused = await browserConfirms(borrowed, "pm_card_visa");
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ param: "client_secret" });
    expect(t.simulator.getTrade("card", payment.paymentNo)?.channelState).toBe("requires_payment_method");
    expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
  });

  it("still refuses a payment method that is not an acquirer token, naming the field", async () => {
    const error = await grpcError(
      t.grpc.payments.createPayment(
        { merchantOrderNo: `card-cc-bad-${++orderSeq}`, currency: "USD", amount: 100n, channel: Channel.CARD, subject: "x", paymentMethod: "tok_visa" },
        merchant.headers,
      ),
    );
    expect(error.details).toContain("payment_method");
  });
});
