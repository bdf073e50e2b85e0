/**
 * API keys are cached per replica for `API_KEY_CACHE_TTL_MS`. Two replicas on one database: the
 * one that rotates a key refuses the old key at once, whatever its TTL; the other keeps trusting
 * it for at most its TTL and then refuses it too, while the new key works on both at once.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

let rotating: TestApp;
let other: TestApp;

beforeAll(async () => {
  // A TTL far longer than the test on the replica that rotates: only its own eviction can explain a refusal there.
  rotating = await startTestApp({ config: { apiKeyCacheTtlMs: 600_000 } });
  other = await startTestApp({ databaseUrl: rotating.database!.url, simulator: rotating.simulator, config: { apiKeyCacheTtlMs: 300 } });
});
afterAll(async () => {
  await other?.stop();
  await rotating?.stop();
});

async function balanceCode(app: TestApp, headers: Record<string, string>): Promise<number> {
  try {
    await app.grpc.settlement.getBalance({ currency: "CNY" }, headers);
    return GrpcStatus.OK;
  } catch (error) {
    return (error as { code: number }).code;
  }
}

describe("API-key cache across replicas", () => {
  it("a rotated key stops working at once where it was rotated and within the TTL on the other replica", async () => {
    const merchant = await rotating.createMerchant("Cached Shop");
    // Both replicas have looked the key up (and cached it).
    expect(await balanceCode(rotating, merchant.headers)).toBe(GrpcStatus.OK);
    expect(await balanceCode(other, merchant.headers)).toBe(GrpcStatus.OK);

    const rotated = await rotating.grpc.merchants.rotateApiKey({ merchantId: merchant.id }, rotating.adminHeaders);
    const newHeaders = { authorization: `Bearer ${rotated.apiKey}` };

    expect((await grpcError(rotating.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers))).code).toBe(
      GrpcStatus.UNAUTHENTICATED,
    );
    expect(await balanceCode(rotating, newHeaders)).toBe(GrpcStatus.OK);
    expect(await balanceCode(other, newHeaders)).toBe(GrpcStatus.OK);

    const onOther = await eventually(() => balanceCode(other, merchant.headers), (code) => code === GrpcStatus.UNAUTHENTICATED);
    expect(onOther).toBe(GrpcStatus.UNAUTHENTICATED);
  });

  it("refuses an unknown key on every call (failures are not cached)", async () => {
    const unknown = { authorization: `Bearer sk_live_${"0".repeat(32)}` };
    for (let i = 0; i < 3; i++) expect(await balanceCode(other, unknown)).toBe(GrpcStatus.UNAUTHENTICATED);
  });
});
