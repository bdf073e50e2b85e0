/**
 * Webhook rules and bounds, each driven pass by pass: notify URLs pointing inside refused at
 * registration and at delivery (a URL stored while allowed, a name whose DNS answer is internal)
 * and never connected to; the signature checked with exactly examples/verify-webhook.mjs, and
 * secret rotation; the in-flight caps, the answer excerpt, the attempts kept, the page size, the
 * retention, and the lease holder guard. The service runs as in production (no internal hosts);
 * each test builds the dispatcher it needs over the service's database.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebhooksConfig } from "../../src/config.js";
import { newId } from "../../src/ids.js";
import { SecretBox } from "../../src/merchants/credentials.js";
import type { LookupAll, NotifyUrlPolicy } from "../../src/notifications/notify-url.js";
import { createWebhookDispatcher, type WebhookDispatcher } from "../../src/webhooks/webhook-dispatcher.js";
import { MAX_EXCERPT_BYTES } from "../../src/webhooks/webhook-sender.js";
import { ATTEMPTS_SHOWN } from "../../src/webhooks/webhook-service.js";
import { claimDeliveries, MAX_ATTEMPTS_KEPT, recordAttempt } from "../../src/webhooks/webhook-store.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { WebhookDeliveryStatus } from "../../gen/payments/v1/event_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, eventually, grpcError } from "../support/waiting.js";
import { answerOk, hang, insertEvents, sql, startReceiver, type WebhookReceiver } from "../support/webhook-fixtures.js";

// A variable, so the example stays plain JavaScript that the README shows as it is.
const VERIFY_SNIPPET = "../../examples/verify-webhook.mjs";
type Verify = (rawBody: Buffer | string, header: string, secret: string, toleranceSeconds?: number, nowSeconds?: number) => boolean;

const STRICT: NotifyUrlPolicy = { allowHttp: true, allowPrivateNetworks: false };
const OPEN: NotifyUrlPolicy = { allowHttp: true, allowPrivateNetworks: true };
/** Long enough that a retry is never due within this file. */
const HOUR = 3_600_000;

let t: TestApp;
let verifyWebhook: Verify;
const receivers: WebhookReceiver[] = [];
const running: WebhookDispatcher[] = [];

beforeAll(async () => {
  t = await startTestApp({ config: { notifyUrls: STRICT } });
  verifyWebhook = ((await import(VERIFY_SNIPPET)) as { verifyWebhook: Verify }).verifyWebhook;
});
afterAll(async () => {
  await Promise.all(running.map((dispatcher) => dispatcher.stop()));
  await t?.stop();
  await Promise.all(receivers.map((receiver) => receiver.close()));
});

async function receiver(...args: Parameters<typeof startReceiver>): Promise<WebhookReceiver> {
  const started = await startReceiver(...args);
  receivers.push(started);
  return started;
}

function dispatcher(options: { policy?: NotifyUrlPolicy; webhooks?: Partial<WebhooksConfig>; lookup?: LookupAll; retentionDays?: number } = {}) {
  return createWebhookDispatcher({
    uow: t.app.uow,
    secrets: new SecretBox(t.config.dataEncryptionKey),
    config: { ...t.config.webhooks, timeoutMs: 1000, retryScheduleMs: [HOUR], ...options.webhooks },
    events: { pollIntervalMs: 20, retentionDays: options.retentionDays ?? 30 },
    notifyUrls: options.policy ?? OPEN,
    log: () => {},
    logError: (message, error) => console.error(message, error),
    lookup: options.lookup,
  });
}

/** Numbers the new events (the sequencer), then one dispatcher pass with its attempts finished. */
async function pass(webhooks: WebhookDispatcher): Promise<void> {
  await t.app.events.runOnce();
  await webhooks.runOnce();
}

/** A merchant whose notify URL is `url`, stored directly (as if accepted while internal hosts were allowed). */
async function merchantAt(url: string) {
  const created = await t.grpc.merchants.createMerchant({ name: "Limits Shop", notifyUrl: "https://shop.example/notify" }, t.adminHeaders);
  const id = created.merchant!.id;
  await sql(t.database!.url, "update merchant set notify_url = ? where id = ?", [url, id]);
  return { id, headers: { authorization: `Bearer ${created.apiKey}` }, webhookSecret: created.webhookSecret };
}

async function deliveriesOf(merchant: { headers: Record<string, string> }, eventId = "") {
  return (await t.connect.payments.listWebhookDeliveries({ eventId, pageSize: 100 }, { headers: merchant.headers })).deliveries;
}

/** Makes the merchants' pending deliveries due only tomorrow, so later tests' dispatchers leave them alone. */
async function parkDeliveries(merchants: ReadonlyArray<{ id: string }>): Promise<void> {
  await sql(t.database!.url, "update webhook_delivery set next_attempt_at = ? where status = 'PENDING' and merchant_id in (?)", [
    new Date(Date.now() + 86_400_000),
    merchants.map((merchant) => merchant.id),
  ]);
}

const resolvesTo =
  (address: string): LookupAll =>
  async () => [{ address, family: 4 }];

describe("notify URLs pointing inside", () => {
  it("are refused at registration: CreateMerchant and CreatePayment name notify_url", async () => {
    const target = await receiver(answerOk);
    const refused = await grpcError(t.grpc.merchants.createMerchant({ name: "Inside", notifyUrl: target.url }, t.adminHeaders));
    expect(refused.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(readGrpcErrorDetails(refused).badRequest?.fieldViolations).toEqual([expect.objectContaining({ field: "notify_url", reason: "INTERNAL_ADDRESS" })]);

    const merchant = await t.createMerchant("Payer");
    const request = { merchantOrderNo: `inside-${Date.now()}`, currency: "CNY", amount: 100n, channel: Channel.ALIPAY, subject: "Tea", notifyUrl: target.url };
    const error = await connectError(t.connect.payments.createPayment(request, { headers: merchant.headers }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations).toEqual([expect.objectContaining({ field: "notify_url", reason: "INTERNAL_ADDRESS" })]);
    expect(target.received).toEqual([]);
  });

  it("are refused at delivery, recorded as attempts and retried on schedule, never connected to", async () => {
    const target = await receiver(answerOk);
    const stored = await merchantAt(target.url);
    const named = await merchantAt(`http://hooks.shop.example:${target.port}/hooks`);
    const [storedEvent, namedEvent] = await insertEvents(t.database!.url, [{ merchantId: stored.id }, { merchantId: named.id }]);
    const before = Date.now();
    await pass(dispatcher({ policy: STRICT, lookup: resolvesTo("127.0.0.1") }));

    for (const [merchant, eventId] of [
      [stored, storedEvent],
      [named, namedEvent],
    ] as const) {
      const [delivery] = await deliveriesOf(merchant, eventId);
      expect(delivery!.status).toBe(WebhookDeliveryStatus.PENDING);
      expect(delivery!.attempts).toEqual([expect.objectContaining({ number: 1, httpStatus: 0, error: "INTERNAL_ADDRESS", responseExcerpt: "" })]);
      // Retried on the schedule: the operator may allow internal hosts meanwhile.
      const next = timestampMs(delivery!.nextAttemptAt!);
      expect(next).toBeGreaterThanOrEqual(before + HOUR - 1000);
    }
    expect(target.received).toEqual([]);
  });

  it("are delivered when allowed, to the address the name resolved to, with the name as Host", async () => {
    const target = await receiver(answerOk);
    const named = await merchantAt(`http://hooks.shop.example:${target.port}/hooks`);
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: named.id }]);
    await pass(dispatcher({ policy: OPEN, lookup: resolvesTo("127.0.0.1") }));
    const [delivery] = await deliveriesOf(named, eventId);
    expect(delivery!.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    expect(target.received.map((hook) => [hook.eventId, hook.headers.host])).toEqual([[eventId, `hooks.shop.example:${target.port}`]]);
  });
});

describe("signatures", () => {
  it("verify with exactly the README snippet, and not with a changed body, another secret or an old timestamp", async () => {
    const target = await receiver(answerOk);
    const merchant = await merchantAt(target.url);
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: merchant.id, payload: { amount: "100", note: "né" } }]);
    await pass(dispatcher());
    const hook = target.received.find((received) => received.eventId === eventId)!;
    const header = String(hook.headers["payments-signature"]);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(hook.body, header, merchant.webhookSecret)).toBe(true);
    expect(verifyWebhook(hook.body.toString("utf8"), header, merchant.webhookSecret)).toBe(true);
    expect(verifyWebhook(Buffer.concat([hook.body, Buffer.from(" ")]), header, merchant.webhookSecret)).toBe(false);
    expect(verifyWebhook(hook.body, header, `${merchant.webhookSecret}x`)).toBe(false);
    expect(verifyWebhook(hook.body, header, merchant.webhookSecret, 300, Date.now() / 1000 + 301)).toBe(false);
    expect(JSON.parse(hook.body.toString("utf8")).data).toEqual({ amount: "100", note: "né" });
  });

  it("carry two v1 values during a rotation's overlap and only the new one after it", async () => {
    const target = await receiver(answerOk);
    const merchant = await merchantAt(target.url);
    const rotated = await t.connect.merchants.rotateWebhookSecret({ merchantId: merchant.id, overlapSeconds: 1 }, { headers: t.adminHeaders });
    const newSecret = rotated.webhookSecret;
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(merchant.webhookSecret);
    expect(rotated.merchant?.id).toBe(merchant.id);
    const expiresAt = timestampMs(rotated.previousSecretExpiresAt!);

    const [during] = await insertEvents(t.database!.url, [{ merchantId: merchant.id }]);
    const webhooks = dispatcher();
    await pass(webhooks);
    const duringHook = target.received.find((hook) => hook.eventId === during)!;
    const duringHeader = String(duringHook.headers["payments-signature"]);
    expect(duringHeader).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(duringHook.body, duringHeader, newSecret)).toBe(true);
    expect(verifyWebhook(duringHook.body, duringHeader, merchant.webhookSecret)).toBe(true);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 50)));
    const [after] = await insertEvents(t.database!.url, [{ merchantId: merchant.id }]);
    await pass(webhooks);
    const afterHook = target.received.find((hook) => hook.eventId === after)!;
    const afterHeader = String(afterHook.headers["payments-signature"]);
    expect(afterHeader).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(afterHook.body, afterHeader, newSecret)).toBe(true);
    expect(verifyWebhook(afterHook.body, afterHeader, merchant.webhookSecret)).toBe(false);
  });

  it("RotateWebhookSecret takes the default overlap for 0 and names the field it refuses", async () => {
    const merchant = await t.createMerchant("Rotating");
    const before = Date.now();
    const rotated = await t.grpc.merchants.rotateWebhookSecret({ merchantId: merchant.id, overlapSeconds: 0 }, t.adminHeaders);
    const expiresAt = timestampMs(rotated.previousSecretExpiresAt!);
    expect(expiresAt).toBeGreaterThanOrEqual(before - 1000 + t.config.webhooks.secretOverlapSeconds * 1000);

    for (const [request, field] of [
      [{ merchantId: merchant.id, overlapSeconds: 604_801 }, "overlap_seconds"],
      [{ merchantId: merchant.id, overlapSeconds: -1 }, "overlap_seconds"],
      [{ merchantId: "", overlapSeconds: 60 }, "merchant_id"],
    ] as const) {
      const error = await grpcError(t.grpc.merchants.rotateWebhookSecret(request, t.adminHeaders));
      expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).badRequest?.fieldViolations?.map((violation) => violation.field)).toEqual([field]);
    }
    const unknown = await grpcError(t.grpc.merchants.rotateWebhookSecret({ merchantId: newId(), overlapSeconds: 60 }, t.adminHeaders));
    expect(unknown.code).toBe(GrpcStatus.NOT_FOUND);
    const notAdmin = await grpcError(t.grpc.merchants.rotateWebhookSecret({ merchantId: merchant.id, overlapSeconds: 60 }, merchant.headers));
    expect(notAdmin.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });
});

describe("bounds", () => {
  it("keep at most WEBHOOK_MAX_IN_FLIGHT attempts open on a replica, across endpoints", async () => {
    const target = await receiver(hang);
    // Three endpoints (three names) on one server: its open count is the replica's total.
    const merchants = await Promise.all(["a", "b", "c"].map((name) => merchantAt(`http://${name}.hang.example:${target.port}/hooks`)));
    await insertEvents(
      t.database!.url,
      merchants.flatMap((merchant) => Array.from({ length: 3 }, () => ({ merchantId: merchant.id }))),
    );
    await t.app.events.runOnce();
    const webhooks = dispatcher({ webhooks: { maxInFlight: 3, maxPerEndpoint: 4, timeoutMs: 1500 }, lookup: resolvesTo("127.0.0.1") });
    running.push(webhooks);
    webhooks.start();
    await eventually(() => target.open(), (open) => open === 3);
    // Several passes later, still three: no pass claims past the cap.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(target.open()).toBe(3);
    await webhooks.stop();
    expect(target.maxOpen()).toBe(3);
    await parkDeliveries(merchants);
  });

  it("keep at most WEBHOOK_MAX_PER_ENDPOINT attempts open to one endpoint", async () => {
    const target = await receiver(hang);
    const merchant = await merchantAt(target.url);
    await insertEvents(t.database!.url, Array.from({ length: 6 }, () => ({ merchantId: merchant.id })));
    await t.app.events.runOnce();
    const webhooks = dispatcher({ webhooks: { maxInFlight: 10, maxPerEndpoint: 2, timeoutMs: 1500 } });
    running.push(webhooks);
    webhooks.start();
    await eventually(() => target.open(), (open) => open === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await webhooks.stop();
    expect(target.maxOpen()).toBe(2);
    await parkDeliveries([merchant]);
  });

  it("read at most 256 bytes of an answer, even one that never ends", async () => {
    const long = await receiver((_hook, response) => response.end("é".repeat(5000)));
    const endless = await receiver((_hook, response) => {
      response.write("y".repeat(100));
      const timer = setInterval(() => response.write("y".repeat(1000)), 5);
      response.on("close", () => clearInterval(timer));
    });
    const longMerchant = await merchantAt(long.url);
    const endlessMerchant = await merchantAt(endless.url);
    await insertEvents(t.database!.url, [{ merchantId: longMerchant.id }, { merchantId: endlessMerchant.id }]);
    await pass(dispatcher({ webhooks: { timeoutMs: 5000 } }));
    const [longDelivery] = await deliveriesOf(longMerchant);
    const [endlessDelivery] = await deliveriesOf(endlessMerchant);
    expect(MAX_EXCERPT_BYTES).toBe(256);
    expect(longDelivery!.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    expect(longDelivery!.attempts[0]!.responseExcerpt).toBe("é".repeat(128));
    expect(endlessDelivery!.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    expect(endlessDelivery!.attempts[0]!.responseExcerpt).toBe("y".repeat(256));
    expect(endlessDelivery!.attempts[0]!.error).toBe("");
  });

  it("follow no redirect: a 3xx is a failed attempt and the other URL is never asked", async () => {
    const elsewhere = await receiver(answerOk);
    const redirecting = await receiver((_hook, response) => {
      response.writeHead(307, { location: elsewhere.url });
      response.end("moved");
    });
    const merchant = await merchantAt(redirecting.url);
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: merchant.id }]);
    await pass(dispatcher());
    const [delivery] = await deliveriesOf(merchant, eventId);
    expect(delivery!.status).toBe(WebhookDeliveryStatus.PENDING);
    expect(delivery!.attempts).toEqual([expect.objectContaining({ number: 1, httpStatus: 307, responseExcerpt: "moved", error: "" })]);
    expect(redirecting.received).toHaveLength(1);
    expect(elsewhere.received).toEqual([]);
  });

  it("keep the last 50 attempts of a delivery and show the last 20", async () => {
    const target = await receiver((_hook, response) => {
      response.statusCode = 500;
      response.end();
    });
    const merchant = await merchantAt(target.url);
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: merchant.id }]);
    const retries = 54;
    const webhooks = dispatcher({ webhooks: { retryScheduleMs: Array.from({ length: retries }, () => 1) } });
    const delivery = await eventually(
      async () => {
        await pass(webhooks);
        return (await deliveriesOf(merchant, eventId))[0];
      },
      (found) => found?.status === WebhookDeliveryStatus.FAILED,
      30_000,
    );
    expect(delivery!.attemptCount).toBe(retries + 1);
    expect(delivery!.attempts).toHaveLength(ATTEMPTS_SHOWN);
    expect(delivery!.attempts[0]!.number).toBe(retries + 1);
    const kept = await sql<{ n: number; low: number }>(
      t.database!.url,
      "select count(*) as n, min(number) as low from webhook_attempt where delivery_id = ?",
      [delivery!.id],
    );
    expect(Number(kept[0]!.n)).toBe(MAX_ATTEMPTS_KEPT);
    expect(Number(kept[0]!.low)).toBe(retries + 1 - MAX_ATTEMPTS_KEPT + 1);
    expect(target.received).toHaveLength(retries + 1);
  }, 40_000);

  it("page the listings, at most 100 a page, with tokens bound to their filters", async () => {
    const target = await receiver(answerOk);
    const merchant = await merchantAt(target.url);
    await insertEvents(t.database!.url, Array.from({ length: 5 }, () => ({ merchantId: merchant.id })));
    await pass(dispatcher());
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await t.connect.payments.listWebhookDeliveries({ pageSize: 2, pageToken }, { headers: merchant.headers });
      expect(page.deliveries.length).toBeLessThanOrEqual(2);
      seen.push(...page.deliveries.map((delivery) => delivery.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(5);
    expect([...seen].sort().reverse()).toEqual(seen);

    const tooBig = await connectError(t.connect.payments.listWebhookDeliveries({ pageSize: 101 }, { headers: merchant.headers }));
    expect(tooBig.code).toBe(Code.InvalidArgument);
    expect(tooBig.findDetails(BadRequestSchema)[0]?.fieldViolations.map((violation) => violation.field)).toEqual(["page_size"]);
    const first = await t.connect.payments.listWebhookDeliveries({ pageSize: 2 }, { headers: merchant.headers });
    const otherFilter = await connectError(
      t.connect.payments.listWebhookDeliveries(
        { pageSize: 2, pageToken: first.nextPageToken, status: WebhookDeliveryStatus.FAILED },
        { headers: merchant.headers },
      ),
    );
    expect(otherFilter.findDetails(BadRequestSchema)[0]?.fieldViolations.map((violation) => violation.reason)).toEqual(["INVALID_PAGE_TOKEN"]);
    const adminTooBig = await grpcError(t.grpc.merchants.listMerchantWebhookDeliveries({ pageSize: 1000 }, t.adminHeaders));
    expect(adminTooBig.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    const badStatus = await grpcError(t.grpc.merchants.listMerchantWebhookDeliveries({ status: 7 as WebhookDeliveryStatus }, t.adminHeaders));
    expect(readGrpcErrorDetails(badStatus).badRequest?.fieldViolations?.map((violation) => violation.field)).toEqual(["status"]);
  });

  it("delete finished deliveries and their attempts after the retention, and keep pending ones", async () => {
    const target = await receiver(answerOk);
    const merchant = await merchantAt(target.url);
    await insertEvents(t.database!.url, Array.from({ length: 3 }, () => ({ merchantId: merchant.id })));
    await pass(dispatcher());
    const [pending] = await insertEvents(t.database!.url, [{ merchantId: merchant.id }]);
    // Fan it out without sending it: an endpoint refused under the strict policy stays PENDING.
    await sql(t.database!.url, "update merchant set notify_url = ? where id = ?", ["http://10.0.0.1/hooks", merchant.id]);
    await pass(dispatcher({ policy: STRICT }));
    const old = new Date(Date.now() - 40 * 86_400_000);
    await sql(t.database!.url, "update webhook_delivery set created_at = ? where merchant_id = ?", [old, merchant.id]);
    const ids = (await deliveriesOf(merchant)).map((delivery) => delivery.id);
    expect(ids).toHaveLength(4);

    await pass(dispatcher({ retentionDays: 30 }));
    const left = await deliveriesOf(merchant);
    expect(left.map((delivery) => [delivery.eventId, delivery.status])).toEqual([[pending, WebhookDeliveryStatus.PENDING]]);
    const attempts = await sql<{ n: number }>(t.database!.url, "select count(*) as n from webhook_attempt where delivery_id in (?)", [ids]);
    expect(Number(attempts[0]!.n)).toBe(1);
  });
});

describe("leases", () => {
  it("record nothing for a holder whose lease was taken over, and the outcome of the holder that took it", async () => {
    const merchant = await merchantAt("https://shop.example/notify");
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: merchant.id }]);
    // Fan it out; its one attempt times out waiting for a DNS answer that never comes.
    await pass(dispatcher({ lookup: () => new Promise(() => {}), webhooks: { timeoutMs: 50 } }));
    const [delivery] = await deliveriesOf(merchant, eventId);
    await sql(t.database!.url, "update webhook_delivery set status = 'PENDING', next_attempt_at = ?, lease_until = null where id = ?", [new Date(), delivery!.id]);

    const uow = t.app.uow;
    const now = new Date();
    const [first] = await uow.transaction(uow.session(), (tx) => claimDeliveries(tx, [delivery!.id], "replica-a", now, new Date(now.getTime() - 1)));
    expect(first?.leaseHolder).toBe("replica-a");
    const later = new Date();
    const [second] = await uow.transaction(uow.session(), (tx) => claimDeliveries(tx, [delivery!.id], "replica-b", later, new Date(later.getTime() + 60_000)));
    expect(second?.leaseHolder).toBe("replica-b");
    const held = await uow.transaction(uow.session(), (tx) => claimDeliveries(tx, [delivery!.id], "replica-c", new Date(), new Date(Date.now() + 60_000)));
    expect(held).toEqual([]);

    const attempt = (number: number, httpStatus: number) => ({
      id: newId(),
      deliveryId: delivery!.id,
      number,
      startedAt: new Date(),
      httpStatus,
      latencyMs: 5,
      responseExcerpt: "",
      error: "",
    });
    const base = first!.attemptCount;
    const failedOutcome = { status: "FAILED" as const, attemptCount: base + 1, roundAttempts: 1, nextAttemptAt: null, deliveredAt: null, lastHttpStatus: 500 };
    expect(await uow.rowTransaction(uow.session(), (tx) => recordAttempt(tx, "replica-a", attempt(base + 1, 500), failedOutcome))).toBe(false);
    const okOutcome = { status: "SUCCEEDED" as const, attemptCount: base + 1, roundAttempts: 1, nextAttemptAt: null, deliveredAt: new Date(), lastHttpStatus: 200 };
    expect(await uow.rowTransaction(uow.session(), (tx) => recordAttempt(tx, "replica-b", attempt(base + 1, 200), okOutcome))).toBe(true);
    const [after] = await deliveriesOf(merchant, eventId);
    expect(after!.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    expect(after!.attempts[0]).toMatchObject({ number: base + 1, httpStatus: 200 });
  });
});
