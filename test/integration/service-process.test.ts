/**
 * The service as a real process (`src/main.ts`), configured only by environment variables:
 * migrations applied at start on MySQL, a bad variable stops the start naming it, and SIGTERM
 * drains in-flight calls before closing the database and exiting 0.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { createGrpcJsClient } from "../support/grpc-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { freePort, testKeys } from "../support/test-app.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

const ADMIN = "process-test-admin-token-0123";

let simulator: Simulator;
let database: TestDatabase;

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001 });
  database = await createTestDatabase();
});
afterAll(async () => {
  await simulator?.close();
  await database?.drop();
});

function serviceEnv(grpcPort: number, httpPort: number): NodeJS.ProcessEnv {
  const keys = testKeys();
  return {
    PATH: process.env.PATH,
    DATABASE_URL: database.url,
    ADMIN_TOKEN: ADMIN,
    DATA_ENCRYPTION_KEY: "process-test-data-key-0123456789abcdef",
    DATA_DIR: mkdtempSync(join(tmpdir(), "payments-process-")),
    GRPC_PORT: String(grpcPort),
    HTTP_PORT: String(httpPort),
    CHANNEL_TIMEOUT_MS: "3000",
    SWEEP_INTERVAL_MS: "600000",
    ALIPAY_GATEWAY_URL: `${simulator.url}/alipay/gateway.do`,
    ALIPAY_APP_ID: keys.alipay.appId,
    ALIPAY_APP_PRIVATE_KEY: keys.alipay.appPrivateKeyPem,
    ALIPAY_PUBLIC_KEY: keys.alipay.alipayPublicKeyPem,
    WECHATPAY_BASE_URL: `${simulator.url}/wechatpay`,
    WECHATPAY_MCH_ID: keys.wechatpay.mchId,
    WECHATPAY_APP_ID: keys.wechatpay.appId,
    WECHATPAY_MCH_SERIAL_NO: keys.wechatpay.mchSerialNo,
    WECHATPAY_MCH_PRIVATE_KEY: keys.wechatpay.mchPrivateKeyPem,
    WECHATPAY_PUBLIC_KEY: keys.wechatpay.platformPublicKeyPem,
    WECHATPAY_PUBLIC_KEY_ID: keys.wechatpay.publicKeyId,
    WECHATPAY_APIV3_KEY: keys.wechatpay.apiV3Key,
    CARD_BASE_URL: `${simulator.url}/card`,
    CARD_SECRET_KEY: keys.card.secretKey,
    CARD_WEBHOOK_SECRET: keys.card.webhookSecret,
  };
}

function startService(env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForHealth(httpPort: number, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`service did not become healthy:\n${output()}`);
}

describe("the service process", () => {
  it("refuses to start on a bad variable and names it", async () => {
    const { exited, output } = startService({ ...serviceEnv(await freePort(), await freePort()), GRPC_PORT: "fifty" });
    expect(await exited).toBe(2);
    expect(output()).toContain("GRPC_PORT");
  });

  it("migrates MySQL at start, serves both ports, and on SIGTERM finishes the call in flight before exiting", async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const service = startService(serviceEnv(grpcPort, httpPort));
    try {
      await waitForHealth(httpPort, service.output);
      const address = `127.0.0.1:${grpcPort}`;
      const merchants = createGrpcJsClient(MerchantService, address);
      const payments = createGrpcJsClient(PaymentService, address);
      const created = await merchants.createMerchant({ name: "Process Shop" }, { authorization: `Bearer ${ADMIN}` });
      const headers = { authorization: `Bearer ${created.apiKey}` };

      // The acquirer will not answer this create: the call stays in flight until the channel timeout.
      simulator.setFaults({ channel: "alipay", faults: { apiTimeout: { method: "alipay.trade.precreate", times: 1 } } });
      const inFlight = payments
        .createPayment(
          { merchantOrderNo: "drain-1", currency: "CNY", amount: 100n, channel: Channel.ALIPAY, subject: "Tea" },
          headers,
        )
        .then(
          () => undefined,
          (error: ServiceError) => error,
        );
      await new Promise((resolve) => setTimeout(resolve, 500));
      service.child.kill("SIGTERM");

      const error = await inFlight;
      // Answered by the service (the channel timed out), not cut off by the shutdown.
      expect(error && readGrpcErrorDetails(error).errorInfo?.reason).toBe("CHANNEL_UNAVAILABLE");
      expect(await service.exited).toBe(0);
      expect(service.output()).toContain("SIGTERM: draining");
      merchants.close();
      payments.close();
    } finally {
      simulator.clearFaults();
      service.child.kill("SIGKILL");
    }
  });
});
