import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * An event written in the same transaction as the state change it describes. Relays claim
 * undelivered rows by a conditional UPDATE of `lease_until`, so several processes can relay.
 */
export const OutboxEvent = defineEntity({
  name: "OutboxEvent",
  tableName: "outbox_event",
  indexes: [
    { name: "outbox_pending_idx", properties: ["deliveredAt", "availableAt"] },
    { name: "outbox_aggregate_idx", properties: ["aggregateId", "id"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    merchantId: p.string().length(26),
    aggregateId: p.string().length(26),
    eventType: p.string().length(64),
    payload: p.json<Record<string, unknown>>(),
    createdAt: p.datetime(3),
    /** Not before this time (back-off after a failed delivery). */
    availableAt: p.datetime(3),
    leaseUntil: p.datetime(3).nullable(),
    attempts: p.integer().default(0),
    deliveredAt: p.datetime(3).nullable(),
    lastError: p.string().length(255).nullable(),
  },
});
export type OutboxEventRow = InferEntity<typeof OutboxEvent>;
