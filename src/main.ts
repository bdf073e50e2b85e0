/**
 * The service process: reads the configuration, fills in development settings where the
 * configuration allows them (embedded database and generated admin token in the quick start;
 * exactly the channels in `config.simulatedChannels` served by the simulator with development
 * keys kept under the data directory), starts the simulator process only when a channel is
 * simulated, and serves until SIGTERM. A channel neither configured nor simulated is off.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type App, type ResolvedConfig, startApp } from "./app.js";
import { CHANNEL_NAMES, type ChannelName } from "./channels/channel.js";
import { loadOrCreateDevChannelKeys } from "./channels/dev-keys.js";
import { simulatedChannelSettings } from "./channels/simulated-settings.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./observability/logger.js";
import { registerCardWebhookEndpoint } from "./simulator/card-webhook-endpoint.js";
import { loadOrCreateControlToken } from "./simulator/control-token.js";

/** A secret generated once and kept in the data directory (embedded mode only). */
function devSecret(dataDir: string, file: string, minLength: number): { secret: string; path: string } {
  const path = join(dataDir, file);
  if (existsSync(path)) {
    const secret = readFileSync(path, "utf8").trim();
    if (secret.length < minLength) throw new Error(`${path} holds fewer than ${minLength} characters; delete it to generate a new one`);
    return { secret, path };
  }
  const secret = randomBytes(24).toString("base64url");
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return { secret, path };
}

/** What main.ts filled in beyond the configuration, for the start-up banner. */
interface Resolution {
  resolved: ResolvedConfig;
  simulated: readonly ChannelName[];
  /** The simulator's control token and where it is kept (undefined path: from SIMULATOR_CONTROL_TOKEN). */
  control?: { token: string; path?: string };
  /** Path of the generated admin token, when one was generated. */
  adminTokenPath?: string;
}

function resolveConfig(config: Readonly<Config>): Resolution {
  const simulated = config.simulatedChannels;
  if (config.databaseUrl === undefined || simulated.length > 0) mkdirSync(config.dataDir, { recursive: true });
  const simulator = `http://127.0.0.1:${config.simulatorPort}`;
  // Only the channels the configuration names as simulated: a missing variable never means "simulate".
  let { alipay, wechatpay, card } = config;
  if (simulated.length > 0) {
    const settings = simulatedChannelSettings(loadOrCreateDevChannelKeys(config.dataDir), simulator);
    if (simulated.includes("alipay")) alipay = settings.alipay;
    if (simulated.includes("wechatpay")) wechatpay = settings.wechatpay;
    if (simulated.includes("card")) card = settings.card;
  }
  let control: Resolution["control"];
  if (simulated.length > 0) {
    if (config.simulatorControlToken !== undefined) control = { token: config.simulatorControlToken };
    else {
      const generated = loadOrCreateControlToken(config.dataDir);
      control = { token: generated.token, path: generated.file };
    }
  }
  const generatedAdmin = config.adminToken === undefined ? devSecret(config.dataDir, "admin-token", 16) : undefined;
  const adminToken = config.adminToken ?? generatedAdmin!.secret;
  const dataEncryptionKey = config.dataEncryptionKey ?? devSecret(config.dataDir, "data-encryption-key", 32).secret;
  return {
    resolved: Object.freeze({ ...config, alipay, wechatpay, card, adminToken, dataEncryptionKey }),
    simulated,
    control,
    adminTokenPath: generatedAdmin?.path,
  };
}

/** Runs `npm run simulator`'s entry as a child process and waits until its control API answers. */
async function startSimulatorProcess(config: Readonly<Config>, controlToken: string): Promise<ChildProcess> {
  // Next to this file: simulator/main.js when running compiled (`node dist/src/main.js`, no TypeScript
  // at run time), simulator/main.ts through tsx otherwise.
  const entry = fileURLToPath(new URL(`./simulator/main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  const args = entry.endsWith(".ts") ? ["--import", import.meta.resolve("tsx"), entry] : [entry];
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      SIMULATOR_PORT: String(config.simulatorPort),
      SIMULATOR_DATA_DIR: config.dataDir,
      SIMULATOR_CONTROL_TOKEN: controlToken,
    },
    // Its own banner would name the token's environment variable; this process prints where it is kept.
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${config.simulatorPort}/simulator`;
  // Only our own simulator knows the token, so a stranger on the port is never taken for it.
  const headers = { authorization: `Bearer ${controlToken}` };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`simulator exited with code ${child.exitCode}`);
    const ok = await fetch(url, { headers }).then((r) => r.ok, () => false);
    if (ok) return child;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill();
  throw new Error(`simulator did not answer on ${url}`);
}

const CHANNEL_VARIABLE_PREFIX: Record<ChannelName, string> = { alipay: "ALIPAY_*", wechatpay: "WECHATPAY_*", card: "CARD_*" };

/** One line per channel saying plainly whether it is simulated, real, or off. */
function channelLines(config: Readonly<Config>, simulated: readonly ChannelName[]): string[] {
  const configuredUrl: Record<ChannelName, string | undefined> = {
    alipay: config.alipay?.gatewayUrl,
    wechatpay: config.wechatpay?.baseUrl,
    card: config.card?.baseUrl,
  };
  return CHANNEL_NAMES.map((name) => {
    const label = `  ${name.padEnd(10)} `;
    if (simulated.includes(name)) {
      return `${label}SIMULATED at http://127.0.0.1:${config.simulatorPort} (development keys, not real money)`;
    }
    const url = configuredUrl[name];
    if (url !== undefined) return `${label}real, ${url}`;
    return `${label}off (no ${CHANNEL_VARIABLE_PREFIX[name]} variables, not in SIMULATED_CHANNELS)`;
  });
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
  const logger = createLogger({ level: config.observability.logLevel, format: config.observability.logFormat, redact: config.observability.logRedact });
  const { resolved, simulated, control, adminTokenPath } = resolveConfig(config);
  const simulator = control ? await startSimulatorProcess(config, control.token) : undefined;
  let app: App;
  try {
    app = await startApp({ config: resolved, logger });
    if (simulated.includes("card")) {
      const simulatorUrl = `http://127.0.0.1:${config.simulatorPort}`;
      await registerCardWebhookEndpoint(simulatorUrl, resolved.card!.secretKey, `${resolved.publicBaseUrl}/callbacks/card`);
    }
  } catch (error) {
    simulator?.kill("SIGTERM");
    throw error;
  }

  // The banner: one line each, through the logger (JSON, or pretty on a terminal).
  logger.info(`database: ${config.databaseUrl ? "MySQL" : `embedded SQLite in ${config.dataDir}`}`);
  const grpcTransport = !config.tls ? "cleartext" : config.tls.clientCaFile ? "TLS; client certificates required" : "TLS";
  logger.info(`gRPC:     ${config.host}:${app.grpcPort} (${grpcTransport})`);
  logger.info(`HTTP:     ${app.httpUrl} (Connect, gRPC-Web, /callbacks/*, /healthz, /console)`);
  if (app.metricsPort !== undefined) logger.info(`metrics:  http://${config.host}:${app.metricsPort}/metrics`);
  else if (config.observability.metricsToken) logger.info(`metrics:  ${app.httpUrl}/metrics (bearer METRICS_TOKEN)`);
  if (config.observability.otlpEndpoint) logger.info(`traces:   OTLP to ${config.observability.otlpEndpoint}/v1/traces`);
  logger.info("channels:");
  for (const line of channelLines(config, simulated)) logger.info(line);
  if (simulator && control) {
    const simulatorUrl = `http://127.0.0.1:${config.simulatorPort}`;
    const tokenSource = control.path ? `kept in ${control.path}` : "from SIMULATOR_CONTROL_TOKEN";
    const bearer = control.path ? `$(cat ${control.path})` : "$SIMULATOR_CONTROL_TOKEN";
    logger.info(`simulator: ${simulatorUrl} (loopback only); control API token ${tokenSource}`);
    logger.info(`  pay a trade: curl -X POST -H "authorization: Bearer ${bearer}" ${simulatorUrl}/simulator/<channel>/trades/<payment_no>/pay`);
    if (config.databaseUrl) {
      logger.warn(
        `SIMULATED_CHANNELS on a MySQL deployment: ${simulated.join(", ")} payments are marked paid through the simulator's control API and move no real money`,
      );
    }
  }
  if (adminTokenPath) logger.info(`admin token: generated, kept in ${adminTokenPath}`);
  // The banner's last line: scripts (and tests) wait for it, since /healthz answers before the banner is out.
  logger.info({ grpc_port: app.grpcPort, http_port: app.httpPort }, `ready (pid ${process.pid})`);
  // Out now, not with the next batch (logger.ts).
  logger.flush();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: draining`);
    await app.stop();
    simulator?.kill("SIGTERM");
    logger.flush(() => process.exit(0));
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // Certificates are also re-read every few seconds; SIGHUP lets a rotation script switch at once.
  process.on("SIGHUP", () => app.reloadTls());
}

await main();
