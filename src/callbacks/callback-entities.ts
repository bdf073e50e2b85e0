import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * Every inbound channel callback with the verification verdict and what it changed: the answer to
 * "did the channel tell us?". Bounded per row (callback-record.ts): an unverified body keeps a
 * 512-byte excerpt, a verified one the body with secrets redacted (at most 32 KiB); both keep the
 * SHA-256 and length of the bytes received and a capped subset of headers. Rows older than
 * CALLBACK_LOG_RETENTION_DAYS are deleted (callback-retention.ts).
 */
export const CallbackLog = defineEntity({
  name: "CallbackLog",
  tableName: "callback_log",
  indexes: [
    { name: "callback_log_payment_idx", properties: ["paymentId"] },
    { name: "callback_log_notification_idx", properties: ["channel", "notificationId"] },
    { name: "callback_log_received_idx", properties: ["receivedAt"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    channel: p.string().length(16),
    receivedAt: p.datetime(3),
    /** Known header names only, each value capped; never credentials. */
    headers: p.json<Record<string, string>>(),
    /** What is kept of the body: see `bodyForm`. */
    rawBody: p.blob(),
    /** SHA-256 (hex) of the body as received; null only on rows older than the bounded log. */
    bodySha256: p.string().length(64).nullable(),
    /** Length in bytes of the body as received. */
    bodyBytes: p.integer().nullable(),
    /** `excerpt`: the first bytes of the body; `redacted`: the verified body with secrets replaced. */
    bodyForm: p.string().length(16).nullable(),
    /** `applied`, `duplicate`, `rejected`, `unknown_payment`, `mismatch`, `ignored`, `error`. */
    verdict: p.string().length(32),
    reason: p.string().length(255).nullable(),
    /** Compared byte for byte (binary NO PAD collation on MySQL, SQLite's BINARY). */
    notificationId: p.string().length(128).nullable(),
    paymentId: p.string().length(26).nullable(),
    /** The transition it caused, e.g. `PENDING->SUCCEEDED`, or null. */
    effect: p.string().length(64).nullable(),
    answerStatus: p.integer(),
  },
});
export type CallbackLogRow = InferEntity<typeof CallbackLog>;

/**
 * One row per channel notification applied: the unique key makes re-sends no-ops. Rows are kept
 * for the log's retention, and never less than the channels' re-send windows (callback-retention.ts).
 */
export const CallbackInbox = defineEntity({
  name: "CallbackInbox",
  tableName: "callback_inbox",
  uniques: [{ name: "callback_inbox_uq", properties: ["channel", "notificationId"] }],
  indexes: [{ name: "callback_inbox_created_idx", properties: ["createdAt"] }],
  properties: {
    id: p.string().length(26).primary(),
    channel: p.string().length(16),
    /** Compared byte for byte (binary NO PAD collation on MySQL, SQLite's BINARY). */
    notificationId: p.string().length(128),
    paymentId: p.string().length(26).nullable(),
    createdAt: p.datetime(3),
  },
});
export type CallbackInboxRow = InferEntity<typeof CallbackInbox>;
