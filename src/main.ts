/**
 * The service process: reads the configuration, fills in development settings for whatever is
 * not configured (embedded database, generated admin token, simulated channels with keys kept
 * under ./data/), starts the channel simulator when a channel needs it, and serves until SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ResolvedConfig, startApp } from "./app.js";
import { type DevChannelKeys, loadOrCreateDevChannelKeys } from "./channels/dev-keys.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { registerCardWebhookEndpoint } from "./simulator/card-webhook-endpoint.js";

/** A secret generated once and kept in the data directory (embedded mode only). */
function devSecret(dataDir: string, file: string): string {
  const path = join(dataDir, file);
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const secret = randomBytes(24).toString("base64url");
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

function resolveConfig(config: Readonly<Config>): { resolved: ResolvedConfig; simulated: string[] } {
  mkdirSync(config.dataDir, { recursive: true });
  const simulated: string[] = [];
  const simulator = `http://127.0.0.1:${config.simulatorPort}`;
  let devChannelKeys: DevChannelKeys | undefined;
  const devKeys = () => (devChannelKeys ??= loadOrCreateDevChannelKeys(config.dataDir));
  let { alipay, wechatpay, card } = config;
  if (!alipay) {
    const keys = devKeys().alipay;
    alipay = {
      gatewayUrl: `${simulator}/alipay/gateway.do`,
      appId: keys.appId,
      appPrivateKeyPem: keys.appPrivateKeyPem,
      alipayPublicKeyPem: keys.alipayPublicKeyPem,
      sellerId: keys.sellerId,
    };
    simulated.push("alipay");
  }
  if (!wechatpay) {
    const keys = devKeys().wechatpay;
    wechatpay = {
      baseUrl: `${simulator}/wechatpay`,
      mchId: keys.mchId,
      appId: keys.appId,
      mchSerialNo: keys.mchSerialNo,
      mchPrivateKeyPem: keys.mchPrivateKeyPem,
      platformPublicKeyPem: keys.platformPublicKeyPem,
      publicKeyId: keys.publicKeyId,
      apiV3Key: keys.apiV3Key,
    };
    simulated.push("wechatpay");
  }
  if (!card) {
    const keys = devKeys().card;
    card = { baseUrl: `${simulator}/card`, secretKey: keys.secretKey, webhookSecret: keys.webhookSecret };
    simulated.push("card");
  }
  const adminToken = config.adminToken ?? devSecret(config.dataDir, "admin-token");
  const dataEncryptionKey = config.dataEncryptionKey ?? devSecret(config.dataDir, "data-encryption-key");
  return { resolved: Object.freeze({ ...config, alipay, wechatpay, card, adminToken, dataEncryptionKey }), simulated };
}

/** Runs `npm run simulator`'s entry as a child process and waits until it answers. */
async function startSimulatorProcess(config: Readonly<Config>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/simulator/main.ts"], {
    env: { ...process.env, SIMULATOR_PORT: String(config.simulatorPort), SIMULATOR_DATA_DIR: config.dataDir },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const url = `http://127.0.0.1:${config.simulatorPort}/simulator`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`simulator exited with code ${child.exitCode}`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return child;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill();
  throw new Error(`simulator did not answer on ${url}`);
}

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const { resolved, simulated } = resolveConfig(config);
  const simulator = simulated.length > 0 ? await startSimulatorProcess(config) : undefined;
  const app = await startApp({ config: resolved });
  if (simulated.includes("card")) {
    const simulatorUrl = `http://127.0.0.1:${config.simulatorPort}`;
    await registerCardWebhookEndpoint(simulatorUrl, resolved.card!.secretKey, `${resolved.publicBaseUrl}/callbacks/card`);
  }

  console.log(`database: ${config.databaseUrl ? "MySQL" : `embedded SQLite in ${config.dataDir}`}`);
  console.log(`gRPC:     ${config.host}:${app.grpcPort}`);
  console.log(`HTTP:     ${app.httpUrl} (Connect, gRPC-Web, /callbacks/*, /healthz)`);
  if (simulator) console.log(`simulator: http://127.0.0.1:${config.simulatorPort} for ${simulated.join(", ")}`);
  if (!config.adminToken) console.log(`admin token (generated, kept in ${config.dataDir}/admin-token): ${resolved.adminToken}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: draining`);
    await app.stop();
    simulator?.kill("SIGTERM");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

await main();
