/**
 * The outbox relay to NATS JetStream, in process, against a private nats-server and MySQL: events
 * made by real RPCs and by SQL go out once each on `<prefix>.<event type>` with the event id as
 * `Nats-Msg-Id` and the webhook body's bytes; republishing after a lost cursor move stores nothing
 * twice; the in-flight and batch bounds hold; NATS down at start is retried and logged once.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { eventBody } from "../../src/events/event-envelope.js";
import { connectionOptions, createNatsRelay, serverName, subjectCovers } from "../../src/events/nats-relay.js";
import { newId } from "../../src/ids.js";
import { eventsAfter } from "../../src/outbox/outbox-store.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { type NatsProxy, type NatsServer, readStream, startNatsProxy, startNatsServer, streamMessageCount } from "../support/nats-server.js";
import { freePort, startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

let nats: NatsServer;
const apps: TestApp[] = [];
const proxies: NatsProxy[] = [];
const servers: NatsServer[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  servers.push(nats);
});
afterAll(async () => {
  for (const t of apps) await t.stop();
  for (const proxy of proxies) await proxy.close();
  for (const server of servers) await server.stop();
});

let shared: TestApp | undefined;
/**
 * One app without a relay of its own for the tests that make their relays: each starts from a cursor
 * after the events already there, with no holder.
 */
async function sharedApp(): Promise<TestApp> {
  shared ??= await appWithNats(undefined);
  await sql(
    shared.database!.url,
    "update event_cursor set position = (select coalesce(max(seq), 0) from outbox_event), holder = null, lease_until = '1970-01-01' where name = 'nats'",
  );
  return shared;
}

async function appWithNats(url: string | undefined, stream = "PAYMENT_EVENTS", subjectPrefix = "payments"): Promise<TestApp> {
  const t = await startTestApp({ config: { nats: url === undefined ? undefined : { url, stream, subjectPrefix } } });
  apps.push(t);
  return t;
}

/** Inserts `count` committed events straight into the outbox, as state changes would (no seq yet). */
async function insertEvents(databaseUrl: string, count: number, type = "payment.succeeded"): Promise<string[]> {
  const connection = await createConnection({ uri: databaseUrl });
  const ids: string[] = [];
  try {
    for (let start = 0; start < count; start += 500) {
      const rows = Array.from({ length: Math.min(500, count - start) }, (_, index) => {
        const id = newId();
        ids.push(id);
        return [id, newId(), newId(), type, JSON.stringify({ amount: String(start + index), currency: "CNY" }), new Date()];
      });
      await connection.query("insert into outbox_event (id, merchant_id, aggregate_id, event_type, payload, created_at) values ?", [rows]);
    }
  } finally {
    await connection.end();
  }
  return ids;
}

async function sql<T>(databaseUrl: string, statement: string, params: unknown[] = []): Promise<T[]> {
  const connection = await createConnection({ uri: databaseUrl });
  try {
    return (await connection.query(statement, params))[0] as T[];
  } finally {
    await connection.end();
  }
}

/** Numbers every committed event (the feed loop's job), then runs relay passes until one publishes nothing. */
async function relayAll(t: TestApp, relay = t.app.relay!): Promise<number> {
  await sequenceAll(t);
  let total = 0;
  for (;;) {
    const published = await relay.runOnce();
    if (published === 0) return total;
    total += published;
  }
}

/** Runs the feed's sequencer until every committed event has its place. */
async function sequenceAll(t: TestApp): Promise<void> {
  do await t.app.events.runOnce();
  while ((await sequencedBacklog(t)) > 0);
}

async function sequencedBacklog(t: TestApp): Promise<number> {
  const rows = await sql<{ n: number }>(t.database!.url, "select count(*) as n from outbox_event where seq is null");
  return Number(rows[0]!.n);
}

async function natsCursor(t: TestApp): Promise<{ position: string; holder: string | null } | undefined> {
  return (await sql<{ position: string; holder: string | null }>(t.database!.url, "select cast(position as char) as position, holder from event_cursor where name = 'nats'"))[0];
}

describe("the NATS relay", () => {
  it("is off without EVENTS_NATS_URL: no relay is made and its cursor is never leased", async () => {
    expect(loadConfig({}).nats).toBeUndefined();
    shared = await appWithNats(undefined);
    const t = shared;
    expect(t.app.relay).toBeUndefined();
    const merchant = await t.createMerchant();
    await t.grpc.payments.createPayment(
      { merchantOrderNo: `o-${newId()}`, currency: "CNY", amount: 100n, channel: Channel.ALIPAY, subject: "Tea" },
      merchant.headers,
    );
    await t.app.events.runOnce();
    expect(await sequencedBacklog(t)).toBe(0);
    // The migration made the cursor; no relay ever took its lease or moved it.
    const [cursor] = await sql<{ position: string; holder: string | null; taken: number }>(
      t.database!.url,
      "select cast(position as char) as position, holder, lease_until > '2000-01-01' as taken from event_cursor where name = 'nats'",
    );
    expect(cursor).toEqual({ position: "0", holder: null, taken: 0 });
  });

  it("publishes each event once, in feed order, on <prefix>.<type> with Nats-Msg-Id = event id and the webhook body", async () => {
    const t = await appWithNats(nats.url);
    const merchant = await t.createMerchant();
    for (let index = 0; index < 5; index++) {
      await t.grpc.payments.createPayment(
        { merchantOrderNo: `o-${newId()}`, currency: "CNY", amount: 100n + BigInt(index), channel: Channel.ALIPAY, subject: "Tea" },
        merchant.headers,
      );
    }
    await insertEvents(t.database!.url, 1200, "refund.failed");
    await sequenceAll(t);
    const started = performance.now();
    expect(await relayAll(t)).toBe(1205);
    // A figure for the docs, not a bound: relay passes only (the events already numbered).
    console.log(`nats relay: 1205 events published and acknowledged in ${Math.round(performance.now() - started)} ms`);

    const events = await eventsAfter(t.app.uow.session(), 0n, 10_000);
    expect(events).toHaveLength(1205);
    expect(events.filter((event) => event.eventType === "payment.created")).toHaveLength(5);
    const stored = await readStream(nats.url, "PAYMENT_EVENTS");
    expect(stored.map((message) => message.msgId)).toEqual(events.map((event) => event.id));
    for (const [index, event] of events.entries()) {
      expect(stored[index]!.subject).toBe(`payments.${event.eventType}`);
      expect(stored[index]!.data.equals(eventBody(event))).toBe(true);
    }
    expect((await natsCursor(t))!.position).toBe(events.at(-1)!.seq.toString());

    // The cursor moved back, as after a crash between the acks and the cursor move: all republished, none stored again.
    await sql(t.database!.url, "update event_cursor set position = 0 where name = 'nats'");
    expect(await relayAll(t)).toBe(1205);
    expect(await streamMessageCount(nats.url, "PAYMENT_EVENTS")).toBe(1205);

    // A clean stop frees the lease for the next replica.
    await t.app.relay!.stop();
    expect((await natsCursor(t))!.holder).toBeNull();
  });

  it("examples/nats-consumer.mjs prints each relayed event once and acks it: a second run of the durable consumer gets nothing", async () => {
    // The stream holds the previous test's 1,205 events.
    const run = () =>
      promisify(execFile)(process.execPath, ["examples/nats-consumer.mjs"], {
        env: { PATH: process.env.PATH ?? "", NATS_URL: nats.url, NATS_DURABLE: "readme-example", IDLE_EXIT_MS: "1500" },
        timeout: 30_000,
      });
    const first = (await run()).stdout.trim().split("\n");
    expect(first).toHaveLength(1205);
    expect(new Set(first.map((line) => /id=(\S+)$/.exec(line)?.[1])).size).toBe(1205);
    expect(first.filter((line) => line.includes(" payment.created "))).toHaveLength(5);
    expect((await run()).stdout.trim()).toBe("");
  });

  it("keeps at most maxInFlight publishes unacknowledged and moves the cursor only after the acks", async () => {
    const t = await sharedApp();
    const proxy = await startNatsProxy(nats, "bounded");
    proxies.push(proxy);
    const relay = createNatsRelay({
      uow: t.app.uow,
      config: { url: proxy.url, stream: "BOUNDED", subjectPrefix: "bounded" },
      log: () => {},
      logError: () => {},
      batchSize: 50,
      maxInFlight: 8,
      maxBatchesPerPass: 2,
      ackTimeoutMs: 1_000,
    });
    await relay.runOnce(); // connects and creates the stream while nothing is held
    const startPosition = (await natsCursor(t))!.position;
    await insertEvents(t.database!.url, 230);
    await sequenceAll(t);

    proxy.holdReplies();
    const before = proxy.publishes();
    await expect(relay.runOnce()).rejects.toThrow();
    expect(proxy.publishes() - before).toBe(8);
    expect((await natsCursor(t))!.position).toBe(startPosition);

    proxy.releaseReplies();
    // Each pass is bounded: 2 batches of 50.
    expect(await relay.runOnce()).toBe(100);
    expect(await relay.runOnce()).toBe(100);
    expect(await relay.runOnce()).toBe(30);
    expect(await relay.runOnce()).toBe(0);
    const stored = await readStream(nats.url, "BOUNDED");
    expect(stored).toHaveLength(230);
    expect(new Set(stored.map((message) => message.msgId)).size).toBe(230);
    // The 8 held publishes went out again: the stream's duplicate window dropped them.
    expect(proxy.publishes() - before).toBe(238);
    await relay.stop();
  });

  it("retries while NATS is unreachable at start, logs the outage once without the password, and publishes once NATS is up", async () => {
    const t = await sharedApp();
    const port = await freePort();
    const url = `nats://relay-user:s3cret-relay-pass@127.0.0.1:${port}`;
    const logs: string[] = [];
    const relay = createNatsRelay({
      uow: t.app.uow,
      config: { url, stream: "LATE", subjectPrefix: "late" },
      log: (message) => logs.push(message),
      logError: (message, error) => logs.push(`ERROR ${message} ${String(error)}`),
      pollIntervalMs: 20,
      ackTimeoutMs: 1_000,
    });
    const ids = await insertEvents(t.database!.url, 300, "payout.paid");
    await sequenceAll(t);
    await expect(relay.runOnce()).rejects.toThrow();
    await expect(relay.runOnce()).rejects.toThrow();
    const errors = () => logs.filter((line) => line.startsWith("ERROR"));
    expect(errors()).toHaveLength(1);
    expect(errors()[0]).toContain(`nats://127.0.0.1:${port}`);
    // The failed holder let go of the lease, so another replica could take over at once.
    expect((await natsCursor(t))!.holder).toBeNull();
    relay.start();

    const late = await startNatsServer({ port, user: "relay-user", pass: "s3cret-relay-pass" });
    servers.push(late);
    const count = await eventually(() => streamMessageCount(url, "LATE"), (n) => n === 300, 45_000);
    expect(count).toBe(300);
    await relay.stop();
    const stored = await readStream(url, "LATE");
    expect(stored.map((message) => message.msgId)).toEqual([...ids].sort());
    expect(stored.every((message) => message.subject === "late.payout.paid")).toBe(true);
    expect(errors()).toHaveLength(1);
    expect(logs.some((line) => line.includes("again after"))).toBe(true);
    expect(logs.join("\n")).not.toContain("s3cret-relay-pass");
  }, 60_000);

  it("recreates the stream and goes on when NATS is replaced mid-run (stream lost with its storage)", async () => {
    const t = await sharedApp();
    const port = await freePort();
    const first = await startNatsServer({ port });
    servers.push(first);
    const relay = createNatsRelay({
      uow: t.app.uow,
      config: { url: first.url, stream: "REPLACED", subjectPrefix: "replaced" },
      log: () => {},
      logError: () => {},
      ackTimeoutMs: 1_000,
    });
    await insertEvents(t.database!.url, 100);
    await sequenceAll(t);
    expect(await relay.runOnce()).toBe(100);
    await first.stop();
    const later = await insertEvents(t.database!.url, 100, "settlement.created");
    await sequenceAll(t);
    await expect(relay.runOnce()).rejects.toThrow();
    const second = await startNatsServer({ port });
    servers.push(second);
    expect(await relay.runOnce()).toBe(100);
    const stored = await readStream(second.url, "REPLACED");
    expect(stored.map((message) => message.msgId)).toEqual([...later].sort());
    await relay.stop();
  });

  it("takes user and password from EVENTS_NATS_URL as client options and never shows them in the server's name", () => {
    expect(connectionOptions("nats://relay:p%40ss@nats.internal:4223")).toEqual({ servers: "nats.internal:4223", user: "relay", pass: "p@ss" });
    expect(connectionOptions("nats://s3cret-token@10.0.0.5")).toEqual({ servers: "10.0.0.5:4222", token: "s3cret-token" });
    expect(connectionOptions("tls://[::1]:4222")).toEqual({ servers: "[::1]:4222", tls: {} });
    expect(serverName("nats://relay:p%40ss@nats.internal:4223")).toBe("nats://nats.internal:4223");
  });

  it("uses a stream that exists only when it takes the relay's subjects", async () => {
    expect(subjectCovers("payments.>", "payments.>")).toBe(true);
    expect(subjectCovers(">", "payments.>")).toBe(true);
    expect(subjectCovers("*.>", "payments.>")).toBe(true);
    expect(subjectCovers("payments.*", "payments.>")).toBe(false);
    expect(subjectCovers("payments.payment.>", "payments.>")).toBe(false);
    expect(subjectCovers("other.>", "payments.>")).toBe(false);

    const t = await sharedApp();
    const logs: string[] = [];
    const wrong = createNatsRelay({
      uow: t.app.uow,
      // PAYMENT_EVENTS was made by the first relay for payments.>; these subjects are not in it.
      config: { url: nats.url, stream: "PAYMENT_EVENTS", subjectPrefix: "elsewhere" },
      log: () => {},
      logError: (message, error) => logs.push(`${message} ${String(error)}`),
    });
    await expect(wrong.runOnce()).rejects.toThrow(/PAYMENT_EVENTS exists but its subjects \["payments.>"\] do not take elsewhere.>/);
    expect(logs).toHaveLength(1);
    await wrong.stop();
  });
});
