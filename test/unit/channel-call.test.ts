/**
 * The shared channel-call pipeline (send → classify → verify → business error → decode) with a
 * minimal protocol, against a real HTTP server on port 0; and the wire field readers every
 * channel's decoders use.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelAnswerUntrustedError, ChannelRejectedError, ChannelUnavailableError } from "../../src/channels/channel.js";
import {
  type ChannelBusinessFailure,
  type ChannelProtocol,
  callLabel,
  createChannelCaller,
} from "../../src/channels/channel-call.js";
import { closeHttpAgents, HttpTransportError } from "../../src/channels/http-client.js";
import { WireFieldError, WireReader } from "../../src/channels/wire-fields.js";

/** What the test server answers next. */
let reply: { status: number; body: string; signed?: boolean } = { status: 200, body: "{}" };
let requests = 0;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((_request, response) => {
    requests += 1;
    response.writeHead(reply.status, { "content-type": "application/json", ...(reply.signed === false ? {} : { "x-signed": "yes" }) });
    response.end(reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
});
afterAll(async () => {
  closeHttpAgents();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

interface TestFailure extends ChannelBusinessFailure {
  busy: boolean;
}

/** Answers are JSON `{ok, code, message, ...}`; a header stands in for the signature. */
const protocol: ChannelProtocol<TestFailure> = {
  channel: "card",
  timeoutMs: 2_000,
  unverifiedCode: (response) => JSON.parse(response.body.toString("utf8") || "{}").code ?? "none",
  verify(response) {
    if (!response.body.toString("utf8").startsWith("{")) return { kind: "not_channel_answer", why: "not our envelope" };
    if (response.headers["x-signed"] !== "yes") return { kind: "signature_invalid", why: "unsigned answer" };
    try {
      const parsed: unknown = JSON.parse(response.body.toString("utf8"));
      return { kind: "trusted", fields: parsed as Record<string, unknown> };
    } catch {
      return { kind: "unreadable", why: "body is not JSON" };
    }
  },
  failureOf: (answer) =>
    answer.ok === true ? undefined : { code: String(answer.code), message: String(answer.message), busy: answer.code === "BUSY" },
  isBusy: (failure) => failure.busy,
};

const caller = createChannelCaller(protocol);
const name = { operation: "queryPayment", wireMethod: "trades.retrieve" } as const;
const readTrade = (answer: WireReader) => ({ id: answer.requiredText("id"), amount: answer.object("amount")?.amount("total") });

function call(timeoutMs?: number) {
  return caller.call({ ...name, request: { method: "GET", url, ...(timeoutMs ? { timeoutMs } : {}) }, decode: readTrade });
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (error: Error) => error,
  );
}

describe("channel call pipeline", () => {
  it("names calls by the PaymentChannel method, then the wire method", () => {
    expect(callLabel(name)).toBe("queryPayment (trades.retrieve)");
    expect(callLabel({ operation: "refund" })).toBe("refund");
  });

  it("decodes a verified success with the call's typed decoder", async () => {
    reply = { status: 200, body: JSON.stringify({ ok: true, id: "T1", amount: { total: 1999 } }) };
    expect(await call()).toEqual({ ok: true, value: { id: "T1", amount: 1999n } });
  });

  it.each([500, 502, 503, 429])("HTTP %i is unavailable before anything is verified, with the unverified code for the log", async (status) => {
    reply = { status, body: JSON.stringify({ code: "SYSTEM_ERROR" }), signed: false };
    const error = await failure(call());
    expect(error).toBeInstanceOf(ChannelUnavailableError);
    expect(error).not.toBeInstanceOf(ChannelAnswerUntrustedError);
    expect(error.message).toBe(`card: queryPayment (trades.retrieve): HTTP ${status} (unverified code SYSTEM_ERROR)`);
  });

  it("a refused connection is unavailable with the transport error as cause", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await failure(caller.call({ ...name, request: { method: "GET", url: `http://127.0.0.1:${port}/` }, decode: readTrade }));
    expect(error).toBeInstanceOf(ChannelUnavailableError);
    expect((error.cause as HttpTransportError).kind).toBe("network");
  });

  it("a deadline is unavailable with a timeout cause", async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    const error = await failure(caller.call({ ...name, request: { method: "GET", url: `http://127.0.0.1:${port}/`, timeoutMs: 50 }, decode: readTrade }));
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
    expect(error.cause).toBeInstanceOf(HttpTransportError);
    expect((error.cause as HttpTransportError).kind).toBe("timeout");
    expect(error.message).toContain("queryPayment (trades.retrieve)");
  });

  it("an unsigned answer is RESPONSE_SIGNATURE_INVALID, and its content is not acted upon", async () => {
    reply = { status: 200, body: JSON.stringify({ ok: false, code: "PAID", message: "forged" }), signed: false };
    const error = await failure(call());
    expect(error).toBeInstanceOf(ChannelAnswerUntrustedError);
    expect((error as ChannelAnswerUntrustedError).code).toBe("RESPONSE_SIGNATURE_INVALID");
    expect(error.message).toContain("unverified content claims code PAID");
  });

  it("an answer in no envelope of the channel's is unavailable (CHANNEL_ERROR), not untrusted", async () => {
    reply = { status: 200, body: "<html>proxy</html>" };
    const error = await failure(call());
    expect(error).toBeInstanceOf(ChannelUnavailableError);
    expect(error).not.toBeInstanceOf(ChannelAnswerUntrustedError);
  });

  it("a verified answer that cannot be read is UNEXPECTED_RESPONSE", async () => {
    reply = { status: 200, body: "{not json" };
    const error = await failure(call());
    expect((error as ChannelAnswerUntrustedError).code).toBe("UNEXPECTED_RESPONSE");
  });

  it("a busy code is unavailable; another business failure goes to the operation", async () => {
    reply = { status: 200, body: JSON.stringify({ ok: false, code: "BUSY", message: "try again" }) };
    expect(await failure(call())).toBeInstanceOf(ChannelUnavailableError);
    reply = { status: 400, body: JSON.stringify({ ok: false, code: "NOT_FOUND", message: "no such trade" }) };
    expect(await call()).toEqual({ ok: false, failure: { code: "NOT_FOUND", message: "no such trade", busy: false } });
  });

  it("callOrReject throws the business failure as ChannelRejectedError with the channel's code", async () => {
    reply = { status: 400, body: JSON.stringify({ ok: false, code: "DECLINED", message: "card declined" }) };
    const error = await failure(caller.callOrReject({ ...name, request: { method: "GET", url }, decode: readTrade }));
    expect(error).toBeInstanceOf(ChannelRejectedError);
    expect((error as ChannelRejectedError).code).toBe("DECLINED");
    expect(error.message).toBe("card rejected: DECLINED: queryPayment (trades.retrieve): card declined");
  });

  it("a missing or malformed field is UNEXPECTED_RESPONSE naming the field", async () => {
    reply = { status: 200, body: JSON.stringify({ ok: true }) };
    const missing = await failure(call());
    expect((missing as ChannelAnswerUntrustedError).code).toBe("UNEXPECTED_RESPONSE");
    expect(missing.message).toBe("card: queryPayment (trades.retrieve): id is missing");
    reply = { status: 200, body: JSON.stringify({ ok: true, id: "T1", amount: { total: "19.99" } }) };
    expect((await failure(call())).message).toContain('amount.total is not an integer: "19.99"');
  });

  it("send alone wraps transport failures but returns any HTTP answer", async () => {
    reply = { status: 404, body: "missing" };
    const requestsBefore = requests;
    const response = await caller.send({ operation: "fetchBill", wireMethod: "bill download" }, { method: "GET", url });
    expect(response.status).toBe(404);
    expect(requests).toBe(requestsBefore + 1);
  });
});

describe("wire field readers", () => {
  const reader = new WireReader({
    id: "pi_1",
    empty: "",
    nothing: null,
    count: 12,
    fraction: 1.5,
    huge: 2 ** 60,
    negative: -1,
    yuan: "88.88",
    flag: true,
    nested: { inner: "x" },
    list: [{ id: "a" }, 3],
  });

  it("treats missing, null and empty text as absent", () => {
    expect(reader.text("id")).toBe("pi_1");
    expect(reader.text("empty")).toBeUndefined();
    expect(reader.text("nothing")).toBeUndefined();
    expect(reader.text("absent")).toBeUndefined();
    expect(() => reader.requiredText("empty")).toThrow(new WireFieldError("empty", "is missing"));
  });

  it("refuses a present field of the wrong type, naming it", () => {
    expect(() => reader.text("count")).toThrow(/^count is not a string: 12$/);
    expect(() => reader.integer("fraction")).toThrow(/^fraction is not an integer/);
    expect(() => reader.integer("huge")).toThrow(/^huge is not an integer/);
    expect(() => reader.amount("negative")).toThrow(/^negative is not an amount/);
    expect(() => reader.boolean("id")).toThrow(/^id is not a boolean/);
    expect(() => reader.object("id")).toThrow(/^id is not an object/);
    expect(() => reader.objects("list")).toThrow(/^list\[1\] is not an object/);
  });

  it("reads integers exactly, decimal amounts in minor units, nested objects with their path", () => {
    expect(reader.integer("count")).toBe(12n);
    expect(reader.decimalAmount("yuan", "CNY")).toBe(8888n);
    expect(() => reader.decimalAmount("id", "CNY")).toThrow(/^id is not an amount/);
    expect(reader.boolean("flag")).toBe(true);
    const nested = reader.object("nested")!;
    expect(nested.text("inner")).toBe("x");
    expect(() => nested.requiredText("other")).toThrow(/^nested\.other is missing$/);
  });

  it("oneOf maps a known value and names an unknown one", () => {
    const map = (value: string) => (value === "pi_1" ? "known" : undefined);
    expect(reader.oneOf("id", map)).toEqual({ text: "pi_1", value: "known" });
    expect(() => new WireReader({ id: "weird" }).oneOf("id", map)).toThrow(/^id has an unknown value "weird"$/);
  });
});
