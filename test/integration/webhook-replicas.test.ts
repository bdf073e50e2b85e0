/**
 * Three real service processes (src/main.ts) on one MySQL database deliver webhooks together:
 * 10,000 events written straight into the outbox reach their merchants' endpoints in this process
 * with none lost and duplicates only as the same event (same id, same bytes); and a replica
 * killed with SIGKILL while it holds deliveries to a slow endpoint has them completed by the
 * others once its leases expire.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { createGrpcJsClient, type GrpcJsClient } from "../support/grpc-client.js";
import { type ServiceProcess, spawnServiceProcess } from "../support/service-process.js";
import { freePort } from "../support/test-app.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";
import { eventually } from "../support/waiting.js";
import { answerOk, insertEvents, type ReceivedWebhook, sql, startReceiver, type WebhookReceiver } from "../support/webhook-fixtures.js";

const ADMIN_TOKEN = "webhook-replicas-admin-token-0123";
const EVENTS = 10_000;
const MERCHANTS = 4;
/** WEBHOOK_TIMEOUT_MS: the lease is twice this plus a second (5 s). */
const TIMEOUT_MS = 2000;

interface Replica {
  process: ServiceProcess;
  grpcPort: number;
  httpPort: number;
}

let database: TestDatabase;
const replicas: Replica[] = [];
const receivers: WebhookReceiver[] = [];
let admin: GrpcJsClient<typeof MerchantService>;

async function startReplica(): Promise<Replica> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const child = spawnServiceProcess({
    DATABASE_URL: database.url,
    ADMIN_TOKEN,
    DATA_ENCRYPTION_KEY: "webhook-replicas-data-key-0123456789abcdef",
    DATA_DIR: mkdtempSync(join(tmpdir(), "payments-webhooks-")),
    GRPC_PORT: String(grpcPort),
    HTTP_PORT: String(httpPort),
    // A channel must be configured to start; no payment is made here, so it is never called.
    CARD_BASE_URL: "http://127.0.0.1:9/card",
    CARD_SECRET_KEY: "sk_test_webhook_replicas_unused",
    CARD_WEBHOOK_SECRET: "whsec_webhook_replicas_unused",
    SWEEP_INTERVAL_MS: "600000",
    NOTIFY_URL_ALLOW_HTTP: "true",
    NOTIFY_URL_ALLOW_PRIVATE: "true",
    EVENT_POLL_INTERVAL_MS: "20",
    WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
    WEBHOOK_MAX_PER_ENDPOINT: "16",
    WEBHOOK_RETRY_SCHEDULE: "100ms,100ms,100ms,100ms,100ms",
  });
  const replica = { process: child, grpcPort, httpPort };
  replicas.push(replica);
  await child.waitForHealth(httpPort, 60_000);
  return replica;
}

async function merchantAt(url: string): Promise<string> {
  const created = await admin.createMerchant({ name: "Replica Shop", notifyUrl: url }, { authorization: `Bearer ${ADMIN_TOKEN}` });
  return created.merchant!.id;
}

/** Every request received, by event id. */
function byEvent(hooks: readonly ReceivedWebhook[]): Map<string, ReceivedWebhook[]> {
  const map = new Map<string, ReceivedWebhook[]>();
  for (const hook of hooks) {
    const copies = map.get(hook.eventId);
    if (copies) copies.push(hook);
    else map.set(hook.eventId, [hook]);
  }
  return map;
}

/** Each event id was only ever sent with one body, whose `id` is that event id. */
function expectDuplicatesOnlyOfTheSameEvent(hooks: Map<string, ReceivedWebhook[]>): void {
  for (const [eventId, copies] of hooks) {
    expect(new Set(copies.map((copy) => copy.body.toString("hex"))).size).toBe(1);
    expect(JSON.parse(copies[0]!.body.toString("utf8")).id).toBe(eventId);
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  // The first start applies the migrations; the other two then find the schema in place.
  const first = await startReplica();
  await Promise.all([startReplica(), startReplica()]);
  admin = createGrpcJsClient(MerchantService, `127.0.0.1:${first.grpcPort}`);
}, 120_000);

afterAll(async () => {
  admin?.close();
  await Promise.all(replicas.map((replica) => replica.process.killHard()));
  await Promise.all(receivers.map((receiver) => receiver.close()));
  await database?.drop();
});

describe("three replicas", () => {
  it("deliver 10,000 events with none lost and duplicates only of the same event", async () => {
    const endpoints = await Promise.all(Array.from({ length: MERCHANTS }, () => startReceiver(answerOk)));
    receivers.push(...endpoints);
    const merchantIds = await Promise.all(endpoints.map((endpoint) => merchantAt(endpoint.url)));
    const started = Date.now();
    const eventIds = await insertEvents(
      database.url,
      Array.from({ length: EVENTS }, (_, i) => ({ merchantId: merchantIds[i % MERCHANTS]! })),
    );
    const all = () => endpoints.flatMap((endpoint) => endpoint.received);
    // Counting requests is cheap enough to poll; distinct events are counted once there are enough requests.
    const requests = () => endpoints.reduce((sum, endpoint) => sum + endpoint.received.length, 0);
    await eventually(() => (requests() < EVENTS ? requests() : byEvent(all()).size), (count) => count >= EVENTS, 75_000);
    const elapsedMs = Date.now() - started;

    const received = byEvent(all());
    expect(received.size).toBe(EVENTS);
    for (const id of eventIds) expect(received.has(id)).toBe(true);
    expectDuplicatesOnlyOfTheSameEvent(received);
    const merchantOf = new Map(eventIds.map((id, i) => [id, merchantIds[i % MERCHANTS]]));
    for (const [index, endpoint] of endpoints.entries()) {
      expect(endpoint.received.every((hook) => merchantOf.get(hook.eventId) === merchantIds[index])).toBe(true);
    }
    const statuses = await eventually(
      () => sql<{ status: string; n: number }>(database.url, "select status, count(*) as n from webhook_delivery group by status"),
      (rows) => rows.length === 1 && rows[0]!.status === "SUCCEEDED",
    );
    expect(statuses.map((row) => [row.status, Number(row.n)])).toEqual([["SUCCEEDED", EVENTS]]);
    const duplicates = all().length - EVENTS;
    console.log(`webhook replicas: ${EVENTS} events delivered by 3 replicas in ${elapsedMs} ms, ${duplicates} duplicate requests`);
  }, 90_000);

  it("complete the deliveries of a replica killed with SIGKILL mid-delivery once its leases expire", async () => {
    // Answers after 800 ms: the killed replica's requests are open when it dies.
    const slow = await startReceiver((_hook, response) => {
      setTimeout(() => response.end("late"), 800);
    });
    receivers.push(slow);
    const merchantId = await merchantAt(slow.url);
    const eventIds = await insertEvents(database.url, Array.from({ length: 12 }, () => ({ merchantId })));

    const leased = await eventually(
      () =>
        sql<{ id: string; event_id: string; lease_holder: string }>(
          database.url,
          "select id, event_id, lease_holder from webhook_delivery where merchant_id = ? and status = 'PENDING' and lease_holder is not null",
          [merchantId],
        ),
      (rows) => rows.length > 0 && slow.open() > 0,
    );
    const holderPid = (holder: string) => Number(holder.split("@")[0]);
    const victim = replicas.find((replica) => leased.some((row) => holderPid(row.lease_holder) === replica.process.pid))!;
    expect(victim).toBeDefined();
    const victimDeliveries = leased.filter((row) => holderPid(row.lease_holder) === victim.process.pid);
    await victim.process.killHard();
    const killedAt = Date.now();

    const finished = await eventually(
      () => sql<{ event_id: string; status: string; delivered_at: Date }>(database.url, "select event_id, status, delivered_at from webhook_delivery where merchant_id = ?", [merchantId]),
      (rows) => rows.length === eventIds.length && rows.every((row) => row.status === "SUCCEEDED"),
      30_000,
    );
    expect(finished.map((row) => row.status)).toEqual(eventIds.map(() => "SUCCEEDED"));
    const received = byEvent(slow.received);
    for (const id of eventIds) expect(received.has(id)).toBe(true);
    expectDuplicatesOnlyOfTheSameEvent(received);
    // The victim's deliveries were finished by the survivors, after the kill.
    for (const row of victimDeliveries) {
      const delivery = finished.find((candidate) => candidate.event_id === row.event_id)!;
      expect(new Date(delivery.delivered_at).getTime()).toBeGreaterThanOrEqual(killedAt);
    }
    console.log(
      `webhook replicas: killed pid ${victim.process.pid} holding ${victimDeliveries.length} deliveries; all ${eventIds.length} finished ${Date.now() - killedAt} ms after the kill`,
    );
  }, 60_000);
});
