/**
 * The service as a real process (`src/main.ts`), configured only by environment variables:
 * migrations applied at start on MySQL, a bad variable stops the start naming it, SIGTERM
 * drains in-flight calls before closing the database and exiting 0, and channels are simulated
 * only when chosen (a production start never falls back to the simulator, which listens on
 * loopback only and guards its control API with a token).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { createGrpcJsClient } from "../support/grpc-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { logMessages } from "../support/log-lines.js";
import { freePort, SIMULATOR_CONTROL_TOKEN, testKeys } from "../support/test-app.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

const ADMIN = "process-test-admin-token-0123";
const byId = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

let simulator: Simulator;
let database: TestDatabase;

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: SIMULATOR_CONTROL_TOKEN });
  database = await createTestDatabase();
});
afterAll(async () => {
  await simulator?.close();
  await database?.drop();
});

/** A MySQL start with its secrets and ports, and no channel at all. */
function productionEnv(grpcPort: number, httpPort: number): NodeJS.ProcessEnv {
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
  };
}

function cardEnv(): NodeJS.ProcessEnv {
  const keys = testKeys();
  return {
    CARD_BASE_URL: `${simulator.url}/card`,
    CARD_SECRET_KEY: keys.card.secretKey,
    CARD_WEBHOOK_SECRET: keys.card.webhookSecret,
  };
}

function serviceEnv(grpcPort: number, httpPort: number): NodeJS.ProcessEnv {
  const keys = testKeys();
  return {
    ...productionEnv(grpcPort, httpPort),
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
    ...cardEnv(),
  };
}

interface ServiceProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** SIGKILLs the process group: the service and a simulator it started. */
  killAll(): void;
}

const started: ServiceProcess[] = [];
// Also after a timed-out test, whose own clean-up never ran.
afterEach(() => {
  for (const service of started.splice(0)) service.killAll();
});

function startService(env: NodeJS.ProcessEnv): ServiceProcess {
  // Its own process group, so a simulator child it starts can be cleaned up with it.
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const killAll = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const service = { child, output: () => output, exited, killAll };
  started.push(service);
  return service;
}

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** This machine's first non-loopback IPv4 address, if it has one. */
function nonLoopbackAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === "IPv4" && !address.internal) return address.address;
    }
  }
  return undefined;
}

/** Waits until the service answers /healthz ("healthy") or exits (its exit code). */
async function healthyOrExitCode(service: ServiceProcess, httpPort: number): Promise<"healthy" | number | null> {
  for (;;) {
    if (service.child.exitCode !== null || service.child.signalCode !== null) return service.child.exitCode;
    const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false);
    if (ok) return "healthy";
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopService(service: ServiceProcess): Promise<void> {
  service.child.kill("SIGTERM");
  expect(await service.exited).toBe(0);
}

async function waitForHealth(httpPort: number, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    // Healthy and done printing: /healthz answers before main.ts prints its banner.
    const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false);
    if (ok && /^ready \(pid \d+\)$/m.test(logMessages(output()))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`service did not become healthy:\n${output()}`);
}

describe("the service process", { timeout: 90_000 }, () => {
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
      expect(logMessages(service.output())).toContain("SIGTERM: draining");
      merchants.close();
      payments.close();
    } finally {
      simulator.clearFaults();
      service.child.kill("SIGKILL");
    }
  });
});

describe("channels the service simulates", { timeout: 90_000 }, () => {
  it("refuses a MySQL start with no channel configured and none simulated, starting no simulator", async () => {
    const simulatorPort = await freePort();
    const httpPort = await freePort();
    const service = startService({ ...productionEnv(await freePort(), httpPort), SIMULATOR_PORT: String(simulatorPort) });
    expect(await healthyOrExitCode(service, httpPort), service.output()).toBe(2);
    expect(service.output()).toContain("SIMULATED_CHANNELS");
    expect(await accepts("127.0.0.1", simulatorPort)).toBe(false);
  });

  it("on MySQL with only the card configured, simulates nothing: alipay and wechatpay are off", async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const simulatorPort = await freePort();
    const service = startService({ ...productionEnv(grpcPort, httpPort), ...cardEnv(), SIMULATOR_PORT: String(simulatorPort) });
    await waitForHealth(httpPort, service.output);
    expect(await accepts("127.0.0.1", simulatorPort)).toBe(false);
    const output = logMessages(service.output());
    expect(output).toMatch(/^ {2}alipay {5}off /m);
    expect(output).toMatch(/^ {2}wechatpay {2}off /m);
    expect(output).toContain(`  card       real, ${simulator.url}/card`);
    expect(output).not.toMatch(/SIMULATED at|simulator:/);

    const address = `127.0.0.1:${grpcPort}`;
    const merchants = createGrpcJsClient(MerchantService, address);
    const payments = createGrpcJsClient(PaymentService, address);
    const created = await merchants.createMerchant({ name: "Card Only Shop" }, { authorization: `Bearer ${ADMIN}` });
    const headers = { authorization: `Bearer ${created.apiKey}` };
    for (const [channel, name] of [
      [Channel.ALIPAY, "alipay"],
      [Channel.WECHAT_PAY, "wechatpay"],
    ] as const) {
      const error = await payments
        .createPayment({ merchantOrderNo: `off-${name}`, currency: "CNY", amount: 500000n, channel, subject: "Tea" }, headers)
        .then(
          () => undefined,
          (failure: ServiceError) => failure,
        );
      expect(error?.code).toBe(9); // FAILED_PRECONDITION
      expect(error && readGrpcErrorDetails(error).errorInfo?.reason).toBe("CHANNEL_NOT_CONFIGURED");
      expect(error?.details).toContain(name);
    }
    const card = await payments.createPayment(
      { merchantOrderNo: "card-1", currency: "USD", amount: 1999n, channel: Channel.CARD, subject: "Tea", paymentMethod: "pm_card_visa" },
      headers,
    );
    expect(card.payment?.channel).toBe(Channel.CARD);
    merchants.close();
    payments.close();
    await stopService(service);
  });

  it("with SIMULATED_CHANNELS=all and HOST=0.0.0.0, the simulator listens on loopback only and its control API needs the token", async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const simulatorPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...productionEnv(grpcPort, httpPort),
      SIMULATED_CHANNELS: "all",
      HOST: "0.0.0.0",
      ALLOW_PLAINTEXT: "true",
      SIMULATOR_PORT: String(simulatorPort),
    };
    const service = startService(env);
    await waitForHealth(httpPort, service.output);
    expect(await accepts("127.0.0.1", simulatorPort)).toBe(true);
    const outside = nonLoopbackAddress();
    if (outside !== undefined) expect(await accepts(outside, simulatorPort)).toBe(false);

    const tokenFile = join(env.DATA_DIR!, "simulator-control-token");
    const token = readFileSync(tokenFile, "utf8").trim();
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const output = logMessages(service.output());
    for (const name of ["alipay", "wechatpay", "card"]) {
      expect(output).toContain(`  ${name.padEnd(10)} SIMULATED at http://127.0.0.1:${simulatorPort} (development keys, not real money)`);
    }
    expect(output).toContain("SIMULATED_CHANNELS on a MySQL deployment");
    expect(service.output()).toContain('"level":"warn"');
    expect(output).toContain(`control API token kept in ${tokenFile}`);
    expect(service.output()).not.toContain(token);

    const controlUrl = `http://127.0.0.1:${simulatorPort}/simulator`;
    expect((await fetch(controlUrl)).status).toBe(401);
    expect((await fetch(controlUrl, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
    expect((await fetch(controlUrl, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);

    // The control API's one dangerous act, refused without the token and done with it.
    const address = `127.0.0.1:${grpcPort}`;
    const merchants = createGrpcJsClient(MerchantService, address);
    const payments = createGrpcJsClient(PaymentService, address);
    const created = await merchants.createMerchant({ name: "Simulated Shop" }, { authorization: `Bearer ${ADMIN}` });
    const headers = { authorization: `Bearer ${created.apiKey}` };
    const { payment } = await payments.createPayment(
      { merchantOrderNo: "sim-1", currency: "CNY", amount: 500000n, channel: Channel.ALIPAY, subject: "Tea" },
      headers,
    );
    const payUrl = `${controlUrl}/alipay/trades/${encodeURIComponent(payment!.paymentNo)}/pay`;
    expect((await fetch(payUrl, { method: "POST" })).status).toBe(401);
    expect((await payments.getPayment(byId(payment!.id), headers)).payment?.status).toBe(PaymentStatus.PENDING);
    expect((await fetch(payUrl, { method: "POST", headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const deadline = Date.now() + 15_000;
    let status = PaymentStatus.PENDING;
    while (status === PaymentStatus.PENDING && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await payments.getPayment(byId(payment!.id), headers)).payment!.status;
    }
    expect(status).toBe(PaymentStatus.SUCCEEDED);
    merchants.close();
    payments.close();
    await stopService(service);
    expect(await accepts("127.0.0.1", simulatorPort)).toBe(false);
  });

  it("the embedded quick start needs no setup, simulates every channel, and prints where the admin token is kept, not the token", async () => {
    const httpPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), "payments-quick-start-"));
    const service = startService({
      PATH: process.env.PATH,
      DATA_DIR: dataDir,
      GRPC_PORT: String(await freePort()),
      HTTP_PORT: String(httpPort),
      SIMULATOR_PORT: String(await freePort()),
      SWEEP_INTERVAL_MS: "600000",
    });
    await waitForHealth(httpPort, service.output);
    const output = logMessages(service.output());
    for (const name of ["alipay", "wechatpay", "card"]) expect(output).toMatch(new RegExp(`^ {2}${name} +SIMULATED `, "m"));
    expect(output).not.toContain("SIMULATED_CHANNELS on a MySQL deployment");
    const adminToken = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
    expect(adminToken.length).toBeGreaterThanOrEqual(16);
    expect(service.output()).not.toContain(adminToken);
    expect(output).toContain(`admin token: generated, kept in ${join(dataDir, "admin-token")}`);
    const controlToken = readFileSync(join(dataDir, "simulator-control-token"), "utf8").trim();
    expect(service.output()).not.toContain(controlToken);
    await stopService(service);
  });
});
