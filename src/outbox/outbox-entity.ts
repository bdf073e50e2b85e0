import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * An event, written in the same transaction as the state change it describes (with `seq` null).
 * The sequencer (src/events/event-sequencer.ts) then gives each committed event its place in the
 * feed, `seq`, strictly increasing in the order events became visible: readers that walk by `seq`
 * (streams, webhook fan-out, the bus relay) can never pass an event that commits later. The id is
 * the event's public, stable id.
 */
export const OutboxEvent = defineEntity({
  name: "OutboxEvent",
  tableName: "outbox_event",
  indexes: [
    { name: "outbox_merchant_seq_idx", properties: ["merchantId", "seq"] },
    { name: "outbox_aggregate_seq_idx", properties: ["aggregateId", "seq"] },
    { name: "outbox_created_idx", properties: ["createdAt"] },
  ],
  uniques: [{ name: "outbox_seq_unique", properties: ["seq"] }],
  properties: {
    id: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    aggregateId: p.string().length(26),
    eventType: p.string().length(64),
    payload: p.json<Record<string, unknown>>(),
    createdAt: p.datetime(3),
    /** The event's place in the feed; null until the sequencer has seen the event committed. */
    seq: p.bigint().nullable(),
    /**
     * The W3C traceparent of the span that wrote the event, when it was written inside a recorded
     * trace: the webhook deliveries it causes link back to it (observability/tracing.ts).
     */
    traceParent: p.string().length(55).nullable(),
  },
});
export type OutboxEventRow = InferEntity<typeof OutboxEvent>;
