/**
 * Process entry of the channel simulator (`npm run simulator`). Settings:
 * `SIMULATOR_PORT` (8090), `SIMULATOR_TIME_SCALE` (1; 0.001 turns Alipay's 4-minute re-send gap
 * into 240 ms), `SIMULATOR_DATA_DIR` (`./data`, where the development keys live) and
 * `SIMULATOR_CONTROL_TOKEN` (the control API's bearer token, at least 16 characters; unset, one is
 * generated once into `${SIMULATOR_DATA_DIR}/simulator-control-token`, mode 0600), and
 * `SIMULATOR_ALIPAY_PORT`, `SIMULATOR_WECHATPAY_PORT`, `SIMULATOR_CARD_PORT`: the listeners that
 * serve one channel each at their root, for the channels' official clients (default 0, a free port;
 * the banner prints them), e.g. `new Stripe(key, { host: "127.0.0.1", port: <card port>, protocol: "http" })`.
 * It listens on 127.0.0.1 only, whatever `HOST` says: its control API marks payments paid.
 */
import path from "node:path";
import type { ChannelName } from "../channels/channel.js";
import { closeHttpAgents } from "../channels/http-client.js";
import { DEV_KEYS_FILE_NAME, loadOrCreateDevChannelKeys } from "../channels/dev-keys.js";
import { loadOrCreateControlToken } from "./control-token.js";
import { cardPublishableKey, MIN_CONTROL_TOKEN_LENGTH, startSimulator } from "./simulator.js";

function fail(message: string): never {
  console.error(`simulator: ${message}`);
  process.exit(1);
}

function readPort(env: NodeJS.ProcessEnv, name: string, fallback: string): number {
  const portText = env[name] ?? fallback;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65_535) {
    fail(`${name} must be a port number (0-65535), got ${JSON.stringify(portText)}`);
  }
  return Number(portText);
}

function readSettings(env: NodeJS.ProcessEnv) {
  const port = readPort(env, "SIMULATOR_PORT", "8090");
  const channelPorts: Record<ChannelName, number> = {
    alipay: readPort(env, "SIMULATOR_ALIPAY_PORT", "0"),
    wechatpay: readPort(env, "SIMULATOR_WECHATPAY_PORT", "0"),
    card: readPort(env, "SIMULATOR_CARD_PORT", "0"),
  };
  const timeScaleText = env.SIMULATOR_TIME_SCALE ?? "1";
  const timeScale = Number(timeScaleText);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(timeScaleText) || !(timeScale > 0)) {
    fail(`SIMULATOR_TIME_SCALE must be a positive number such as 1 or 0.001, got ${JSON.stringify(timeScaleText)}`);
  }
  const controlToken = env.SIMULATOR_CONTROL_TOKEN?.trim() || undefined;
  if (controlToken !== undefined && controlToken.length < MIN_CONTROL_TOKEN_LENGTH) {
    fail(`SIMULATOR_CONTROL_TOKEN must be at least ${MIN_CONTROL_TOKEN_LENGTH} characters`);
  }
  return Object.freeze({
    port,
    channelPorts,
    timeScale,
    dataDir: path.resolve(env.SIMULATOR_DATA_DIR || "./data"),
    controlToken,
  });
}

const settings = readSettings(process.env);
const keys = loadOrCreateDevChannelKeys(settings.dataDir);
let controlToken = settings.controlToken;
let tokenFile: string | undefined;
if (controlToken === undefined) {
  try {
    ({ token: controlToken, file: tokenFile } = loadOrCreateControlToken(settings.dataDir));
  } catch (error) {
    fail((error as Error).message);
  }
}
const simulator = await startSimulator({
  port: settings.port,
  channelPorts: settings.channelPorts,
  timeScale: settings.timeScale,
  keys,
  controlToken,
}).catch((error: NodeJS.ErrnoException & { port?: number }) => {
  if (error.code === "EADDRINUSE") {
    fail(`127.0.0.1:${error.port ?? settings.port} is already in use; set SIMULATOR_PORT (or SIMULATOR_{ALIPAY,WECHATPAY,CARD}_PORT) to another port`);
  }
  throw error;
});

const tokenSource = tokenFile ?? "SIMULATOR_CONTROL_TOKEN (from the environment)";
const auth = `-H "authorization: Bearer ${tokenFile ? `$(cat ${tokenFile})` : "$SIMULATOR_CONTROL_TOKEN"}"`;
console.log(`channel simulator listening on ${simulator.url} (loopback only; time scale ${settings.timeScale})`);
const own = simulator.channelUrls;
console.log(`  Alipay gateway:   POST ${simulator.url}/alipay/gateway.do or ${own.alipay}/gateway.do (app_id ${keys.alipay.appId})`);
console.log(`  WeChat Pay v3:    ${simulator.url}/wechatpay/v3/... or ${own.wechatpay}/v3/... (mchid ${keys.wechatpay.mchId})`);
console.log(`  card acquirer:    ${simulator.url}/card/v1/... or ${own.card}/v1/... (webhooks go to registered /v1/webhook_endpoints)`);
console.log(`  card keys:        secret key in the development keys file, publishable key ${cardPublishableKey(keys.card.secretKey)}`);
console.log(`  control token:    ${tokenSource} (send as authorization: Bearer <token>)`);
console.log(`  pay a trade:      curl -X POST ${auth} ${simulator.url}/simulator/{alipay|wechatpay|card}/trades/<payment_no>/pay`);
console.log(`  inspect a trade:  curl ${auth} ${simulator.url}/simulator/{alipay|wechatpay|card}/trades/<payment_no>`);
console.log(`  development keys: ${path.join(settings.dataDir, DEV_KEYS_FILE_NAME)}`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void simulator.close().finally(() => {
      closeHttpAgents();
      process.exit(0);
    });
  });
}
