import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCardChannel, signCardWebhook } from "../../src/channels/card/card-channel.js";
import {
  CallbackRejectedError,
  ChannelAnswerUntrustedError,
  type CallbackRequest,
  type ChannelCreatePaymentRequest,
  ChannelRejectedError,
  type ChannelRefundRequest,
  ChannelTradePaidError,
  ChannelUnavailableError,
  type PaymentChannel,
} from "../../src/channels/channel.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { billRecords } from "../support/bill-records.js";
import { rejection } from "../support/waiting.js";

const SECRET_KEY = "sk_test_unitUnitUnit123";
const WEBHOOK_SECRET = "whsec_unitUnitUnit456";

type JsonObject = Record<string, unknown>;

interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  form: URLSearchParams;
}

interface Reply {
  status: number;
  body: unknown;
}

function stripeError(status: number, type: string, code: string | undefined, message: string, extra: JsonObject = {}): Reply {
  return { status, body: { error: { type, ...(code ? { code } : {}), message, ...extra } } };
}

/**
 * Plays the acquirer just enough: checks the Bearer key, form bodies and Idempotency-Key on every
 * POST, keeps intents and refunds in memory, and pages lists `maxPageSize` at a time.
 */
function createFakeAcquirer() {
  const requests: SeenRequest[] = [];
  const intents = new Map<string, JsonObject>();
  const refunds: JsonObject[] = [];
  const balanceTransactions: JsonObject[] = [];
  const idempotent = new Map<string, Reply>();
  const state = {
    maxPageSize: 100,
    nextRefundStatus: "succeeded",
    /** Answers instead of the normal routes when it returns something; "hang" never answers. */
    override: undefined as ((request: SeenRequest) => Reply | "hang" | undefined) | undefined,
  };
  let sequence = 0;

  function page(items: JsonObject[], query: URLSearchParams): Reply {
    const limit = Math.min(Number(query.get("limit") ?? "10"), state.maxPageSize);
    const after = query.get("starting_after");
    const start = after ? items.findIndex((item) => item.id === after) + 1 : 0;
    const data = items.slice(start, start + limit);
    return { status: 200, body: { object: "list", data, has_more: start + limit < items.length } };
  }

  function createIntent(form: URLSearchParams): Reply {
    const id = `pi_fake${++sequence}`;
    const intent: JsonObject = {
      id,
      object: "payment_intent",
      amount: Number(form.get("amount")),
      currency: form.get("currency"),
      client_secret: `${id}_secret_s3cr3t`,
      description: form.get("description"),
      metadata: { payment_no: form.get("metadata[payment_no]") },
      status: "succeeded",
      last_payment_error: null,
      next_action: null,
      cancellation_reason: null,
    };
    intents.set(id, intent);
    switch (form.get("payment_method")) {
      case null:
        // Client-confirmed: the intent waits for the shopper's browser.
        Object.assign(intent, { status: "requires_payment_method" });
        return { status: 200, body: intent };
      case "pm_card_visa":
        return { status: 200, body: intent };
      case "pm_card_threeDSecure2Required":
        Object.assign(intent, { status: "requires_action", next_action: { type: "use_stripe_sdk" } });
        return { status: 200, body: intent };
      case "pm_card_chargeDeclined":
        Object.assign(intent, {
          status: "requires_payment_method",
          last_payment_error: { type: "card_error", code: "card_declined", message: "Your card was declined." },
        });
        return stripeError(402, "card_error", "card_declined", "Your card was declined.", { decline_code: "generic_decline", payment_intent: intent });
      default:
        return stripeError(400, "invalid_request_error", "resource_missing", "No such PaymentMethod");
    }
  }

  function route(request: SeenRequest): Reply | "hang" {
    const overridden = state.override?.(request);
    if (overridden) return overridden;
    if (request.headers.authorization !== `Bearer ${SECRET_KEY}`) {
      return stripeError(401, "invalid_request_error", undefined, "Invalid API Key provided");
    }
    if (request.method === "POST") {
      const key = request.headers["idempotency-key"];
      if (typeof key !== "string" || key === "") return stripeError(400, "invalid_request_error", "test_missing_idempotency_key", "test: POST without Idempotency-Key");
      if (request.headers["content-type"] !== "application/x-www-form-urlencoded") {
        return stripeError(400, "invalid_request_error", "test_not_form_encoded", "test: body is not form-encoded");
      }
      const replay = idempotent.get(`${request.path} ${key}`);
      if (replay) return replay;
      const reply = routePost(request);
      idempotent.set(`${request.path} ${key}`, reply);
      return reply;
    }
    return routeGet(request);
  }

  function routePost({ path, form }: SeenRequest): Reply {
    if (path === "/v1/payment_intents") return createIntent(form);
    const cancel = /^\/v1\/payment_intents\/([^/]+)\/cancel$/.exec(path);
    if (cancel) {
      const intent = intents.get(decodeURIComponent(cancel[1] as string));
      if (!intent) return stripeError(404, "invalid_request_error", "resource_missing", "No such payment_intent");
      if (intent.status === "succeeded" || intent.status === "canceled") {
        return stripeError(400, "invalid_request_error", "payment_intent_unexpected_state", `You cannot cancel this PaymentIntent because it has a status of ${intent.status}.`, {
          payment_intent: intent,
        });
      }
      Object.assign(intent, { status: "canceled", cancellation_reason: "abandoned" });
      return { status: 200, body: intent };
    }
    if (path === "/v1/refunds") {
      const refund: JsonObject = {
        id: `re_fake${++sequence}`,
        object: "refund",
        amount: Number(form.get("amount")),
        currency: "usd",
        payment_intent: form.get("payment_intent"),
        reason: form.get("reason"),
        status: state.nextRefundStatus,
        created: 1_767_225_600 + sequence,
        metadata: Object.fromEntries([...form].filter(([k]) => k.startsWith("metadata[")).map(([k, v]) => [k.slice(9, -1), v])),
      };
      refunds.unshift(refund);
      return { status: 200, body: refund };
    }
    return stripeError(404, "invalid_request_error", undefined, `Unrecognized request URL (POST: ${path})`);
  }

  function routeGet({ path, query }: SeenRequest): Reply {
    if (path === "/v1/payment_intents/search") {
      const match = /^metadata\['payment_no'\]:'((?:[^'\\]|\\.)*)'$/.exec(query.get("query") ?? "");
      const paymentNo = match?.[1]?.replace(/\\(.)/g, "$1");
      const data = [...intents.values()].filter((intent) => (intent.metadata as JsonObject).payment_no === paymentNo);
      return { status: 200, body: { object: "search_result", data, has_more: false } };
    }
    const one = /^\/v1\/payment_intents\/([^/]+)$/.exec(path);
    if (one) {
      const intent = intents.get(decodeURIComponent(one[1] as string));
      return intent ? { status: 200, body: intent } : stripeError(404, "invalid_request_error", "resource_missing", "No such payment_intent");
    }
    if (path === "/v1/refunds") {
      return page(refunds.filter((refund) => refund.payment_intent === query.get("payment_intent")), query);
    }
    if (path === "/v1/balance_transactions") {
      const gte = Number(query.get("created[gte]"));
      const lt = Number(query.get("created[lt]"));
      return page(balanceTransactions.filter((txn) => (txn.created as number) >= gte && (txn.created as number) < lt), query);
    }
    return stripeError(404, "invalid_request_error", undefined, `Unrecognized request URL (GET: ${path})`);
  }

  const server = http.createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", () => {
      const url = new URL(incoming.url ?? "/", "http://fake");
      const request: SeenRequest = {
        method: incoming.method ?? "",
        path: url.pathname,
        query: url.searchParams,
        headers: incoming.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString("utf8")),
      };
      requests.push(request);
      const reply = route(request);
      if (reply === "hang") return;
      const body = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
      outgoing.writeHead(reply.status, { "content-type": "application/json" }).end(body);
    });
  });

  return {
    requests,
    intents,
    refunds,
    balanceTransactions,
    state,
    url: "",
    async start() {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    reset() {
      requests.length = 0;
      intents.clear();
      refunds.length = 0;
      balanceTransactions.length = 0;
      idempotent.clear();
      state.maxPageSize = 100;
      state.nextRefundStatus = "succeeded";
      state.override = undefined;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const acquirer = createFakeAcquirer();
let channel: PaymentChannel;

beforeAll(async () => {
  await acquirer.start();
  channel = createCardChannel({ baseUrl: `${acquirer.url}/`, secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, timeoutMs: 2000 });
});
afterEach(() => acquirer.reset());
afterAll(async () => {
  closeHttpAgents();
  await acquirer.stop();
});

function createRequest(overrides: Partial<ChannelCreatePaymentRequest> = {}): ChannelCreatePaymentRequest {
  return {
    paymentNo: "P20260101000001",
    amountMinor: 1999n,
    currency: "USD",
    subject: "Green tea, 2 tins",
    expiresAt: new Date("2026-01-01T00:30:00Z"),
    notifyUrl: "http://127.0.0.1/callbacks/card",
    idempotencyKey: "create-01JTEST",
    paymentMethodToken: "pm_card_visa",
    ...overrides,
  };
}

function seedIntent(fields: JsonObject): JsonObject {
  const intent: JsonObject = {
    id: "pi_seeded",
    object: "payment_intent",
    amount: 1999,
    currency: "usd",
    status: "requires_action",
    metadata: { payment_no: "P1" },
    last_payment_error: null,
    ...fields,
  };
  acquirer.intents.set(intent.id as string, intent);
  return intent;
}

function refundRequest(overrides: Partial<ChannelRefundRequest> = {}): ChannelRefundRequest {
  return {
    trade: { paymentNo: "P1", channelTradeNo: "pi_seeded", amountMinor: 1999n, currency: "USD" },
    refundNo: "R1",
    amountMinor: 500n,
    notifyUrl: "http://127.0.0.1/callbacks/card",
    ...overrides,
  };
}

describe("card channel: create", () => {
  it("confirms a payment intent with a form body, Bearer key and the request's Idempotency-Key", async () => {
    const created = await channel.createPayment(createRequest());
    expect(created.channelTradeNo).toMatch(/^pi_/);
    expect(created.action).toEqual({ kind: "client_secret", value: `${created.channelTradeNo}_secret_s3cr3t` });

    const [sent] = acquirer.requests;
    expect(sent?.method).toBe("POST");
    expect(sent?.path).toBe("/v1/payment_intents");
    expect(sent?.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
    expect(sent?.headers["idempotency-key"]).toBe("create-01JTEST");
    expect(Object.fromEntries(sent?.form ?? [])).toEqual({
      amount: "1999",
      currency: "usd",
      payment_method: "pm_card_visa",
      "payment_method_types[]": "card",
      confirm: "true",
      "metadata[payment_no]": "P20260101000001",
      description: "Green tea, 2 tins",
    });
  });

  it("without a token creates the intent unconfirmed and without payment_method (the browser confirms with the client secret)", async () => {
    const created = await channel.createPayment(createRequest({ paymentMethodToken: undefined }));
    expect(created.action).toEqual({ kind: "client_secret", value: `${created.channelTradeNo}_secret_s3cr3t` });
    expect(Object.fromEntries(acquirer.requests[0]?.form ?? [])).toEqual({
      amount: "1999",
      currency: "usd",
      "payment_method_types[]": "card",
      "metadata[payment_no]": "P20260101000001",
      description: "Green tea, 2 tins",
    });
  });

  it("sends amounts as exact integer text from bigint, even beyond 2^53", async () => {
    await channel.createPayment(createRequest({ amountMinor: 9_007_199_254_740_993n }));
    expect(acquirer.requests[0]?.form.get("amount")).toBe("9007199254740993");
  });

  it("returns the client secret when the acquirer asks for 3-D Secure, and the trade stays pending", async () => {
    const created = await channel.createPayment(createRequest({ paymentMethodToken: "pm_card_threeDSecure2Required" }));
    expect(created.action.kind).toBe("client_secret");
    const status = await channel.queryPayment({ paymentNo: "P20260101000001", channelTradeNo: created.channelTradeNo, amountMinor: 1999n, currency: "USD" });
    expect(status.state).toBe("pending");
  });

  it("maps a 402 card_declined to ChannelRejectedError with the acquirer's code", async () => {
    const error = await rejection(channel.createPayment(createRequest({ paymentMethodToken: "pm_card_chargeDeclined" })));
    expect(error).toBeInstanceOf(ChannelRejectedError);
    expect((error as ChannelRejectedError).code).toBe("card_declined");
    expect((error as Error).message).toContain("Your card was declined.");
  });

  it.each([
    ["a card number", "4242424242424242"],
    ["a spaced card number", "4242 4242 4242 4242"],
    ["another provider's token", "tok_visa"],
  ])("refuses %s as payment method without sending anything or echoing it", async (_name, token) => {
    const error = await rejection(channel.createPayment(createRequest({ paymentMethodToken: token })));
    expect(error).toBeInstanceOf(ChannelRejectedError);
    expect((error as ChannelRejectedError).code).toBe("INVALID_PAYMENT_METHOD");
    expect((error as Error).message).not.toContain("4242");
    expect(acquirer.requests).toHaveLength(0);
  });

  it("never puts the secret key in an error, even when the acquirer echoes it", async () => {
    acquirer.state.override = () => stripeError(401, "invalid_request_error", undefined, `Invalid API Key provided: ${SECRET_KEY}`);
    const error = await rejection(channel.createPayment(createRequest()));
    expect(error).toBeInstanceOf(ChannelRejectedError);
    expect((error as ChannelRejectedError).code).toBe("invalid_request_error");
    expect((error as Error).message).not.toContain(SECRET_KEY);
  });
});

describe("card channel: unavailable acquirer", () => {
  it.each([500, 502, 503, 429])("maps HTTP %i to ChannelUnavailableError", async (status) => {
    acquirer.state.override = () => stripeError(status, "api_error", undefined, "Something went wrong");
    const error = await rejection(channel.createPayment(createRequest()));
    expect(error).toBeInstanceOf(ChannelUnavailableError);
    expect((error as Error).message).toContain(`HTTP ${status}`);
  });

  it("maps 409 idempotency_key_in_use (our earlier attempt still running) to ChannelUnavailableError", async () => {
    acquirer.state.override = () => stripeError(409, "idempotency_error", "idempotency_key_in_use", "There is currently another in-progress request using this Idempotent Key");
    expect(await rejection(channel.createPayment(createRequest()))).toBeInstanceOf(ChannelUnavailableError);
  });

  it("maps a 200 that is not JSON to ChannelUnavailableError", async () => {
    acquirer.state.override = () => ({ status: 200, body: "<html>proxy</html>" });
    expect(await rejection(channel.createPayment(createRequest()))).toBeInstanceOf(ChannelUnavailableError);
  });

  it("maps a refused connection to ChannelUnavailableError", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const offline = createCardChannel({ baseUrl: `http://127.0.0.1:${port}`, secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET });
    const error = await rejection(offline.queryPayment({ paymentNo: "P1", channelTradeNo: "pi_x", amountMinor: 1n, currency: "USD" }));
    expect(error).toBeInstanceOf(ChannelUnavailableError);
  });

  it("maps a timeout to ChannelUnavailableError", async () => {
    acquirer.state.override = () => "hang";
    const impatient = createCardChannel({ baseUrl: acquirer.url, secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, timeoutMs: 150 });
    const error = await rejection(impatient.queryPayment({ paymentNo: "P1", channelTradeNo: "pi_x", amountMinor: 1n, currency: "USD" }));
    expect(error).toBeInstanceOf(ChannelUnavailableError);
    expect((error as Error).message).toContain("150 ms");
  });
});

describe("card channel: query", () => {
  const trade = { paymentNo: "P1", channelTradeNo: "pi_seeded", amountMinor: 1999n, currency: "USD" };

  it("maps succeeded, with amount and upper-cased currency from the intent", async () => {
    seedIntent({ status: "succeeded", amount: 1999, currency: "usd" });
    expect(await channel.queryPayment(trade)).toEqual({
      state: "succeeded",
      channelTradeNo: "pi_seeded",
      amountMinor: 1999n,
      currency: "USD",
      detail: "succeeded",
    });
    expect(acquirer.requests[0]?.method).toBe("GET");
    expect(acquirer.requests[0]?.path).toBe("/v1/payment_intents/pi_seeded");
    expect(acquirer.requests[0]?.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
  });

  it("maps canceled to closed", async () => {
    seedIntent({ status: "canceled", cancellation_reason: "abandoned" });
    expect(await channel.queryPayment(trade)).toMatchObject({ state: "closed", detail: "canceled: abandoned" });
  });

  it("maps requires_payment_method with a last_payment_error to failed, with its message", async () => {
    seedIntent({ status: "requires_payment_method", last_payment_error: { code: "card_declined", message: "Your card has insufficient funds." } });
    expect(await channel.queryPayment(trade)).toMatchObject({ state: "failed", detail: "Your card has insufficient funds." });
  });

  it.each(["requires_payment_method", "requires_confirmation", "requires_action", "processing"])("maps %s without an error to pending", async (status) => {
    seedIntent({ status });
    expect(await channel.queryPayment(trade)).toMatchObject({ state: "pending", detail: status });
  });

  it("maps 404 resource_missing to not_found", async () => {
    expect(await channel.queryPayment({ ...trade, channelTradeNo: "pi_unknown" })).toMatchObject({ state: "not_found" });
  });

  it("does not read a 404 without resource_missing (a wrong URL) as not_found", async () => {
    acquirer.state.override = () => ({ status: 404, body: "Not Found" });
    const error = await rejection(channel.queryPayment(trade));
    expect(error).toBeInstanceOf(ChannelRejectedError);
    expect((error as ChannelRejectedError).code).toBe("HTTP_404");
  });

  it("refuses an intent that belongs to another payment", async () => {
    seedIntent({ status: "succeeded", metadata: { payment_no: "P-other" } });
    const error = await rejection(channel.queryPayment(trade));
    expect((error as ChannelRejectedError).code).toBe("TRADE_MISMATCH");
  });

  it("rejects an unknown status instead of guessing", async () => {
    seedIntent({ status: "teleported" });
    expect(((await rejection(channel.queryPayment(trade))) as ChannelRejectedError).code).toBe("UNEXPECTED_RESPONSE");
  });

  it("refuses an intent whose amount is not an integer instead of dropping the amount check", async () => {
    // Before the typed decoder, an unreadable amount was left out and the amount cross-check skipped.
    seedIntent({ status: "succeeded", amount: "1999" });
    const error = await rejection(channel.queryPayment(trade));
    expect(error).toBeInstanceOf(ChannelAnswerUntrustedError);
    expect((error as ChannelAnswerUntrustedError).code).toBe("UNEXPECTED_RESPONSE");
    expect((error as Error).message).toBe('card: queryPayment (payment_intents.retrieve): amount is not an integer: "1999"');
  });

  it("names the PaymentChannel method, then the acquirer's API method, in every error", async () => {
    acquirer.state.override = () => stripeError(503, "api_error", undefined, "Something went wrong");
    const refund = { trade, refundNo: "R1", amountMinor: 1n, notifyUrl: "https://x/cb" };
    const calls: Array<[string, () => Promise<unknown>, string]> = [
      ["createPayment", () => channel.createPayment(createRequest()), "payment_intents.create"],
      ["queryPayment", () => channel.queryPayment(trade), "payment_intents.retrieve"],
      ["queryPayment", () => channel.queryPayment({ ...trade, channelTradeNo: null }), "payment_intents.search"],
      ["closePayment", () => channel.closePayment(trade), "payment_intents.cancel"],
      ["refund", () => channel.refund(refund), "refunds.create"],
      ["queryRefund", () => channel.queryRefund(refund), "refunds.list"],
      ["fetchBill", () => channel.fetchBill("2026-01-01"), "balance_transactions.list"],
    ];
    for (const [operation, run, wireMethod] of calls) {
      const error = await rejection(run());
      expect(error).toBeInstanceOf(ChannelUnavailableError);
      expect((error as Error).message).toBe(`card: ${operation} (${wireMethod}): HTTP 503 (unverified code api_error)`);
    }
  });

  it("searches by metadata when the intent id is unknown", async () => {
    seedIntent({ id: "pi_found", status: "succeeded", metadata: { payment_no: "P'1" } });
    const status = await channel.queryPayment({ paymentNo: "P'1", amountMinor: 1999n, currency: "USD" });
    expect(status).toMatchObject({ state: "succeeded", channelTradeNo: "pi_found" });
    expect(acquirer.requests[0]?.path).toBe("/v1/payment_intents/search");
    expect(acquirer.requests[0]?.query.get("query")).toBe("metadata['payment_no']:'P\\'1'");
  });

  it("answers not_found when the search finds nothing", async () => {
    expect(await channel.queryPayment({ paymentNo: "P-none", amountMinor: 1n, currency: "USD" })).toMatchObject({ state: "not_found" });
  });
});

describe("card channel: close", () => {
  const trade = { paymentNo: "P1", channelTradeNo: "pi_seeded", amountMinor: 1999n, currency: "USD" };

  it("cancels an unpaid intent with Idempotency-Key cancel-<paymentNo>", async () => {
    seedIntent({ status: "requires_action" });
    await channel.closePayment(trade);
    const [sent] = acquirer.requests;
    expect(sent?.method).toBe("POST");
    expect(sent?.path).toBe("/v1/payment_intents/pi_seeded/cancel");
    expect(sent?.headers["idempotency-key"]).toBe("cancel-P1");
    expect(acquirer.intents.get("pi_seeded")?.status).toBe("canceled");
  });

  it("throws ChannelTradePaidError when the intent already succeeded", async () => {
    seedIntent({ status: "succeeded" });
    expect(await rejection(channel.closePayment(trade))).toBeInstanceOf(ChannelTradePaidError);
  });

  it("asks for the intent when the unexpected-state error does not carry it", async () => {
    seedIntent({ status: "succeeded" });
    acquirer.state.override = (request) =>
      request.method === "POST" ? stripeError(400, "invalid_request_error", "payment_intent_unexpected_state", "cannot cancel") : undefined;
    expect(await rejection(channel.closePayment(trade))).toBeInstanceOf(ChannelTradePaidError);
  });

  it("resolves when the intent is already canceled", async () => {
    seedIntent({ status: "canceled" });
    await expect(channel.closePayment(trade)).resolves.toBeUndefined();
  });

  it("resolves when the intent does not exist", async () => {
    await expect(channel.closePayment({ ...trade, channelTradeNo: "pi_unknown" })).resolves.toBeUndefined();
  });

  it("resolves without cancelling anything when no intent carries the payment number", async () => {
    await channel.closePayment({ paymentNo: "P-none", amountMinor: 1n, currency: "USD" });
    expect(acquirer.requests.map((request) => request.method)).toEqual(["GET"]);
  });

  it("maps a 500 to ChannelUnavailableError", async () => {
    seedIntent({ status: "requires_action" });
    acquirer.state.override = () => stripeError(500, "api_error", undefined, "boom");
    expect(await rejection(channel.closePayment(trade))).toBeInstanceOf(ChannelUnavailableError);
  });
});

describe("card channel: refunds", () => {
  it("creates a refund with Idempotency-Key refund-<refundNo>, metadata and the reason enum", async () => {
    seedIntent({ status: "succeeded" });
    const status = await channel.refund(refundRequest({ reason: "customer changed their mind" }));
    expect(status.state).toBe("succeeded");
    expect(status.channelRefundNo).toMatch(/^re_/);

    const [sent] = acquirer.requests;
    expect(sent?.path).toBe("/v1/refunds");
    expect(sent?.headers["idempotency-key"]).toBe("refund-R1");
    expect(Object.fromEntries(sent?.form ?? [])).toEqual({
      payment_intent: "pi_seeded",
      amount: "500",
      "metadata[refund_no]": "R1",
      "metadata[payment_no]": "P1",
      reason: "requested_by_customer",
      "metadata[reason]": "customer changed their mind",
    });
  });

  it("sends no reason when none is given", async () => {
    await channel.refund(refundRequest());
    const form = acquirer.requests[0]?.form;
    expect(form?.has("reason")).toBe(false);
    expect(form?.has("metadata[reason]")).toBe(false);
  });

  it.each([
    ["pending", "processing"],
    ["requires_action", "processing"],
    ["failed", "failed"],
    ["canceled", "failed"],
  ])("maps refund status %s to %s", async (acquirerStatus, state) => {
    acquirer.state.nextRefundStatus = acquirerStatus;
    expect((await channel.refund(refundRequest())).state).toBe(state);
  });

  it("maps a 4xx to ChannelRejectedError with the acquirer's code", async () => {
    acquirer.state.override = () => stripeError(400, "invalid_request_error", "charge_already_refunded", "Charge has already been refunded.");
    const error = await rejection(channel.refund(refundRequest()));
    expect((error as ChannelRejectedError).code).toBe("charge_already_refunded");
  });

  it("queries a refund by listing the intent's refunds across pages and matching metadata refund_no", async () => {
    acquirer.state.maxPageSize = 2;
    for (const refundNo of ["R1", "R2", "R3", "R4", "R5"]) {
      acquirer.state.nextRefundStatus = refundNo === "R1" ? "pending" : "succeeded";
      await channel.refund(refundRequest({ refundNo }));
    }
    acquirer.requests.length = 0;

    // Listed newest first, so R1 is on the last page.
    const status = await channel.queryRefund(refundRequest({ refundNo: "R1" }));
    expect(status).toMatchObject({ state: "processing", detail: "pending" });
    expect(acquirer.requests.map((request) => request.query.get("starting_after"))).toEqual([null, expect.stringMatching(/^re_/), expect.stringMatching(/^re_/)]);
    expect(acquirer.requests[0]?.query.get("payment_intent")).toBe("pi_seeded");
  });

  it("answers failed when the acquirer has no such refund", async () => {
    expect((await channel.queryRefund(refundRequest({ refundNo: "R-none" }))).state).toBe("not_found");
  });
});

function callback(event: JsonObject, options: { secret?: string; t?: number; header?: string | null } = {}): CallbackRequest {
  const rawBody = Buffer.from(JSON.stringify(event));
  const t = options.t ?? Math.floor(Date.now() / 1000);
  const header = options.header === undefined ? signCardWebhook(options.secret ?? WEBHOOK_SECRET, rawBody, t) : options.header;
  return { headers: { "content-type": "application/json", ...(header === null ? {} : { "stripe-signature": header }) }, rawBody };
}

function event(type: string, object: JsonObject, extra: JsonObject = {}): JsonObject {
  return { id: "evt_1", object: "event", type, created: 1_767_225_600, livemode: false, data: { object }, ...extra };
}

const paidIntent = { id: "pi_1", object: "payment_intent", amount: 1999, currency: "usd", status: "succeeded", metadata: { payment_no: "P1" } };

function rejectionReason(request: CallbackRequest): string {
  try {
    channel.parseCallback(request);
  } catch (error) {
    expect(error).toBeInstanceOf(CallbackRejectedError);
    return (error as CallbackRejectedError).reason;
  }
  throw new Error("expected the callback to be rejected");
}

describe("card channel: callbacks", () => {
  it("parses payment_intent.succeeded into a succeeded payment notification", () => {
    expect(channel.parseCallback(callback(event("payment_intent.succeeded", paidIntent)))).toEqual({
      kind: "payment",
      notificationId: "evt_1",
      paymentNo: "P1",
      channelTradeNo: "pi_1",
      state: "succeeded",
      amountMinor: 1999n,
      currency: "USD",
      paidAt: new Date(1_767_225_600_000),
      channelStatus: "payment_intent.succeeded",
    });
  });

  it("parses payment_intent.payment_failed into a failed payment notification carrying the decline message", () => {
    const failedIntent = {
      ...paidIntent,
      status: "requires_payment_method",
      last_payment_error: { code: "card_declined", message: "Your card was declined." },
    };
    const notification = channel.parseCallback(callback(event("payment_intent.payment_failed", failedIntent)));
    expect(notification).toMatchObject({ kind: "payment", state: "failed", paymentNo: "P1", amountMinor: 1999n });
    expect(notification).not.toHaveProperty("paidAt");
    expect(notification.channelStatus).toBe("payment_intent.payment_failed: Your card was declined.");
  });

  it("parses refund.updated into a refund notification", () => {
    const refund = { id: "re_1", object: "refund", amount: 500, status: "succeeded", payment_intent: "pi_1", metadata: { refund_no: "R1", payment_no: "P1" } };
    expect(channel.parseCallback(callback(event("refund.updated", refund, { id: "evt_2" })))).toEqual({
      kind: "refund",
      notificationId: "evt_2",
      paymentNo: "P1",
      refundNo: "R1",
      channelRefundNo: "re_1",
      state: "succeeded",
      amountMinor: 500n,
      channelStatus: "refund.updated:succeeded",
    });
  });

  it("parses refund.failed into a failed refund notification", () => {
    const refund = { id: "re_1", amount: 500, status: "failed", failure_reason: "expired_or_canceled_card", metadata: { refund_no: "R1", payment_no: "P1" } };
    expect(channel.parseCallback(callback(event("refund.failed", refund)))).toMatchObject({ kind: "refund", state: "failed" });
  });

  it("parses charge.refunded into a notification for the newest refund, naming the payment from the charge", () => {
    const charge = {
      id: "ch_1",
      object: "charge",
      payment_intent: "pi_1",
      amount_refunded: 800,
      metadata: { payment_no: "P1" },
      refunds: {
        object: "list",
        data: [
          { id: "re_old", amount: 300, status: "succeeded", created: 100, metadata: { refund_no: "R-old" } },
          { id: "re_new", amount: 500, status: "pending", created: 200, metadata: { refund_no: "R-new" } },
        ],
      },
    };
    expect(channel.parseCallback(callback(event("charge.refunded", charge)))).toMatchObject({
      kind: "refund",
      paymentNo: "P1",
      refundNo: "R-new",
      channelRefundNo: "re_new",
      state: "processing",
      amountMinor: 500n,
    });
  });

  it("ignores charge.refunded without a refund list (newer API versions leave it out)", () => {
    const charge = { id: "ch_1", object: "charge", metadata: { payment_no: "P1" } };
    expect(channel.parseCallback(callback(event("charge.refunded", charge)))).toMatchObject({ kind: "ignored", notificationId: "evt_1" });
  });

  it("ignores a refund that is not ours (no refund_no)", () => {
    const refund = { id: "re_1", amount: 500, status: "succeeded", metadata: {} };
    expect(channel.parseCallback(callback(event("refund.created", refund)))).toMatchObject({ kind: "ignored" });
  });

  it("ignores event types it does not use", () => {
    expect(channel.parseCallback(callback(event("customer.created", { id: "cus_1" }, { id: "evt_9" })))).toEqual({
      kind: "ignored",
      notificationId: "evt_9",
      channelStatus: "customer.created",
    });
  });

  it("rejects a missing signature header", () => {
    expect(rejectionReason(callback(event("payment_intent.succeeded", paidIntent), { header: null }))).toBe("missing_signature");
  });

  it("rejects a signature made with another secret", () => {
    expect(rejectionReason(callback(event("payment_intent.succeeded", paidIntent), { secret: "whsec_attacker" }))).toBe("bad_signature");
  });

  it("rejects a tampered body", () => {
    const request = callback(event("payment_intent.succeeded", paidIntent));
    const tampered = { ...request, rawBody: Buffer.from(request.rawBody.toString("utf8").replace("1999", "1")) };
    expect(rejectionReason(tampered)).toBe("bad_signature");
  });

  it("rejects a stale timestamp", () => {
    const t = Math.floor(Date.now() / 1000) - 301;
    expect(rejectionReason(callback(event("payment_intent.succeeded", paidIntent), { t }))).toBe("stale_timestamp");
  });

  it("rejects garbage in the header without throwing anything else", () => {
    expect(rejectionReason(callback(event("payment_intent.succeeded", paidIntent), { header: "t=now,v1=nope" }))).toBe("bad_signature");
  });

  it("checks the signature before parsing: an unsigned non-JSON body is a bad signature", () => {
    expect(rejectionReason({ headers: { "stripe-signature": "t=1,v1=00" }, rawBody: Buffer.from("not json") })).toBe("bad_signature");
  });

  it("rejects a correctly signed body that is not an event", () => {
    const rawBody = Buffer.from("[1,2,3]");
    const header = signCardWebhook(WEBHOOK_SECRET, rawBody, Math.floor(Date.now() / 1000));
    expect(rejectionReason({ headers: { "stripe-signature": header }, rawBody })).toBe("malformed_body");
  });

  it("rejects a live-mode event at a test-mode endpoint", () => {
    expect(rejectionReason(callback(event("payment_intent.succeeded", paidIntent, { livemode: true })))).toBe("livemode_mismatch");
  });

  it("rejects a payment event without our payment number, or with a fractional amount", () => {
    expect(rejectionReason(callback(event("payment_intent.succeeded", { ...paidIntent, metadata: {} })))).toBe("missing_payment_no");
    expect(rejectionReason(callback(event("payment_intent.succeeded", { ...paidIntent, amount: 19.99 })))).toBe("bad_amount");
  });

  it("acknowledges with 200 {received:true} and refuses with 400 and the reason", () => {
    expect(channel.acceptAnswer()).toEqual({ status: 200, contentType: "application/json", body: '{"received":true}' });
    expect(channel.rejectAnswer("bad_signature")).toEqual({ status: 400, contentType: "application/json", body: '{"error":"bad_signature"}' });
  });
});

describe("card channel: bill", () => {
  const dayStart = Date.UTC(2026, 0, 2) / 1000;

  it("lists the UTC day's balance transactions page by page and maps payments and refunds", async () => {
    acquirer.state.maxPageSize = 2;
    acquirer.balanceTransactions.push(
      { id: "txn_before", type: "charge", amount: 1, fee: 0, currency: "usd", created: dayStart - 1, source: "pi_x", metadata: { payment_no: "P0" } },
      { id: "txn_1", type: "charge", amount: 1999, fee: 88, currency: "usd", created: dayStart, source: "pi_1", metadata: { payment_no: "P1" } },
      { id: "txn_2", type: "payout", amount: -5000, fee: 0, currency: "usd", created: dayStart + 10, source: "po_1" },
      {
        id: "txn_3",
        type: "refund",
        amount: -500,
        fee: -20,
        currency: "usd",
        created: dayStart + 20,
        source: { id: "re_1", object: "refund", payment_intent: "pi_1", metadata: { payment_no: "P1", refund_no: "R1" } },
      },
      { id: "txn_4", type: "payment", amount: 700, fee: 30, currency: "eur", created: dayStart + 86_399, source: "pi_2", metadata: { payment_no: "P2" } },
      { id: "txn_5", type: "charge", amount: 42, fee: 1, currency: "usd", created: dayStart + 30, source: "ch_foreign", metadata: {} },
      { id: "txn_after", type: "charge", amount: 1, fee: 0, currency: "usd", created: dayStart + 86_400, source: "pi_y", metadata: { payment_no: "P9" } },
    );

    const records = await billRecords(channel.fetchBill("2026-01-02"));
    // `line` is the position in the day's list, counting the skipped payout and foreign charge.
    expect(records).toEqual([
      { kind: "payment", paymentNo: "P1", channelTradeNo: "pi_1", amountMinor: 1999n, feeMinor: 88n, currency: "USD", occurredAt: new Date(dayStart * 1000), line: 1 },
      { kind: "refund", paymentNo: "P1", channelTradeNo: "pi_1", refundNo: "R1", amountMinor: 500n, feeMinor: -20n, currency: "USD", occurredAt: new Date((dayStart + 20) * 1000), line: 3 },
      { kind: "payment", paymentNo: "P2", channelTradeNo: "pi_2", amountMinor: 700n, feeMinor: 30n, currency: "EUR", occurredAt: new Date((dayStart + 86_399) * 1000), line: 4 },
    ]);
    const [first] = acquirer.requests;
    expect(first?.path).toBe("/v1/balance_transactions");
    expect(first?.query.get("created[gte]")).toBe(String(dayStart));
    expect(first?.query.get("created[lt]")).toBe(String(dayStart + 86_400));
    expect(first?.query.get("limit")).toBe("100");
    expect(acquirer.requests.map((request) => request.query.get("starting_after"))).toEqual([null, "txn_2", "txn_4"]);
  });

  it.each(["2026-1-2", "2026-02-30", "yesterday"])("refuses bill date %s without calling", async (billDate) => {
    const error = await rejection(channel.fetchBill(billDate));
    expect((error as ChannelRejectedError).code).toBe("INVALID_BILL_DATE");
    expect(acquirer.requests).toHaveLength(0);
  });
});

describe("card channel: configuration", () => {
  it("refuses an empty webhook secret, which anyone could sign with", () => {
    expect(() => createCardChannel({ baseUrl: acquirer.url, secretKey: SECRET_KEY, webhookSecret: "" })).toThrow(/webhookSecret/);
  });
});
