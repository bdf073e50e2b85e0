/**
 * Webhook deliveries end to end in one service with its event loops running: real merchant
 * endpoints on port 0, events written as a state change writes them, and the merchant's and the
 * admin's RPCs over Connect and gRPC. A short retry schedule (3 retries, 100 ms apart) stands in
 * for the day-long one.
 */
import { Code } from "@connectrpc/connect";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { WebhookDeliveryStatus } from "../../gen/payments/v1/event_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, eventually, grpcError } from "../support/waiting.js";
import { answerOk, hang, insertEvents, startReceiver, type WebhookReceiver } from "../support/webhook-fixtures.js";

const TIMEOUT_MS = 3000;
let t: TestApp;
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  const defaults = loadConfig({});
  t = await startTestApp({
    runEventWorkers: true,
    config: {
      notifyUrls: { allowHttp: true, allowPrivateNetworks: true },
      events: { ...defaults.events, pollIntervalMs: 50 },
      webhooks: { ...defaults.webhooks, timeoutMs: TIMEOUT_MS, maxPerEndpoint: 2, retryScheduleMs: [100, 100, 100] },
    },
  });
});
afterAll(async () => {
  await t?.stop();
  await Promise.all(receivers.map((receiver) => receiver.close()));
});

async function receiver(...args: Parameters<typeof startReceiver>): Promise<WebhookReceiver> {
  const started = await startReceiver(...args);
  receivers.push(started);
  return started;
}

async function merchantAt(url: string) {
  const created = await t.grpc.merchants.createMerchant({ name: "Hook Shop", notifyUrl: url }, t.adminHeaders);
  return { id: created.merchant!.id, headers: { authorization: `Bearer ${created.apiKey}` }, webhookSecret: created.webhookSecret };
}

async function deliveriesOf(merchant: { headers: Record<string, string> }, eventId?: string) {
  const page = await t.connect.payments.listWebhookDeliveries({ eventId: eventId ?? "" }, { headers: merchant.headers });
  return page.deliveries;
}

async function finalDelivery(merchant: { headers: Record<string, string> }, eventId: string) {
  const [delivery] = await eventually(
    () => deliveriesOf(merchant, eventId),
    (list) => list.length === 1 && list[0]!.status !== WebhookDeliveryStatus.PENDING,
  );
  return delivery!;
}

describe("webhook deliveries", () => {
  it("retry an endpoint that fails twice until it answers 2xx, recording status, latency and the answer's first bytes", async () => {
    let calls = 0;
    const endpoint = await receiver((_hook, response) => {
      calls++;
      if (calls <= 2) {
        response.statusCode = 503;
        response.end(`busy ${calls}`);
      } else response.end("thanks");
    });
    const merchant = await merchantAt(endpoint.url);
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: merchant.id, eventType: "payment.succeeded" }]);

    const delivery = await finalDelivery(merchant, eventId!);
    expect(delivery.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    expect(delivery.attemptCount).toBe(3);
    expect(delivery.deliveredAt).toBeDefined();
    expect(delivery.nextAttemptAt).toBeUndefined();
    expect(delivery.url).toBe(endpoint.url);
    expect(delivery.attempts.map((a) => [a.number, a.httpStatus, a.responseExcerpt, a.error])).toEqual([
      [3, 200, "thanks", ""],
      [2, 503, "busy 2", ""],
      [1, 503, "busy 1", ""],
    ]);
    for (const attempt of delivery.attempts) {
      expect(attempt.latencyMs).toBeGreaterThanOrEqual(0);
      expect(attempt.startedAt).toBeDefined();
    }
    // The same event and the same bytes on every attempt.
    expect(endpoint.received).toHaveLength(3);
    expect(new Set(endpoint.received.map((hook) => hook.eventId))).toEqual(new Set([eventId]));
    expect(new Set(endpoint.received.map((hook) => hook.body.toString("hex"))).size).toBe(1);
    const hook = endpoint.received[0]!;
    expect(hook.headers["content-type"]).toBe("application/json");
    expect(hook.headers["payments-event-type"]).toBe("payment.succeeded");
    expect(hook.headers["user-agent"]).toMatch(/^payments-webhooks\//);
    const body = JSON.parse(hook.body.toString("utf8"));
    expect(body).toMatchObject({ id: eventId, type: "payment.succeeded", merchant_id: merchant.id });
  });

  it("let another merchant's delivery succeed while an endpoint hangs, then record the hung attempts as timeouts", async () => {
    const hanging = await receiver(hang);
    const healthy = await receiver(answerOk);
    const slowMerchant = await merchantAt(hanging.url);
    const otherMerchant = await merchantAt(healthy.url);
    const hungIds = await insertEvents(
      t.database!.url,
      Array.from({ length: 5 }, () => ({ merchantId: slowMerchant.id })),
    );
    await eventually(() => hanging.open(), (open) => open === 2);
    const [otherId] = await insertEvents(t.database!.url, [{ merchantId: otherMerchant.id }]);

    const delivered = await finalDelivery(otherMerchant, otherId!);
    expect(delivered.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    // Delivered while the hanging endpoint still held its requests: no attempt of it had ended yet.
    const hungSoFar = await deliveriesOf(slowMerchant);
    expect(hungSoFar.flatMap((delivery) => delivery.attempts)).toEqual([]);
    // Five deliveries due, never more than WEBHOOK_MAX_PER_ENDPOINT (2) open to the endpoint.
    expect(hanging.maxOpen()).toBe(2);

    const attempted = await eventually(
      async () => (await deliveriesOf(slowMerchant)).filter((delivery) => delivery.attempts.length > 0),
      (list) => list.length > 0,
      TIMEOUT_MS * 3,
    );
    expect(hungIds).toContain(attempted[0]!.eventId);
    expect(attempted[0]!.attempts.at(-1)).toMatchObject({ number: 1, httpStatus: 0, error: "timeout", responseExcerpt: "" });
    expect(attempted[0]!.attempts.at(-1)!.latencyMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(hanging.maxOpen()).toBe(2);
  }, 30_000);

  it("mark a delivery FAILED after the schedule against an endpoint that answers 500, and redeliver the same event once it is fixed", async () => {
    let broken = true;
    const endpoint = await receiver((_hook, response) => {
      response.statusCode = broken ? 500 : 204;
      response.end(broken ? "internal error" : undefined);
    });
    const merchant = await merchantAt(endpoint.url);
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: merchant.id, eventType: "refund.succeeded" }]);

    const failed = await finalDelivery(merchant, eventId!);
    expect(failed.status).toBe(WebhookDeliveryStatus.FAILED);
    expect(failed.attemptCount).toBe(4);
    expect(failed.attempts.every((attempt) => attempt.httpStatus === 500)).toBe(true);
    expect(failed.nextAttemptAt).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(endpoint.received).toHaveLength(4);

    // Another merchant cannot see or redeliver it.
    const stranger = await merchantAt("");
    const hidden = await connectError(t.connect.payments.redeliverWebhook({ deliveryId: failed.id }, { headers: stranger.headers }));
    expect(hidden.code).toBe(Code.NotFound);
    expect(hidden.message).toContain("not found");
    const hiddenGrpc = await grpcError(t.grpc.payments.redeliverWebhook({ deliveryId: failed.id }, stranger.headers));
    expect(hiddenGrpc.code).toBe(status.NOT_FOUND);
    expect(readGrpcErrorDetails(hiddenGrpc).errorInfo?.reason).toBe("WEBHOOK_DELIVERY_NOT_FOUND");
    expect(await deliveriesOf(stranger)).toEqual([]);

    broken = false;
    const restarted = await t.connect.payments.redeliverWebhook({ deliveryId: failed.id }, { headers: merchant.headers });
    expect(restarted.delivery).toMatchObject({ id: failed.id, eventId, status: WebhookDeliveryStatus.PENDING });
    expect(restarted.delivery!.nextAttemptAt).toBeDefined();

    const succeeded = await finalDelivery(merchant, eventId!);
    expect(succeeded.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    expect(succeeded.attemptCount).toBe(5);
    expect(succeeded.attempts[0]).toMatchObject({ number: 5, httpStatus: 204 });
    expect(endpoint.received).toHaveLength(5);
    expect(endpoint.received.at(-1)!.eventId).toBe(eventId);
    expect(endpoint.received.at(-1)!.body.equals(endpoint.received[0]!.body)).toBe(true);

    // The admin sees every merchant's, and may redeliver any.
    const admin = await t.connect.merchants.listMerchantWebhookDeliveries({ merchantId: merchant.id }, { headers: t.adminHeaders });
    expect(admin.deliveries.map((delivery) => delivery.id)).toEqual([failed.id]);
    const again = await t.grpc.merchants.redeliverMerchantWebhook({ deliveryId: failed.id }, t.adminHeaders);
    expect(again.delivery).toMatchObject({ id: failed.id, eventId, status: WebhookDeliveryStatus.PENDING });
    await eventually(() => endpoint.received.length, (count) => count === 6);
    const missing = await connectError(t.connect.merchants.redeliverMerchantWebhook({ deliveryId: "01J00000000000000000000000" }, { headers: t.adminHeaders }));
    expect(missing.code).toBe(Code.NotFound);
  }, 30_000);

  it("deliver payment events to the payment's own notify URL when it has one, else to the merchant's", async () => {
    const merchantEndpoint = await receiver(answerOk);
    const paymentEndpoint = await receiver(answerOk);
    const merchant = await merchantAt(merchantEndpoint.url);
    const payment = await t.grpc.payments.createPayment(
      { merchantOrderNo: `hook-${Date.now()}`, currency: "CNY", amount: 100n, channel: Channel.ALIPAY, subject: "Tea", notifyUrl: paymentEndpoint.url },
      merchant.headers,
    );
    const paymentId = payment.payment!.id;
    const [ownId, payoutId] = await insertEvents(t.database!.url, [
      { merchantId: merchant.id, aggregateId: paymentId, eventType: "payment.closed" },
      { merchantId: merchant.id, eventType: "payout.paid" },
    ]);
    expect((await finalDelivery(merchant, ownId!)).url).toBe(paymentEndpoint.url);
    expect((await finalDelivery(merchant, payoutId!)).url).toBe(merchantEndpoint.url);
    expect(paymentEndpoint.received.map((hook) => hook.eventId)).toContain(ownId);
    expect(merchantEndpoint.received.map((hook) => hook.eventId)).toContain(payoutId);
    // Filter by object: only the payment's deliveries.
    const byObject = await t.connect.payments.listWebhookDeliveries({ objectId: paymentId }, { headers: merchant.headers });
    expect(byObject.deliveries.every((delivery) => delivery.objectId === paymentId)).toBe(true);
    expect(byObject.deliveries.map((delivery) => delivery.eventId)).toContain(ownId);
  });

  it("make no delivery for a merchant without a notify URL", async () => {
    const merchant = await merchantAt("");
    const [eventId] = await insertEvents(t.database!.url, [{ merchantId: merchant.id }]);
    const marker = await receiver(answerOk);
    const markerMerchant = await merchantAt(marker.url);
    const [markerId] = await insertEvents(t.database!.url, [{ merchantId: markerMerchant.id }]);
    await finalDelivery(markerMerchant, markerId!);
    // The later event was fanned out, so the earlier one was passed over.
    expect(await deliveriesOf(merchant, eventId)).toEqual([]);
  });
});

describe("webhook deliveries on the embedded database", () => {
  it("deliver a payment's events from the API to its own notify URL", async () => {
    const defaults = loadConfig({});
    const embedded = await startTestApp({
      database: "sqlite",
      runEventWorkers: true,
      config: {
        notifyUrls: { allowHttp: true, allowPrivateNetworks: true },
        events: { ...defaults.events, pollIntervalMs: 50 },
        webhooks: { ...defaults.webhooks, retryScheduleMs: [100] },
      },
    });
    try {
      const endpoint = await receiver(answerOk);
      const merchant = await embedded.createMerchant("Embedded Shop");
      const created = await embedded.grpc.payments.createPayment(
        { merchantOrderNo: `embedded-${Date.now()}`, currency: "CNY", amount: 100n, channel: Channel.ALIPAY, subject: "Tea", notifyUrl: endpoint.url },
        merchant.headers,
      );
      const paymentId = created.payment!.id;
      const [delivery] = await eventually(
        async () => (await embedded.connect.payments.listWebhookDeliveries({ objectId: paymentId }, { headers: merchant.headers })).deliveries,
        (list) => list.some((found) => found.status === WebhookDeliveryStatus.SUCCEEDED),
      );
      expect(delivery).toMatchObject({ objectId: paymentId, url: endpoint.url, status: WebhookDeliveryStatus.SUCCEEDED, attemptCount: 1 });
      expect(endpoint.received.map((hook) => hook.eventId)).toContain(delivery!.eventId);
      expect(JSON.parse(endpoint.received[0]!.body.toString("utf8")).object_id).toBe(paymentId);
    } finally {
      await embedded.stop();
    }
  });
});
