/**
 * OpenTelemetry traces end to end (issue 12): a real app on MySQL exporting by OTLP/HTTP to a
 * local collector stub (test/support/otlp-collector.ts), real grpc-js and Connect clients sending
 * a W3C `traceparent`, the channel simulator posting callbacks to the shim. Checked: the span tree
 * (RPC SERVER span continuing the caller's trace → database transaction and statement spans and
 * the channel CLIENT span as its children; a callback as a root SERVER span → its row
 * transaction), error status only for server faults, off without an endpoint, the service name,
 * a collector that is down, and no secret in anything exported.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { type RowExecutor, statementSummary, updateRows } from "../../src/db/rows.js";
import { createUnitOfWork, isDuplicateKey, type KnexQueryEvents, MAX_OPEN_STATEMENT_SPANS, traceKnexStatements } from "../../src/db/unit-of-work.js";
import { Discrepancy, type DiscrepancyRow } from "../../src/discrepancies/discrepancy-entity.js";
import { insertDiscrepancy } from "../../src/discrepancies/discrepancy-store.js";
import { newId } from "../../src/ids.js";
import { loadConfig } from "../../src/config.js";
import { createTelemetry } from "../../src/observability/telemetry.js";
import { createTracing, EXPORT_FAILURE_REPORT_MS, type ExportFailure, SHUTDOWN_WAIT_MS, TRACING_OFF } from "../../src/observability/tracing.js";
import { type CollectedSpan, OTLP_KIND, type OtlpCollector, startOtlpCollector } from "../support/otlp-collector.js";
import { driverDatabases } from "../support/driver-databases.js";
import { createGrpcJsClient } from "../support/grpc-client.js";
import { capturingLogger } from "../support/log-lines.js";
import { spawnServiceProcess } from "../support/service-process.js";
import { ADMIN_TOKEN, freePort, SIMULATOR_CONTROL_TOKEN, startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { createTestDatabase } from "../support/test-database.js";
import { connectError, eventually, grpcError, rejection } from "../support/waiting.js";
import { answerOk, insertEvents, startReceiver } from "../support/webhook-fixtures.js";

let collector: OtlpCollector;
let t: TestApp;
let merchant: { id: string; apiKey: string; webhookSecret: string; headers: Record<string, string> };
let orderSeq = 0;

const SERVICE_NAME = "payments-tracing-test";

beforeAll(async () => {
  collector = await startOtlpCollector();
  t = await startTestApp({ tracing: createTracing({ endpoint: collector.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 50 }) });
  const created = await t.grpc.merchants.createMerchant({ name: "Traced Shop", notifyUrl: "https://shop.example/notify" }, t.adminHeaders);
  merchant = {
    id: created.merchant!.id,
    apiKey: created.apiKey,
    webhookSecret: created.webhookSecret,
    headers: { authorization: `Bearer ${created.apiKey}` },
  };
});
afterAll(async () => {
  await t?.stop();
  await collector?.close();
});

/** A fresh caller's trace context: `traceparent` with its trace id and the caller's span id. */
function callerContext() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function alipayPayment(overrides: Record<string, unknown> = {}) {
  return {
    merchantOrderNo: `trace-${Date.now()}-${++orderSeq}`,
    currency: "CNY",
    amount: 8888n,
    channel: Channel.ALIPAY,
    subject: "Oolong tea 250g",
    items: [{ sku: "TEA-250", name: "Oolong tea 250g", quantity: 2n, unitAmount: 4444n }],
    ...overrides,
  };
}

/** A discrepancy row: a table with no foreign keys, for statements of the test's own. */
function discrepancyRow(id: string, merchantId: string): DiscrepancyRow {
  return {
    id,
    kind: "PAID_AFTER_CLOSE",
    subjectRef: id,
    channel: "card",
    merchantId,
    paymentId: id,
    channelTradeNo: null,
    amount: 100n,
    currency: "USD",
    detail: "test",
    status: "OPEN",
    resolution: null,
    createdAt: new Date(),
    resolvedAt: null,
    resolvedBy: null,
    reconciliationRunId: null,
    refundId: null,
  };
}

const inTrace = (traceId: string) => (span: CollectedSpan) => span.traceId === traceId;

/** The spans of one trace once `done` holds for them (bounded wait; the assertions after show what came). */
function traceSpans(traceId: string, done: (spans: CollectedSpan[]) => boolean) {
  return collector.waitForSpans(inTrace(traceId), done);
}

const named = (spans: CollectedSpan[], name: string) => spans.filter((span) => span.name === name);
const childrenOf = (spans: CollectedSpan[], parent: CollectedSpan) => spans.filter((span) => span.parentSpanId === parent.spanId);

/** Checks a CreatePayment trace: the SERVER span under the caller's, its transaction and channel call under it. */
function expectCreateTree(spans: CollectedSpan[], caller: { traceId: string; spanId: string }, rpcSystem: string, paymentId: string) {
  const [server] = named(spans, "payments.v1.PaymentService/CreatePayment");
  expect(server, JSON.stringify(spans.map((span) => span.name))).toBeDefined();
  expect(server!.kind).toBe(OTLP_KIND.SERVER);
  expect(server!.traceId).toBe(caller.traceId);
  expect(server!.parentSpanId).toBe(caller.spanId);
  expect(server!.attributes["rpc.system"]).toBe(rpcSystem);
  expect(server!.attributes["rpc.grpc.status_code"]).toBe(0);
  expect(server!.attributes["payments.payment_id"]).toBe(paymentId);
  expect(server!.attributes["payments.merchant_id"]).toBe(merchant.id);
  expect(server!.statusCode).not.toBe(2);
  expect(server!.resource["service.name"]).toBe(SERVICE_NAME);

  const children = childrenOf(spans, server!);
  const names = children.map((span) => span.name);
  // The create's one BEGIN ... COMMIT of row statements, and the channel call.
  const [transaction] = named(children, "db.row_transaction");
  expect(transaction, JSON.stringify(names)).toBeDefined();
  expect(transaction!.kind).toBe(OTLP_KIND.INTERNAL);
  expect(transaction!.attributes["db.system.name"]).toBe(t.app.db.system);
  const [channelCall] = named(children, "alipay createPayment");
  expect(channelCall, JSON.stringify(names)).toBeDefined();
  expect(channelCall!.kind).toBe(OTLP_KIND.CLIENT);
  expect(channelCall!.attributes["payments.channel"]).toBe("alipay");
  expect(channelCall!.attributes["payments.channel.operation"]).toBe("createPayment");

  // The transaction's statements: the payment's and its items' rows and its event, each named by its shape only.
  const statements = childrenOf(spans, transaction!);
  const summaries = statements.map((span) => span.attributes["db.query.summary"]);
  expect(summaries).toContain("INSERT payment");
  expect(summaries).toContain("INSERT payment_item");
  for (const statement of statements) {
    expect(statement.kind).toBe(OTLP_KIND.CLIENT);
    expect(statement.name).toBe(statement.attributes["db.query.summary"]);
    expect(statement.attributes["db.system.name"]).toBe(t.app.db.system);
  }
  // Outside the transaction, directly under the RPC: storing the channel's action on the payment.
  expect(names).toContain("UPDATE payment");
  // Nothing in the trace hangs off a span that is not in it (the caller's span aside).
  const ids = new Set(spans.map((span) => span.spanId));
  for (const span of spans) if (span !== server) expect(ids.has(span.parentSpanId), span.name).toBe(true);
}

describe("db.system.name", () => {
  it("is the server's own name: mariadb on MariaDB, mysql on MySQL", async () => {
    const [row] = await t.app.db.em().getConnection().execute<Array<{ version: string }>>("select version() as version");
    expect(t.app.db.system).toBe(/mariadb/i.test(row!.version) ? "mariadb" : "mysql");
  });
});

describe("an incoming RPC", () => {
  it("over gRPC continues the traceparent metadata entry: SERVER span → row transaction with its statements, the Alipay call", async () => {
    const caller = callerContext();
    const created = await t.grpc.payments.createPayment(alipayPayment(), { ...merchant.headers, traceparent: caller.traceparent });
    const spans = await traceSpans(caller.traceId, (found) => named(found, "payments.v1.PaymentService/CreatePayment").length === 1 && found.length >= 6);
    expectCreateTree(spans, caller, "grpc", created.payment!.id);
  });

  it("over Connect continues the traceparent HTTP header alike", async () => {
    const caller = callerContext();
    const created = await t.connect.payments.createPayment(alipayPayment(), { headers: { ...merchant.headers, traceparent: caller.traceparent } });
    const spans = await traceSpans(caller.traceId, (found) => named(found, "payments.v1.PaymentService/CreatePayment").length === 1 && found.length >= 6);
    expectCreateTree(spans, caller, "connect_rpc", created.payment!.id);
  });

  it("without a traceparent starts a trace of its own", async () => {
    const before = new Set(collector.spans.map((span) => span.traceId));
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    const [server] = await collector.waitForSpans(
      (span) => span.name === "payments.v1.PaymentService/CreatePayment" && span.attributes["payments.payment_id"] === created.payment!.id,
    );
    expect(server?.parentSpanId).toBe("");
    expect(before.has(server!.traceId)).toBe(false);
  });

  it("a malformed traceparent is ignored: a new root trace, and the call succeeds", async () => {
    const created = await t.grpc.payments.createPayment(alipayPayment(), { ...merchant.headers, traceparent: "00-not-a-trace-01" });
    const [server] = await collector.waitForSpans(
      (span) => span.name === "payments.v1.PaymentService/CreatePayment" && span.attributes["payments.payment_id"] === created.payment!.id,
    );
    expect(server?.parentSpanId).toBe("");
  });

  it("keeps the caller's sampling decision: a traceparent flagged not sampled exports no span of the call", async () => {
    const unsampled = callerContext();
    await t.grpc.payments.createPayment(alipayPayment(), { ...merchant.headers, traceparent: unsampled.traceparent.replace(/-01$/, "-00") });
    // A sampled call after it: once its spans are in, the unsampled call's would be too (they ended first).
    const sampled = callerContext();
    await t.grpc.payments.createPayment(alipayPayment(), { ...merchant.headers, traceparent: sampled.traceparent });
    const spans = await traceSpans(sampled.traceId, (found) => found.some((span) => span.kind === OTLP_KIND.SERVER));
    expect(spans.length).toBeGreaterThan(1);
    expect(collector.spans.filter(inTrace(unsampled.traceId))).toEqual([]);
  });

  it("INVALID_ARGUMENT is the caller's fault: the span carries the code but no error status", async () => {
    const caller = callerContext();
    const error = await grpcError(t.grpc.payments.createPayment(alipayPayment({ amount: 0n }), { ...merchant.headers, traceparent: caller.traceparent }));
    expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    const [server] = await traceSpans(caller.traceId, (found) => found.some((span) => span.kind === OTLP_KIND.SERVER));
    expect(server?.attributes["rpc.grpc.status_code"]).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(server?.statusCode).toBe(0);

    const connectCaller = callerContext();
    const connectFailure = await connectError(
      t.connect.payments.createPayment(alipayPayment({ amount: 0n }), { headers: { ...merchant.headers, traceparent: connectCaller.traceparent } }),
    );
    expect(connectFailure.code).toBe(Code.InvalidArgument);
    const [connectServer] = await traceSpans(connectCaller.traceId, (found) => found.some((span) => span.kind === OTLP_KIND.SERVER));
    expect(connectServer?.attributes["rpc.grpc.status_code"]).toBe(Code.InvalidArgument);
    expect(connectServer?.statusCode).toBe(0);
  });

  it("NOT_FOUND and UNAUTHENTICATED are not errors of the service either", async () => {
    const caller = callerContext();
    const missing = await grpcError(
      t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: "pay_missing0000000000000000" } } }, { ...merchant.headers, traceparent: caller.traceparent }),
    );
    expect([GrpcStatus.NOT_FOUND, GrpcStatus.INVALID_ARGUMENT]).toContain(missing.code);
    const [server] = await traceSpans(caller.traceId, (found) => found.some((span) => span.kind === OTLP_KIND.SERVER));
    expect(server?.statusCode).toBe(0);

    const anonymous = callerContext();
    const refused = await grpcError(t.grpc.payments.listPayments({}, { authorization: "Bearer sk_live_nope", traceparent: anonymous.traceparent }));
    expect(refused.code).toBe(GrpcStatus.UNAUTHENTICATED);
    const [refusedSpan] = await traceSpans(anonymous.traceId, (found) => found.some((span) => span.kind === OTLP_KIND.SERVER));
    expect(refusedSpan?.attributes["rpc.grpc.status_code"]).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(refusedSpan?.statusCode).toBe(0);
  });
});

describe("an RPC with ORM transactions", () => {
  it("RefundPayment: db.transaction (ORM) with its statements from knex's events, the channel call, a row transaction", async () => {
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    t.simulator.pay("alipay", created.payment!.paymentNo);
    await eventually(
      () => t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.payment!.id } } }, merchant.headers),
      (answer) => answer.payment?.status === PaymentStatus.SUCCEEDED,
    );
    const caller = callerContext();
    await t.grpc.payments.refundPayment(
      { paymentId: created.payment!.id, merchantRefundNo: `refund-${Date.now()}`, amount: 100n },
      { ...merchant.headers, traceparent: caller.traceparent },
    );
    const spans = await traceSpans(caller.traceId, (found) => found.some((span) => span.name === "payments.v1.PaymentService/RefundPayment") && found.some((span) => span.name === "db.transaction"));
    const [server] = named(spans, "payments.v1.PaymentService/RefundPayment");
    expect(server?.parentSpanId).toBe(caller.spanId);
    const children = childrenOf(spans, server!);
    const [transaction] = named(children, "db.transaction");
    expect(transaction, JSON.stringify(children.map((span) => span.name))).toBeDefined();
    expect(transaction!.attributes["db.system.name"]).toBe(t.app.db.system);
    expect(transaction!.attributes["payments.db.deadlock_attempts"]).toBe(3);
    const statements = childrenOf(spans, transaction!).map((span) => span.name);
    expect(statements).toContain("INSERT refund");
    expect(statements).toContain("INSERT journal_entry");
    expect(named(children, "alipay refund")).toHaveLength(1);
    // No BEGIN or COMMIT of their own: they are the transaction span's work.
    expect(spans.some((span) => /^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)/.test(span.name))).toBe(false);
  });
});

describe("a server fault", () => {
  it("marks the RPC's and the channel call's spans failed, with the exception's class, when the channel answers 503", async () => {
    t.simulator.setFaults({ channel: "alipay", faults: { apiError: { method: "alipay.trade.precreate", status: 503, times: 1 } } });
    const caller = callerContext();
    try {
      const error = await grpcError(t.grpc.payments.createPayment(alipayPayment(), { ...merchant.headers, traceparent: caller.traceparent }));
      expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    } finally {
      t.simulator.clearFaults();
    }
    const spans = await traceSpans(caller.traceId, (found) => found.some((span) => span.kind === OTLP_KIND.SERVER) && found.some((span) => span.name === "alipay createPayment"));
    const [server] = named(spans, "payments.v1.PaymentService/CreatePayment");
    expect(server?.statusCode).toBe(2);
    expect(server?.attributes["rpc.grpc.status_code"]).toBe(GrpcStatus.UNAVAILABLE);
    expect(server?.events.map((event) => event.name)).toContain("exception");
    const [channelCall] = named(spans, "alipay createPayment");
    expect(channelCall?.parentSpanId).toBe(server?.spanId);
    expect(channelCall?.statusCode).toBe(2);
    expect(channelCall?.attributes["payments.channel.outcome"]).toBe("unknown");
  });
});

describe("a channel callback", () => {
  it("is the root SERVER span of its own trace, with the verdict and the payment; its row transaction is a child", async () => {
    const created = await t.grpc.payments.createPayment(alipayPayment(), merchant.headers);
    const payment = created.payment!;
    // The shopper pays through the simulator's control API; the simulator posts Alipay's notify to the shim.
    const paid = await fetch(`${t.simulator.url}/simulator/alipay/trades/${encodeURIComponent(payment.paymentNo)}/pay`, {
      method: "POST",
      headers: { authorization: `Bearer ${SIMULATOR_CONTROL_TOKEN}` },
    });
    expect(paid.status).toBe(200);
    const read = await eventually(
      () => t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: payment.id } } }, merchant.headers),
      (answer) => answer.payment?.status === PaymentStatus.SUCCEEDED,
    );
    expect(read.payment?.status).toBe(PaymentStatus.SUCCEEDED);

    const [callback] = await collector.waitForSpans((span) => span.name === "callback alipay" && span.attributes["payments.payment_id"] === payment.id);
    expect(callback, JSON.stringify(collector.spans.filter((span) => span.name.startsWith("callback")))).toBeDefined();
    expect(callback!.kind).toBe(OTLP_KIND.SERVER);
    expect(callback!.parentSpanId).toBe("");
    expect(callback!.attributes["payments.channel"]).toBe("alipay");
    expect(callback!.attributes["payments.callback.verdict"]).toBe("applied");
    expect(callback!.statusCode).not.toBe(2);

    const spans = await traceSpans(callback!.traceId, (found) => found.some((span) => span.name === "db.row_transaction"));
    const transactions = named(childrenOf(spans, callback!), "db.row_transaction");
    expect(transactions.length, JSON.stringify(spans.map((span) => [span.name, span.parentSpanId]))).toBeGreaterThanOrEqual(1);
    const statements = transactions.flatMap((transaction) => childrenOf(spans, transaction)).map((span) => span.name);
    expect(statements).toContain("UPDATE payment");
    // The callback's trace is its own: none of the create's spans are in it.
    expect(spans.some((span) => span.name.startsWith("payments.v1."))).toBe(false);
  });
});

describe("a webhook delivery", () => {
  /** An app of its own whose merchant's notify URL is a receiver on 127.0.0.1; its event loops are run by hand. */
  async function withHookedShop(work: (app: TestApp, shop: { id: string; headers: Record<string, string> }) => Promise<void>): Promise<void> {
    const defaults = loadConfig({});
    const app = await startTestApp({
      tracing: createTracing({ endpoint: collector.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 50 }),
      config: { notifyUrls: { allowHttp: true, allowPrivateNetworks: true }, webhooks: { ...defaults.webhooks, timeoutMs: 3000 } },
    });
    const endpoint = await startReceiver(answerOk);
    try {
      const created = await app.grpc.merchants.createMerchant({ name: "Hooked Shop", notifyUrl: endpoint.url }, app.adminHeaders);
      await work(app, { id: created.merchant!.id, headers: { authorization: `Bearer ${created.apiKey}` } });
    } finally {
      await app.stop();
      await endpoint.close();
    }
  }

  async function deliverySpan(app: TestApp, merchantId: string): Promise<CollectedSpan | undefined> {
    await app.app.events.runOnce();
    await app.app.webhooks.runOnce();
    const [delivery] = await collector.waitForSpans((span) => span.name === "webhook delivery" && span.attributes["payments.merchant_id"] === merchantId);
    expect(delivery, "no webhook delivery span").toBeDefined();
    return delivery;
  }

  it("is a trace of its own, linked to the span that wrote its event (CreatePayment's row transaction)", async () => {
    await withHookedShop(async (app, shop) => {
      const caller = callerContext();
      await app.grpc.payments.createPayment(alipayPayment(), { ...shop.headers, traceparent: caller.traceparent });
      const delivery = await deliverySpan(app, shop.id);
      expect(delivery!.parentSpanId).toBe("");
      expect(delivery!.traceId).not.toBe(caller.traceId);
      expect(delivery!.attributes["payments.webhook.outcome"]).toBe("delivered");
      const created = await traceSpans(caller.traceId, (found) => found.some((span) => span.name === "db.row_transaction"));
      const [transaction] = named(created, "db.row_transaction");
      expect(delivery!.links).toEqual([{ traceId: caller.traceId, spanId: transaction!.spanId }]);
    });
  });

  it("links only well-formed traceparents: a malformed or all-zero stored value is skipped", async () => {
    const tracing = createTracing({ endpoint: collector.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 50 });
    const valid = callerContext();
    const name = `linked ${valid.traceId}`;
    tracing.start(name, { links: ["garbage", null, `00-${"0".repeat(32)}-${"1".repeat(16)}-01`, valid.traceparent] }).end();
    await tracing.shutdown();
    const [span] = await collector.waitForSpans((found) => found.name === name);
    expect(span?.links).toEqual([{ traceId: valid.traceId, spanId: valid.spanId }]);
  });

  it("of an event written outside a trace has no link, and still gets its span", async () => {
    await withHookedShop(async (app, shop) => {
      await insertEvents(app.database!.url, [{ merchantId: shop.id, eventType: "payment.succeeded" }]);
      const delivery = await deliverySpan(app, shop.id);
      expect(delivery!.links).toEqual([]);
    });
  });
});

describe("work outside a trace", () => {
  it("gets no database spans: the event loops' and recorders' statements do not each become a trace", async () => {
    const before = collector.spans.length;
    await t.app.events.runOnce();
    await t.app.webhooks.runOnce();
    const caller = callerContext();
    // An RPC after them: once its spans are in, anything the loops exported before it would be too.
    await t.grpc.payments.listPayments({}, { ...merchant.headers, traceparent: caller.traceparent });
    await traceSpans(caller.traceId, (found) => found.length > 0);
    for (const span of collector.spans) {
      if (span.name.startsWith("db.") || span.attributes["db.system.name"] !== undefined) {
        expect(span.parentSpanId, `${span.name} is a root span`).not.toBe("");
      }
    }
    expect(collector.spans.length).toBeGreaterThan(before);
  });
});

describe("what is exported", () => {
  it("names the service by the configured service name (OTEL_SERVICE_NAME)", () => {
    expect(collector.spans.length).toBeGreaterThan(0);
    for (const span of collector.spans) expect(span.resource["service.name"]).toBe(SERVICE_NAME);
  });

  it("is OTLP JSON over HTTP, uncompressed unless OTEL_EXPORTER_OTLP_COMPRESSION=gzip (which the exporter reads itself)", () => {
    expect(collector.requests.length).toBeGreaterThan(0);
    const encoding = process.env.OTEL_EXPORTER_OTLP_COMPRESSION === "gzip" ? "gzip" : undefined;
    for (const request of collector.requests) {
      expect(request.contentType).toMatch(/^application\/json/);
      expect(request.contentEncoding).toBe(encoding);
    }
  });

  it("holds no secret: no API key, webhook secret, client secret, admin token, nor a statement's values", async () => {
    // A card payment's answer carries a client secret; the webhook secret is rotated over the API.
    const card = await t.grpc.payments.createPayment(
      {
        merchantOrderNo: `trace-card-${Date.now()}`,
        currency: "USD",
        amount: 1999n,
        channel: Channel.CARD,
        subject: "Green tea, 2 tins",
        paymentMethod: "pm_card_visa",
        items: [{ sku: "TEA-GREEN", name: "Green tea tin", quantity: 1n, unitAmount: 1999n }],
      },
      merchant.headers,
    );
    const clientSecret = card.payment!.action!.action.value as string;
    expect(clientSecret).toMatch(/_secret_/);
    const rotated = await t.grpc.merchants.rotateWebhookSecret({ merchantId: merchant.id }, t.adminHeaders);
    // The same order number with other details is refused with a message naming the order number: not in any span.
    const order = alipayPayment();
    await t.grpc.payments.createPayment(order, merchant.headers);
    await grpcError(t.grpc.payments.createPayment({ ...order, amount: 9999n, items: [{ ...order.items[0]!, unitAmount: 9999n / 2n, quantity: 1n }] }, merchant.headers));

    await collector.waitForSpans((span) => span.name === "payments.v1.MerchantService/RotateWebhookSecret");
    await collector.waitForSpans((span) => span.name === "payments.v1.PaymentService/CreatePayment" && span.attributes["payments.payment_id"] === card.payment!.id);
    const exported = collector.bodies.join("\n");
    for (const secret of [merchant.apiKey, merchant.webhookSecret, rotated.webhookSecret, clientSecret, ADMIN_TOKEN, t.config.dataEncryptionKey!]) {
      expect(secret.length).toBeGreaterThan(8);
      expect(exported.includes(secret), `a secret of ${secret.length} characters was exported`).toBe(false);
    }
    // The payment subject and the order number are values of statements: never in a span.
    expect(exported.includes("Oolong tea")).toBe(false);
    expect(exported.includes(order.merchantOrderNo)).toBe(false);
  });
});

describe("a collector that is down", () => {
  it("does not break RPCs: calls succeed, spans are dropped", async () => {
    const closedPort = await freePort();
    const down = await startTestApp({
      tracing: createTracing({ endpoint: `http://127.0.0.1:${closedPort}`, serviceName: SERVICE_NAME, exportDelayMs: 50 }),
    });
    try {
      const shop = await down.createMerchant();
      for (let i = 0; i < 5; i++) {
        const created = await down.grpc.payments.createPayment(alipayPayment(), shop.headers);
        expect(created.payment?.status).toBe(PaymentStatus.PENDING);
      }
      const read = await down.connect.payments.listPayments({}, { headers: shop.headers });
      expect(read.payments).toHaveLength(5);
    } finally {
      await down.stop();
    }
  });
});

describe("without OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  it("tracing is off: no exporter, the no-op tracing, and calls work", async () => {
    expect(createTracing({ serviceName: SERVICE_NAME })).toBe(TRACING_OFF);
    expect(createTracing({ endpoint: "", serviceName: SERVICE_NAME })).toBe(TRACING_OFF);
    const off = await startTestApp();
    try {
      expect(off.app.telemetry.tracing.enabled).toBe(false);
      expect(off.app.telemetry.tracing).toBe(TRACING_OFF);
      const shop = await off.createMerchant();
      const created = await off.grpc.payments.createPayment(alipayPayment(), { ...shop.headers, traceparent: callerContext().traceparent });
      expect(created.payment?.status).toBe(PaymentStatus.PENDING);
      expect(TRACING_OFF.currentTraceId()).toBeUndefined();
    } finally {
      await off.stop();
    }
  });
});

describe("on the embedded database", () => {
  it("the row transaction and every statement (all through the ORM's knex) are spans, db.system.name sqlite", async () => {
    const embeddedCollector = await startOtlpCollector();
    const embedded = await startTestApp({
      database: "sqlite",
      tracing: createTracing({ endpoint: embeddedCollector.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 50 }),
    });
    try {
      const shop = await embedded.createMerchant();
      const caller = callerContext();
      await embedded.grpc.payments.createPayment(alipayPayment(), { ...shop.headers, traceparent: caller.traceparent });
      const spans = await embeddedCollector.waitForSpans(inTrace(caller.traceId), (found) => found.some((span) => span.name === "alipay createPayment") && found.some((span) => span.name === "INSERT payment"));
      const [server] = named(spans, "payments.v1.PaymentService/CreatePayment");
      expect(server?.parentSpanId).toBe(caller.spanId);
      const [transaction] = named(childrenOf(spans, server!), "db.row_transaction");
      expect(transaction?.attributes["db.system.name"]).toBe("sqlite");
      const statements = childrenOf(spans, transaction!);
      expect(statements.map((span) => span.name)).toEqual(expect.arrayContaining(["INSERT payment", "INSERT payment_item"]));
      for (const statement of statements) expect(statement.attributes["db.system.name"]).toBe("sqlite");
      expect(spans.some((span) => /^(BEGIN|COMMIT)/.test(span.name))).toBe(false);
    } finally {
      await embedded.stop();
      await embeddedCollector.close();
    }
  });
});

describe("a deadlock victim run again", () => {
  const databases = driverDatabases("payments-tracing-");
  afterAll(() => databases.close());

  it("is one db.row_transaction span with payments.db.deadlock_retries, its failed statement marked with the driver's code", async () => {
    const deadlockCollector = await startOtlpCollector();
    const tracing = createTracing({ endpoint: deadlockCollector.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 50 });
    try {
      const db = await databases.open("mysql");
      const uow = createUnitOfWork(db, { tracing });
      const merchantId = newId();
      const [first, second] = [newId(), newId()];
      const session = uow.session();
      for (const id of [first, second]) await insertDiscrepancy(session, discrepancyRow(id, merchantId));

      // Each locks one row, waits until the other has locked its own, then wants the other's:
      // MariaDB rolls one back as the deadlock victim at once, and that one is run again.
      let locked = 0;
      let bothLocked!: () => void;
      const gate = new Promise<void>((resolve) => (bothLocked = resolve));
      const crossing = (mine: string, theirs: string) =>
        uow.rowTransaction(
          uow.session(),
          async (tx) => {
            await updateRows(tx as unknown as RowExecutor, Discrepancy, { id: mine }, { resolution: "mine" });
            if (++locked === 2) bothLocked();
            await gate;
            await updateRows(tx as unknown as RowExecutor, Discrepancy, { id: theirs }, { resolution: "theirs" });
          },
          { deadlockAttempts: 2 },
        );
      const traceId = await tracing.span("deadlock test", {}, async (root) => {
        await Promise.all([crossing(first, second), crossing(second, first)]);
        return root.traceId!;
      });

      const spans = await deadlockCollector.waitForSpans(inTrace(traceId), (found) => found.some((span) => span.name === "deadlock test"));
      const transactions = named(spans, "db.row_transaction");
      expect(transactions).toHaveLength(2);
      const retried = transactions.filter((span) => span.attributes["payments.db.deadlock_retries"] === 1);
      expect(retried, JSON.stringify(transactions.map((span) => span.attributes))).toHaveLength(1);
      expect(retried[0]!.statusCode).not.toBe(2);
      for (const transaction of transactions) expect(transaction.attributes["payments.db.deadlock_attempts"]).toBe(2);
      // The victim's failed UPDATE: error status and the driver's code, no values.
      const failed = spans.filter((span) => span.name === "UPDATE discrepancy" && span.statusCode === 2);
      expect(failed).toHaveLength(1);
      expect(failed[0]!.parentSpanId).toBe(retried[0]!.spanId);
      expect(JSON.stringify(failed[0]!.events)).toContain("ER_LOCK_DEADLOCK");
      expect(deadlockCollector.bodies.join("").includes(first)).toBe(false);
    } finally {
      await tracing.shutdown();
      await deadlockCollector.close();
    }
  });
});

describe("a failed transaction", () => {
  const databases = driverDatabases("payments-tracing-fail-");
  afterAll(() => databases.close());

  for (const driver of ["mysql", "sqlite"] as const) {
    it(`records the duplicate key on the transaction and statement spans without the key's value (${driver})`, async () => {
      const failCollector = await startOtlpCollector();
      const tracing = createTracing({ endpoint: failCollector.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 50 });
      try {
        const db = await databases.open(driver);
        const uow = createUnitOfWork(db, { tracing });
        const id = newId();
        const traceId = await tracing.span("duplicate test", {}, async (root) => {
          const failure = await rejection(
            uow.rowTransaction(uow.session(), async (tx) => {
              await insertDiscrepancy(tx, discrepancyRow(id, "m-1"));
              await insertDiscrepancy(tx, discrepancyRow(id, "m-1"));
            }),
          );
          expect(isDuplicateKey(failure), String(failure)).toBe(true);
          return root.traceId!;
        });
        const spans = await failCollector.waitForSpans(inTrace(traceId), (found) => found.some((span) => span.name === "duplicate test"));
        const [transaction] = named(spans, "db.row_transaction");
        expect(transaction?.statusCode).toBe(2);
        expect(transaction?.attributes["db.system.name"]).toBe(db.system);
        expect(transaction?.events.map((event) => event.name)).toContain("exception");
        const inserts = childrenOf(spans, transaction!).filter((span) => span.name === "INSERT discrepancy");
        expect(inserts.map((span) => span.statusCode)).toEqual([0, 2]);
        expect(failCollector.bodies.join("").includes(id)).toBe(false);
      } finally {
        await tracing.shutdown();
        await failCollector.close();
      }
    });
  }
});

describe("limits", () => {
  it(`at most ${MAX_OPEN_STATEMENT_SPANS} statement spans are open at once; answered ones make room again`, async () => {
    const limitCollector = await startOtlpCollector();
    const tracing = createTracing({ endpoint: limitCollector.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 50 });
    // knex's client events, emitted by hand: answers that never come are what the bound is for.
    const client = new EventEmitter();
    traceKnexStatements(client as unknown as KnexQueryEvents, tracing, "mysql");
    traceKnexStatements(client as unknown as KnexQueryEvents, tracing, "mysql"); // a second unit of work adds no listeners
    expect(client.listenerCount("query")).toBe(1);
    const query = (id: number) => ({ __knexQueryUid: `q${id}`, sql: "select * from `payment` where `id` = 'secret-value'" });
    const traceId = await tracing.span("root", {}, async (root) => {
      for (let id = 0; id <= MAX_OPEN_STATEMENT_SPANS; id++) client.emit("query", query(id));
      for (let id = 0; id <= MAX_OPEN_STATEMENT_SPANS; id++) client.emit("query-response", [], query(id));
      client.emit("query", query(5000));
      client.emit("query-error", Object.assign(new Error("select ... 'secret-value' - Deadlock found"), { code: "ER_LOCK_DEADLOCK" }), query(5000));
      // Outside any span: none.
      return root.traceId!;
    });
    client.emit("query", query(6000));
    client.emit("query-response", [], query(6000));
    try {
      const spans = await limitCollector.waitForSpans(inTrace(traceId), (found) => found.length >= MAX_OPEN_STATEMENT_SPANS + 2);
      const statements = spans.filter((span) => span.name === "SELECT payment");
      expect(statements).toHaveLength(MAX_OPEN_STATEMENT_SPANS + 1);
      const failed = statements.filter((span) => span.statusCode === 2);
      expect(failed).toHaveLength(1);
      expect(JSON.stringify(failed[0]!.events)).toContain("ER_LOCK_DEADLOCK");
      expect(limitCollector.bodies.join("").includes("secret-value")).toBe(false);
      expect(limitCollector.spans.filter((span) => span.traceId !== traceId)).toHaveLength(0);
    } finally {
      await tracing.shutdown();
      await limitCollector.close();
    }
  });

  it("failed exports are reported: the first at once, then at most one report per interval with the counts since", async () => {
    const refusing = await startOtlpCollector({ status: 400 });
    /** Three batches of two spans, each sent before the next is made. */
    const exportThreeBatches = async (tracing: ReturnType<typeof createTracing>) => {
      const before = refusing.requests.length;
      for (let batch = 1; batch <= 3; batch++) {
        for (let i = 0; i < 2; i++) tracing.start(`batch ${batch}`).end();
        await refusing.waitForSpans(() => true, () => refusing.requests.length >= before + batch);
      }
      // Every export has finished (and been reported) once the provider has shut down.
      await tracing.shutdown();
    };
    try {
      const everyFailure: ExportFailure[] = [];
      await exportThreeBatches(
        createTracing({ endpoint: refusing.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 20, exportFailureReportMs: 0, onExportFailure: (failure) => everyFailure.push(failure) }),
      );
      expect(refusing.requests).toHaveLength(3);
      expect(everyFailure.map((failure) => [failure.exports, failure.spans])).toEqual([[1, 2], [1, 2], [1, 2]]);
      expect(everyFailure[0]!.lastError).toMatch(/Bad Request|400/);

      const throttled: ExportFailure[] = [];
      await exportThreeBatches(
        createTracing({ endpoint: refusing.endpoint, serviceName: SERVICE_NAME, exportDelayMs: 20, exportFailureReportMs: 3_600_000, onExportFailure: (failure) => throttled.push(failure) }),
      );
      expect(refusing.requests).toHaveLength(6);
      // The first failure at once; the next two wait for the interval (an hour).
      expect(throttled).toEqual([{ exports: 1, spans: 2, lastError: expect.any(String) }]);
      expect(EXPORT_FAILURE_REPORT_MS).toBe(60_000);

      // The service's telemetry logs the report as a warning.
      const captured = capturingLogger("warn");
      const telemetry = createTelemetry(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: refusing.endpoint }).observability, { logger: captured.logger });
      expect(telemetry.tracing.enabled).toBe(true);
      telemetry.tracing.start("lost").end();
      // Shutting down sends the batch at once (the service's export delay is 2 s).
      await telemetry.tracing.shutdown();
      expect(refusing.requests).toHaveLength(7);
      const [line] = captured.records().filter((record) => record.msg === "trace export failed");
      expect(line).toMatchObject({ level: "warn", failed_exports: 1, lost_spans: 1 });
    } finally {
      await refusing.close();
    }
  });

  it("stop() waits at most a bounded time for a collector that accepts and never answers", async () => {
    const hanging = createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    const port = (hanging.address() as { port: number }).port;
    const app = await startTestApp({ tracing: createTracing({ endpoint: `http://127.0.0.1:${port}`, serviceName: SERVICE_NAME, exportDelayMs: 50 }) });
    try {
      const shop = await app.createMerchant();
      await app.grpc.payments.createPayment(alipayPayment(), shop.headers);
    } finally {
      // Resolves (the test's own timeout is the bound that would fail it): the exporter alone would wait its 10 s timeout.
      await app.stop();
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
    expect(SHUTDOWN_WAIT_MS).toBeLessThan(10_000);
  });
});

describe("a service process", () => {
  it("OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on, OTEL_SERVICE_NAME names it", async () => {
    const processCollector = await startOtlpCollector();
    const database = await createTestDatabase();
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const keys = testKeys();
    const service = spawnServiceProcess({
      DATABASE_URL: database.url,
      ADMIN_TOKEN: "tracing-process-admin-token-0123",
      DATA_ENCRYPTION_KEY: "tracing-process-data-key-0123456789abcdef",
      DATA_DIR: mkdtempSync(join(tmpdir(), "payments-tracing-")),
      GRPC_PORT: String(grpcPort),
      HTTP_PORT: String(httpPort),
      SWEEP_INTERVAL_MS: "600000",
      ALIPAY_GATEWAY_URL: `${t.simulator.url}/alipay/gateway.do`,
      ALIPAY_APP_ID: keys.alipay.appId,
      ALIPAY_APP_PRIVATE_KEY: keys.alipay.appPrivateKeyPem,
      ALIPAY_PUBLIC_KEY: keys.alipay.alipayPublicKeyPem,
      OTEL_EXPORTER_OTLP_ENDPOINT: processCollector.endpoint,
      OTEL_SERVICE_NAME: "payments-from-env",
    });
    const client = createGrpcJsClient(MerchantService, `127.0.0.1:${grpcPort}`);
    try {
      await service.waitForHealth(httpPort);
      const caller = callerContext();
      await client.createMerchant({ name: "Process Shop", notifyUrl: "https://shop.example/notify" }, { authorization: "Bearer tracing-process-admin-token-0123", traceparent: caller.traceparent });
      // The process exports every 2 s (its default); the wait is bounded by waitForSpans' own limit.
      const [server] = await processCollector.waitForSpans((span) => span.traceId === caller.traceId && span.kind === OTLP_KIND.SERVER);
      expect(server?.name).toBe("payments.v1.MerchantService/CreateMerchant");
      expect(server?.parentSpanId).toBe(caller.spanId);
      expect(server?.resource["service.name"]).toBe("payments-from-env");
      expect(processCollector.bodies.join("").includes("tracing-process-admin-token-0123")).toBe(false);
    } finally {
      client.close();
      await service.killHard();
      await database.drop();
      await processCollector.close();
    }
  });
});

describe("statement summaries", () => {
  it("keep the operation and the table, never a value", () => {
    expect(statementSummary("update `payment` set `status` = ? where `id` = ?")).toBe("UPDATE payment");
    expect(statementSummary("insert into `payment_item` (`id`) values (?), (?)")).toBe("INSERT payment_item");
    expect(statementSummary("select `p0`.* from `merchant` as `p0` where `p0`.`id` = 'm_1' limit 1")).toBe("SELECT merchant");
    expect(statementSummary("delete from `webhook_delivery` where `finished_at` < '2026-01-01'")).toBe("DELETE webhook_delivery");
    expect(statementSummary('select * from "payment" where "id" = ?')).toBe("SELECT payment");
    // A value that looks like SQL is cut out before the table is looked for.
    expect(statementSummary("select 'x from secret_table' as a from `payment`")).toBe("SELECT payment");
    expect(statementSummary("select 'it''s from secret' from `payment`")).toBe("SELECT payment");
    expect(statementSummary("begin")).toBe("BEGIN");
    expect(statementSummary("  ")).toBe("SQL");
  });
});
