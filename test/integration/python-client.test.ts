/**
 * The Python client in examples/python, run as a user would: stubs generated from proto/ with
 * Debian's protoc and gRPC plugin (generate.sh), then client.py against the real service over gRPC.
 * It creates a payment, reads it back and decodes a validation error's google.rpc.BadRequest from
 * `grpc-status-details-bin`. Needs python3 with grpcio and protobuf (.ci/run installs them).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../support/test-app.js";

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
// Debian's python3 (where python3-grpcio is installed), not one earlier on PATH without it.
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

let t: TestApp;

beforeAll(async () => {
  await exec("bash", [resolve(ROOT, "examples/python/generate.sh")]);
  t = await startTestApp();
}, 120_000);
afterAll(() => t?.stop());

describe("examples/python/client.py", () => {
  it("creates a payment, reads it back and decodes a BadRequest", async () => {
    const merchant = await t.createMerchant("Python Shop");
    const { stdout } = await exec(PYTHON, [resolve(ROOT, "examples/python/client.py")], {
      env: { PATH: process.env.PATH ?? "", PAYMENTS_GRPC_TARGET: `127.0.0.1:${t.app.grpcPort}`, PAYMENTS_API_KEY: merchant.apiKey },
    });
    const steps = stdout.trim().split("\n").map((line) => JSON.parse(line));
    const [created, read, invalid] = steps;
    expect(created).toMatchObject({ step: "created", status: "PAYMENT_STATUS_PENDING" });
    expect(created.qr_code_url).toMatch(/^https?:\/\//);
    expect(read).toMatchObject({ step: "read", id: created.id, amount: 1999, currency: "CNY" });
    expect(read.merchant_order_no).toMatch(/^py-/);
    // The payment really is the merchant's, as the service stored it.
    const stored = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.id } } }, merchant.headers);
    expect(stored.payment?.amount).toBe(1999n);
    expect(invalid).toMatchObject({ step: "invalid", code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST" });
    const fields = invalid.violations.map((v: { field: string }) => v.field);
    expect(fields).toEqual(expect.arrayContaining(["merchant_order_no", "currency", "amount"]));
    for (const violation of invalid.violations) expect(violation.description).not.toBe("");
  }, 60_000);
});
