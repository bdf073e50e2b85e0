/**
 * Stream limits and shutdown: a stream ends cleanly (OK) after STREAM_MAX_SECONDS over gRPC and
 * Connect, and the client resumes; app.stop() with streams open ends them (UNAVAILABLE,
 * SERVER_STOPPING) and returns. And the core stream flow on the embedded database: StreamEvents
 * live and resumed, WatchPayment from the current state to a success paid through the simulator.
 */
import { Code } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { connectServerStream, grpcServerStream } from "../support/event-stream-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

type Merchant = Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

function createPayment(t: TestApp, owner: Merchant) {
  return t.grpc.payments
    .createPayment(
      { merchantOrderNo: `limits-${Date.now()}-${++orderSeq}`, currency: "CNY", amount: 300n, channel: Channel.ALIPAY, subject: "Jasmine tea" },
      owner.headers,
    )
    .then((created) => created.payment!);
}

function streams(t: TestApp, owner: Merchant, afterEventId = "") {
  return {
    grpc: grpcServerStream(`127.0.0.1:${t.app.grpcPort}`, PaymentService.method.streamEvents, { afterEventId }, owner.headers),
    connect: connectServerStream((client, options) => client.streamEvents({ afterEventId }, options), t.connect.payments, owner.headers),
  };
}

describe("stream lifetime (STREAM_MAX_SECONDS = 1)", () => {
  let t: TestApp;
  let shop: Merchant;
  beforeAll(async () => {
    t = await startTestApp({ runEventWorkers: true, config: { events: { ...loadConfig({}).events, pollIntervalMs: 50, streamMaxSeconds: 1 } } });
    shop = await t.createMerchant("Short-lived Shop");
  });
  afterAll(() => t?.stop());

  it("ends StreamEvents cleanly over gRPC and Connect once its time is up; resuming from the last id loses nothing", async () => {
    const { grpc, connect } = streams(t, shop);
    await eventually(() => t.app.events.subscriberCount, (n) => n === 2);
    expect(await grpc.ended).toEqual({});
    expect(await connect.ended).toEqual({});
    expect(t.app.events.subscriberCount).toBe(0);

    // Each stream lives a second; the client resumes after the last id it got until it has both.
    const marker = await createPayment(t, shop);
    const markerEventId = await eventually(
      async () => (await t.app.db.em().getConnection().execute("select id from outbox_event where aggregate_id = ? and seq is not null", [marker.id]))[0]?.id as string | undefined,
      (id) => id !== undefined,
    );
    const payments = [await createPayment(t, shop), await createPayment(t, shop)];
    const received: string[] = [];
    let last = markerEventId!;
    for (let attempt = 0; attempt < 20 && received.length < 2; attempt++) {
      const reader = streams(t, shop, last)[attempt % 2 === 0 ? "grpc" : "connect"];
      expect(await reader.ended).toEqual({});
      for (const message of reader.messages) {
        received.push(message.event!.objectId);
        last = message.event!.id;
      }
    }
    expect(received).toEqual(payments.map((payment) => payment.id));
  });

  it("ends WatchPayment cleanly once its time is up", async () => {
    const payment = await createPayment(t, shop);
    const reader = grpcServerStream(`127.0.0.1:${t.app.grpcPort}`, PaymentService.method.watchPayment, { paymentId: payment.id }, shop.headers);
    expect(await reader.ended).toEqual({});
    expect(reader.messages.map((message) => message.type)).toEqual(["payment.current"]);
  });
});

describe("stopping with streams open", () => {
  it("ends open streams with UNAVAILABLE (SERVER_STOPPING) and stop() returns", async () => {
    const t = await startTestApp({ runEventWorkers: true });
    const shop = await t.createMerchant("Stopping Shop");
    const payment = await createPayment(t, shop);
    const { grpc, connect } = streams(t, shop);
    const watch = grpcServerStream(`127.0.0.1:${t.app.grpcPort}`, PaymentService.method.watchPayment, { paymentId: payment.id }, shop.headers);
    await eventually(() => t.app.events.subscriberCount, (n) => n === 3);
    await eventually(() => watch.messages.length, (n) => n === 1);

    await t.stop();
    const [viaGrpc, viaConnect, watched] = await Promise.all([grpc.ended, connect.ended, watch.ended]);
    expect(viaGrpc.code).toBe(Code.Unavailable);
    expect(readGrpcErrorDetails(viaGrpc.error as ServiceError).errorInfo?.reason).toBe("SERVER_STOPPING");
    expect(viaConnect.code).toBe(Code.Unavailable);
    expect(watched.code).toBe(Code.Unavailable);
    expect(readGrpcErrorDetails(watched.error as ServiceError).errorInfo?.reason).toBe("SERVER_STOPPING");
  });
});

describe("streams on the embedded database", () => {
  let t: TestApp;
  let shop: Merchant;
  beforeAll(async () => {
    t = await startTestApp({ database: "sqlite", runEventWorkers: true, config: { events: { ...loadConfig({}).events, pollIntervalMs: 50 } } });
    shop = await t.createMerchant("Embedded Shop");
  });
  afterAll(() => t?.stop());

  it("streams events live, resumes after the last id without a gap, and watches a payment to its success", async () => {
    const live = streams(t, shop).grpc;
    await eventually(() => t.app.events.subscriberCount, (n) => n === 1);
    const payment = await createPayment(t, shop);
    const watch = connectServerStream((client, options) => client.watchPayment({ paymentId: payment.id }, options), t.connect.payments, shop.headers);
    await eventually(() => watch.messages.length, (n) => n === 1);
    await eventually(() => live.messages.length, (n) => n === 1);
    live.cancel();
    await live.ended;

    t.simulator.pay("alipay", payment.paymentNo);
    await eventually(() => watch.messages.length, (n) => n === 2);
    expect(watch.messages.map((message) => [message.type, message.payment?.status])).toEqual([
      ["payment.current", PaymentStatus.PENDING],
      ["payment.succeeded", PaymentStatus.SUCCEEDED],
    ]);
    watch.cancel();
    await watch.ended;

    const resumed = streams(t, shop, live.messages[0]!.event!.id).connect;
    await eventually(() => resumed.messages.length, (n) => n === 1);
    expect(resumed.messages.map((message) => [message.event?.type, message.event?.objectId])).toEqual([["payment.succeeded", payment.id]]);
    resumed.cancel();
    await resumed.ended;
  });
});
