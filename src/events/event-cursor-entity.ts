import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * How far one reader of the event feed has got, shared by every replica: `sequence` (the last
 * `seq` handed out by the sequencer), `webhooks` (the last event fanned out to deliveries), `nats`
 * (the last event published to the bus). A reader that must run on one replica at a time holds
 * the row's lease (`holder`, `lease_until`) or locks the row in its transaction.
 */
export const EventCursor = defineEntity({
  name: "EventCursor",
  tableName: "event_cursor",
  properties: {
    name: p.string().length(32).primary(),
    position: p.bigint(),
    holder: p.string().length(64).nullable(),
    leaseUntil: p.datetime(3),
    updatedAt: p.datetime(3),
  },
});
export type EventCursorRow = InferEntity<typeof EventCursor>;
