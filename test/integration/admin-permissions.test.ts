/**
 * Admin RPCs and the kind of credential presented: the admin token passes, a merchant API key is
 * PERMISSION_DENIED (valid credentials, wrong kind), no token or a token of no known kind is
 * UNAUTHENTICATED. Over gRPC and Connect, for every admin RPC of MerchantService, SettlementService
 * and AdminService.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/payments/v1/admin_service_pb.js";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { SettlementService } from "../../gen/payments/v1/settlement_service_pb.js";
import { createGrpcJsClient } from "../support/grpc-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, grpcError } from "../support/waiting.js";

/** The merchant RPCs among these services; every other one is admin-only. */
const MERCHANT_RPCS = new Set(["GetBalance", "GetSettlement", "ListSettlements", "SubmitSettlement"]);
const adminMethods: DescMethod[] = [...MerchantService.methods, ...SettlementService.methods, ...AdminService.methods].filter(
  (method) => method.methodKind === "unary" && !MERCHANT_RPCS.has(method.name),
);

type AnyUnary = (request: object, options?: object) => Promise<unknown>;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let admin: { grpc: ReturnType<typeof createGrpcJsClient<typeof AdminService>>; connect: ReturnType<typeof createClient<typeof AdminService>> };

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Curious Shop");
  admin = {
    grpc: createGrpcJsClient(AdminService, `127.0.0.1:${t.app.grpcPort}`),
    connect: createClient(AdminService, createConnectTransport({ baseUrl: t.app.httpUrl, httpVersion: "1.1" })),
  };
});
afterAll(() => {
  admin?.grpc.close();
  return t?.stop();
});

function clientsOf(method: DescMethod, kind: "grpc" | "connect"): Record<string, AnyUnary> {
  if (method.parent === AdminService) return admin[kind] as unknown as Record<string, AnyUnary>;
  if (method.parent === MerchantService) return t[kind].merchants as unknown as Record<string, AnyUnary>;
  return t[kind].settlement as unknown as Record<string, AnyUnary>;
}

function grpcCall(method: DescMethod): (headers: Record<string, string>) => Promise<unknown> {
  const client = clientsOf(method, "grpc");
  return (headers) => client[method.localName]!({}, headers);
}

function connectCall(method: DescMethod): (headers: Record<string, string>) => Promise<unknown> {
  const client = clientsOf(method, "connect");
  return (headers) => client[method.localName]!({}, { headers });
}

describe("admin RPCs", () => {
  it("covers every admin RPC of MerchantService, SettlementService and AdminService", () => {
    expect(adminMethods.map((method) => method.name).sort()).toEqual(
      [
        "CheckLedger",
        "CreateMerchant",
        "GetMerchant",
        "GetPaymentTimeline",
        "ListDiscrepancies",
        "ListMerchantSettlements",
        "ListMerchants",
        "ListMerchantWebhookDeliveries",
        "ListReconciliationRuns",
        "ReconcileChannel",
        "RedeliverMerchantWebhook",
        "ResolveDiscrepancy",
        "RotateApiKey",
        "RotateWebhookSecret",
        "RunSettlement",
        "SearchPayments",
        "SetFeeRule",
        "SetSettlementAccount",
      ].sort(),
    );
  });

  it("answer a merchant API key with PERMISSION_DENIED over gRPC", async () => {
    for (const method of adminMethods) {
      const error = await grpcError(grpcCall(method)(merchant.headers));
      expect(error.code, method.name).toBe(Code.PermissionDenied);
      expect(readGrpcErrorDetails(error).errorInfo?.reason, method.name).toBe("PERMISSION_DENIED");
    }
  });

  it("answer a merchant API key with PERMISSION_DENIED over Connect", async () => {
    for (const method of adminMethods) {
      expect((await connectError(connectCall(method)(merchant.headers))).code, method.name).toBe(Code.PermissionDenied);
    }
  });

  it("answer no token, a garbage token or a wrong admin token with UNAUTHENTICATED", async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer" },
      { authorization: "Basic dXNlcjpwdw==" },
      { authorization: "Bearer not-the-admin-token-at-all" },
      { authorization: "Bearer sk_live_tooShort" },
    ];
    for (const method of adminMethods) {
      for (const headers of attempts) {
        const error = await grpcError(grpcCall(method)(headers));
        expect(error.code, `${method.name} ${JSON.stringify(headers)}`).toBe(Code.Unauthenticated);
        expect((await connectError(connectCall(method)(headers))).code, `${method.name} ${JSON.stringify(headers)}`).toBe(Code.Unauthenticated);
      }
    }
  });

  it("let the admin token through (and the merchant key still works where it belongs)", async () => {
    const got = await t.grpc.merchants.getMerchant({ merchantId: merchant.id }, t.adminHeaders);
    expect(got.merchant?.id).toBe(merchant.id);
    expect((await t.connect.settlement.checkLedger({}, { headers: t.adminHeaders })).ok).toBe(true);
    expect((await t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers)).currency).toBe("CNY");
  });
});
