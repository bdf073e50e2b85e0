import { defineEntity, type InferEntity, p } from "@mikro-orm/core";
import type { ChannelOperation } from "../channels/channel-call.js";
import type { ChannelCallOutcome } from "../observability/channel-observer.js";

/**
 * One call the service made to a channel (create, query, close, refund, payout, bill), as the
 * channel observer saw it from outside the adapter: what it was about, how it ended and how long
 * it took. Written in batches by channel-call-recorder.ts, read by the payment timeline (by
 * `payment_no`: refund calls carry their payment's number too), deleted after
 * CHANNEL_CALL_RETENTION_DAYS. No request or answer bodies: `detail` is a bounded summary that
 * the observer made log-safe.
 */
export const ChannelCall = defineEntity({
  name: "ChannelCall",
  tableName: "channel_call",
  indexes: [
    // The timeline: a payment's calls, oldest first.
    { name: "channel_call_payment_idx", properties: ["paymentNo", "startedAt"] },
    // Retention: the oldest rows first.
    { name: "channel_call_started_idx", properties: ["startedAt"] },
  ],
  properties: {
    id: p.string().length(26).primary(),
    startedAt: p.datetime(3),
    /** `alipay`, `wechatpay`, `card`, or a test channel's name. */
    channel: p.string().length(16),
    /** The PaymentChannel operation, e.g. `createPayment`, `queryRefund`, `sendPayout`. */
    operation: p.string().length(32).$type<ChannelOperation>(),
    paymentNo: p.string().length(32).nullable(),
    refundNo: p.string().length(32).nullable(),
    payoutNo: p.string().length(32).nullable(),
    /** `answer`, `rejection` or `unknown` (see channel-observer.ts). */
    outcome: p.string().length(16).$type<ChannelCallOutcome>(),
    /** Rejection: the channel's code; unknown: the failure kind (TIMEOUT, UNREACHABLE, ...). */
    code: p.string().length(64).nullable(),
    /** What was answered or what went wrong, at most 256 characters. */
    detail: p.string().length(256),
    latencyMs: p.integer(),
    /** The call's OpenTelemetry trace id (32 hex digits) when tracing is on. */
    traceId: p.string().length(32).nullable(),
  },
});
export type ChannelCallRow = InferEntity<typeof ChannelCall>;
