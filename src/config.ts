/**
 * The service's configuration, read once from the environment at start into a typed, frozen
 * object. Nothing else reads `process.env`. A bad value stops the start with a message naming
 * the variable.
 */
import { readFileSync } from "node:fs";

export interface AlipayConfig {
  gatewayUrl: string;
  appId: string;
  appPrivateKeyPem: string;
  alipayPublicKeyPem: string;
  sellerId?: string;
}

export interface WechatPayConfig {
  baseUrl: string;
  mchId: string;
  appId: string;
  mchSerialNo: string;
  mchPrivateKeyPem: string;
  platformPublicKeyPem: string;
  publicKeyId: string;
  apiV3Key: string;
}

export interface CardConfig {
  baseUrl: string;
  secretKey: string;
  webhookSecret: string;
}

export interface Config {
  /** `mysql://...`, or undefined for the embedded SQLite file. */
  databaseUrl?: string;
  /** Directory for the embedded database and development keys. */
  dataDir: string;
  host: string;
  grpcPort: number;
  httpPort: number;
  /** Undefined only in embedded mode, where one is generated and printed at start. */
  adminToken?: string;
  /** Seals merchants' webhook secrets at rest. Undefined only in embedded mode (generated). */
  dataEncryptionKey?: string;
  /** How channels reach the callback shim, without a trailing slash. */
  publicBaseUrl: string;
  /** Channels configured by their variables; the others are served by the simulator. */
  alipay?: AlipayConfig;
  wechatpay?: WechatPayConfig;
  card?: CardConfig;
  simulatorPort: number;
  /** How often the sweeper looks for pending payments to query or expire. */
  sweepIntervalMs: number;
  /** Largest request body accepted on either listener. */
  maxRequestBytes: number;
  /** Timeout of each call to a channel. */
  channelTimeoutMs: number;
  /** Drain time on SIGTERM before in-flight calls are cut. */
  shutdownGraceMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === "" ? undefined : value;
}

function port(env: Env, name: string, fallback: number): number {
  const text = optional(env, name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new ConfigError(name, `must be a port number 0-65535, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const text = optional(env, name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) <= 0) {
    throw new ConfigError(name, `must be a positive integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const text = optional(env, name);
  if (text === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new ConfigError(name, `is not a URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.join(" or ")}//`);
  }
  return text.replace(/\/+$/, "");
}

/** A key given as PEM text, or as the path of a file holding it. */
function pem(env: Env, name: string): string | undefined {
  const text = optional(env, name);
  if (text === undefined) return undefined;
  if (text.includes("-----BEGIN")) return text.replace(/\\n/g, "\n");
  try {
    const contents = readFileSync(text, "utf8");
    if (!contents.includes("-----BEGIN")) throw new ConfigError(name, `file ${text} holds no PEM key`);
    return contents;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(name, `is neither PEM text nor a readable file path`);
  }
}

/**
 * A channel is configured when all its required variables are set, simulated when none are;
 * a partial set is an error, so a typo never silently sends real money to the simulator.
 */
function channelGroup<T>(env: Env, required: string[], build: () => T): T | undefined {
  const set = required.filter((name) => optional(env, name) !== undefined);
  if (set.length === 0) return undefined;
  const missing = required.filter((name) => optional(env, name) === undefined);
  if (missing.length > 0) {
    throw new ConfigError(missing[0]!, `must be set together with ${set.join(", ")}`);
  }
  return build();
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const databaseUrl = url(env, "DATABASE_URL", ["mysql:", "mariadb:"]);
  const host = optional(env, "HOST") ?? "127.0.0.1";
  const grpcPort = port(env, "GRPC_PORT", 50051);
  const httpPort = port(env, "HTTP_PORT", 8080);
  const adminToken = optional(env, "ADMIN_TOKEN");
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new ConfigError("ADMIN_TOKEN", "must be at least 16 characters");
  }
  if (adminToken === undefined && databaseUrl !== undefined) {
    throw new ConfigError("ADMIN_TOKEN", "is required when DATABASE_URL is set");
  }
  const dataEncryptionKey = optional(env, "DATA_ENCRYPTION_KEY");
  if (dataEncryptionKey !== undefined && dataEncryptionKey.length < 32) {
    throw new ConfigError("DATA_ENCRYPTION_KEY", "must be at least 32 characters");
  }
  if (dataEncryptionKey === undefined && databaseUrl !== undefined) {
    // Every replica must seal and open with the same key, so it cannot be generated per process.
    throw new ConfigError("DATA_ENCRYPTION_KEY", "is required when DATABASE_URL is set");
  }

  const alipay = channelGroup<AlipayConfig>(
    env,
    ["ALIPAY_GATEWAY_URL", "ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"],
    () => ({
      gatewayUrl: url(env, "ALIPAY_GATEWAY_URL", ["http:", "https:"])!,
      appId: optional(env, "ALIPAY_APP_ID")!,
      appPrivateKeyPem: pem(env, "ALIPAY_APP_PRIVATE_KEY")!,
      alipayPublicKeyPem: pem(env, "ALIPAY_PUBLIC_KEY")!,
      sellerId: optional(env, "ALIPAY_SELLER_ID"),
    }),
  );
  const wechatpay = channelGroup<WechatPayConfig>(
    env,
    [
      "WECHATPAY_BASE_URL",
      "WECHATPAY_MCH_ID",
      "WECHATPAY_APP_ID",
      "WECHATPAY_MCH_SERIAL_NO",
      "WECHATPAY_MCH_PRIVATE_KEY",
      "WECHATPAY_PUBLIC_KEY",
      "WECHATPAY_PUBLIC_KEY_ID",
      "WECHATPAY_APIV3_KEY",
    ],
    () => {
      const apiV3Key = optional(env, "WECHATPAY_APIV3_KEY")!;
      if (Buffer.byteLength(apiV3Key) !== 32) {
        throw new ConfigError("WECHATPAY_APIV3_KEY", "must be exactly 32 bytes");
      }
      return {
        baseUrl: url(env, "WECHATPAY_BASE_URL", ["http:", "https:"])!,
        mchId: optional(env, "WECHATPAY_MCH_ID")!,
        appId: optional(env, "WECHATPAY_APP_ID")!,
        mchSerialNo: optional(env, "WECHATPAY_MCH_SERIAL_NO")!,
        mchPrivateKeyPem: pem(env, "WECHATPAY_MCH_PRIVATE_KEY")!,
        platformPublicKeyPem: pem(env, "WECHATPAY_PUBLIC_KEY")!,
        publicKeyId: optional(env, "WECHATPAY_PUBLIC_KEY_ID")!,
        apiV3Key,
      };
    },
  );
  const card = channelGroup<CardConfig>(
    env,
    ["CARD_BASE_URL", "CARD_SECRET_KEY", "CARD_WEBHOOK_SECRET"],
    () => ({
      baseUrl: url(env, "CARD_BASE_URL", ["http:", "https:"])!,
      secretKey: optional(env, "CARD_SECRET_KEY")!,
      webhookSecret: optional(env, "CARD_WEBHOOK_SECRET")!,
    }),
  );

  const publicBaseUrl =
    url(env, "PUBLIC_BASE_URL", ["http:", "https:"]) ??
    `http://${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${httpPort}`;

  return Object.freeze({
    databaseUrl,
    dataDir: optional(env, "DATA_DIR") ?? "./data",
    host,
    grpcPort,
    httpPort,
    adminToken,
    dataEncryptionKey,
    publicBaseUrl,
    alipay,
    wechatpay,
    card,
    simulatorPort: port(env, "SIMULATOR_PORT", 8090),
    sweepIntervalMs: positiveInt(env, "SWEEP_INTERVAL_MS", 5000),
    maxRequestBytes: positiveInt(env, "MAX_REQUEST_BYTES", 1024 * 1024),
    channelTimeoutMs: positiveInt(env, "CHANNEL_TIMEOUT_MS", 10_000),
    shutdownGraceMs: positiveInt(env, "SHUTDOWN_GRACE_MS", 10_000),
  });
}
