import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * Every inbound channel callback as received (raw bytes, headers), with the verification verdict
 * and what it changed: the answer to "did the channel tell us?".
 */
export const CallbackLog = defineEntity({
  name: "CallbackLog",
  tableName: "callback_log",
  indexes: [
    { name: "callback_log_payment_idx", properties: ["paymentId"] },
    { name: "callback_log_notification_idx", properties: ["channel", "notificationId"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    channel: p.string().length(16),
    receivedAt: p.datetime(3),
    headers: p.json<Record<string, string>>(),
    rawBody: p.blob(),
    /** `applied`, `duplicate`, `rejected`, `unknown_payment`, `mismatch`, `ignored`, `error`. */
    verdict: p.string().length(32),
    reason: p.string().length(255).nullable(),
    notificationId: p.string().length(128).nullable(),
    paymentId: p.string().length(26).nullable(),
    /** The transition it caused, e.g. `PENDING->SUCCEEDED`, or null. */
    effect: p.string().length(64).nullable(),
    answerStatus: p.integer(),
  },
});
export type CallbackLogRow = InferEntity<typeof CallbackLog>;

/** One row per channel notification applied: the unique key makes re-sends no-ops. */
export const CallbackInbox = defineEntity({
  name: "CallbackInbox",
  tableName: "callback_inbox",
  uniques: [{ name: "callback_inbox_uq", properties: ["channel", "notificationId"] }],
  properties: {
    id: p.string().length(26).primary(),
    channel: p.string().length(16),
    notificationId: p.string().length(128),
    paymentId: p.string().length(26).nullable(),
    createdAt: p.datetime(3),
  },
});
