/**
 * Authentication and error mapping are interceptors on both listeners: a server-streaming RPC
 * (test/support/stream-probe.ts, served by the app behind its interceptors) is refused and fails
 * exactly as unary RPCs are, over gRPC (grpc-js client) and Connect (connect-es client), whether
 * the error comes before the first message or after some; an RPC missing from the access table is
 * refused for every credential (fail closed); and every answer, failed ones included, carries the
 * call's request id.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, type ErrorInfo, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/payments/v1/admin_service_pb.js";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { SettlementService } from "../../gen/payments/v1/settlement_service_pb.js";
import { METHOD_ACCESS, rpcName } from "../../src/rpc/auth.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { grpcStream, probeCalls, type StreamOutcome, StreamProbeService, streamProbe } from "../support/stream-probe.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, grpcError } from "../support/waiting.js";

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let probe: ReturnType<typeof createClient<typeof StreamProbeService>>;

beforeAll(async () => {
  t = await startTestApp({ extraServices: [streamProbe] });
  merchant = await t.createMerchant("Streaming Shop");
  probe = createClient(StreamProbeService, createConnectTransport({ baseUrl: t.app.httpUrl, httpVersion: "1.1" }));
});
afterAll(() => t?.stop());

/** What a caller can see of an error: its code, message and ErrorInfo. */
interface SeenError {
  code: Code;
  message: string;
  errorInfo?: Pick<ErrorInfo, "reason" | "domain" | "metadata">;
}

function seenFromGrpc(error: ServiceError): SeenError {
  const info = readGrpcErrorDetails(error).errorInfo;
  return {
    code: error.code as number as Code,
    message: error.details,
    errorInfo: info && { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } },
  };
}

function seenFromConnect(error: ConnectError): SeenError {
  const info = error.findDetails(ErrorInfoSchema)[0];
  return {
    code: error.code,
    message: error.rawMessage,
    errorInfo: info && { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } },
  };
}

async function connectStream(
  method: "watch" | "adminWatch" | "unlistedWatch",
  value: string,
  headers: Record<string, string>,
): Promise<StreamOutcome<ConnectError>> {
  const messages: string[] = [];
  try {
    for await (const message of probe[method]({ value }, { headers })) messages.push(message.value);
  } catch (error) {
    return { messages, error: ConnectError.from(error) };
  }
  return { messages };
}

const GRPC_METHOD = { watch: "Watch", adminWatch: "AdminWatch", unlistedWatch: "UnlistedWatch" } as const;

/** The stream over both listeners: its messages and error as a caller of each protocol sees them. */
async function streamBothWays(
  method: keyof typeof GRPC_METHOD,
  value: string,
  headers: Record<string, string>,
): Promise<{ grpc: StreamOutcome<SeenError>; connect: StreamOutcome<SeenError> }> {
  const overGrpc = await grpcStream(`127.0.0.1:${t.app.grpcPort}`, GRPC_METHOD[method], value, headers);
  const overConnect = await connectStream(method, value, headers);
  return {
    grpc: { messages: overGrpc.messages, error: overGrpc.error && seenFromGrpc(overGrpc.error) },
    connect: { messages: overConnect.messages, error: overConnect.error && seenFromConnect(overConnect.error) },
  };
}

/** A unary call's error over both listeners, as a caller of each protocol sees it. */
async function unaryBothWays(
  grpcCall: () => Promise<unknown>,
  connectCall: () => Promise<unknown>,
): Promise<{ grpc: SeenError; connect: SeenError }> {
  return { grpc: seenFromGrpc(await grpcError(grpcCall())), connect: seenFromConnect(await connectError(connectCall())) };
}

describe("a server-streaming RPC behind the interceptors", () => {
  it("gets the calling merchant from the context values and streams", async () => {
    const { grpc, connect } = await streamBothWays("watch", "3:none", merchant.headers);
    const expected = [1, 2, 3].map((n) => `${merchant.id}#${n}`);
    expect(grpc).toEqual({ messages: expected, error: undefined });
    expect(connect).toEqual({ messages: expected, error: undefined });
  });

  it("fails before its first message and after some messages with the code and ErrorInfo a unary call gets", async () => {
    const missing = "pay_doesnotexist";
    const unary = await unaryBothWays(
      () => t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: missing } } }, merchant.headers),
      () => t.connect.payments.getPayment({ lookup: { key: { case: "paymentId", value: missing } } }, { headers: merchant.headers }),
    );
    expect(unary.grpc.code).toBe(Code.NotFound);
    expect(unary.grpc.errorInfo).toEqual({ reason: "PAYMENT_NOT_FOUND", domain: "payments.v1", metadata: {} });
    expect(unary.connect.errorInfo).toEqual(unary.grpc.errorInfo);

    for (const before of [0, 2]) {
      const { grpc, connect } = await streamBothWays("watch", `${before}:payment_not_found:${missing}`, merchant.headers);
      expect(grpc.messages, `gRPC, ${before} messages first`).toHaveLength(before);
      expect(connect.messages, `Connect, ${before} messages first`).toHaveLength(before);
      for (const stream of [grpc, connect]) {
        expect(stream.error?.code).toBe(unary.grpc.code);
        expect(stream.error?.errorInfo).toEqual(unary.grpc.errorInfo);
        expect(stream.error?.message).toBe(`payment ${missing} not found`);
      }
    }
  });

  it("maps invalid input, a channel failure and an unexpected error in the middle of a stream as for unary calls", async () => {
    const invalid = await grpcStream(`127.0.0.1:${t.app.grpcPort}`, "Watch", "1:invalid", merchant.headers);
    expect(invalid.messages).toHaveLength(1);
    expect(invalid.error?.code).toBe(Code.InvalidArgument);
    expect(readGrpcErrorDetails(invalid.error!).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["payment_id"]);
    const invalidConnect = await connectStream("watch", "1:invalid", merchant.headers);
    expect(invalidConnect.error?.code).toBe(Code.InvalidArgument);
    expect(invalidConnect.error?.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["payment_id"]);

    const down = await streamBothWays("watch", "1:channel_down", merchant.headers);
    for (const stream of [down.grpc, down.connect]) {
      expect(stream.messages).toHaveLength(1);
      expect(stream.error?.code).toBe(Code.Unavailable);
      expect(stream.error?.errorInfo).toEqual({
        reason: "CHANNEL_UNAVAILABLE",
        domain: "payments.v1",
        metadata: { channel: "alipay", failure: "CHANNEL_ERROR" },
      });
      expect(stream.error?.message).not.toMatch(/10\.1\.2\.3|ECONNREFUSED/);
    }

    const unexpected = await streamBothWays("watch", "2:unexpected", merchant.headers);
    for (const stream of [unexpected.grpc, unexpected.connect]) {
      expect(stream.messages).toHaveLength(2);
      expect(stream.error).toEqual({ code: Code.Internal, message: "internal error", errorInfo: { reason: "INTERNAL", domain: "payments.v1", metadata: {} } });
    }
  });

  it("refuses missing, unknown and admin credentials before the implementation runs, as GetPayment does", async () => {
    const before = probeCalls.watch ?? 0;
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer garbage" },
      { authorization: `Bearer sk_live_${"A".repeat(32)}` },
      t.adminHeaders,
    ];
    for (const headers of attempts) {
      const unary = await unaryBothWays(
        () => t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: "pay_x" } } }, headers),
        () => t.connect.payments.getPayment({ lookup: { key: { case: "paymentId", value: "pay_x" } } }, { headers }),
      );
      expect(unary.grpc.code, JSON.stringify(headers)).toBe(Code.Unauthenticated);
      const { grpc, connect } = await streamBothWays("watch", "3:none", headers);
      for (const [stream, expected] of [
        [grpc, unary.grpc],
        [connect, unary.connect],
      ] as const) {
        expect(stream.messages, JSON.stringify(headers)).toEqual([]);
        expect(stream.error, JSON.stringify(headers)).toEqual(expected);
      }
    }
    expect(probeCalls.watch ?? 0).toBe(before);
  });

  it("answers a merchant key on an admin stream with PERMISSION_DENIED, as on a unary admin RPC, and lets the admin token through", async () => {
    const before = probeCalls.adminWatch ?? 0;
    const unary = await unaryBothWays(
      () => t.grpc.merchants.getMerchant({ merchantId: merchant.id }, merchant.headers),
      () => t.connect.merchants.getMerchant({ merchantId: merchant.id }, { headers: merchant.headers }),
    );
    expect(unary.grpc.code).toBe(Code.PermissionDenied);
    const refused = await streamBothWays("adminWatch", "", merchant.headers);
    expect(refused.grpc).toEqual({ messages: [], error: unary.grpc });
    expect(refused.connect).toEqual({ messages: [], error: unary.connect });
    expect(probeCalls.adminWatch ?? 0).toBe(before);

    const allowed = await streamBothWays("adminWatch", "", t.adminHeaders);
    expect(allowed.grpc).toEqual({ messages: ["admin"], error: undefined });
    expect(allowed.connect).toEqual({ messages: ["admin"], error: undefined });
  });
});

describe("the access table", () => {
  it("refuses an RPC it does not list, streaming or unary, whatever the credential", async () => {
    for (const headers of [t.adminHeaders, merchant.headers, {}]) {
      const { grpc, connect } = await streamBothWays("unlistedWatch", "", headers);
      for (const stream of [grpc, connect]) {
        expect(stream.messages).toEqual([]);
        expect(stream.error?.code, JSON.stringify(headers)).toBe(Code.PermissionDenied);
        expect(stream.error?.errorInfo?.reason).toBe("PERMISSION_DENIED");
      }
      const unary = await connectError(probe.unlistedGet({ value: "" }, { headers }));
      expect(unary.code, JSON.stringify(headers)).toBe(Code.PermissionDenied);
    }
    expect(probeCalls.unlistedWatch ?? 0).toBe(0);
    expect(probeCalls.unlistedGet ?? 0).toBe(0);
  });

  it("lists every RPC of the public services, and nothing else", () => {
    const methods = [...MerchantService.methods, ...PaymentService.methods, ...SettlementService.methods, ...AdminService.methods].map(rpcName);
    expect([...METHOD_ACCESS.keys()].sort()).toEqual(methods.sort());
    const merchantRpcs = [...METHOD_ACCESS].filter(([, access]) => access === "merchant").map(([name]) => name);
    expect(merchantRpcs.sort()).toEqual([
      ...PaymentService.methods.map(rpcName),
      "payments.v1.SettlementService/GetBalance",
      "payments.v1.SettlementService/GetSettlement",
      "payments.v1.SettlementService/ListSettlements",
      "payments.v1.SettlementService/SubmitSettlement",
    ].sort());
  });
});

describe("request ids", () => {
  const payments = () => createClient(PaymentService, createConnectTransport({ baseUrl: t.app.httpUrl, httpVersion: "1.1" }));
  const lookup = (value: string) => ({ lookup: { key: { case: "paymentId" as const, value } } });

  it("answer with the caller's x-request-id, on success and on failure, over Connect and gRPC", async () => {
    let answered: string | null = null;
    await payments().listPayments({}, { headers: { ...merchant.headers, "x-request-id": "order-svc.42:a" }, onHeader: (h) => (answered = h.get("x-request-id")) });
    expect(answered).toBe("order-svc.42:a");

    const connectFailure = await connectError(payments().getPayment(lookup("01M0NOSUCHPAYMENT000000000"), { headers: { ...merchant.headers, "x-request-id": "req-404" } }));
    expect(connectFailure.code).toBe(Code.NotFound);
    expect(connectFailure.metadata.get("x-request-id")).toBe("req-404");

    const grpcFailure = await grpcError(t.grpc.payments.getPayment(lookup("01M0NOSUCHPAYMENT000000000"), { ...merchant.headers, "x-request-id": "req-grpc-404" }));
    expect(grpcFailure.metadata.get("x-request-id")).toEqual(["req-grpc-404"]);

    // Refused before the handler (no credential): the id is there too.
    const refused = await connectError(payments().listPayments({}, { headers: { "x-request-id": "req-401" } }));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.metadata.get("x-request-id")).toBe("req-401");
  });

  it("make a new id when the caller sends none or one that is not a plain token", async () => {
    const ids: Array<string | null> = [];
    for (const given of [undefined, "has spaces", "x".repeat(129), "quote\"d"]) {
      const headers: Record<string, string> = { ...merchant.headers, ...(given === undefined ? {} : { "x-request-id": given }) };
      await payments().listPayments({}, { headers, onHeader: (h) => ids.push(h.get("x-request-id")) });
    }
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
