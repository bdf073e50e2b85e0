/**
 * A whole service for integration tests: its own MySQL database, the channel simulator on a free
 * port with compressed re-send times, the app on free ports wired to it, and clients of both
 * kinds (grpc-js over the gRPC port, connect-es Connect JSON over the HTTP port).
 */
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type App, type AppOptions, buildChannels, type ResolvedConfig, startApp } from "../../src/app.js";
import type { PaymentChannel } from "../../src/channels/channel.js";
import { type DevChannelKeys, generateDevChannelKeys } from "../../src/channels/dev-keys.js";
import { simulatedChannelSettings } from "../../src/channels/simulated-settings.js";
import { loadConfig } from "../../src/config.js";
import { createLogger, type Logger } from "../../src/observability/logger.js";
import { pino } from "pino";
import { registerCardWebhookEndpoint } from "../../src/simulator/card-webhook-endpoint.js";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { SettlementService } from "../../gen/payments/v1/settlement_service_pb.js";
import { createGrpcJsClient, type GrpcJsClient } from "./grpc-client.js";
import { freePort } from "./ports.js";
import { createTestDatabase, type TestDatabase } from "./test-database.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
/** The control token of every simulator the tests start; send as `authorization: Bearer ...` to `/simulator/*`. */
export const SIMULATOR_CONTROL_TOKEN = "test-simulator-control-token-0123";

let sharedKeys: DevChannelKeys | undefined;
export { freePort };

/** RSA key generation is slow; one set per test process is enough. */
export function testKeys(): DevChannelKeys {
  sharedKeys ??= generateDevChannelKeys();
  return sharedKeys;
}


export interface TestApp {
  app: App;
  simulator: Simulator;
  database?: TestDatabase;
  config: ResolvedConfig;
  grpc: {
    merchants: GrpcJsClient<typeof MerchantService>;
    payments: GrpcJsClient<typeof PaymentService>;
    settlement: GrpcJsClient<typeof SettlementService>;
  };
  connect: {
    merchants: Client<typeof MerchantService>;
    payments: Client<typeof PaymentService>;
    settlement: Client<typeof SettlementService>;
  };
  adminHeaders: Record<string, string>;
  /** Registers the shim's card route with the simulated acquirer, which sends card events there. */
  registerCardWebhook(): Promise<void>;
  /** Creates a merchant and returns its id and `authorization` header. */
  createMerchant(name?: string): Promise<{ id: string; apiKey: string; headers: Record<string, string> }>;
  stop(): Promise<void>;
}

export interface TestAppOptions {
  /** "mysql" (default) or the embedded SQLite driver in a temporary directory. */
  database?: "mysql" | "sqlite";
  /** Reuse a running simulator (e.g. shared by two app processes). */
  simulator?: Simulator;
  /** Reuse a database (e.g. two app instances on one MySQL). */
  databaseUrl?: string;
  timeScale?: number;
  channelTimeoutMs?: number;
  /** Wraps each channel adapter, e.g. to count the calls the service makes. */
  wrapChannel?: (channel: PaymentChannel) => PaymentChannel;
  /** Services served next to the app's own, behind the same interceptors (e.g. test/support/stream-probe.ts). */
  extraServices?: AppOptions["extraServices"];
  /** Settings that replace the test configuration's (e.g. a small `rateLimit`). */
  config?: Partial<ResolvedConfig>;
  /** Run the event loops (feed, webhook deliveries, bus relay) in the background (default false: tests call their `runOnce()`). */
  runEventWorkers?: boolean;
  /** The app's logger (default {@link testLogger}: errors only, to stderr). */
  logger?: AppOptions["logger"];
  tracing?: AppOptions["tracing"];
  channelCallSink?: AppOptions["channelCallSink"];
}

/** Errors only, as JSON lines on stderr: what a failing test needs, and nothing from passing ones. */
export function testLogger(): Logger {
  return createLogger({ level: "error", format: "json", destination: pino.destination({ dest: 2, sync: true }) });
}

/** A `wrapChannel` that counts, per payment number, the service's channel queries and closes in the maps given. */
export function countingChannel(counts: { queryPayment?: Map<string, number>; closePayment?: Map<string, number> }) {
  const count = (calls: Map<string, number> | undefined, paymentNo: string) => calls?.set(paymentNo, (calls.get(paymentNo) ?? 0) + 1);
  return (channel: PaymentChannel): PaymentChannel =>
    Object.assign(Object.create(channel) as PaymentChannel, {
      name: channel.name,
      queryPayment: async (trade: Parameters<PaymentChannel["queryPayment"]>[0]) => {
        count(counts.queryPayment, trade.paymentNo);
        return channel.queryPayment(trade);
      },
      closePayment: async (trade: Parameters<PaymentChannel["closePayment"]>[0]) => {
        count(counts.closePayment, trade.paymentNo);
        return channel.closePayment(trade);
      },
    });
}

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const keys = testKeys();
  const simulator = options.simulator ?? (await startSimulator({ port: 0, keys, timeScale: options.timeScale ?? 0.0005, controlToken: SIMULATOR_CONTROL_TOKEN }));
  let database: TestDatabase | undefined;
  let databaseUrl = options.databaseUrl;
  let dataDir = "./data";
  if (!databaseUrl && (options.database ?? "mysql") === "mysql") {
    database = await createTestDatabase();
    databaseUrl = database.url;
  }
  if (options.database === "sqlite") {
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    dataDir = mkdtempSync(join(tmpdir(), "payments-sqlite-"));
  }

  const httpPort = await freePort();
  const config: ResolvedConfig = Object.freeze({
    ...loadConfig({}),
    databaseUrl,
    dataDir,
    grpcPort: 0,
    httpPort,
    publicBaseUrl: `http://127.0.0.1:${httpPort}`,
    adminToken: ADMIN_TOKEN,
    dataEncryptionKey: "test-data-encryption-key-0123456789abcdef",
    channelTimeoutMs: options.channelTimeoutMs ?? 2000,
    shutdownGraceMs: 2000,
    ...simulatedChannelSettings(keys, simulator.url),
    ...options.config,
  });
  const channels = options.wrapChannel ? buildChannels(config).map(options.wrapChannel) : undefined;
  const app = await startApp({ config, channels, runSweeper: false,
    runEventWorkers: options.runEventWorkers ?? false,
    logger: options.logger ?? testLogger(),
    tracing: options.tracing,
    channelCallSink: options.channelCallSink,
    extraServices: options.extraServices,
  });

  const grpcAddress = `127.0.0.1:${app.grpcPort}`;
  const transport = createConnectTransport({ baseUrl: app.httpUrl, httpVersion: "1.1", useBinaryFormat: false });
  const grpc = {
    merchants: createGrpcJsClient(MerchantService, grpcAddress),
    payments: createGrpcJsClient(PaymentService, grpcAddress),
    settlement: createGrpcJsClient(SettlementService, grpcAddress),
  };
  const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` };

  return {
    app,
    simulator,
    database,
    config,
    grpc,
    connect: {
      merchants: createClient(MerchantService, transport),
      payments: createClient(PaymentService, transport),
      settlement: createClient(SettlementService, transport),
    },
    adminHeaders,
    registerCardWebhook: () =>
      registerCardWebhookEndpoint(simulator.url, keys.card.secretKey, `${config.publicBaseUrl}/callbacks/card`),
    async createMerchant(name = "Test Shop") {
      const created = await grpc.merchants.createMerchant({ name, notifyUrl: "https://shop.example/notify" }, adminHeaders);
      return {
        id: created.merchant!.id,
        apiKey: created.apiKey,
        headers: { authorization: `Bearer ${created.apiKey}` },
      };
    },
    async stop() {
      for (const client of Object.values(grpc)) client.close();
      await app.stop();
      if (!options.simulator) await simulator.close();
      await database?.drop();
    },
  };
}

/** Another replica of `first`'s service: its own listeners and loops on the same database and simulator. */
export function startReplica(first: TestApp, options: TestAppOptions = {}): Promise<TestApp> {
  return startTestApp({ ...options, databaseUrl: first.database!.url, simulator: first.simulator });
}
