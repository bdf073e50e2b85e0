import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger, REDACTED_FIELDS, wantsPretty } from "../../src/observability/logger.js";
import { configError } from "../support/config-errors.js";

function capture(redact: readonly string[] = []) {
  const chunks: string[] = [];
  const logger = createLogger({ level: "trace", format: "json", redact, destination: { write: (chunk: string) => void chunks.push(chunk) } });
  return { logger, lines: () => chunks.map((chunk) => JSON.parse(chunk) as Record<string, unknown>) };
}

describe("the logger", () => {
  it("redacts every configured field name at the top level and two levels down, keeping the rest", () => {
    const { logger, lines } = capture();
    for (const field of REDACTED_FIELDS) {
      logger.info({ [field]: "s3cret-top", outer: { [field]: "s3cret-one", inner: { [field]: "s3cret-two", kept: "visible" } } }, field);
    }
    const text = JSON.stringify(lines());
    expect(text).not.toContain("s3cret");
    expect(text).toContain("visible");
    expect(lines()[0]).toMatchObject({ apiKey: "[redacted]", outer: { apiKey: "[redacted]", inner: { apiKey: "[redacted]" } } });
  });

  it("redacts the field names LOG_REDACT adds, in objects and arrays, leaving the logged objects untouched", () => {
    const { logger, lines } = capture(["shopper_phone", "email"]);
    const order = { shopper_phone: "13800000000", id: "o1" };
    logger.info({ order, buyers: [{ email: "a@example.com" }], email: "b@example.com" }, "order");
    expect(lines()[0]).toMatchObject({ order: { shopper_phone: "[redacted]", id: "o1" }, buyers: [{ email: "[redacted]" }], email: "[redacted]" });
    expect(order.shopper_phone).toBe("13800000000");
  });

  it("searches three levels deep and no deeper", () => {
    const { logger, lines } = capture();
    logger.info({ a: { b: { apiKey: "k3" } }, c: { d: { e: { apiKey: "k4" } } } }, "depth");
    expect(lines()[0]).toMatchObject({ a: { b: { apiKey: "[redacted]" } }, c: { d: { e: { apiKey: "k4" } } } });
  });

  it("writes JSON lines with level, ISO time and message", () => {
    const { logger, lines } = capture();
    logger.warn({ payment_id: "p1" }, "hello");
    expect(lines()[0]).toMatchObject({ level: "warn", msg: "hello", payment_id: "p1", pid: process.pid });
    expect(new Date(lines()[0]!.time as string).toISOString()).toBe(lines()[0]!.time);
  });

  it("is pretty on a terminal with LOG_FORMAT=auto, JSON otherwise, and as told with json or pretty", () => {
    expect(wantsPretty("auto", true)).toBe(true);
    expect(wantsPretty("auto", false)).toBe(false);
    expect(wantsPretty("json", true)).toBe(false);
    expect(wantsPretty("pretty", false)).toBe(true);
  });
});

describe("observability settings", () => {
  it("default to info, auto format, no metrics listener or token, tracing off", () => {
    const { observability } = loadConfig({});
    expect(observability).toMatchObject({ logLevel: "info", logFormat: "auto", logRedact: [], serviceName: "payments-service", channelCallRetentionDays: 30 });
    expect(observability.metricsPort).toBeUndefined();
    expect(observability.metricsToken).toBeUndefined();
    expect(observability.otlpEndpoint).toBeUndefined();
  });

  it("read every variable", () => {
    const { observability } = loadConfig({
      LOG_LEVEL: "DEBUG",
      LOG_FORMAT: "json",
      LOG_REDACT: "shopper_phone, email",
      METRICS_PORT: "9464",
      METRICS_TOKEN: "metrics-token-0123456789",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_SERVICE_NAME: "payments-eu",
      CHANNEL_CALL_RETENTION_DAYS: "7",
    });
    expect(observability).toMatchObject({
      logLevel: "debug",
      logFormat: "json",
      logRedact: ["shopper_phone", "email"],
      metricsPort: 9464,
      metricsToken: "metrics-token-0123456789",
      otlpEndpoint: "http://collector:4318",
      serviceName: "payments-eu",
      channelCallRetentionDays: 7,
    });
  });

  it("refuse bad values, naming the variable", () => {
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ LOG_LEVEL: "verbose" }, "LOG_LEVEL", "fatal, error, warn, info, debug, trace, silent"],
      [{ LOG_FORMAT: "xml" }, "LOG_FORMAT", "json, pretty or auto"],
      [{ LOG_REDACT: "order.phone" }, "LOG_REDACT", "not a field name"],
      [{ METRICS_TOKEN: "short" }, "METRICS_TOKEN", "at least 16"],
      [{ METRICS_PORT: "70000" }, "METRICS_PORT", "port number"],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: "grpc://collector:4317" }, "OTEL_EXPORTER_OTLP_ENDPOINT", "http:"],
      [{ CHANNEL_CALL_RETENTION_DAYS: "0" }, "CHANNEL_CALL_RETENTION_DAYS", ""],
    ];
    for (const [env, variable, text] of cases) {
      const error = configError(env);
      expect(error.variable, JSON.stringify(env)).toBe(variable);
      expect(error.message).toContain(text);
    }
  });
});
