/**
 * The card channel end to end on MySQL: grpc-js and Connect clients against the app, the card
 * acquirer (Stripe's API) spoken by the simulator over real HTTP, webhooks posted by the simulator
 * to `POST /callbacks/card`. Also the simulated acquirer's own API rules the adapter relies on.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Card Shop");
  await registerWebhookEndpoint();
});
afterAll(() => t?.stop());

/** Calls the simulated acquirer's API the way a Stripe client does. */
async function acquirer(method: string, path: string, form?: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(`${t.simulator.url}/card${path}`, {
    method,
    headers: {
      authorization: `Bearer ${testKeys().card.secretKey}`,
      ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      ...headers,
    },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, read field by field in assertions
  const body: any = await response.json();
  return { status: response.status, headers: response.headers, body };
}

/** Stripe sends events to the account's registered endpoints; ours is the shim's card route. */
async function registerWebhookEndpoint() {
  const created = await acquirer(
    "POST",
    "/v1/webhook_endpoints",
    { url: `${t.config.publicBaseUrl}/callbacks/card`, "enabled_events[]": "*" },
    { "idempotency-key": `endpoint-${Date.now()}` },
  );
  expect(created.status).toBe(200);
  expect(created.body.secret).toBe(testKeys().card.webhookSecret);
}

function cardPayment(overrides: Record<string, unknown> = {}) {
  return {
    merchantOrderNo: `card-${Date.now()}-${++orderSeq}`,
    currency: "USD",
    amount: 1999n,
    channel: Channel.CARD,
    subject: "Green tea, 2 tins",
    paymentMethod: "pm_card_visa",
    items: [{ sku: "TEA-GREEN", name: "Green tea tin", quantity: 1n, unitAmount: 1999n }],
    ...overrides,
  };
}

function getByConnect(id: string) {
  return t.connect.payments.getPayment({ lookup: { key: { case: "paymentId", value: id } } }, { headers: merchant.headers });
}

async function waitForStatus(id: string, status: PaymentStatus) {
  const read = await eventually(
    () => getByConnect(id),
    (r) => r.payment?.status === status,
  );
  return read.payment!;
}

describe("a card payment", () => {
  it("goes from creation to success: grpc-js create, the shopper confirms at the acquirer, webhook through the shim, Connect read", async () => {
    const created = await t.grpc.payments.createPayment(cardPayment(), merchant.headers);
    const payment = created.payment!;
    expect(payment.status).toBe(PaymentStatus.PENDING);
    expect(payment.action?.action.case).toBe("clientSecret");
    expect(payment.action?.action.value).toMatch(/^pi_\w+_secret_\w+$/);
    expect(payment.channelTradeNo).toMatch(/^pi_/);
    const trade = t.simulator.getTrade("card", payment.paymentNo)!;
    expect(trade.channelState).toBe("requires_action");
    expect(trade.channelTradeNo).toBe(payment.channelTradeNo);

    t.simulator.pay("card", payment.paymentNo);
    const paid = await waitForStatus(payment.id, PaymentStatus.SUCCEEDED);
    expect(paid.channelTradeNo).toBe(trade.channelTradeNo);
    expect(paid.paidAt).toBeDefined();
    expect(paid.action).toBeUndefined();

    const logs = await t.app.db.em().find(CallbackLog, { paymentId: payment.id });
    expect(logs.map((log) => [log.verdict, log.effect])).toEqual([["applied", "PENDING->SUCCEEDED"]]);
    expect(logs[0]!.headers["stripe-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(JSON.parse(Buffer.from(logs[0]!.rawBody).toString("utf8")).type).toBe("payment_intent.succeeded");
    const notifications = t.simulator.getTrade("card", payment.paymentNo)!.notifications;
    expect(notifications.map((n) => [n.kind, n.state])).toEqual([["payment_intent.succeeded", "acknowledged"]]);
    expect((await checkLedger(t.app.uow.session())).ok).toBe(true);
  });

  it("fails with the acquirer's decline message when the shopper's card is declined", async () => {
    const created = await t.grpc.payments.createPayment(cardPayment(), merchant.headers);
    const { id, paymentNo } = created.payment!;
    t.simulator.pay("card", paymentNo, "fail");
    const failed = await waitForStatus(id, PaymentStatus.FAILED);
    expect(failed.statusReason).toContain("Your card was declined.");
    expect(t.simulator.getTrade("card", paymentNo)?.channelState).toBe("requires_payment_method");
  });

  it("fails for a decline token even when the shopper completes 3-D Secure", async () => {
    const created = await t.grpc.payments.createPayment(cardPayment({ paymentMethod: "pm_card_chargeDeclined" }), merchant.headers);
    expect(created.payment?.status).toBe(PaymentStatus.PENDING);
    t.simulator.pay("card", created.payment!.paymentNo, "success");
    const failed = await waitForStatus(created.payment!.id, PaymentStatus.FAILED);
    expect(failed.statusReason).toContain("declined");
  });

  it("succeeds when the shopper retries after a decline and the second attempt is paid", async () => {
    const created = await t.grpc.payments.createPayment(cardPayment(), merchant.headers);
    const { id, paymentNo } = created.payment!;
    t.simulator.pay("card", paymentNo, "fail");
    await waitForStatus(id, PaymentStatus.FAILED);
    t.simulator.pay("card", paymentNo, "success");
    const paid = await waitForStatus(id, PaymentStatus.SUCCEEDED);
    expect(paid.statusReason).toBe("");
  });

  it("refuses to close a paid payment", async () => {
    const created = await t.grpc.payments.createPayment(cardPayment(), merchant.headers);
    t.simulator.pay("card", created.payment!.paymentNo);
    await waitForStatus(created.payment!.id, PaymentStatus.SUCCEEDED);
    const error = await grpcError(t.grpc.payments.closePayment({ paymentId: created.payment!.id }, merchant.headers));
    expect(error.code).toBe(GrpcStatus.FAILED_PRECONDITION);
  });

  it("refuses a payment method that is not an acquirer token, without calling the acquirer", async () => {
    const before = t.simulator.listTrades("card").length;
    const error = await grpcError(t.grpc.payments.createPayment(cardPayment({ paymentMethod: "4242424242424242" }), merchant.headers));
    expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(t.simulator.listTrades("card")).toHaveLength(before);
  });
});

describe("the simulated acquirer's API", () => {
  const intentForm = (paymentNo: string) => ({
    amount: "500",
    currency: "usd",
    payment_method: "pm_card_visa",
    "payment_method_types[]": "card",
    confirm: "true",
    "metadata[payment_no]": paymentNo,
  });

  it("answers 401 api_key_invalid to a wrong secret key, without echoing it", async () => {
    const answer = await acquirer("GET", "/v1/payment_intents/pi_x", undefined, { authorization: "Bearer sk_test_wrongwrongwrong1234" });
    expect(answer.status).toBe(401);
    expect(answer.body.error).toMatchObject({ type: "invalid_request_error", code: "api_key_invalid" });
    expect(JSON.stringify(answer.body)).not.toContain("sk_test_wrongwrongwrong1234");
  });

  it("replays the stored answer for a repeated Idempotency-Key and refuses it with other parameters", async () => {
    const key = `idem-${Date.now()}`;
    const paymentNo = `PSIMIDEM${Date.now()}`;
    const first = await acquirer("POST", "/v1/payment_intents", intentForm(paymentNo), { "idempotency-key": key });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ object: "payment_intent", status: "requires_action", amount: 500, currency: "usd", livemode: false });
    expect(first.body.metadata).toEqual({ payment_no: paymentNo });
    const again = await acquirer("POST", "/v1/payment_intents", intentForm(paymentNo), { "idempotency-key": key });
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const other = await acquirer("POST", "/v1/payment_intents", { ...intentForm(paymentNo), amount: "501" }, { "idempotency-key": key });
    expect(other.status).toBe(400);
    expect(other.body.error.type).toBe("idempotency_error");
    expect(t.simulator.listTrades("card").filter((trade) => trade.outTradeNo === paymentNo)).toHaveLength(1);
  });

  it("finds an intent by metadata search and refuses to cancel it once it succeeded", async () => {
    const paymentNo = `PSIMSEARCH${Date.now()}`;
    const created = await acquirer("POST", "/v1/payment_intents", intentForm(paymentNo), { "idempotency-key": `s-${paymentNo}` });
    const found = await acquirer("GET", `/v1/payment_intents/search?query=${encodeURIComponent(`metadata['payment_no']:'${paymentNo}'`)}`);
    expect(found.body.data.map((intent: { id: string }) => intent.id)).toEqual([created.body.id]);
    t.simulator.pay("card", paymentNo);
    const cancel = await acquirer("POST", `/v1/payment_intents/${created.body.id}/cancel`, {}, { "idempotency-key": `c-${paymentNo}` });
    expect(cancel.status).toBe(400);
    expect(cancel.body.error.code).toBe("payment_intent_unexpected_state");
    expect(cancel.body.error.payment_intent.status).toBe("succeeded");
  });

  it("refuses unknown parameters and POSTs without an Idempotency-Key", async () => {
    const unknown = await acquirer("POST", "/v1/payment_intents", { ...intentForm("PSIMUNKNOWN"), card_number: "x" }, { "idempotency-key": "u1" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe("parameter_unknown");
    const keyless = await acquirer("POST", "/v1/payment_intents", intentForm("PSIMKEYLESS"));
    expect(keyless.status).toBe(400);
    expect(t.simulator.getTrade("card", "PSIMKEYLESS")).toBeUndefined();
  });
});
