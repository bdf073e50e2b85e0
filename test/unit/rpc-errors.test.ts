/**
 * Channel failures as callers see them: a stable reason, the channel and the kind of failure in
 * ErrorInfo metadata, and a fixed message without the channel's URL, host, port or answer text;
 * the full cause goes to the log. Transport failures are real ones (a closed port, a server that
 * never answers) made through the adapters' HTTP client.
 */
import { createServer, type Server } from "node:http";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChannelAnswerUntrustedError,
  ChannelRejectedError,
  ChannelTradePaidError,
  ChannelUnavailableError,
} from "../../src/channels/channel.js";
import { closeHttpAgents, HttpTransportError, sendHttpRequest } from "../../src/channels/http-client.js";
import { NotFoundError, ValidationError } from "../../src/errors.js";
import { toConnectError } from "../../src/rpc/errors.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { freePort } from "../support/test-app.js";

let silentServer: Server;
let silentUrl: string;

beforeAll(async () => {
  // Accepts requests and never answers them.
  silentServer = createServer(() => {});
  await new Promise<void>((resolve) => silentServer.listen(0, "127.0.0.1", resolve));
  silentUrl = `http://127.0.0.1:${(silentServer.address() as { port: number }).port}/card/v1/payment_intents`;
});
afterAll(async () => {
  closeHttpAgents();
  silentServer.closeAllConnections();
  await new Promise((resolve) => silentServer.close(resolve));
});

/** The error an adapter throws for this transport failure (they all wrap it the same way). */
async function transportFailure(url: string, timeoutMs: number): Promise<ChannelUnavailableError> {
  try {
    await sendHttpRequest({ method: "POST", url, body: "amount=100", timeoutMs });
  } catch (error) {
    expect(error).toBeInstanceOf(HttpTransportError);
    return new ChannelUnavailableError("card", `payment_intents.create: ${(error as Error).message}`, { cause: error });
  }
  throw new Error("expected the request to fail");
}

function mapped(error: unknown, method = "createPayment") {
  const logged: string[] = [];
  const connectError = toConnectError(error, (message, cause) => logged.push(`${message} ${String(cause)}`), method);
  const info = connectError.findDetails(ErrorInfoSchema)[0];
  return { connectError, info, logged: logged.join("\n") };
}

/** Nothing about where the channel lives or what it said. */
function expectNoInternals(message: string) {
  expect(message).not.toMatch(/http|127\.0\.0\.1|:\d{2,5}\b|\/card\/|payment_intents|\bHTTP \d{3}/i);
}

describe("channel failures", () => {
  it("a timeout: UNAVAILABLE, TIMEOUT, a fixed message; the URL only in the log", async () => {
    const error = await transportFailure(silentUrl, 50);
    const { connectError, info, logged } = mapped(error);
    expect(connectError.code).toBe(Code.Unavailable);
    expect(connectError.rawMessage).toBe(
      "the card channel did not answer in time; the payment is stored; send the same request again to continue",
    );
    expectNoInternals(connectError.rawMessage);
    expect(info).toMatchObject({ reason: "CHANNEL_UNAVAILABLE", domain: "payments.v1", metadata: { channel: "card", failure: "TIMEOUT" } });
    expect(logged).toContain(silentUrl);
  });

  it("a refused connection: UNAVAILABLE, UNREACHABLE", async () => {
    const closedUrl = `http://127.0.0.1:${await freePort()}/alipay/gateway.do`;
    const error = await transportFailure(closedUrl, 2000);
    const { connectError, info, logged } = mapped(error, "queryPayment");
    expect(connectError.rawMessage).toBe("the card channel could not be reached; nothing was changed; try again");
    expectNoInternals(connectError.rawMessage);
    expect(info?.metadata).toEqual({ channel: "card", failure: "UNREACHABLE" });
    expect(logged).toContain(closedUrl);
  });

  it("a 5xx or busy answer: UNAVAILABLE, CHANNEL_ERROR, without the channel's text", () => {
    const error = new ChannelUnavailableError("alipay", "alipay.trade.query: gateway answered HTTP 503 from http://10.0.0.7:8443/gateway.do");
    const { connectError, info } = mapped(error, "closePayment");
    expect(connectError.rawMessage).toBe("the alipay channel is temporarily unavailable; the payment is unchanged; try again");
    expect(info?.metadata).toEqual({ channel: "alipay", failure: "CHANNEL_ERROR" });
  });

  it("an answer that fails verification or cannot be read: the kind, never the content", () => {
    const forged = mapped(
      new ChannelAnswerUntrustedError("wechatpay", "RESPONSE_SIGNATURE_INVALID", "query: HTTP 200 answer failed verification with key PUB_KEY_ID_1"),
      "queryPayment",
    );
    expect(forged.connectError.code).toBe(Code.Unavailable);
    expect(forged.connectError.rawMessage).toBe(
      "the wechatpay channel's answer failed signature verification and was not used; nothing was changed; try again",
    );
    expect(forged.info?.metadata).toEqual({
      channel: "wechatpay",
      failure: "RESPONSE_SIGNATURE_INVALID",
      channel_code: "RESPONSE_SIGNATURE_INVALID",
    });
    const unreadable = mapped(new ChannelAnswerUntrustedError("card", "UNEXPECTED_RESPONSE", "retrieve: unknown status \"weird\""), "getRefund");
    expect(unreadable.connectError.rawMessage).toBe("the card channel's answer could not be read and was not used; try again");
    expect(unreadable.info?.metadata.failure).toBe("UNEXPECTED_RESPONSE");
  });

  it("a business rejection keeps the channel's code, not its text; a code that is not a code is replaced", () => {
    const rejected = mapped(new ChannelRejectedError("alipay", "ACQ.TRADE_HAS_SUCCESS", "alipay.trade.close: trade paid, see http://internal/x"));
    expect(rejected.connectError.code).toBe(Code.FailedPrecondition);
    expect(rejected.connectError.rawMessage).toBe("the alipay channel declined the request (ACQ.TRADE_HAS_SUCCESS)");
    expect(rejected.info).toMatchObject({ reason: "CHANNEL_REJECTED", metadata: { channel: "alipay", channel_code: "ACQ.TRADE_HAS_SUCCESS" } });
    const odd = mapped(new ChannelRejectedError("card", "see http://10.0.0.7:8443 for details", "x"));
    expect(odd.connectError.rawMessage).toBe("the card channel declined the request (UNRECOGNIZED)");
    expect(odd.info?.metadata.channel_code).toBe("UNRECOGNIZED");
  });

  it("a trade already paid: FAILED_PRECONDITION, INVALID_TRANSITION", () => {
    const { connectError, info } = mapped(new ChannelTradePaidError("wechatpay"), "closePayment");
    expect(connectError.code).toBe(Code.FailedPrecondition);
    expect(connectError.rawMessage).toBe("the wechatpay channel reports the trade as paid");
    expect(info).toMatchObject({ reason: "INVALID_TRANSITION", metadata: { channel: "wechatpay" } });
  });
});

describe("domain errors", () => {
  it("a message quoting a megabyte of input is cut, and control characters are not echoed", () => {
    const { connectError } = mapped(new NotFoundError("PAYMENT_NOT_FOUND", `payment ${"x".repeat(1_000_000)}\u0000 not found`));
    expect(connectError.code).toBe(Code.NotFound);
    expect(connectError.rawMessage.length).toBeLessThanOrEqual(1024);
    expect(mapped(new NotFoundError("PAYMENT_NOT_FOUND", "payment a\u0000b not found")).connectError.rawMessage).toBe(
      "payment a\ufffdb not found",
    );
  });

  it("a validation error with omitted violations says how many in ErrorInfo metadata", () => {
    const list = Array.from({ length: 30 }, (_, i) => ({ field: `f${i}`, reason: "BAD", description: "is bad" }));
    const { connectError, info } = mapped(new ValidationError(list));
    expect(connectError.code).toBe(Code.InvalidArgument);
    expect(info).toMatchObject({ reason: "INVALID_REQUEST", metadata: { violations: "30", violations_listed: "20" } });
    expect(connectError.rawMessage).toMatch(/\.\.\. and 10 more violations$/);
  });
});
