/**
 * The event feed on MySQL: events committed through either of two app instances on one database
 * reach the subscribers of both, in the same order; a subscriber that falls more than its queue
 * limit behind is ended (STREAM_QUEUE_FULL) without holding the others back; stop() ends every
 * subscription; retention deletes only events past EVENT_RETENTION_DAYS that every reader has
 * passed, in batches, at most once an hour per replica.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { moveCursor } from "../../src/events/event-cursor-store.js";
import { createEventFeed, type FeedSubscription, FeedSubscriptionEnded } from "../../src/events/event-feed.js";
import { newId } from "../../src/ids.js";
import { appendEvent } from "../../src/outbox/outbox-store.js";
import { startReplica, startTestApp, type TestApp } from "../support/test-app.js";
import { rejection } from "../support/waiting.js";

let first: TestApp;
let second: TestApp;

beforeAll(async () => {
  first = await startTestApp();
  second = await startReplica(first);
});
afterAll(async () => {
  await second?.stop();
  await first?.stop();
});

const config = loadConfig({}).events;
const quiet = { log: () => {}, logError: () => {} };

async function append(t: TestApp, merchantId: string, count: number, createdAt?: Date): Promise<void> {
  const { uow } = t.app;
  await uow.transaction(uow.session(), async (tx) => {
    for (let n = 0; n < count; n++) await appendEvent(tx, { merchantId, aggregateId: newId(), eventType: "test.appended", payload: { n } }, createdAt);
  });
}

/** Takes what the subscription holds now (it must not be ended). */
async function take(subscription: FeedSubscription): Promise<string[]> {
  const ids: string[] = [];
  const iterator = subscription[Symbol.asyncIterator]();
  while (subscription.buffered > 0) ids.push(((await iterator.next()).value as { id: string }).id);
  return ids;
}

async function sql<T>(t: TestApp, query: string, params: unknown[] = []): Promise<T[]> {
  return t.app.db.em().getConnection().execute(query, params);
}

describe("the event feed", () => {
  it("hands events committed through either instance to the subscribers of both, in feed order", async () => {
    const merchantId = newId();
    const onFirst = await first.app.events.subscribe({ merchantId });
    const onSecond = await second.app.events.subscribe({ merchantId });
    const elsewhere = await second.app.events.subscribe({ merchantId: newId() });
    await append(first, merchantId, 3);
    await append(second, merchantId, 2);
    await second.app.events.runOnce();
    await first.app.events.runOnce();

    const expected = (await sql<{ id: string }>(first, "select id from outbox_event where merchant_id = ? order by seq", [merchantId])).map((row) => row.id);
    expect(expected).toHaveLength(5);
    expect(await take(onFirst)).toEqual(expected);
    expect(await take(onSecond)).toEqual(expected);
    expect(elsewhere.buffered).toBe(0);
    for (const subscription of [onFirst, onSecond, elsewhere]) subscription.close();
    expect(first.app.events.subscriberCount + second.app.events.subscriberCount).toBe(0);
  });

  it("ends a subscriber more than its queue limit behind with STREAM_QUEUE_FULL and keeps feeding the others", async () => {
    const feed = createEventFeed({ uow: first.app.uow, config, queueLimit: 3, ...quiet });
    const merchantId = newId();
    const slow = await feed.subscribe({ merchantId });
    const keepingUp = await feed.subscribe({ merchantId });
    const received: string[] = [];
    const reading = (async () => {
      for await (const event of keepingUp) {
        received.push(event.id);
        if (received.length === 5) return;
      }
    })();
    await append(first, merchantId, 2);
    await feed.runOnce();
    expect(slow.buffered).toBe(2);
    await append(first, merchantId, 3);
    await feed.runOnce();
    await reading;

    const error = await rejection(slow[Symbol.asyncIterator]().next());
    expect(error).toBeInstanceOf(FeedSubscriptionEnded);
    expect((error as FeedSubscriptionEnded).reason).toBe("STREAM_QUEUE_FULL");
    expect(slow.buffered).toBe(0);
    expect(received).toHaveLength(5);
    expect(feed.subscriberCount).toBe(0);
    await feed.stop();
  });

  it("ends every subscription with SERVER_STOPPING on stop(), and refuses new ones", async () => {
    const feed = createEventFeed({ uow: first.app.uow, config, ...quiet });
    const open = await feed.subscribe({ merchantId: newId() });
    const waiting = open[Symbol.asyncIterator]().next();
    await feed.stop();
    expect(((await rejection(waiting)) as FeedSubscriptionEnded).reason).toBe("SERVER_STOPPING");
    expect(((await rejection(feed.subscribe({}))) as FeedSubscriptionEnded).reason).toBe("SERVER_STOPPING");
  });

  it("ends a subscription when its signal aborts", async () => {
    const abort = new AbortController();
    const subscription = await first.app.events.subscribe({ merchantId: newId() }, { signal: abort.signal });
    const waiting = subscription[Symbol.asyncIterator]().next();
    abort.abort();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(first.app.events.subscriberCount).toBe(0);
  });
});

describe("event retention", () => {
  let own: TestApp;
  beforeAll(async () => {
    own = await startTestApp();
  });
  afterAll(() => own?.stop());

  const DAY = 86_400_000;

  async function remaining(merchantId: string): Promise<Array<{ n: number }>> {
    const rows = await sql<{ payload: unknown }>(own, "select payload from outbox_event where merchant_id = ? order by seq", [merchantId]);
    return rows.map((row) => (typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload) as { n: number });
  }

  it("deletes events older than the retention that every reader passed, at most once an hour", async () => {
    let now = new Date();
    const clock = () => now;
    const feed = createEventFeed({ uow: own.app.uow, config: { ...config, retentionDays: 30 }, now: clock, ...quiet });
    const relayed = createEventFeed({ uow: own.app.uow, config: { ...config, retentionDays: 30 }, retainUntilReadBy: ["webhooks", "nats"], now: clock, ...quiet });
    const merchantId = newId();
    const old = new Date(now.getTime() - 40 * DAY);
    await append(own, merchantId, 1205, old);
    await append(own, merchantId, 1);
    await feed.runOnce();
    expect(await remaining(merchantId)).toHaveLength(1206);

    // The webhooks reader passes all but the last 5 old events: they are due, but the hour is not up.
    const rows = await sql<{ seq: unknown }>(own, "select seq from outbox_event where merchant_id = ? order by seq limit 1 offset 1199", [merchantId]);
    const passed = BigInt(String(rows[0]!.seq));
    await moveCursor(own.app.uow.session(), "webhooks", passed);
    await feed.runOnce();
    expect(await remaining(merchantId)).toHaveLength(1206);

    // With the bus relay configured its reader (still at 0) holds everything back.
    await relayed.runOnce();
    expect(await remaining(merchantId)).toHaveLength(1206);

    now = new Date(now.getTime() + 3600_000);
    await feed.runOnce();
    const left = await remaining(merchantId);
    expect(left).toHaveLength(6);
    expect(left.slice(0, 5).map((payload) => payload.n)).toEqual([1200, 1201, 1202, 1203, 1204]);
    await feed.stop();
    await relayed.stop();
  });
});
