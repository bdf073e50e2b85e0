/**
 * An event as every consumer outside the process sees it: the webhook body, the bus message and
 * (as protobuf) the StreamEvents message carry the same fields, so a consumer can move between
 * them and deduplicate by `id` across all three.
 */
import type { OutboxEventRow } from "../outbox/outbox-entity.js";

/** The JSON object of an event (webhook body, bus message). Field names are part of the public format. */
export interface EventEnvelope {
  /** Stable event id (ULID): deduplicate by it. */
  id: string;
  /** `payment.succeeded`, `refund.failed`, `settlement.created`, `payout.paid`, ... */
  type: string;
  /** ISO 8601 UTC, when the change was committed. */
  created_at: string;
  merchant_id: string;
  /** The payment (for payment and refund events), settlement order or payout the event is about. */
  object_id: string;
  /** The object after the change and what caused it; amounts are strings of minor units. */
  data: Record<string, unknown>;
}

export function eventEnvelope(event: Pick<OutboxEventRow, "id" | "eventType" | "createdAt" | "merchantId" | "aggregateId" | "payload">): EventEnvelope {
  return {
    id: event.id,
    type: event.eventType,
    created_at: event.createdAt.toISOString(),
    merchant_id: event.merchantId,
    object_id: event.aggregateId,
    data: event.payload,
  };
}

/** The exact bytes sent: the envelope as compact JSON in UTF-8. */
export function eventBody(event: Parameters<typeof eventEnvelope>[0]): Buffer {
  return Buffer.from(JSON.stringify(eventEnvelope(event)), "utf8");
}
