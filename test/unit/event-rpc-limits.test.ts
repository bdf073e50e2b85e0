/**
 * How the stream RPCs end when the feed ends a subscription, without a database or a network: a
 * subscriber that fell behind its queue limit gets RESOURCE_EXHAUSTED (STREAM_QUEUE_FULL) telling it
 * to resume with after_event_id, a stopping replica UNAVAILABLE (SERVER_STOPPING), and the
 * open-stream limit counts only streams still open.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, createHandlerContext } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { PaymentService, StreamEventsRequestSchema } from "../../gen/payments/v1/payment_service_pb.js";
import { loadConfig } from "../../src/config.js";
import type { UnitOfWork } from "../../src/db/unit-of-work.js";
import { type EventFeed, type FeedSubscription, FeedSubscriptionEnded, type SubscriptionEndReason } from "../../src/events/event-feed.js";
import type { MerchantRow } from "../../src/merchants/merchant-entity.js";
import { callerKey } from "../../src/rpc/auth.js";
import { createEventRpc } from "../../src/rpc/event-rpc.js";

/** A feed whose subscriptions wait until `end(reason)` ends them all. */
function endableFeed() {
  const waiting = new Set<(error: FeedSubscriptionEnded) => void>();
  const feed = {
    async subscribe() {
      let fail: (error: FeedSubscriptionEnded) => void = () => {};
      const ended = new Promise<never>((_, reject) => {
        fail = reject;
      });
      waiting.add(fail);
      const subscription: FeedSubscription = {
        position: 0n,
        buffered: 0,
        close: () => waiting.delete(fail),
        [Symbol.asyncIterator]: () => ({ next: () => ended }),
      };
      return subscription;
    },
  } as unknown as EventFeed;
  return {
    feed,
    open: () => waiting.size,
    end(reason: SubscriptionEndReason) {
      for (const fail of waiting) fail(new FeedSubscriptionEnded(reason));
      waiting.clear();
    },
  };
}

function merchantContext() {
  const values = createContextValues();
  values.set(callerKey, { kind: "merchant", merchant: { id: "01JF0000000000000000000002" } as MerchantRow });
  return createHandlerContext({
    service: PaymentService,
    method: PaymentService.method.streamEvents,
    protocolName: "grpc",
    requestMethod: "POST",
    url: "http://localhost/payments.v1.PaymentService/StreamEvents",
    contextValues: values,
  });
}

async function endOf(stream: AsyncIterable<unknown>): Promise<ConnectError> {
  try {
    for await (const _ of stream) {
      // no message is expected
    }
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the stream to fail");
}

const config = { ...loadConfig({}).events, maxOpenStreams: 1 };

describe("StreamEvents endings", () => {
  it.each([
    ["STREAM_QUEUE_FULL", Code.ResourceExhausted, /resume with after_event_id/],
    ["SERVER_STOPPING", Code.Unavailable, /server is stopping/],
  ] as const)("maps a subscription ended by %s to %s with its ErrorInfo", async (reason, code, message) => {
    const { feed, end, open } = endableFeed();
    const rpc = createEventRpc({ uow: {} as UnitOfWork, feed, config });
    const ending = endOf(rpc.streamEvents(create(StreamEventsRequestSchema, {}), merchantContext()));
    await waitUntil(() => open() === 1);
    end(reason);
    const error = await ending;
    expect(error.code).toBe(code);
    expect(error.rawMessage).toMatch(message);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
  });

  it("frees its place under STREAM_MAX_OPEN when it ends", async () => {
    const { feed, end, open } = endableFeed();
    const rpc = createEventRpc({ uow: {} as UnitOfWork, feed, config });
    const first = endOf(rpc.streamEvents(create(StreamEventsRequestSchema, {}), merchantContext()));
    await waitUntil(() => open() === 1);
    const refused = await endOf(rpc.streamEvents(create(StreamEventsRequestSchema, {}), merchantContext()));
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.findDetails(ErrorInfoSchema)[0]?.reason).toBe("TOO_MANY_STREAMS");
    end("STREAM_QUEUE_FULL");
    await first;
    const next = endOf(rpc.streamEvents(create(StreamEventsRequestSchema, {}), merchantContext()));
    await waitUntil(() => open() === 1);
    end("SERVER_STOPPING");
    expect((await next).code).toBe(Code.Unavailable);
  });
});

/** Polls a condition of the fake feed (no database here: a few milliseconds each). */
async function waitUntil(condition: () => boolean): Promise<void> {
  for (let tries = 0; tries < 200 && !condition(); tries++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}
