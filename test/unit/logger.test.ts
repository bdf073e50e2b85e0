import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { constants, createReadStream, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger, droppedLogLines, LOG_BATCH_BYTES, REDACTED_FIELDS, stdoutDestination, wantsPretty } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
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

describe("the service's log output", () => {
  /** The batching destination on a file instead of stdout, with the file's text. */
  function fileDestination() {
    const dir = mkdtempSync(join(tmpdir(), "log-batch-"));
    const path = join(dir, "out.log");
    const fd = openSync(path, "w");
    const stdout = stdoutDestination(fd);
    const logger = createLogger({ level: "info", format: "json", destination: stdout });
    const destination = stdout.output;
    const text = () => readFileSync(path, "utf8");
    // Ending the destination writes what is left and closes the file.
    const close = async () => {
      const closed = once(destination, "close");
      destination.end();
      await closed;
      rmSync(dir, { recursive: true, force: true });
    };
    return { logger, destination, text, close };
  }

  it("holds lines back for the batch, and writes them together by the periodic flush", async () => {
    const { logger, destination, text, close } = fileDestination();
    try {
      const written = once(destination, "write") as Promise<[number]>;
      logger.info({ payment_id: "p1" }, "first line");
      logger.info({ payment_id: "p2" }, "second line");
      // Unbatched, the first line would go out alone and the second in a write of its own.
      const [bytes] = await written;
      expect(bytes).toBe(Buffer.byteLength(text()));
      expect(text()).toContain('"msg":"first line"');
      expect(text()).toContain('"msg":"second line"');
    } finally {
      await close();
    }
  });

  it("drops lines past the bound while stdout takes nothing, instead of keeping them all", async () => {
    // A pipe nobody reads, opened without blocking: once its buffer is full every write is EAGAIN,
    // which sonic-boom retries, keeping the lines, as it would for a stuck log shipper.
    const dir = mkdtempSync(join(tmpdir(), "log-stuck-"));
    const fifo = join(dir, "stdout");
    execFileSync("mkfifo", [fifo]);
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const bound = 1024 * 1024;
    const stdout = stdoutDestination(fd, bound);
    const droppedBefore = droppedLogLines();
    const logger = createLogger({ level: "info", format: "json", destination: stdout });
    try {
      const filler = "x".repeat(1000);
      // 4 MiB of lines: the pipe takes at most its buffer (64 KiB on Linux), the bound 1 MiB.
      for (let line = 0; line < 4 * 1024; line++) {
        logger.info({ filler }, `line ${line}`);
        if (line % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const dropped = droppedLogLines() - droppedBefore;
      expect(dropped).toBeGreaterThan(2 * 1024);
      expect(dropped).toBeLessThan(4 * 1024);
      // Operators see it: the metric counts every line dropped in the process.
      const { body } = await createMetrics().render();
      expect(body).toContain(`payments_log_lines_dropped_total ${droppedLogLines()}`);
    } finally {
      // Someone reads the pipe at last, so the destination can write what waits and close. Destroying
      // it instead would leave sonic-boom's pending EAGAIN retry to write on a closed descriptor.
      const reader = createReadStream(fifo);
      reader.resume();
      const closed = once(stdout.output, "close");
      stdout.output.end();
      await closed;
      await once(reader, "close");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts writing as soon as a batch is full, without waiting for the flush", async () => {
    const { logger, destination, close } = fileDestination();
    try {
      const written = once(destination, "write") as Promise<[number]>;
      const filler = "x".repeat(200);
      let lines = 0;
      for (; lines * 250 < LOG_BATCH_BYTES + 500; lines++) logger.info({ filler }, `line ${lines}`);
      // The first write is the full batch, begun inside the loop above: the periodic flush could not run in between.
      const [bytes] = await written;
      expect(bytes).toBeGreaterThanOrEqual(LOG_BATCH_BYTES);
    } finally {
      await close();
    }
  });
});
