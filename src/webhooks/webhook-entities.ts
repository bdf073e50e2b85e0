import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/** Where a webhook delivery stands. */
export type WebhookDeliveryStatus = "PENDING" | "SUCCEEDED" | "FAILED";

/**
 * One event sent to one merchant endpoint. Made by the fan-out (one per event: `event_id` is
 * unique, so a second fan-out of the same event adds nothing), then claimed by one replica at a
 * time through its lease: `lease_holder` is the claim's own token, so a replica whose lease
 * expired cannot record an outcome over the replica that took the delivery over.
 */
export const WebhookDelivery = defineEntity({
  name: "WebhookDelivery",
  tableName: "webhook_delivery",
  uniques: [{ name: "webhook_delivery_event_uq", properties: ["eventId"] }],
  indexes: [
    { name: "webhook_delivery_due_idx", properties: ["status", "nextAttemptAt"] },
    { name: "webhook_delivery_merchant_idx", properties: ["merchantId", "id"] },
    { name: "webhook_delivery_object_idx", properties: ["objectId", "id"] },
    { name: "webhook_delivery_created_idx", properties: ["createdAt"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    eventId: p.string().length(26),
    merchantId: p.string().length(26),
    objectId: p.string().length(26),
    eventType: p.string().length(64),
    url: p.string().length(512),
    /** `scheme://host:port` of `url`: the unit of the per-endpoint concurrency cap. */
    endpoint: p.string().length(512),
    status: p.string().length(16).$type<WebhookDeliveryStatus>(),
    /** Attempts made so far, across redeliveries (the number of the last one). */
    attemptCount: p.integer(),
    /** Attempts made in the current retry round: which wait of the schedule comes next. */
    roundAttempts: p.integer(),
    nextAttemptAt: p.datetime(3).nullable(),
    leaseUntil: p.datetime(3).nullable(),
    leaseHolder: p.string().length(64).nullable(),
    createdAt: p.datetime(3),
    deliveredAt: p.datetime(3).nullable(),
    lastHttpStatus: p.integer().nullable(),
  },
});
export type WebhookDeliveryRow = InferEntity<typeof WebhookDelivery>;

/** One POST of a delivery; only the last {@link MAX_ATTEMPTS_KEPT} of a delivery are kept. */
export const WebhookAttempt = defineEntity({
  name: "WebhookAttempt",
  tableName: "webhook_attempt",
  uniques: [{ name: "webhook_attempt_delivery_number_uq", properties: ["deliveryId", "number"] }],
  properties: {
    id: p.string().length(26).primary(),
    deliveryId: p.string().length(26),
    number: p.integer(),
    startedAt: p.datetime(3),
    /** 0 when there was no answer. */
    httpStatus: p.integer(),
    latencyMs: p.integer(),
    /** The first 256 bytes of the answer's body, as text. */
    responseExcerpt: p.string().length(256),
    /** Why there was no answer (`timeout`, `connection refused`, a URL refusal reason); empty otherwise. */
    error: p.string().length(255),
  },
});
export type WebhookAttemptRow = InferEntity<typeof WebhookAttempt>;
