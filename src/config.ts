/**
 * The service's configuration, read once from the environment at start into a typed, frozen
 * object. Nothing else reads `process.env`. A bad value stops the start with a message naming
 * the variable.
 */
import { readFileSync } from "node:fs";
import { CHANNEL_NAMES, type ChannelName } from "./channels/channel.js";
import type { FeeTerms } from "./fees/fee-calculator.js";
import type { NotifyUrlPolicy } from "./notifications/notify-url.js";
import type { RateLimit } from "./rpc/rate-limiter.js";

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

/** Certificate and key (PEM files) for both listeners; a client CA turns on mutual TLS on gRPC. */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
  /** `TLS_CLIENT_CA_FILE`: gRPC clients must present a certificate signed by this CA. */
  clientCaFile?: string;
}

/** Bounds on the gRPC listener's connections (grpc-js server options). */
export interface GrpcLimits {
  /** `GRPC_MAX_CONNECTIONS`: open connections at once; more are refused. */
  maxConnections: number;
  /** `GRPC_MAX_CONCURRENT_STREAMS`: calls in flight on one connection. */
  maxConcurrentStreams: number;
  /** `GRPC_IDLE_TIMEOUT_MS`: a connection with no call for this long is closed. */
  idleTimeoutMs: number;
  /** `GRPC_MAX_CONNECTION_AGE_MS`: connections are asked to go away after this long... */
  maxConnectionAgeMs: number;
  /** `GRPC_MAX_CONNECTION_AGE_GRACE_MS`: ...and cut this long after that. */
  maxConnectionAgeGraceMs: number;
  /** `GRPC_KEEPALIVE_MIN_INTERVAL_MS`: clients pinging more often than this are disconnected. */
  keepaliveMinIntervalMs: number;
  /** `GRPC_MAX_SESSION_MEMORY_MB`: buffered bytes per connection before new streams are refused. */
  maxSessionMemoryMb: number;
  /**
   * `GRPC_REQUEST_TIMEOUT_MS`: once the server waits for a call's next request message (or the end of the
   * request), it must arrive within this long, else the call ends with DEADLINE_EXCEEDED and its stream is reset.
   */
  requestTimeoutMs: number;
}

/** What a {@link GrpcLimits} setting is when its variable is unset. */
export const DEFAULT_GRPC_LIMITS: Readonly<GrpcLimits> = Object.freeze({
  maxConnections: 1000,
  maxConcurrentStreams: 100,
  idleTimeoutMs: 5 * 60_000,
  maxConnectionAgeMs: 30 * 60_000,
  maxConnectionAgeGraceMs: 60_000,
  keepaliveMinIntervalMs: 60_000,
  maxSessionMemoryMb: 10,
  requestTimeoutMs: 30_000,
});

/** Bounds on the HTTP listener's connections (node:http server settings). */
export interface HttpLimits {
  /** `HTTP_MAX_CONNECTIONS`. */
  maxConnections: number;
  /** `HTTP_REQUEST_TIMEOUT_MS`: the whole request (headers and body) must arrive within this. */
  requestTimeoutMs: number;
  /** `HTTP_HEADERS_TIMEOUT_MS`. */
  headersTimeoutMs: number;
  /** `HTTP_KEEPALIVE_TIMEOUT_MS`: idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
}

/** What an {@link HttpLimits} setting is when its variable is unset. */
export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  maxConnections: 1000,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
});

/** When a settlement date's period starts and ends, and when the daily run happens. */
export interface SettlementSchedule {
  /** `SETTLEMENT_TIME_ZONE`: IANA zone the settlement day and cut-off are read in (default Asia/Shanghai). */
  timeZone: string;
  /** `SETTLEMENT_CUTOFF`: `HH:MM` in that zone where one settlement day ends and the next begins (default 00:00). */
  cutoffMinutes: number;
  /** `SETTLEMENT_DELAY_DAYS`: settlement date D settles the day D - delay (T+1 by default: D settles D - 1). */
  delayDays: number;
  /** `SETTLEMENT_SCHEDULE`: run each day's settlement automatically after the cut-off (default true). */
  scheduled: boolean;
  /** `SETTLEMENT_MIN_AMOUNT`: the smallest SubmitSettlement amount, in minor units (default 100). */
  minSubmitAmount: bigint;
}

/** The event feed: sequencing, streams and retention. */
export interface EventsConfig {
  /** `EVENT_POLL_INTERVAL_MS`: how often a replica gives new events their place and checks for ones to stream (default 200). */
  pollIntervalMs: number;
  /** `EVENT_RETENTION_DAYS`: events older than this are deleted once delivered everywhere (default 30). */
  retentionDays: number;
  /** `STREAM_MAX_SECONDS`: the longest a WatchPayment or StreamEvents stream stays open (default 3600). */
  streamMaxSeconds: number;
  /** `STREAM_MAX_OPEN`: streams one replica serves at once; more are refused with RESOURCE_EXHAUSTED (default 1000). */
  maxOpenStreams: number;
}

/** Webhook deliveries to merchants. */
export interface WebhooksConfig {
  /** `WEBHOOK_TIMEOUT_MS`: the longest one delivery attempt may take, connect to last byte (default 10000). */
  timeoutMs: number;
  /** `WEBHOOK_MAX_IN_FLIGHT`: attempts one replica has open at once, all endpoints together (default 64). */
  maxInFlight: number;
  /** `WEBHOOK_MAX_PER_ENDPOINT`: attempts one replica has open at once to one endpoint (scheme, host, port; default 4). */
  maxPerEndpoint: number;
  /** `WEBHOOK_RETRY_SCHEDULE`: waits before each retry, e.g. `15s,1m,5m,15m,1h,2h,6h,12h` (the default: 8 retries over about 22 hours). */
  retryScheduleMs: readonly number[];
  /** `WEBHOOK_SECRET_OVERLAP_SECONDS`: how long a rotated webhook secret keeps signing beside the new one (default 86400). */
  secretOverlapSeconds: number;
}

/** The event bus relay: events published to NATS JetStream. */
export interface NatsConfig {
  /** `EVENTS_NATS_URL`: e.g. `nats://127.0.0.1:4222`; the relay is off when unset. */
  url: string;
  /** `EVENTS_NATS_STREAM`: the JetStream stream the relay creates or uses (default `PAYMENT_EVENTS`). */
  stream: string;
  /** `EVENTS_NATS_SUBJECT_PREFIX`: subjects are `<prefix>.<event type>`, e.g. `payments.payment.succeeded` (default `payments`). */
  subjectPrefix: string;
}

/** Logs, metrics and traces (README "Operating it"). */
export interface ObservabilityConfig {
  /** `LOG_LEVEL`: fatal, error, warn, info (default), debug, trace or silent. */
  logLevel: LogLevel;
  /** `LOG_FORMAT`: json, pretty, or auto (default: pretty when stdout is a terminal, JSON otherwise). */
  logFormat: "json" | "pretty" | "auto";
  /** `LOG_REDACT`: more field names to redact, beside the built-in list (logger.ts `REDACTED_FIELDS`). */
  logRedact: readonly string[];
  /** `METRICS_PORT`: serve `/metrics` on its own listener (on `HOST`) with no token. */
  metricsPort?: number;
  /** `METRICS_TOKEN`: `/metrics` on the HTTP listener, for `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** `OTEL_EXPORTER_OTLP_ENDPOINT`: export traces by OTLP/HTTP (JSON) to `<endpoint>/v1/traces`; unset = off. */
  otlpEndpoint?: string;
  /** `OTEL_SERVICE_NAME` (default payments-service). */
  serviceName: string;
  /** `CHANNEL_CALL_RETENTION_DAYS` (default 30): how long the record of each channel call is kept. */
  channelCallRetentionDays: number;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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
  /** Channels configured by their variables. */
  alipay?: AlipayConfig;
  wechatpay?: WechatPayConfig;
  card?: CardConfig;
  /**
   * Channels served by the simulator with development keys. `SIMULATED_CHANNELS` (a comma list,
   * `all` or `none`) chooses them; unset, the embedded quick start simulates every channel without
   * variables and a MySQL deployment simulates none. A channel neither configured nor simulated is off.
   */
  simulatedChannels: readonly ChannelName[];
  simulatorPort: number;
  /** `SIMULATOR_CONTROL_TOKEN`: guards the simulator's control API; generated under `dataDir` when unset. */
  simulatorControlToken?: string;
  /** `TLS_CERT_FILE` and `TLS_KEY_FILE` (and `TLS_CLIENT_CA_FILE`); undefined = cleartext. */
  tls?: TlsConfig;
  /** `ALLOW_PLAINTEXT=true`: accept a non-loopback `HOST` without TLS (e.g. behind a TLS-terminating proxy). */
  allowPlaintext: boolean;
  grpcLimits: GrpcLimits;
  httpLimits: HttpLimits;
  /** `CALLBACK_LOG_RETENTION_DAYS`: callback audit rows older than this are deleted. */
  callbackLogRetentionDays: number;
  /** `RATE_LIMIT_PER_SECOND` and `RATE_LIMIT_BURST`: each merchant's calls per replica (token bucket). */
  rateLimit: RateLimit;
  /**
   * `API_KEY_CACHE_TTL_MS`: how long a replica trusts an API key it has looked up (default 5000; 0 = read
   * the database on every call). A rotated key keeps working on other replicas for at most this long.
   */
  apiKeyCacheTtlMs: number;
  /** `FINAL_PAYMENT_CHANNEL_QUERIES`: times QueryPayment may ask the channel about a payment already final. */
  finalPaymentChannelQueries: number;
  /**
   * Which merchant notify URLs are accepted: `NOTIFY_URL_ALLOW_HTTP` (default true only in the embedded
   * quick start) and `NOTIFY_URL_ALLOW_PRIVATE` (loopback, private, link-local; default false).
   */
  notifyUrls: NotifyUrlPolicy;
  settlement: SettlementSchedule;
  observability: ObservabilityConfig;
  events: EventsConfig;
  webhooks: WebhooksConfig;
  /** Undefined = no bus relay (`EVENTS_NATS_URL` unset). */
  nats?: NatsConfig;
  /**
   * `CHANNEL_FEE_RATES`: each channel's contracted fee (`alipay=60,wechatpay=60,card=290+30`: basis points,
   * then `+` a fixed fee in minor units). Reconciliation compares each bill line's fee with it; a channel
   * without a rate has its bill fees taken as they are (no FEE_MISMATCH). Simulated channels default to the
   * simulator's rates.
   */
  channelFeeRates: Readonly<Partial<Record<ChannelName, FeeTerms>>>;
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

/** As {@link positiveInt}, at most `max`. */
function positiveIntAtMost(env: Env, name: string, fallback: number, max: number): number {
  const value = positiveInt(env, name, fallback);
  if (value > max) throw new ConfigError(name, `must be at most ${max}, got ${value}`);
  return value;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const text = optional(env, name)?.toLowerCase();
  if (text === undefined) return fallback;
  if (text === "true" || text === "1") return true;
  if (text === "false" || text === "0") return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(text)}`);
}

/** A readable file's path (read later by whoever needs its contents). */
function filePath(env: Env, name: string): string | undefined {
  const path = optional(env, name);
  if (path === undefined) return undefined;
  try {
    readFileSync(path);
  } catch {
    throw new ConfigError(name, `${JSON.stringify(path)} is not a readable file`);
  }
  return path;
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The simulator's fees (the simulator's bill modules), the default rates of simulated channels. */
const SIMULATOR_FEE_RATES: Readonly<Record<ChannelName, FeeTerms>> = Object.freeze({
  alipay: { rateBps: 60, fixedFee: 0n, minFee: 0n },
  wechatpay: { rateBps: 60, fixedFee: 0n, minFee: 0n },
  card: { rateBps: 290, fixedFee: 30n, minFee: 0n },
});

function channelFeeRates(env: Env, simulated: readonly ChannelName[]): Partial<Record<ChannelName, FeeTerms>> {
  const rates: Partial<Record<ChannelName, FeeTerms>> = {};
  for (const channel of simulated) rates[channel] = SIMULATOR_FEE_RATES[channel];
  const raw = optional(env, "CHANNEL_FEE_RATES");
  if (raw === undefined) return rates;
  for (const part of raw.split(",")) {
    const match = /^\s*(alipay|wechatpay|card)\s*=\s*(\d{1,4})(?:\s*\+\s*(\d{1,9}))?\s*$/.exec(part);
    if (!match) {
      throw new ConfigError("CHANNEL_FEE_RATES", `expected channel=basis_points[+fixed_minor], e.g. alipay=60,card=290+30; got ${JSON.stringify(part.slice(0, 40))}`);
    }
    const rateBps = Number(match[2]);
    if (rateBps > 10_000) throw new ConfigError("CHANNEL_FEE_RATES", `${match[1]}: at most 10000 basis points`);
    rates[match[1] as ChannelName] = { rateBps, fixedFee: BigInt(match[3] ?? "0"), minFee: 0n };
  }
  return rates;
}

function settlementSchedule(env: Env): SettlementSchedule {
  const timeZone = optional(env, "SETTLEMENT_TIME_ZONE") ?? "Asia/Shanghai";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch {
    throw new ConfigError("SETTLEMENT_TIME_ZONE", `unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as Asia/Shanghai`);
  }
  const cutoff = optional(env, "SETTLEMENT_CUTOFF") ?? "00:00";
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(cutoff);
  if (!match) throw new ConfigError("SETTLEMENT_CUTOFF", `must be HH:MM (24-hour), got ${JSON.stringify(cutoff)}`);
  const delayDays = nonNegativeInt(env, "SETTLEMENT_DELAY_DAYS", 1);
  if (delayDays > 30) throw new ConfigError("SETTLEMENT_DELAY_DAYS", "must be at most 30");
  const minimum = optional(env, "SETTLEMENT_MIN_AMOUNT") ?? "100";
  if (!/^\d{1,15}$/.test(minimum) || BigInt(minimum) < 1n) {
    throw new ConfigError("SETTLEMENT_MIN_AMOUNT", `must be a whole number of minor units, at least 1; got ${JSON.stringify(minimum)}`);
  }
  return Object.freeze({
    timeZone,
    cutoffMinutes: Number(match[1]) * 60 + Number(match[2]),
    delayDays,
    scheduled: flag(env, "SETTLEMENT_SCHEDULE", true),
    minSubmitAmount: BigInt(minimum),
  });
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A comma list of durations such as `15s,1m,2h` (units ms, s, m, h), each at least 1 ms, at most 64 of them. */
function durationList(env: Env, name: string, fallback: readonly number[]): readonly number[] {
  const text = optional(env, name);
  if (text === undefined) return Object.freeze([...fallback]);
  const parts = text.split(",").map((part) => part.trim());
  if (parts.length > 64) throw new ConfigError(name, `at most 64 durations, got ${parts.length}`);
  return Object.freeze(
    parts.map((part) => {
      const match = /^(\d{1,9})(ms|s|m|h)$/.exec(part);
      if (!match || Number(match[1]) === 0) {
        throw new ConfigError(name, `must be a comma list of durations like 15s,1m,2h; ${JSON.stringify(part)} is not one`);
      }
      return Number(match[1]) * DURATION_UNITS_MS[match[2]!]!;
    }),
  );
}

/** The default webhook retry schedule: 8 retries after the first attempt, the last about 22 hours in. */
export const DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS: readonly number[] = Object.freeze(
  [15_000, 60_000, 300_000, 900_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000],
);

function natsConfig(env: Env): NatsConfig | undefined {
  const natsUrl = url(env, "EVENTS_NATS_URL", ["nats:", "tls:"]);
  if (natsUrl === undefined) return undefined;
  const stream = optional(env, "EVENTS_NATS_STREAM") ?? "PAYMENT_EVENTS";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(stream)) {
    throw new ConfigError("EVENTS_NATS_STREAM", `must be 1 to 64 letters, digits, _ or -, got ${JSON.stringify(stream)}`);
  }
  const subjectPrefix = optional(env, "EVENTS_NATS_SUBJECT_PREFIX") ?? "payments";
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(subjectPrefix) || subjectPrefix.length > 64) {
    throw new ConfigError("EVENTS_NATS_SUBJECT_PREFIX", `must be dot-separated tokens of letters, digits, _ or - (no wildcards), got ${JSON.stringify(subjectPrefix)}`);
  }
  return Object.freeze({ url: natsUrl, stream, subjectPrefix });
}

function observabilityConfig(env: Env): ObservabilityConfig {
  const logLevel = (optional(env, "LOG_LEVEL") ?? "info").toLowerCase();
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new ConfigError("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(logLevel)}`);
  }
  const logFormat = (optional(env, "LOG_FORMAT") ?? "auto").toLowerCase();
  if (logFormat !== "json" && logFormat !== "pretty" && logFormat !== "auto") {
    throw new ConfigError("LOG_FORMAT", `must be json, pretty or auto, got ${JSON.stringify(logFormat)}`);
  }
  const logRedact = (optional(env, "LOG_REDACT") ?? "")
    .split(",")
    .map((path) => path.trim())
    .filter((path) => path !== "");
  for (const field of logRedact) {
    if (!/^[A-Za-z_$][\w$-]{0,63}$/.test(field)) {
      throw new ConfigError("LOG_REDACT", `${JSON.stringify(field)} is not a field name (letters, digits, _, $ or -; e.g. shopper_phone)`);
    }
  }
  const metricsToken = optional(env, "METRICS_TOKEN");
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new ConfigError("METRICS_TOKEN", "must be at least 16 characters");
  }
  const metricsPortText = optional(env, "METRICS_PORT");
  const serviceName = optional(env, "OTEL_SERVICE_NAME") ?? "payments-service";
  if (serviceName.length > 100) throw new ConfigError("OTEL_SERVICE_NAME", "must be at most 100 characters");
  return Object.freeze({
    logLevel: logLevel as LogLevel,
    logFormat,
    logRedact: Object.freeze(logRedact),
    metricsPort: metricsPortText === undefined ? undefined : port(env, "METRICS_PORT", 0),
    metricsToken,
    otlpEndpoint: url(env, "OTEL_EXPORTER_OTLP_ENDPOINT", ["http:", "https:"]),
    serviceName,
    channelCallRetentionDays: positiveInt(env, "CHANNEL_CALL_RETENTION_DAYS", 30),
  });
}

function simulatedChannels(env: Env, configured: Record<ChannelName, unknown>, embedded: boolean): ChannelName[] {
  const text = optional(env, "SIMULATED_CHANNELS")?.toLowerCase();
  if (text === undefined) return embedded ? CHANNEL_NAMES.filter((name) => configured[name] === undefined) : [];
  if (text === "none") return [];
  const names = text === "all" ? [...CHANNEL_NAMES] : text.split(",").map((name) => name.trim());
  for (const name of names) {
    if (!CHANNEL_NAMES.includes(name as ChannelName)) {
      throw new ConfigError("SIMULATED_CHANNELS", `unknown channel ${JSON.stringify(name)}; use a comma list of ${CHANNEL_NAMES.join(", ")}, or all, or none`);
    }
    if (configured[name as ChannelName] !== undefined) {
      throw new ConfigError("SIMULATED_CHANNELS", `${name} is configured by its variables and cannot also be simulated`);
    }
  }
  return [...new Set(names as ChannelName[])];
}

function nonNegativeInt(env: Env, name: string, fallback: number): number {
  const text = optional(env, name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(text)}`);
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

/** What a read-only script needs (`npm run check-ledger`): where the database is, nothing more. */
export type DatabaseConfig = Pick<Config, "databaseUrl" | "dataDir">;

/**
 * Reads only `DATABASE_URL` and `DATA_DIR`, by the same rules as {@link loadConfig}, for scripts
 * that read the database and serve nothing: they need no `ADMIN_TOKEN`, `DATA_ENCRYPTION_KEY`,
 * channel or listener settings, which {@link loadConfig} still requires of the service.
 */
export function loadDatabaseConfig(env: Env = process.env): Readonly<DatabaseConfig> {
  return Object.freeze({
    databaseUrl: url(env, "DATABASE_URL", ["mysql:", "mariadb:"]),
    dataDir: optional(env, "DATA_DIR") ?? "./data",
  });
}

/** The settlement settings alone (`npm run settle` needs neither channels nor secrets). */
export function loadSettlementSchedule(env: Env = process.env): Readonly<SettlementSchedule> {
  return settlementSchedule(env);
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

  const embedded = databaseUrl === undefined;
  const simulated = simulatedChannels(env, { alipay, wechatpay, card }, embedded);
  if (!embedded && !alipay && !wechatpay && !card && simulated.length === 0) {
    throw new ConfigError(
      "SIMULATED_CHANNELS",
      "no channel is configured: set the ALIPAY_*, WECHATPAY_* or CARD_* variables (or SIMULATED_CHANNELS for a test deployment)",
    );
  }
  const simulatorControlToken = optional(env, "SIMULATOR_CONTROL_TOKEN");
  if (simulatorControlToken !== undefined && simulatorControlToken.length < 16) {
    throw new ConfigError("SIMULATOR_CONTROL_TOKEN", "must be at least 16 characters");
  }

  const certFile = filePath(env, "TLS_CERT_FILE");
  const keyFile = filePath(env, "TLS_KEY_FILE");
  const clientCaFile = filePath(env, "TLS_CLIENT_CA_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE", "must be set together with TLS_CERT_FILE and TLS_KEY_FILE");
  }
  if (clientCaFile !== undefined && certFile === undefined) {
    throw new ConfigError("TLS_CLIENT_CA_FILE", "needs TLS_CERT_FILE and TLS_KEY_FILE");
  }
  const tls = certFile !== undefined && keyFile !== undefined ? { certFile, keyFile, clientCaFile } : undefined;
  const allowPlaintext = flag(env, "ALLOW_PLAINTEXT", false);
  if (!isLoopbackHost(host) && tls === undefined && !allowPlaintext) {
    throw new ConfigError(
      "HOST",
      `${host} is not a loopback address: set TLS_CERT_FILE and TLS_KEY_FILE, or ALLOW_PLAINTEXT=true when a TLS proxy sits in front`,
    );
  }

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
    simulatedChannels: Object.freeze(simulated),
    simulatorPort: port(env, "SIMULATOR_PORT", 8090),
    simulatorControlToken,
    tls,
    allowPlaintext,
    grpcLimits: Object.freeze({
      maxConnections: positiveInt(env, "GRPC_MAX_CONNECTIONS", DEFAULT_GRPC_LIMITS.maxConnections),
      maxConcurrentStreams: positiveInt(env, "GRPC_MAX_CONCURRENT_STREAMS", DEFAULT_GRPC_LIMITS.maxConcurrentStreams),
      idleTimeoutMs: positiveInt(env, "GRPC_IDLE_TIMEOUT_MS", DEFAULT_GRPC_LIMITS.idleTimeoutMs),
      maxConnectionAgeMs: positiveInt(env, "GRPC_MAX_CONNECTION_AGE_MS", DEFAULT_GRPC_LIMITS.maxConnectionAgeMs),
      maxConnectionAgeGraceMs: positiveInt(env, "GRPC_MAX_CONNECTION_AGE_GRACE_MS", DEFAULT_GRPC_LIMITS.maxConnectionAgeGraceMs),
      keepaliveMinIntervalMs: positiveInt(env, "GRPC_KEEPALIVE_MIN_INTERVAL_MS", DEFAULT_GRPC_LIMITS.keepaliveMinIntervalMs),
      maxSessionMemoryMb: positiveInt(env, "GRPC_MAX_SESSION_MEMORY_MB", DEFAULT_GRPC_LIMITS.maxSessionMemoryMb),
      requestTimeoutMs: positiveInt(env, "GRPC_REQUEST_TIMEOUT_MS", DEFAULT_GRPC_LIMITS.requestTimeoutMs),
    }),
    httpLimits: Object.freeze({
      maxConnections: positiveInt(env, "HTTP_MAX_CONNECTIONS", DEFAULT_HTTP_LIMITS.maxConnections),
      requestTimeoutMs: positiveInt(env, "HTTP_REQUEST_TIMEOUT_MS", DEFAULT_HTTP_LIMITS.requestTimeoutMs),
      headersTimeoutMs: positiveInt(env, "HTTP_HEADERS_TIMEOUT_MS", DEFAULT_HTTP_LIMITS.headersTimeoutMs),
      keepAliveTimeoutMs: positiveInt(env, "HTTP_KEEPALIVE_TIMEOUT_MS", DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs),
    }),
    callbackLogRetentionDays: positiveInt(env, "CALLBACK_LOG_RETENTION_DAYS", 90),
    rateLimit: Object.freeze({
      perSecond: positiveInt(env, "RATE_LIMIT_PER_SECOND", 200),
      burst: positiveInt(env, "RATE_LIMIT_BURST", 400),
    }),
    apiKeyCacheTtlMs: nonNegativeInt(env, "API_KEY_CACHE_TTL_MS", 5000),
    finalPaymentChannelQueries: nonNegativeInt(env, "FINAL_PAYMENT_CHANNEL_QUERIES", 3),
    notifyUrls: Object.freeze({
      allowHttp: flag(env, "NOTIFY_URL_ALLOW_HTTP", embedded),
      allowPrivateNetworks: flag(env, "NOTIFY_URL_ALLOW_PRIVATE", false),
    }),
    settlement: settlementSchedule(env),
    observability: observabilityConfig(env),
    events: Object.freeze({
      pollIntervalMs: positiveInt(env, "EVENT_POLL_INTERVAL_MS", 200),
      retentionDays: positiveInt(env, "EVENT_RETENTION_DAYS", 30),
      streamMaxSeconds: positiveInt(env, "STREAM_MAX_SECONDS", 3600),
      maxOpenStreams: positiveInt(env, "STREAM_MAX_OPEN", 1000),
    }),
    webhooks: Object.freeze({
      timeoutMs: positiveIntAtMost(env, "WEBHOOK_TIMEOUT_MS", 10_000, 300_000),
      maxInFlight: positiveIntAtMost(env, "WEBHOOK_MAX_IN_FLIGHT", 64, 4096),
      maxPerEndpoint: positiveIntAtMost(env, "WEBHOOK_MAX_PER_ENDPOINT", 4, 1024),
      retryScheduleMs: durationList(env, "WEBHOOK_RETRY_SCHEDULE", DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS),
      secretOverlapSeconds: positiveIntAtMost(env, "WEBHOOK_SECRET_OVERLAP_SECONDS", 86_400, 604_800),
    }),
    nats: natsConfig(env),
    channelFeeRates: Object.freeze(channelFeeRates(env, simulated)),
    sweepIntervalMs: positiveInt(env, "SWEEP_INTERVAL_MS", 5000),
    maxRequestBytes: positiveInt(env, "MAX_REQUEST_BYTES", 1024 * 1024),
    channelTimeoutMs: positiveInt(env, "CHANNEL_TIMEOUT_MS", 10_000),
    shutdownGraceMs: positiveInt(env, "SHUTDOWN_GRACE_MS", 10_000),
  });
}
