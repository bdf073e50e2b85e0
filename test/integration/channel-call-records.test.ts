/**
 * Channel call records: the batched recorder on both drivers (the queue bound, one INSERT per
 * batch, stop() writing what is left, a failed write dropping its batch without stopping the loop,
 * retention deleting only old rows), and a real flow against the simulator through the app's own
 * recorder: create, query (once failed by the simulator: HTTP 503), refund (once failed by the
 * channel), a create the channel rejects, then the rows in `channel_call` and the payments'
 * timelines over Connect as admin.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/payments/v1/admin_service_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { ChannelCall, type ChannelCallRow } from "../../src/channel-calls/channel-call-entity.js";
import { createChannelCallRecorder, QUEUE_LIMIT } from "../../src/channel-calls/channel-call-recorder.js";
import type { Database } from "../../src/db/database.js";
import { createUnitOfWork, type UnitOfWork } from "../../src/db/unit-of-work.js";
import type { ChannelCallRecord } from "../../src/observability/channel-observer.js";
import { createLogger, type Logger, silentLogger } from "../../src/observability/logger.js";
import { createMetrics, type ServiceMetrics } from "../../src/observability/metrics.js";
import { DRIVERS, driverDatabases } from "../support/driver-databases.js";
import { startTestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

const DAY = 24 * 60 * 60 * 1000;

function call(paymentNo: string, overrides: Partial<ChannelCallRecord> = {}): ChannelCallRecord {
  return {
    channel: "alipay",
    operation: "queryPayment",
    paymentNo,
    outcome: "answer",
    detail: "state pending",
    startedAt: new Date(),
    latencyMs: 12,
    ...overrides,
  };
}

async function droppedCount(metrics: ServiceMetrics): Promise<number> {
  return (await metrics.channelCallRecordsDropped.get()).values[0]?.value ?? 0;
}

async function rows(db: Database, where: Record<string, unknown> = {}): Promise<ChannelCallRow[]> {
  return db.em().find(ChannelCall, where as never, { orderBy: { startedAt: "asc", id: "asc" }, disableIdentityMap: true });
}

/** Whether `wanted` appears in `found` in order (other entries may come between). */
function inOrder(wanted: readonly string[], found: readonly string[]): boolean {
  let next = 0;
  for (const one of found) if (one === wanted[next]) next++;
  return next === wanted.length;
}

async function countRows(db: Database, where: Record<string, unknown> = {}): Promise<number> {
  // find, not count: the embedded driver answers COUNT(*) as a bigint the ORM cannot convert.
  return (await rows(db, where)).length;
}

/** The unit of work, counting the sessions the recorder takes: one per INSERT it runs. */
function countingUow(db: Database): UnitOfWork & { sessions: number } {
  const uow = createUnitOfWork(db);
  const counting = {
    ...uow,
    sessions: 0,
    session() {
      counting.sessions++;
      return uow.session();
    },
  };
  return counting;
}

/** A JSON logger whose lines the test reads back. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>>; text: () => string } {
  const raw: string[] = [];
  const logger = createLogger({ level: "info", format: "json", destination: { write: (line: string) => void raw.push(line) } });
  return {
    logger,
    get lines() {
      return raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    text: () => raw.join(""),
  };
}

describe("the channel call recorder", () => {
  const databases = driverDatabases("payments-channel-calls-");
  afterAll(() => databases.close());

  for (const driver of DRIVERS) {
    it(`writes queued records in batches of at most 500, one INSERT each, with every column (${driver})`, async () => {
      const db = await databases.open(driver);
      const uow = countingUow(db);
      const metrics = createMetrics();
      const recorder = createChannelCallRecorder({ uow, logger: silentLogger(), metrics, retentionDays: 30 });
      const startedAt = new Date("2026-12-01T08:00:00.123Z");
      recorder.record(
        call("P-COLUMNS", {
          operation: "refund",
          refundNo: "R-COLUMNS",
          outcome: "rejection",
          code: `ACQ.TRADE_HAS_CLOSE${"!".repeat(60)}`,
          detail: "x".repeat(300),
          startedAt,
          latencyMs: 41.6,
          traceId: "0af7651916cd43dd8448eb211c80319c",
        }),
      );
      for (let i = 1; i < 1201; i++) recorder.record(call(`P-BATCH-${i}`));
      expect(recorder.queued()).toBe(1201);
      await recorder.flush();
      expect(recorder.queued()).toBe(0);
      expect(uow.sessions).toBe(3); // 500 + 500 + 201
      expect(await countRows(db, { paymentNo: { $like: "P-%" } })).toBe(1201);
      const [row] = await rows(db, { paymentNo: "P-COLUMNS" });
      expect(row).toMatchObject({
        channel: "alipay",
        operation: "refund",
        paymentNo: "P-COLUMNS",
        refundNo: "R-COLUMNS",
        payoutNo: null,
        outcome: "rejection",
        code: `ACQ.TRADE_HAS_CLOSE${"!".repeat(45)}`, // cut to the column's 64
        latencyMs: 42,
        traceId: "0af7651916cd43dd8448eb211c80319c",
      });
      expect(row!.startedAt.getTime()).toBe(startedAt.getTime());
      expect(row!.detail).toBe("x".repeat(256));
      expect(row!.id).toHaveLength(26);
      expect(await droppedCount(metrics)).toBe(0);
    });

    it(`deletes only records older than the retention, in batches, at most hourly (${driver})`, async () => {
      const db = await databases.open(driver);
      const now = new Date();
      const recorder = createChannelCallRecorder({ uow: createUnitOfWork(db), logger: silentLogger(), metrics: createMetrics(), retentionDays: 30, retentionBatchRows: 2 });
      for (const [paymentNo, daysAgo] of [["R-400", 400], ["R-31A", 31], ["R-31B", 31], ["R-30+", 30.01], ["R-29", 29], ["R-NOW", 0]] as const) {
        recorder.record(call(paymentNo, { startedAt: new Date(now.getTime() - daysAgo * DAY) }));
      }
      await recorder.flush();
      // The other test's rows (written now) are kept as well.
      const before = await countRows(db);
      // Batches of 2: the 4 old rows take three statements (the last deletes none).
      expect(await recorder.retainIfDue(now)).toBe(4);
      expect((await rows(db, { paymentNo: { $like: "R-%" } })).map((row) => row.paymentNo)).toEqual(["R-29", "R-NOW"]);
      expect(await countRows(db)).toBe(before - 4);
      recorder.record(call("R-OLD-AGAIN", { startedAt: new Date(now.getTime() - 90 * DAY) }));
      await recorder.flush();
      expect(await recorder.retainIfDue(new Date(now.getTime() + 60_000))).toBe(0); // not due within the hour
      expect(await recorder.retainIfDue(new Date(now.getTime() + 60 * 60 * 1000))).toBe(1);
      await recorder.stop();
    });
  }

  it(`holds at most ${QUEUE_LIMIT} records; more are dropped and counted, and the queued ones are still written`, async () => {
    const db = await databases.open("mysql");
    const metrics = createMetrics();
    const recorder = createChannelCallRecorder({ uow: createUnitOfWork(db), logger: silentLogger(), metrics, retentionDays: 30 });
    for (let i = 0; i < QUEUE_LIMIT + 5; i++) recorder.record(call(`P-LIMIT-${i}`));
    expect(recorder.queued()).toBe(QUEUE_LIMIT);
    expect(await droppedCount(metrics)).toBe(5);
    await recorder.flush();
    expect(await countRows(db, { paymentNo: { $like: "P-LIMIT-%" } })).toBe(QUEUE_LIMIT);
    // Room again once written.
    recorder.record(call("P-LIMIT-AFTER"));
    expect(recorder.queued()).toBe(1);
    await recorder.stop();
  });

  it("writes in the background and on stop(); records after stop() are dropped and counted", async () => {
    const db = await databases.open("mysql");
    const metrics = createMetrics();
    // An interval no test waits out: only a full batch or stop() writes.
    const recorder = createChannelCallRecorder({ uow: createUnitOfWork(db), logger: silentLogger(), metrics, retentionDays: 30, batchRows: 3, flushIntervalMs: 3_600_000 });
    recorder.start();
    for (const no of ["P-BG-1", "P-BG-2", "P-BG-3"]) recorder.record(call(no));
    // A full batch is written without waiting for the interval.
    expect(await eventually(() => countRows(db, { paymentNo: { $like: "P-BG-%" } }), (n) => n === 3)).toBe(3);
    recorder.record(call("P-STOP-1"));
    recorder.record(call("P-STOP-2"));
    expect(recorder.queued()).toBe(2);
    await recorder.stop();
    expect((await rows(db, { paymentNo: { $like: "P-STOP-%" } })).map((row) => row.paymentNo).sort()).toEqual(["P-STOP-1", "P-STOP-2"]);
    recorder.record(call("P-AFTER-STOP"));
    expect(recorder.queued()).toBe(0);
    expect(await droppedCount(metrics)).toBe(1);
  });

  it("drops and counts a batch whose write fails, logs it once without the values, and keeps writing", async () => {
    const db = await databases.open("mysql");
    const metrics = createMetrics();
    const log = capturingLogger();
    const recorder = createChannelCallRecorder({ uow: createUnitOfWork(db), logger: log.logger, metrics, retentionDays: 30, flushIntervalMs: 20 });
    recorder.start();
    // The table away for a moment: the loop's write fails on the real database.
    await db.em().execute("rename table `channel_call` to `channel_call_away`");
    try {
      recorder.record(call("P-SECRET-VALUE-1"));
      recorder.record(call("P-SECRET-VALUE-2"));
      expect(await eventually(() => droppedCount(metrics), (n) => n === 2)).toBe(2);
    } finally {
      await db.em().execute("rename table `channel_call_away` to `channel_call`");
    }
    const failures = log.lines.filter((line) => line.msg === "channel call records dropped: write failed");
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ records: 2, err: { name: "TableNotFoundException" } });
    expect(log.text()).not.toContain("P-SECRET-VALUE");

    // The loop goes on: later records are written by it, without a flush from here.
    recorder.record(call("P-AFTER-FAILURE"));
    expect(await eventually(() => countRows(db, { paymentNo: "P-AFTER-FAILURE" }), (n) => n === 1)).toBe(1);
    await recorder.stop();
    expect(await droppedCount(metrics)).toBe(2);
  });
});

describe("channel calls of a real payment", () => {
  for (const driver of DRIVERS) {
    it(`are recorded with their outcomes and shown in the admin timeline (${driver})`, async () => {
      const t = await startTestApp({ database: driver });
      try {
        const admin = createClient(AdminService, createConnectTransport({ baseUrl: t.app.httpUrl, httpVersion: "1.1" }));
        const shop = await t.createMerchant("Channel Call Shop");
        const { payment } = await t.grpc.payments.createPayment(
          { merchantOrderNo: `calls-${Date.now()}`, currency: "CNY", amount: 5000n, channel: Channel.ALIPAY, subject: "Green tea" },
          shop.headers,
        );
        const lookup = { lookup: { key: { case: "paymentId" as const, value: payment!.id } } };
        // A query the channel fails (HTTP 503), then one it answers.
        t.simulator.setFaults({ channel: "alipay", faults: { apiError: { method: "alipay.trade.query", status: 503, times: 1 } } });
        await grpcError(t.grpc.payments.queryPayment(lookup, shop.headers));
        t.simulator.clearFaults();
        await t.grpc.payments.queryPayment(lookup, shop.headers);
        t.simulator.pay("alipay", payment!.paymentNo);
        await eventually(
          async () => (await t.grpc.payments.getPayment(lookup, shop.headers)).payment!.status,
          (status) => status === PaymentStatus.SUCCEEDED,
        );
        // A refund the channel fails (an answer: the refund failed), then one it carries out.
        t.simulator.setFaults({ channel: "alipay", outTradeNo: payment!.paymentNo, faults: { refundFails: true } });
        await t.grpc.payments.refundPayment({ paymentId: payment!.id, merchantRefundNo: "rejected", amount: 1000n, reason: "test" }, shop.headers);
        t.simulator.clearFaults();
        const { refund } = await t.grpc.payments.refundPayment({ paymentId: payment!.id, merchantRefundNo: "ok", amount: 1000n, reason: "test" }, shop.headers);

        const expected = ["createPayment answer", "queryPayment unknown", "queryPayment answer", "refund answer state failed", "refund answer state succeeded"];
        const label = (one: { operation: string; outcome: string; detail: string }) =>
          one.operation === "refund" ? `${one.operation} ${one.outcome} ${one.detail}` : `${one.operation} ${one.outcome}`;
        const recorded = await eventually(
          async () => (await rows(t.app.db, { paymentNo: payment!.paymentNo })).map(label),
          (found) => inOrder(expected, found),
        );
        expect({ recorded, inOrder: inOrder(expected, recorded) }).toMatchObject({ inOrder: true });
        const stored = await rows(t.app.db, { paymentNo: payment!.paymentNo });
        expect(stored[0]).toMatchObject({ channel: "alipay", operation: "createPayment", outcome: "answer", code: null, detail: "action qr_code_url" });
        const unknown = stored.find((row) => row.outcome === "unknown")!;
        expect(unknown).toMatchObject({ operation: "queryPayment", refundNo: null });
        expect(unknown.code).toMatch(/^[A-Z_]+$/);
        expect(stored.filter((row) => row.operation === "refund").map((row) => row.refundNo)).toEqual([expect.any(String), refund!.refundNo]);

        const timeline = await admin.getPaymentTimeline({ paymentId: payment!.id }, { headers: t.adminHeaders });
        const calls = timeline.entries.flatMap((entry) => (entry.entry.case === "channelCall" ? [entry.entry.value] : []));
        expect(calls.map(label)).toEqual(stored.map(label));
        expect(calls[0]).toMatchObject({ channel: Channel.ALIPAY, operation: "createPayment", outcome: "answer", code: "", detail: "action qr_code_url", refundNo: "" });
        expect(calls.find((one) => one.outcome === "unknown")?.code).toBe(unknown.code);
        expect(calls.filter((one) => one.operation === "refund").at(-1)?.refundNo).toBe(refund!.refundNo);
        expect(calls.every((one) => one.latencyMs >= 0 && one.id.length === 26)).toBe(true);
        const times = timeline.entries.map((entry) => Number(entry.at!.seconds) * 1e9 + entry.at!.nanos);
        expect(times).toEqual([...times].sort((a, b) => a - b));

        // A create the channel rejects: Alipay takes at most 100,000,000.00 CNY, the service more.
        const tooLarge = `calls-large-${Date.now()}`;
        await grpcError(
          t.grpc.payments.createPayment({ merchantOrderNo: tooLarge, currency: "CNY", amount: 10_000_000_001n, channel: Channel.ALIPAY, subject: "Tea estate" }, shop.headers),
        );
        const [rejected] = (await admin.searchPayments({ merchantOrderNo: tooLarge }, { headers: t.adminHeaders })).payments;
        const rejectedTimeline = await eventually(
          () => admin.getPaymentTimeline({ paymentId: rejected!.id }, { headers: t.adminHeaders }),
          (answer) => answer.entries.some((entry) => entry.entry.case === "channelCall"),
        );
        const rejectedCalls = rejectedTimeline.entries.flatMap((entry) => (entry.entry.case === "channelCall" ? [entry.entry.value] : []));
        expect(rejectedCalls).toMatchObject([{ operation: "createPayment", outcome: "rejection", code: "AMOUNT_OUT_OF_RANGE" }]);
        expect(rejectedCalls[0]!.detail).toContain("100000000.00");
      } finally {
        await t.stop();
      }
    });
  }
});
