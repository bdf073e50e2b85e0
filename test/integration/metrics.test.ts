/**
 * Prometheus metrics through the whole service: who may read `/metrics` (METRICS_TOKEN on the HTTP
 * listener, METRICS_PORT on a listener of its own, neither: 404 naming both), and what a real flow
 * leaves in the exposition (RPC counts and latency, channel calls by outcome, callbacks by verdict,
 * backlogs read from the database, the pool, reconciliation runs), on MySQL and on the embedded
 * database. The exposition is parsed as Prometheus text, not matched as strings.
 */
import { readFileSync } from "node:fs";
import { type AddressInfo, connect, type Socket } from "node:net";
import { status as grpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createMetricsListener, METRICS_MAX_CONNECTIONS } from "../../src/observability/metrics-listener.js";
import { billDateOf } from "../../src/reconciliation/bill-days.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { CHANNEL_PROFILES } from "../support/channel-profiles.js";
import { connectError, eventually, grpcError } from "../support/waiting.js";
import { SIMULATOR_CONTROL_TOKEN, startTestApp, type TestApp } from "../support/test-app.js";

const METRICS_TOKEN = "metrics-test-token-0123456789";

/** One sample line of the exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses Prometheus text exposition (format 0.0.4): `# HELP`/`# TYPE` lines, then
 * `name{label="value",...} number`. Throws on a line that is neither, so a malformed exposition fails
 * the test instead of being half read.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      else if (!/^# HELP \S+ /.test(line)) throw new Error(`not an exposition comment: ${line}`);
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? "";
    let rest = body;
    for (const label of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      rest = rest.replace(label[0], "");
    }
    if (rest !== "") throw new Error(`unreadable labels in: ${line}`);
    const raw = match[3]!;
    // Go's ParseFloat, which Prometheus uses, takes NaN and Inf in any case (prom-client writes "Nan").
    const value = /^[+-]?inf$/i.test(raw) ? (raw.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY) : Number(raw);
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`not a number in: ${line}`);
    samples.push({ name: match[1]!, labels, value });
  }
  return { samples, types };
}

/** The samples of `name` whose labels include every one of `labels`. */
function samplesOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
}

/** The sum over the samples of `name` with `labels` (0 when there are none). */
function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samplesOf(samples, name, labels).reduce((sum, s) => sum + s.value, 0);
}

/** The value of the one sample of `name` with these labels; fails unless exactly one matches. */
function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samplesOf(samples, name, labels);
  expect(found.map((s) => s.labels), `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0]!.value;
}

/** GET /metrics on the HTTP listener with the token, parsed; a fresh backlog read unless told otherwise. */
async function scrape(t: TestApp, options: { freshBacklogs?: boolean } = {}) {
  if (options.freshBacklogs ?? true) t.app.telemetry.metrics.clearBacklogCache();
  const res = await fetch(`${t.app.httpUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

function observability(settings: { metricsToken?: string; metricsPort?: number }) {
  // loadConfig's observability object is frozen: a copy with the settings.
  return { observability: { ...loadConfig({}).observability, ...settings } };
}

describe("/metrics protection", () => {
  let plain: TestApp;
  let tokened: TestApp;
  let ported: TestApp;

  beforeAll(async () => {
    [plain, tokened, ported] = await Promise.all([
      startTestApp(),
      startTestApp({ config: observability({ metricsToken: METRICS_TOKEN }) }),
      startTestApp({ config: observability({ metricsPort: 0 }) }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([plain?.stop(), tokened?.stop(), ported?.stop()]);
  });

  it("answers 404 naming METRICS_TOKEN and METRICS_PORT when neither is set", async () => {
    const res = await fetch(`${plain.app.httpUrl}/metrics`);
    expect(res.status).toBe(404);
    const body = await res.text();
    expect(body).toContain("METRICS_TOKEN");
    expect(body).toContain("METRICS_PORT");
    expect(plain.app.metricsPort).toBeUndefined();
    // A token does not open what is not served.
    expect((await fetch(`${plain.app.httpUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(404);
  });

  it("with METRICS_TOKEN: 401 without the token or with a wrong one, 200 Prometheus text with it", async () => {
    const url = `${tokened.app.httpUrl}/metrics`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await none.text()).not.toContain(METRICS_TOKEN);
    expect((await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN.slice(0, -1)}` } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString("base64")}` } })).status).toBe(401);

    const ok = await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseExposition(await ok.text());
    expect(types.get("payments_rpc_requests_total")).toBe("counter");
    expect(types.get("payments_rpc_duration_seconds")).toBe("histogram");
    expect(sampleValue(samples, "payments_sweep_backlog", { kind: "payment" })).toBe(0);
    expect(sampleValue(samples, "payments_discrepancies_open")).toBe(0);
    expect(sampleValue(samples, "payments_db_pool_connections", { state: "max" })).toBeGreaterThan(0);

    // Only GET and HEAD.
    const post = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(post.status).toBe(405);
    const head = await fetch(url, { method: "HEAD", headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    // No separate listener with a token only.
    expect(tokened.app.metricsPort).toBeUndefined();
  });

  it("with METRICS_PORT: its own listener serves /metrics without a token, 404 elsewhere; the HTTP listener still 404s /metrics", async () => {
    const port = ported.app.metricsPort;
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(ported.app.httpPort);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples } = parseExposition(await res.text());
    expect(samplesOf(samples, "payments_db_pool_connections")).toHaveLength(4);
    expect((await fetch(`http://127.0.0.1:${port}/metrics?x=1`)).status).toBe(200);

    for (const path of ["/", "/healthz", "/metrics/", "/metricsx", "/payments.v1.PaymentService/CreatePayment"]) {
      const other = await fetch(`http://127.0.0.1:${port}${path}`);
      expect(other.status, path).toBe(404);
      await other.text();
    }
    const onHttp = await fetch(`${ported.app.httpUrl}/metrics`);
    expect(onHttp.status).toBe(404);
    expect(await onHttp.text()).toContain("METRICS_TOKEN");
  });

  it(`the METRICS_PORT listener holds at most ${METRICS_MAX_CONNECTIONS} connections: one more is closed unanswered, and taken once one closes`, async () => {
    // The app's listener, made by the same function, on its own: no other client's keep-alive connections count here.
    const listener = createMetricsListener(() => ported.app.telemetry.metrics.render());
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const port = (listener.address() as AddressInfo).port;
    /** A connection that asked for /metrics and got its first bytes: accepted and counted by the listener. */
    const answered = () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1");
        socket.once("error", reject);
        socket.once("close", () => reject(new Error("closed without an answer")));
        socket.once("data", (chunk: Buffer) => {
          expect(chunk.toString("latin1")).toMatch(/^HTTP\/1\.1 200 /);
          // The rest of the answer is not needed; the connection stays open (keep-alive).
          socket.on("data", () => {});
          resolve(socket);
        });
        socket.write(`GET /metrics HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`);
      });
    /** What one more connection gets: the answer's first bytes, or "" when it is closed without one. */
    const oneMore = () =>
      new Promise<string>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        let got = "";
        socket.on("data", (chunk: Buffer) => {
          got += chunk.toString("latin1");
          if (got.includes("\r\n")) socket.destroy();
        });
        socket.on("error", () => {});
        socket.on("close", () => resolve(got));
        socket.write(`GET /metrics HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`);
      });

    const held: Socket[] = [];
    try {
      for (let i = 0; i < METRICS_MAX_CONNECTIONS; i++) held.push(await answered());
      expect(await oneMore()).toBe("");
      // One scraper leaves: the listener counts it gone when the close reaches it, then takes a new one.
      held.pop()!.destroy();
      const next = await eventually(oneMore, (got) => got !== "");
      expect(next).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      for (const socket of held) socket.destroy();
      listener.closeAllConnections();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});

describe("metrics after a real flow (MySQL)", () => {
  let t: TestApp;
  let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
  let orderSeq = 0;

  beforeAll(async () => {
    t = await startTestApp({ config: observability({ metricsToken: METRICS_TOKEN }) });
    merchant = await t.createMerchant("Metered Teas");
    for (const profile of CHANNEL_PROFILES) await profile.setUp(t);
  });
  afterAll(() => t?.stop());

  function request(profile: (typeof CHANNEL_PROFILES)[number], overrides: Record<string, unknown> = {}) {
    return {
      merchantOrderNo: `metrics-${profile.name}-${Date.now()}-${++orderSeq}`,
      currency: profile.currency,
      amount: 1_000n,
      channel: profile.protoChannel,
      subject: "Jasmine tea 100g",
      ...profile.requestFields,
      ...overrides,
    };
  }

  async function create(profile: (typeof CHANNEL_PROFILES)[number]) {
    return (await t.grpc.payments.createPayment(request(profile), merchant.headers)).payment!;
  }

  async function metric(name: string): Promise<Sample[]> {
    return parseExposition(await t.app.telemetry.metrics.registry.getSingleMetricAsString(name)).samples;
  }

  it("counts RPCs, channel calls, callbacks and a reconciliation run, and reads the backlogs and the pool", async () => {
    const wechat = CHANNEL_PROFILES.find((p) => p.name === "wechatpay")!;
    const alipay = CHANNEL_PROFILES.find((p) => p.name === "alipay")!;

    // One payment on every simulated channel: RPC OK, channel calls answered.
    const created = [];
    for (const profile of CHANNEL_PROFILES) created.push(await create(profile));
    // And one over Connect on the HTTP listener: the same method label.
    await t.connect.payments.createPayment(request(alipay), { headers: merchant.headers });
    const createCalls = CHANNEL_PROFILES.length + 1;

    // Refused at the edge: INVALID_ARGUMENT over both stacks.
    await grpcError(t.grpc.payments.createPayment(request(wechat, { amount: 0n }), merchant.headers));
    await connectError(t.connect.payments.createPayment(request(wechat, { currency: "XYZ" }), { headers: merchant.headers }));

    // Paid through the simulator's control API; its callback applies the success.
    const paid = created.find((p) => p.channel === Channel.WECHAT_PAY)!;
    const pay = await fetch(`${t.simulator.url}/simulator/wechatpay/trades/${encodeURIComponent(paid.paymentNo)}/pay`, {
      method: "POST",
      headers: { authorization: `Bearer ${SIMULATOR_CONTROL_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ outcome: "success" }),
    });
    expect(pay.status).toBe(200);
    await eventually(
      async () => (await metric("payments_callbacks_total")).some((s) => s.labels.verdict === "applied" && s.labels.channel === "wechatpay"),
      (found) => found,
    );

    // A callback with a bad signature: refused, counted as rejected.
    const forged = created.find((p) => p.channel === Channel.ALIPAY)!;
    t.simulator.setFaults({ channel: "alipay", outTradeNo: forged.paymentNo, faults: { badSignature: true } });
    t.simulator.pay("alipay", forged.paymentNo);
    const rejected = await eventually(
      async () => sumOf(await metric("payments_callbacks_total"), "payments_callbacks_total", { channel: "alipay", verdict: "rejected" }),
      (n) => n >= 1,
    );
    expect(rejected).toBeGreaterThanOrEqual(1);
    t.simulator.clearFaults({ channel: "alipay", outTradeNo: forged.paymentNo });

    // A channel call failing: WeChat answers 500 to the create, so its outcome is unknown and the RPC UNAVAILABLE.
    t.simulator.setFaults({ channel: "wechatpay", faults: { apiError: { method: wechat.operations.create, status: 500, times: 1 } } });
    const unavailable = await grpcError(t.grpc.payments.createPayment(request(wechat), merchant.headers));
    expect(unavailable.code).toBe(grpcStatus.UNAVAILABLE);
    t.simulator.clearFaults({ channel: "wechatpay" });

    // A channel saying no: a refund WeChat refuses.
    const paidStatus = await eventually(
      async () => (await t.grpc.payments.getPayment(lookup(paid.id), merchant.headers)).payment!.status,
      (status) => status === PaymentStatus.SUCCEEDED,
    );
    expect(paidStatus).toBe(PaymentStatus.SUCCEEDED);
    t.simulator.setFaults({ channel: "wechatpay", outTradeNo: paid.paymentNo, faults: { refundFails: true } });
    await t.grpc.payments
      .refundPayment({ paymentId: paid.id, merchantRefundNo: "metrics-r1", amount: 100n, reason: "dented tin" }, merchant.headers)
      .catch(() => undefined);
    t.simulator.clearFaults({ channel: "wechatpay", outTradeNo: paid.paymentNo });

    // A payment overdue for its active query by two minutes (the sweeper does not run here).
    const overdue = created.find((p) => p.channel === Channel.CARD)!;
    await t.app.db
      .em()
      .getConnection()
      .execute("update payment set next_query_at = ? where id = ?", [new Date(Date.now() - 120_000), overdue.id]);

    // A reconciliation run of yesterday's card bill.
    const billDate = billDateOf("card", new Date(Date.now() - 24 * 3600_000));
    await t.grpc.settlement.reconcileChannel({ channel: Channel.CARD, billDate }, t.adminHeaders).catch(() => undefined);

    // Through HTTP, parsed.
    const { samples, types } = await scrape(t);
    const createMethod = "payments.v1.PaymentService/CreatePayment";
    expect(sampleValue(samples, "payments_rpc_requests_total", { method: createMethod, code: "OK" })).toBeGreaterThanOrEqual(createCalls);
    expect(sampleValue(samples, "payments_rpc_requests_total", { method: createMethod, code: "INVALID_ARGUMENT" })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(samples, "payments_rpc_requests_total", { method: createMethod, code: "UNAVAILABLE" })).toBeGreaterThanOrEqual(1);

    // The latency histogram: buckets cumulative up to +Inf = count, and the count matches the requests.
    expect(types.get("payments_rpc_duration_seconds")).toBe("histogram");
    const buckets = samplesOf(samples, "payments_rpc_duration_seconds_bucket", { method: createMethod });
    expect(buckets.length).toBeGreaterThan(5);
    const values = buckets.map((b) => b.value);
    expect([...values].sort((a, b) => a - b)).toEqual(values);
    const count = sampleValue(samples, "payments_rpc_duration_seconds_count", { method: createMethod });
    expect(buckets.find((b) => b.labels.le === "+Inf")!.value).toBe(count);
    expect(count).toBe(sumOf(samples, "payments_rpc_requests_total", { method: createMethod }));
    expect(sampleValue(samples, "payments_rpc_duration_seconds_sum", { method: createMethod })).toBeGreaterThan(0);

    // Channel calls by outcome.
    for (const profile of CHANNEL_PROFILES) {
      expect(sumOf(samples, "payments_channel_calls_total", { channel: profile.name, operation: "createPayment", outcome: "answer" }), profile.name).toBeGreaterThanOrEqual(1);
    }
    expect(sampleValue(samples, "payments_channel_calls_total", { channel: "wechatpay", operation: "createPayment", outcome: "unknown" })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, "payments_channel_calls_total", { channel: "wechatpay", operation: "refund", outcome: "rejection" })).toBeGreaterThanOrEqual(1);
    expect(sumOf(samples, "payments_channel_call_duration_seconds_count", { channel: "wechatpay" })).toBeGreaterThanOrEqual(3);

    // Callbacks by verdict.
    expect(sampleValue(samples, "payments_callbacks_total", { channel: "wechatpay", verdict: "applied" })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, "payments_callbacks_total", { channel: "alipay", verdict: "rejected" })).toBeGreaterThanOrEqual(1);

    // Backlogs read from the database.
    expect(sampleValue(samples, "payments_sweep_backlog", { kind: "payment" })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, "payments_sweep_backlog_oldest_age_seconds", { kind: "payment" })).toBeGreaterThanOrEqual(119);
    expect(sampleValue(samples, "payments_sweep_backlog", { kind: "payout" })).toBe(0);
    expect(sampleValue(samples, "payments_sweep_backlog_oldest_age_seconds", { kind: "payout" })).toBe(0);
    // The event workers do not run here: every event written so far waits for its number.
    expect(sampleValue(samples, "payments_outbox_backlog")).toBeGreaterThanOrEqual(createCalls);
    expect(sampleValue(samples, "payments_outbox_oldest_age_seconds")).toBeGreaterThan(0);
    expect(sampleValue(samples, "payments_webhook_backlog")).toBe(0);
    expect(sampleValue(samples, "payments_discrepancies_open")).toBe(0);

    // The pool: MySQL's knex pool, its size as configured.
    // openDatabase's default pool size (no setting changes it).
    expect(sampleValue(samples, "payments_db_pool_connections", { state: "max" })).toBe(20);
    const used = sampleValue(samples, "payments_db_pool_connections", { state: "used" });
    const free = sampleValue(samples, "payments_db_pool_connections", { state: "free" });
    expect(used + free).toBeGreaterThanOrEqual(1);
    expect(used + free).toBeLessThanOrEqual(sampleValue(samples, "payments_db_pool_connections", { state: "max" }));
    expect(sampleValue(samples, "payments_db_pool_connections", { state: "pending" })).toBe(0);

    // The reconciliation run.
    expect(sumOf(samples, "payments_reconciliation_runs_total", { channel: "card" })).toBe(1);

    // Numbering the events and fanning them out: the outbox empties, the deliveries wait (or retry).
    // A pass numbers every event committed before it. The simulator may still re-send the forged
    // Alipay notify (now validly signed, so applied: one more event) at any moment, so a pass that
    // ran just before that event committed is followed by another.
    const sequenced = await eventually(
      async () => {
        await t.app.events.runOnce();
        return scrape(t);
      },
      (scraped) => sampleValue(scraped.samples, "payments_outbox_backlog") === 0,
    );
    expect(sampleValue(sequenced.samples, "payments_outbox_backlog")).toBe(0);
    expect(sampleValue(sequenced.samples, "payments_outbox_oldest_age_seconds")).toBe(0);
    await t.app.webhooks.runOnce();
    const fanned = await scrape(t);
    expect(sampleValue(fanned.samples, "payments_webhook_backlog")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(fanned.samples, "payments_webhook_backlog_oldest_age_seconds")).toBeGreaterThan(0);
    expect(sampleValue(fanned.samples, "payments_webhook_deliveries_failed")).toBe(0);
    // The merchant's notify URL (shop.example) cannot be reached: each attempt counted as a retry.
    expect(sampleValue(fanned.samples, "payments_webhook_attempts_total", { outcome: "retry" })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(fanned.samples, "payments_webhook_attempt_duration_seconds_count")).toBe(sumOf(fanned.samples, "payments_webhook_attempts_total"));
  });

  it("serves the backlogs from the cache between reads, and reads again once cleared", async () => {
    const first = await scrape(t);
    const before = sampleValue(first.samples, "payments_sweep_backlog", { kind: "payment" });
    const overdue = await create(CHANNEL_PROFILES[0]!);
    await t.app.db
      .em()
      .getConnection()
      .execute("update payment set next_query_at = ? where id = ?", [new Date(Date.now() - 60_000), overdue.id]);
    // Within BACKLOG_CACHE_MS of the first read: the same figures (the read is what is cached, not the time).
    const cached = await scrape(t, { freshBacklogs: false });
    expect(sampleValue(cached.samples, "payments_sweep_backlog", { kind: "payment" })).toBe(before);
    const fresh = await scrape(t);
    expect(sampleValue(fresh.samples, "payments_sweep_backlog", { kind: "payment" })).toBe(before + 1);
  });

  it("keeps the scrape going when the backlog read fails, counting the failure", async () => {
    const metrics = t.app.telemetry.metrics;
    metrics.setBacklogSource(() => Promise.reject(new Error("database gone")));
    try {
      const res = await fetch(`${t.app.httpUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(res.status).toBe(200);
      const { samples } = parseExposition(await res.text());
      expect(sampleValue(samples, "payments_backlog_read_failures_total")).toBe(1);
      expect(samplesOf(samples, "payments_rpc_requests_total").length).toBeGreaterThan(0);
    } finally {
      const { readBacklogs } = await import("../../src/observability/backlogs.js");
      metrics.setBacklogSource(() => readBacklogs(t.app.uow));
    }
  });

  it("never makes a label value from input: unknown methods and channels add no series", async () => {
    const labelValues = async () => {
      const { samples } = await scrape(t);
      return {
        methods: new Set(samplesOf(samples, "payments_rpc_requests_total").map((s) => s.labels.method)),
        callbackChannels: new Set(samplesOf(samples, "payments_callbacks_total").map((s) => s.labels.channel)),
      };
    };
    const before = await labelValues();
    // Connect: an unknown method or service is answered by the router's fallback (404), before any interceptor.
    for (const path of ["/payments.v1.PaymentService/NoSuchMethod", "/no.such.Service/CreatePayment", "/payments.v1.PaymentService/CreatePayment/x"]) {
      const res = await fetch(`${t.app.httpUrl}${path}`, { method: "POST", headers: { "content-type": "application/json", ...merchant.headers }, body: "{}" });
      expect(res.status, path).toBe(404);
      await res.text();
    }
    // gRPC: grpc-js answers UNIMPLEMENTED for a method it has no handler for, before any interceptor.
    const { credentials, makeGenericClientConstructor } = await import("@grpc/grpc-js");
    const Generic = makeGenericClientConstructor({}, "Nothing");
    const client = new Generic(`127.0.0.1:${t.app.grpcPort}`, credentials.createInsecure());
    const code = await new Promise<number>((resolve) => {
      client.makeUnaryRequest(
        "/payments.v1.PaymentService/NoSuchMethod",
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.alloc(0),
        (error) => resolve(error?.code ?? 0),
      );
    });
    client.close();
    expect(code).toBe(12 /* UNIMPLEMENTED */);
    // Callbacks for a channel that does not exist never reach the callback counter.
    const callback = await fetch(`${t.app.httpUrl}/callbacks/nosuchchannel`, { method: "POST", body: "{}" });
    expect(callback.status).toBe(404);
    await callback.text();

    const after = await labelValues();
    expect([...after.methods].sort()).toEqual([...before.methods].sort());
    expect([...after.callbackChannels].sort()).toEqual([...before.callbackChannels].sort());
    for (const method of after.methods) expect(method).toMatch(/^payments\.v1\.[A-Za-z]+Service\/[A-Za-z]+$/);
  });

  it("docs/alerts.yml uses only metrics the service exports, and takes the max of backlog gauges across replicas", async () => {
    const rules = readFileSync(new URL("../../docs/alerts.yml", import.meta.url), "utf8");
    const used = new Set(rules.match(/\bpayments_[a-z_]+\b/g) ?? []);
    expect(used.size).toBeGreaterThanOrEqual(3);
    const { samples, types } = await scrape(t);
    const exported = new Set([...types.keys(), ...samples.map((s) => s.name)]);
    for (const name of used) expect(exported.has(name), name).toBe(true);
    // Backlog gauges are read from the shared database, the same on every replica: rules take the max across instances.
    const backlogRules = rules.split("\n").filter((line) => /expr:.*payments_\w*backlog/.test(line));
    expect(backlogRules.length).toBeGreaterThan(0);
    for (const line of backlogRules) expect(line, line).toMatch(/max without \(instance\) \(/);
  });
});

describe("metrics on the embedded database", () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ database: "sqlite", config: observability({ metricsToken: METRICS_TOKEN }) });
  });
  afterAll(() => t?.stop());

  it("renders /metrics with the backlogs read from SQLite and the one connection as the pool", async () => {
    const merchant = await t.createMerchant("Embedded Teas");
    const profile = CHANNEL_PROFILES.find((p) => p.name === "wechatpay")!;
    const payment = (
      await t.grpc.payments.createPayment(
        { merchantOrderNo: `metrics-embedded-${Date.now()}`, currency: profile.currency, amount: 500n, channel: profile.protoChannel, subject: "Tea" },
        merchant.headers,
      )
    ).payment!;
    await t.app.db
      .em()
      .getConnection()
      .execute("update payment set next_query_at = ? where id = ?", [Date.now() - 30_000, payment.id]);

    const { samples } = await scrape(t);
    expect(sampleValue(samples, "payments_sweep_backlog", { kind: "payment" })).toBe(1);
    const age = sampleValue(samples, "payments_sweep_backlog_oldest_age_seconds", { kind: "payment" });
    expect(age).toBeGreaterThanOrEqual(29);
    expect(age).toBeLessThan(3600);
    expect(sampleValue(samples, "payments_sweep_backlog", { kind: "refund" })).toBe(0);
    expect(sampleValue(samples, "payments_outbox_backlog")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, "payments_outbox_oldest_age_seconds")).toBeGreaterThan(0);
    expect(sampleValue(samples, "payments_webhook_backlog")).toBe(0);
    expect(sampleValue(samples, "payments_webhook_deliveries_failed")).toBe(0);
    expect(sampleValue(samples, "payments_discrepancies_open")).toBe(0);
    expect(sampleValue(samples, "payments_backlog_read_failures_total")).toBe(0);
    expect(sampleValue(samples, "payments_db_pool_connections", { state: "max" })).toBe(1);
    expect(sampleValue(samples, "payments_db_pool_connections", { state: "used" }) + sampleValue(samples, "payments_db_pool_connections", { state: "free" })).toBe(1);
    expect(sampleValue(samples, "payments_rpc_requests_total", { method: "payments.v1.PaymentService/CreatePayment", code: "OK" })).toBe(1);

    // A pass numbers every event committed before it. The simulator may still re-send the forged
    // Alipay notify (now validly signed, so applied: one more event) at any moment, so a pass that
    // ran just before that event committed is followed by another.
    const sequenced = await eventually(
      async () => {
        await t.app.events.runOnce();
        return scrape(t);
      },
      (scraped) => sampleValue(scraped.samples, "payments_outbox_backlog") === 0,
    );
    expect(sampleValue(sequenced.samples, "payments_outbox_backlog")).toBe(0);
  });
});
