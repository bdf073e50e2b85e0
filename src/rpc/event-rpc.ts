/**
 * WatchPayment and StreamEvents (PaymentService, merchant): server streams over gRPC and Connect,
 * behind the same interceptors as unary calls (authentication, error mapping). The streams come
 * from the event feed (src/events/event-streams.ts); this module decodes, bounds and encodes:
 *
 * - at most `STREAM_MAX_OPEN` streams at once on this replica (more: RESOURCE_EXHAUSTED,
 *   `TOO_MANY_STREAMS`);
 * - a stream lasts at most `STREAM_MAX_SECONDS`, then ends cleanly (OK): the client opens another
 *   (StreamEvents: with the last event id it got);
 * - a stream whose client reads too slowly for the feed ends with RESOURCE_EXHAUSTED
 *   (`STREAM_QUEUE_FULL`), one open while the replica stops with UNAVAILABLE (`SERVER_STOPPING`):
 *   both resume the same way.
 */
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { EventsConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { Violations } from "../errors.js";
import { type EventFeed, FeedSubscriptionEnded } from "../events/event-feed.js";
import { createEventStreams, type PaymentUpdate } from "../events/event-streams.js";
import { checkLookupId } from "../input-text.js";
import type { OutboxEventRow } from "../outbox/outbox-entity.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { type Event, EventSchema, type PaymentEvent, PaymentEventSchema } from "../../gen/payments/v1/event_pb.js";
import { type PaymentService, StreamEventsResponseSchema } from "../../gen/payments/v1/payment_service_pb.js";
import { merchantOf } from "./auth.js";
import { paymentToProto } from "./mappers.js";

export type EventRpc = Pick<ServiceImpl<typeof PaymentService>, "watchPayment" | "streamEvents">;

export interface EventRpcDeps {
  uow: UnitOfWork;
  feed: EventFeed;
  config: EventsConfig;
}

/** An event id as the service makes them: a ULID (26 characters of Crockford base32). */
const EVENT_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** The type of a WatchPayment stream's first message. */
const CURRENT_STATE = "payment.current";

/** An event as StreamEvents sends it: the same fields as the webhook body (event-envelope.ts). */
export function eventToProto(event: Pick<OutboxEventRow, "id" | "eventType" | "merchantId" | "aggregateId" | "createdAt" | "payload">): Event {
  return create(EventSchema, {
    id: event.id,
    type: event.eventType,
    merchantId: event.merchantId,
    objectId: event.aggregateId,
    createdAt: timestampFromDate(event.createdAt),
    data: event.payload as JsonObject,
  });
}

/** A WatchPayment message: the payment as stored when sent, with the event that changed it (none in the first). */
export function paymentUpdateToProto(update: PaymentUpdate): PaymentEvent {
  const { event } = update;
  return create(PaymentEventSchema, {
    eventId: event?.id ?? "",
    type: event?.eventType ?? CURRENT_STATE,
    payment: paymentToProto(update.view),
    createdAt: timestampFromDate(event?.createdAt ?? update.readAt),
    data: event ? (event.payload as JsonObject) : undefined,
  });
}

function errorInfo(reason: string, metadata: Record<string, string> = {}) {
  return { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: "payments.v1", metadata }) };
}

/** The status a stream ends with when the feed ended its subscription. */
function endedError(error: FeedSubscriptionEnded, resume: string): ConnectError {
  if (error.reason === "STREAM_QUEUE_FULL") {
    return new ConnectError(`${error.message}; ${resume}`, Code.ResourceExhausted, undefined, [errorInfo(error.reason)]);
  }
  return new ConnectError(`${error.message}; ${resume}`, Code.Unavailable, undefined, [errorInfo(error.reason)]);
}

export function createEventRpc(deps: EventRpcDeps): EventRpc {
  const streams = createEventStreams({ uow: deps.uow, feed: deps.feed });
  const { maxOpenStreams, streamMaxSeconds } = deps.config;
  let open = 0;

  /**
   * Runs one stream within the limits: counted against STREAM_MAX_OPEN while open, ended cleanly
   * after STREAM_MAX_SECONDS (or when the client goes away), feed endings mapped to statuses.
   */
  async function* bounded<T>(callerSignal: AbortSignal, resume: string, messages: (signal: AbortSignal) => AsyncIterable<T>): AsyncGenerator<T> {
    if (open >= maxOpenStreams) {
      throw new ConnectError(
        `this server already serves ${maxOpenStreams} streams; try again later`,
        Code.ResourceExhausted,
        undefined,
        [errorInfo("TOO_MANY_STREAMS", { limit: String(maxOpenStreams) })],
      );
    }
    open++;
    const lifetime = new AbortController();
    const timer = setTimeout(() => lifetime.abort(), streamMaxSeconds * 1000);
    try {
      yield* messages(AbortSignal.any([callerSignal, lifetime.signal]));
    } catch (error) {
      if (error instanceof FeedSubscriptionEnded) throw endedError(error, resume);
      throw error;
    } finally {
      clearTimeout(timer);
      open--;
    }
  }

  return {
    async *watchPayment(req, ctx) {
      const merchant = merchantOf(ctx);
      const v = new Violations();
      checkLookupId(v, "payment_id", req.paymentId);
      v.throwIfAny();
      for await (const update of bounded(ctx.signal, "watch the payment again", (signal) =>
        streams.watchPayment(merchant.id, req.paymentId, signal),
      )) {
        yield paymentUpdateToProto(update);
      }
    },

    async *streamEvents(req, ctx) {
      const merchant = merchantOf(ctx);
      const afterEventId = req.afterEventId === "" ? undefined : req.afterEventId;
      if (afterEventId !== undefined && !EVENT_ID.test(afterEventId)) {
        const v = new Violations();
        if (checkLookupId(v, "after_event_id", afterEventId)) v.add("after_event_id", "INVALID_FORMAT", "must be an event id (26 characters)");
        v.throwIfAny();
      }
      for await (const event of bounded(ctx.signal, "resume with after_event_id set to the last event received", (signal) =>
        streams.merchantEvents(merchant.id, afterEventId, signal),
      )) {
        yield create(StreamEventsResponseSchema, { event: eventToProto(event) });
      }
    },
  };
}
