/**
 * Admin RPCs and the kind of credential presented: the admin token passes, a merchant API key is
 * PERMISSION_DENIED (valid credentials, wrong kind), no token or a token of no known kind is
 * UNAUTHENTICATED. Over gRPC and Connect, for every admin RPC of MerchantService and
 * SettlementService.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { SettlementService } from "../../gen/payments/v1/settlement_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, grpcError } from "../support/waiting.js";

/** The merchant RPCs among these services; every other one is admin-only. */
const MERCHANT_RPCS = new Set(["GetBalance", "GetSettlement", "ListSettlements", "SubmitSettlement"]);
const adminMethods: DescMethod[] = [...MerchantService.methods, ...SettlementService.methods].filter(
  (method) => method.methodKind === "unary" && !MERCHANT_RPCS.has(method.name),
);

type AnyUnary = (request: object, options?: object) => Promise<unknown>;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Curious Shop");
});
afterAll(() => t?.stop());

function grpcCall(method: DescMethod): (headers: Record<string, string>) => Promise<unknown> {
  const client = (method.parent === MerchantService ? t.grpc.merchants : t.grpc.settlement) as unknown as Record<string, AnyUnary>;
  return (headers) => client[method.localName]!({}, headers);
}

function connectCall(method: DescMethod): (headers: Record<string, string>) => Promise<unknown> {
  const client = (method.parent === MerchantService ? t.connect.merchants : t.connect.settlement) as unknown as Record<string, AnyUnary>;
  return (headers) => client[method.localName]!({}, { headers });
}

describe("admin RPCs", () => {
  it("covers every admin RPC of MerchantService and SettlementService", () => {
    expect(adminMethods.map((method) => method.name).sort()).toEqual(
      [
        "CheckLedger",
        "CreateMerchant",
        "GetMerchant",
        "ListDiscrepancies",
        "ListMerchantWebhookDeliveries",
        "ListReconciliationRuns",
        "ReconcileChannel",
        "RedeliverMerchantWebhook",
        "ResolveDiscrepancy",
        "RotateApiKey",
        "RotateWebhookSecret",
        "RunSettlement",
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
