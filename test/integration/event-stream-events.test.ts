/**
 * StreamEvents on MySQL over gRPC (grpc-js) and Connect: live events of the calling merchant only;
 * a consumer that reconnects with its last event id, while another app instance on the same
 * database keeps producing events, gets every event of the merchant once, in feed order (compared
 * with the outbox table); refusals for an unknown, another merchant's, malformed or not yet
 * numbered id; the open-stream limit.
 */
import { Code } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ErrorInfo, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService, type StreamEventsResponse } from "../../gen/payments/v1/payment_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { connectServerStream, grpcServerStream, type StreamReader } from "../support/event-stream-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startReplica, startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, eventually, grpcError } from "../support/waiting.js";

type Merchant = Awaited<ReturnType<TestApp["createMerchant"]>>;

const fastFeed = { events: { ...loadConfig({}).events, pollIntervalMs: 50 } };

let first: TestApp;
let second: TestApp;
let merchant: Merchant;
let other: Merchant;
let orderSeq = 0;

beforeAll(async () => {
  first = await startTestApp({ runEventWorkers: true, config: fastFeed });
  second = await startReplica(first, { runEventWorkers: true, config: fastFeed });
  merchant = await first.createMerchant("Streaming Shop");
  other = await first.createMerchant("Other Shop");
});
afterAll(async () => {
  await second?.stop();
  await first?.stop();
});

function createPayment(t: TestApp, owner: Merchant) {
  return t.grpc.payments
    .createPayment(
      { merchantOrderNo: `ord-${Date.now()}-${++orderSeq}`, currency: "CNY", amount: 1200n, channel: Channel.ALIPAY, subject: "Green tea" },
      owner.headers,
    )
    .then((created) => created.payment!);
}

function grpcEvents(t: TestApp, owner: Merchant, afterEventId = ""): StreamReader<StreamEventsResponse> {
  return grpcServerStream(`127.0.0.1:${t.app.grpcPort}`, PaymentService.method.streamEvents, { afterEventId }, owner.headers);
}

function connectEvents(t: TestApp, owner: Merchant, afterEventId = ""): StreamReader<StreamEventsResponse> {
  return connectServerStream((client, options) => client.streamEvents({ afterEventId }, options), t.connect.payments, owner.headers);
}

/** Waits until the app serves `count` more subscriptions than `before` (the stream is live). */
async function subscribed(t: TestApp, count: number): Promise<void> {
  const seen = await eventually(() => t.app.events.subscriberCount, (n) => n >= count);
  expect(seen).toBeGreaterThanOrEqual(count);
}

/** The merchant's sequenced event ids after `afterId` in feed order, from the outbox table. */
async function outboxIdsAfter(t: TestApp, merchantId: string, afterId: string): Promise<string[]> {
  const rows = await sql<{ id: string }>(
    t,
    "select id from outbox_event where merchant_id = ? and seq > (select seq from outbox_event where id = ?) order by seq",
    [merchantId, afterId],
  );
  return rows.map((row) => row.id);
}

async function sql<T>(t: TestApp, query: string, params: unknown[] = []): Promise<T[]> {
  return t.app.db.em().getConnection().execute(query, params);
}

/** The event about `aggregateId` once the sequencer has given it its place. */
async function sequencedEventOf(t: TestApp, aggregateId: string): Promise<{ id: string; seq: unknown }> {
  const rows = await eventually(
    () => sql<{ id: string; seq: unknown }>(t, "select id, seq from outbox_event where aggregate_id = ?", [aggregateId]),
    (found) => found.length === 1 && found[0]!.seq !== null,
  );
  expect(rows[0]?.seq).not.toBeNull();
  return rows[0]!;
}

async function unsequencedCount(t: TestApp): Promise<number> {
  const rows = await sql<{ n: unknown }>(t, "select count(*) as n from outbox_event where seq is null");
  return Number(rows[0]!.n);
}

function grpcReason(error: unknown): ErrorInfo | undefined {
  return readGrpcErrorDetails(error as ServiceError).errorInfo;
}

describe("StreamEvents", () => {
  it("streams the merchant's new events live over grpc-js and Connect, and no other merchant's", async () => {
    const before = first.app.events.subscriberCount;
    const viaGrpc = grpcEvents(first, merchant);
    const viaConnect = connectEvents(second, merchant);
    await subscribed(first, before + 1);
    await subscribed(second, 1);

    const theirs = await createPayment(second, other);
    const payments = [await createPayment(first, merchant), await createPayment(second, merchant)];
    for (const reader of [viaGrpc, viaConnect]) {
      await eventually(() => reader.messages.length, (n) => n >= 2);
      const events = reader.messages.map((message) => message.event!);
      expect(events.map((event) => event.data?.payment)).toMatchObject(payments.map((p) => ({ id: p.id, status: "PENDING", amount: "1200" })));
      expect(events.map((event) => [event.type, event.objectId, event.merchantId])).toEqual(
        payments.map((p) => ["payment.created", p.id, merchant.id]),
      );
      expect(events.every((event) => event.id.length === 26 && event.createdAt !== undefined)).toBe(true);
      expect(events.some((event) => event.objectId === theirs.id)).toBe(false);
      reader.cancel();
      await reader.ended;
    }
    await eventually(() => first.app.events.subscriberCount, (n) => n === before);
  });

  it("misses nothing and repeats nothing when the consumer reconnects with its last id while another instance keeps producing", async () => {
    const marker = await createPayment(first, merchant);
    const markerEvent = await sequencedEventOf(first, marker.id);
    let producing = true;
    let produced = 0;
    const producer = (async () => {
      while (producing) {
        // Alternately through both instances, with another merchant's events in between.
        await createPayment(produced % 2 === 0 ? second : first, merchant);
        if (produced % 5 === 0) await createPayment(second, other);
        produced++;
      }
    })();

    const received: string[] = [];
    let last = markerEvent.id;
    const kinds = ["grpc", "connect", "grpc", "connect"] as const;
    for (const [index, kind] of kinds.entries()) {
      const app = index % 2 === 0 ? first : second;
      const reader = kind === "grpc" ? grpcEvents(app, merchant, last) : connectEvents(app, merchant, last);
      const target = received.length + 4;
      await eventually(() => received.length + reader.messages.length, (n) => n >= target, 20_000);
      reader.cancel();
      await reader.ended;
      for (const message of reader.messages) received.push(message.event!.id);
      last = received[received.length - 1] ?? last;
    }
    producing = false;
    await producer;

    // One more resume once production stopped and every event is numbered: it catches up with the rest.
    await eventually(() => unsequencedCount(first), (n) => n === 0);
    const expected = await outboxIdsAfter(first, merchant.id, markerEvent.id);
    const rest = grpcEvents(second, merchant, last);
    await eventually(() => received.length + rest.messages.length, (n) => n >= expected.length, 20_000);
    rest.cancel();
    await rest.ended;
    for (const message of rest.messages) received.push(message.event!.id);

    expect(produced).toBeGreaterThanOrEqual(4);
    expect(new Set(received).size).toBe(received.length);
    expect(received).toEqual(expected);
  });

  it("refuses an unknown id and another merchant's id with NOT_FOUND, a malformed one with INVALID_ARGUMENT", async () => {
    const theirs = await createPayment(first, other);
    const theirEvent: Array<{ id: string }> = await first.app.db
      .em()
      .getConnection()
      .execute("select id from outbox_event where aggregate_id = ?", [theirs.id]);
    const cases = [
      { id: "01JDZZZZZZZZZZZZZZZZZZZZZZ", code: Code.NotFound, reason: "EVENT_NOT_FOUND" },
      { id: theirEvent[0]!.id, code: Code.NotFound, reason: "EVENT_NOT_FOUND" },
      { id: "not-an-event-id", code: Code.InvalidArgument, reason: "INVALID_REQUEST" },
      { id: "x".repeat(300), code: Code.InvalidArgument, reason: "INVALID_REQUEST" },
    ];
    for (const { id, code, reason } of cases) {
      const viaGrpc = await grpcEvents(first, merchant, id).ended;
      expect(viaGrpc.code, id).toBe(code);
      expect(grpcReason(viaGrpc.error)?.reason).toBe(reason);
      const viaConnect = await connectEvents(first, merchant, id).ended;
      expect(viaConnect.code, id).toBe(code);
      expect(connectInfo(viaConnect.error)?.reason).toBe(reason);
    }
  });
});

function connectInfo(error: unknown): ErrorInfo | undefined {
  return (error as { findDetails(schema: typeof ErrorInfoSchema): ErrorInfo[] }).findDetails(ErrorInfoSchema)[0];
}

describe("StreamEvents on a replica whose feed is not running", () => {
  let quiet: TestApp;
  let shop: Merchant;
  beforeAll(async () => {
    quiet = await startTestApp({ config: { events: { ...loadConfig({}).events, maxOpenStreams: 2 } } });
    shop = await quiet.createMerchant("Quiet Shop");
  });
  afterAll(() => quiet?.stop());

  it("refuses an event without a place in the feed yet with INVALID_ARGUMENT naming after_event_id, and accepts it once numbered", async () => {
    const payment = await createPayment(quiet, shop);
    const rows: Array<{ id: string }> = await quiet.app.db.em().getConnection().execute("select id from outbox_event where aggregate_id = ?", [payment.id]);
    const eventId = rows[0]!.id;
    const refused = await grpcError(
      new Promise((resolve, reject) => {
        const reader = grpcEvents(quiet, shop, eventId);
        void reader.ended.then(({ error }) => (error ? reject(error) : resolve(undefined)));
      }),
    );
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(readGrpcErrorDetails(refused).badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([["after_event_id", "EVENT_NOT_SEQUENCED"]]);

    await quiet.app.events.runOnce();
    const accepted = connectEvents(quiet, shop, eventId);
    await subscribed(quiet, 1);
    expect(accepted.done).toBe(false);
    accepted.cancel();
    await accepted.ended;
  });

  it("serves STREAM_MAX_OPEN streams at once and refuses one more with RESOURCE_EXHAUSTED (TOO_MANY_STREAMS)", async () => {
    await eventually(() => quiet.app.events.subscriberCount, (n) => n === 0);
    const open = [grpcEvents(quiet, shop), connectEvents(quiet, shop)];
    await subscribed(quiet, 2);
    const viaGrpc = await grpcEvents(quiet, shop).ended;
    expect(viaGrpc.code).toBe(Code.ResourceExhausted);
    expect(grpcReason(viaGrpc.error)).toMatchObject({ reason: "TOO_MANY_STREAMS", metadata: { limit: "2" } });
    const viaConnect = await connectError(
      (async () => {
        for await (const _ of quiet.connect.payments.streamEvents({}, { headers: shop.headers })) break;
      })(),
    );
    expect(viaConnect.code).toBe(Code.ResourceExhausted);
    expect(connectInfo(viaConnect)?.reason).toBe("TOO_MANY_STREAMS");

    open[0]!.cancel();
    await open[0]!.ended;
    await eventually(() => quiet.app.events.subscriberCount, (n) => n === 1);
    const again = grpcEvents(quiet, shop);
    await subscribed(quiet, 2);
    expect(again.done).toBe(false);
    for (const reader of [again, open[1]!]) {
      reader.cancel();
      await reader.ended;
    }
  });
});
