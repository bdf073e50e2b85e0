/**
 * Per-merchant rate limits over both listeners: a token bucket per merchant per replica
 * (`RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`), checked on every merchant RPC after the merchant
 * is known; over the limit the call is RESOURCE_EXHAUSTED with a google.rpc.RetryInfo delay.
 */
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { type ServiceError, status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { grpcStream, streamProbe } from "../support/stream-probe.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, grpcError } from "../support/waiting.js";

// One token a second: the five calls of a burst take far less than a second even on a busy machine.
const LIMIT = { perSecond: 1, burst: 5 };

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ config: { rateLimit: LIMIT }, extraServices: [streamProbe] });
});
afterAll(() => t?.stop());

function grpcRetryDelayMs(error: ServiceError): number {
  const { status } = readGrpcErrorDetails(error);
  for (const detail of status?.details ?? []) {
    const info = anyUnpack(detail, RetryInfoSchema);
    if (info?.retryDelay) return Number(info.retryDelay.seconds) * 1000 + info.retryDelay.nanos / 1e6;
  }
  throw new Error(`no RetryInfo in ${error.message}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("per-merchant rate limit", () => {
  it("refuses the call after the burst with RESOURCE_EXHAUSTED and a retry delay, on gRPC and Connect, and lets it through after the delay", async () => {
    const merchant = await t.createMerchant("Busy Shop");
    const other = await t.createMerchant("Quiet Shop");
    // The burst is shared by both listeners: 3 calls over gRPC, 2 over Connect.
    for (let i = 0; i < 3; i++) await t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers);
    for (let i = 0; i < 2; i++) await t.connect.settlement.getBalance({ currency: "CNY" }, { headers: merchant.headers });

    const overGrpc = await grpcError(t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers));
    expect(overGrpc.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(readGrpcErrorDetails(overGrpc).errorInfo?.reason).toBe("RATE_LIMITED");
    const grpcDelay = grpcRetryDelayMs(overGrpc);
    expect(grpcDelay).toBeGreaterThan(0);
    expect(grpcDelay).toBeLessThanOrEqual(1000 / LIMIT.perSecond);

    const overConnect = await connectError(t.connect.settlement.getBalance({ currency: "CNY" }, { headers: merchant.headers }));
    expect(overConnect.code).toBe(Code.ResourceExhausted);
    const [retryInfo] = overConnect.findDetails(RetryInfoSchema);
    const connectDelay = Number(retryInfo?.retryDelay?.seconds ?? 0n) * 1000 + (retryInfo?.retryDelay?.nanos ?? 0) / 1e6;
    expect(connectDelay).toBeGreaterThan(0);
    expect(overConnect.rawMessage).toMatch(/rate limit exceeded: 1 calls a second per merchant \(bursts of 5\); retry in \d+ ms/);

    // Another merchant has its own bucket.
    for (let i = 0; i < LIMIT.burst; i++) {
      expect((await t.grpc.settlement.getBalance({ currency: "CNY" }, other.headers)).currency).toBe("CNY");
    }

    // After the delay it was told, the merchant may call again.
    await sleep(connectDelay + 10);
    expect((await t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers)).currency).toBe("CNY");
  });

  it("covers every merchant RPC", async () => {
    const merchant = await t.createMerchant("Every RPC Shop");
    /** Calls until refused, so the bucket is empty right now (a token comes back only a second later). */
    async function drain(): Promise<void> {
      for (let i = 0; i <= LIMIT.burst; i++) {
        const refused = await t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers).then(
          () => false,
          (error: ServiceError) => error.code === GrpcStatus.RESOURCE_EXHAUSTED,
        );
        if (refused) return;
      }
      throw new Error("the bucket never ran out");
    }
    // With the bucket empty, every merchant RPC is refused before it does anything, whatever its request.
    const refused: string[] = [];
    for (const method of PaymentService.methods) {
      if (method.methodKind !== "unary") continue;
      await drain();
      const call = (t.connect.payments as unknown as Record<string, (req: object, opts: object) => Promise<unknown>>)[method.localName]!;
      const error = await connectError(call({}, { headers: merchant.headers }));
      expect(error.code, method.name).toBe(Code.ResourceExhausted);
      refused.push(method.name);
    }
    expect(refused).toEqual(expect.arrayContaining(["CreatePayment", "GetPayment", "QueryPayment", "ListPayments", "ClosePayment", "RefundPayment"]));
    await drain();
    const balance = await connectError(t.connect.settlement.getBalance({ currency: "CNY" }, { headers: merchant.headers }));
    expect(balance.code).toBe(Code.ResourceExhausted);
    // A server-streaming merchant RPC (test/support/stream-probe.ts) is limited by the same interceptor.
    await drain();
    const stream = await grpcStream(`127.0.0.1:${t.app.grpcPort}`, "Watch", "3:none", merchant.headers);
    expect(stream.messages).toEqual([]);
    expect(stream.error?.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(grpcRetryDelayMs(stream.error!)).toBeGreaterThan(0);
  });

  it("answers a malformed or unknown API key with UNAUTHENTICATED, never with the limit", async () => {
    for (const token of ["garbage", "sk_live_short", `sk_live_${"A".repeat(32)}`]) {
      for (let i = 0; i < LIMIT.burst + 2; i++) {
        const error = await grpcError(t.grpc.settlement.getBalance({ currency: "CNY" }, { authorization: `Bearer ${token}` }));
        expect(error.code, token).toBe(GrpcStatus.UNAUTHENTICATED);
      }
    }
  });

  it("does not limit admin RPCs by a merchant's bucket", async () => {
    for (let i = 0; i < LIMIT.burst + 3; i++) {
      await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 1 }, t.adminHeaders);
    }
  });
});
