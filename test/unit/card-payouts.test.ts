/**
 * The card payouts adapter's reading of the acquirer's answers, against a server that answers
 * whatever the test says: every Payout status, and which refusals mean "no payout was made"
 * (a `failed` status) and which say nothing about the payout (thrown, so no money moves back).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCardChannel } from "../../src/channels/card/card-channel.js";
import { mapCardPayoutStatus } from "../../src/channels/card/card-payouts.js";
import {
  ChannelAnswerUntrustedError,
  type ChannelPayoutRequest,
  ChannelRejectedError,
  ChannelUnavailableError,
  type PaymentChannel,
} from "../../src/channels/channel.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { rejection } from "../support/waiting.js";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let answer: { status: number; body: unknown } = { status: 200, body: {} };
const seen: Seen[] = [];
let server: http.Server;
let channel: PaymentChannel;

beforeAll(async () => {
  server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      seen.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  channel = createCardChannel({ baseUrl: `http://127.0.0.1:${port}`, secretKey: "sk_test_payoutUnit123", webhookSecret: "whsec_payoutUnit456" });
});
afterAll(async () => {
  closeHttpAgents();
  await new Promise((resolve) => server.close(resolve));
});

const request: ChannelPayoutRequest = {
  payoutNo: "T20261202000001",
  amountMinor: 5_000n,
  currency: "EUR",
  payee: { type: "BANK_ACCOUNT", account: "ba_1Nv0aB2eZvKYlo2C" },
  remark: "Settlement S20261202000001",
};

function payout(fields: Record<string, unknown>) {
  return {
    id: "po_unit1",
    object: "payout",
    amount: 5_000,
    currency: "eur",
    destination: "ba_1Nv0aB2eZvKYlo2C",
    status: "pending",
    failure_code: null,
    failure_message: null,
    metadata: { payout_no: request.payoutNo },
    ...fields,
  };
}

const stripeError = (status: number, error: Record<string, unknown>) => ({ status, body: { error } });

describe("card payout statuses", () => {
  it("maps pending and in_transit to processing, paid to paid, failed and canceled to failed, anything else to nothing", () => {
    expect(["pending", "in_transit", "paid", "failed", "canceled", "reversed", ""].map(mapCardPayoutStatus)).toEqual([
      "processing",
      "processing",
      "paid",
      "failed",
      "failed",
      undefined,
      undefined,
    ]);
  });

  it("sends the payout form with the Idempotency-Key payout-<payoutNo> and reads each status of the answer", async () => {
    answer = { status: 200, body: payout({ status: "in_transit" }) };
    expect(await channel.payouts.sendPayout(request)).toEqual({ state: "processing", channelPayoutNo: "po_unit1", detail: "in_transit" });
    const sent = seen.at(-1)!;
    expect(sent).toMatchObject({ method: "POST", url: "/v1/payouts" });
    expect(sent.headers["idempotency-key"]).toBe(`payout-${request.payoutNo}`);
    expect(sent.headers.authorization).toBe("Bearer sk_test_payoutUnit123");
    expect(Object.fromEntries(new URLSearchParams(sent.body))).toEqual({
      amount: "5000",
      currency: "eur",
      destination: "ba_1Nv0aB2eZvKYlo2C",
      description: "Settlement S20261202000001",
      "metadata[payout_no]": request.payoutNo,
    });

    answer = { status: 200, body: payout({ status: "canceled" }) };
    expect(await channel.payouts.sendPayout(request)).toEqual({ state: "failed", channelPayoutNo: "po_unit1", detail: "canceled" });
    answer = { status: 200, body: payout({ status: "failed", failure_code: "could_not_process", failure_message: "The bank could not process this payout." }) };
    expect(await channel.payouts.queryPayout({ ...request, channelPayoutNo: "po_unit1" })).toEqual({
      state: "failed",
      channelPayoutNo: "po_unit1",
      detail: "could_not_process: The bank could not process this payout.",
    });
    expect(seen.at(-1)).toMatchObject({ method: "GET", url: "/v1/payouts/po_unit1" });
  });

  it("refuses an answer with a status it does not know, or that is not a payout, as UNEXPECTED_RESPONSE", async () => {
    answer = { status: 200, body: payout({ status: "reversed" }) };
    const unknown = await rejection(channel.payouts.sendPayout(request));
    expect(unknown).toBeInstanceOf(ChannelAnswerUntrustedError);
    expect(unknown).toMatchObject({ code: "UNEXPECTED_RESPONSE" });
    expect((unknown as Error).message).toContain("status");
    answer = { status: 200, body: payout({ object: "payment_intent" }) };
    expect(await rejection(channel.payouts.sendPayout(request))).toMatchObject({ code: "UNEXPECTED_RESPONSE" });
  });
});

describe("card payout refusals", () => {
  it("calls a 400/402 refusal or a missing bank account a failed payout: the acquirer made none", async () => {
    for (const refusal of [
      stripeError(400, { type: "invalid_request_error", code: "amount_too_small", message: "Amount must be at least 1." }),
      stripeError(400, { type: "invalid_request_error", code: "balance_insufficient", message: "You have insufficient funds in your Stripe account." }),
      stripeError(402, { type: "invalid_request_error", code: "payouts_not_allowed", message: "Payouts are not allowed." }),
      stripeError(404, { type: "invalid_request_error", code: "resource_missing", message: "No such external account: 'ba_x'", param: "destination" }),
    ]) {
      answer = refusal;
      const status = await channel.payouts.sendPayout(request);
      expect(status.state).toBe("failed");
      expect(status.channelPayoutNo).toBeUndefined();
      expect(status.detail).toContain((refusal.body.error as { code: string }).code);
    }
  });

  it("throws for refusals that say nothing about the payout: our key, a wrong URL (bare 404), an idempotency misuse; 5xx and 429 are unavailable", async () => {
    for (const [refusal, code] of [
      [stripeError(401, { type: "invalid_request_error", message: "Invalid API Key provided: sk_test_****" }), "invalid_request_error"],
      [stripeError(404, { type: "invalid_request_error", message: "Unrecognized request URL (POST: /v1/payouts)." }), "invalid_request_error"],
      [stripeError(400, { type: "idempotency_error", message: "Keys for idempotent requests can only be used with the same parameters." }), "idempotency_error"],
    ] as const) {
      answer = refusal;
      const error = await rejection(channel.payouts.sendPayout(request));
      expect(error).toBeInstanceOf(ChannelRejectedError);
      expect(error).toMatchObject({ code });
    }
    for (const status of [500, 503, 429]) {
      answer = stripeError(status, { type: "api_error", message: "busy" });
      expect(await rejection(channel.payouts.sendPayout(request))).toBeInstanceOf(ChannelUnavailableError);
    }
    answer = stripeError(409, { type: "invalid_request_error", code: "idempotency_key_in_use", message: "in progress" });
    expect(await rejection(channel.payouts.sendPayout(request))).toBeInstanceOf(ChannelUnavailableError);
  });

  it("queries a payout id the acquirer does not know as not_found, but a bare 404 (wrong URL) as a rejection", async () => {
    answer = stripeError(404, { type: "invalid_request_error", code: "resource_missing", message: "No such payout: 'po_x'", param: "id" });
    expect(await channel.payouts.queryPayout({ ...request, channelPayoutNo: "po_x" })).toMatchObject({ state: "not_found" });
    answer = stripeError(404, { type: "invalid_request_error", message: "Unrecognized request URL (GET: /v1/payouts/po_x)." });
    expect(await rejection(channel.payouts.queryPayout({ ...request, channelPayoutNo: "po_x" }))).toBeInstanceOf(ChannelRejectedError);
  });
});
