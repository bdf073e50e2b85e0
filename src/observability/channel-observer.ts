/**
 * Every call to a channel, seen from outside the adapter: a span, a log line, the channel-call
 * metrics and a record for the payment's timeline. Wrapping the {@link PaymentChannel} interface
 * (rather than the wire pipeline) names calls by the interface's operations on every channel and
 * covers channels supplied by tests alike.
 *
 * Outcomes, as operators alert on them:
 * - `answer`: the channel answered and the answer was used;
 * - `rejection`: the channel said no (`ChannelRejectedError`, its code kept);
 * - `unknown`: no usable answer (timeout, unreachable, 5xx, bad signature, unreadable): what the
 *   channel did is not known, and the sweepers ask again later.
 */
import { ChannelRejectedError, type ChannelName, ChannelUnavailableError, type PaymentChannel } from "../channels/channel.js";
import { type ChannelOperation, channelFailureKind } from "../channels/channel-call.js";
import { loggableMessage } from "../db/database-errors.js";
import type { Logger } from "./logger.js";
import type { ServiceMetrics } from "./metrics.js";
import { SpanKind, type Tracing } from "./tracing.js";
import { promiseOf } from "../promise-of.js";

export type ChannelCallOutcome = "answer" | "rejection" | "unknown";

/** One channel call as the timeline keeps it. */
export interface ChannelCallRecord {
  channel: ChannelName;
  operation: ChannelOperation;
  /** Our numbers the call was about; the timeline finds a payment's calls by them. */
  paymentNo?: string;
  refundNo?: string;
  payoutNo?: string;
  outcome: ChannelCallOutcome;
  /** Rejection: the channel's code; unknown: the failure kind (TIMEOUT, UNREACHABLE, ...). */
  code?: string;
  /** What was answered (`state succeeded`, `action code_url`) or what went wrong, at most {@link MAX_DETAIL_CHARS}. */
  detail: string;
  startedAt: Date;
  latencyMs: number;
  traceId?: string;
}

/** Where records go (the batched writer in src/channel-calls/); it must never block or throw. */
export interface ChannelCallSink {
  record(call: ChannelCallRecord): void;
}

export const MAX_DETAIL_CHARS = 256;
/** The most of an error's text a log line carries (a channel's answer text can be long). */
export const MAX_LOG_DETAIL_CHARS = 1024;

export interface ChannelObserverOptions {
  logger: Logger;
  metrics: ServiceMetrics;
  tracing: Tracing;
  sink?: ChannelCallSink;
}

/** The subjects of a call, from its argument. */
interface Subject {
  paymentNo?: string;
  refundNo?: string;
  payoutNo?: string;
}

type Observed<A, R> = (argument: A) => Promise<R>;

/** The channel with each channel-calling operation observed; everything else passes through. */
export function observeChannel(channel: PaymentChannel, options: ChannelObserverOptions): PaymentChannel {
  const { logger, metrics, tracing, sink } = options;
  const name = channel.name;
  const log = logger.child({ channel: name });

  function observe<A, R>(operation: ChannelOperation, call: Observed<A, R>, subjectOf: (argument: A) => Subject, summarize: (result: R) => string): Observed<A, R> {
    return (argument: A) => {
      const subject = subjectOf(argument);
      const startedAt = new Date();
      const started = performance.now();
      const span = tracing.start(`${name} ${operation}`, {
        kind: SpanKind.CLIENT,
        // With tracing off the span does nothing: no attributes are worked out for it.
        attributes: tracing.enabled
          ? {
              "payments.channel": name,
              "payments.channel.operation": operation,
              ...(subject.paymentNo ? { "payments.payment_no": subject.paymentNo } : {}),
              ...(subject.refundNo ? { "payments.refund_no": subject.refundNo } : {}),
              ...(subject.payoutNo ? { "payments.payout_no": subject.payoutNo } : {}),
            }
          : undefined,
      });
      const finish = (outcome: ChannelCallOutcome, code: string | undefined, detail: string) => {
        const latencyMs = performance.now() - started;
        metrics.channelCalls.inc({ channel: name, operation, outcome });
        metrics.channelCallDuration.observe({ channel: name, operation }, latencyMs / 1000);
        const line = {
          operation,
          outcome,
          code,
          payment_no: subject.paymentNo,
          refund_no: subject.refundNo,
          payout_no: subject.payoutNo,
          latency_ms: Math.round(latencyMs),
          trace_id: span.traceId,
          detail,
        };
        if (outcome === "answer") log.info(line, "channel call");
        else log.warn(line, "channel call");
        sink?.record({ channel: name, operation, ...subject, outcome, code, detail: detail.slice(0, MAX_DETAIL_CHARS), startedAt, latencyMs: Math.round(latencyMs), traceId: span.traceId });
      };
      const failed = (error: unknown): never => {
        let outcome: ChannelCallOutcome;
        let code: string;
        if (error instanceof ChannelRejectedError) {
          outcome = "rejection";
          code = error.code;
        } else {
          outcome = "unknown";
          code = error instanceof ChannelUnavailableError ? channelFailureKind(error) : "ERROR";
        }
        span.setAttributes({ "payments.channel.outcome": outcome, "payments.channel.code": code });
        span.end(error);
        finish(outcome, code, loggableMessage(error).slice(0, MAX_LOG_DETAIL_CHARS));
        throw error;
      };
      // A promise chain, not an async function: every channel call passes here.
      return promiseOf(() => span.run(() => call(argument))).then((result) => {
        span.end();
        finish("answer", undefined, summarize(result));
        return result;
      }, failed);
    };
  }

  const payouts = channel.payouts;
  const observed: PaymentChannel = {
    name,
    createPayment: observe("createPayment", (request) => channel.createPayment(request), (request) => ({ paymentNo: request.paymentNo }), (created) => `action ${created.action.kind}`),
    queryPayment: observe("queryPayment", (trade) => channel.queryPayment(trade), (trade) => ({ paymentNo: trade.paymentNo }), (status) => `state ${status.state}`),
    closePayment: observe("closePayment", (trade) => channel.closePayment(trade), (trade) => ({ paymentNo: trade.paymentNo }), () => "closed"),
    refund: observe("refund", (request) => channel.refund(request), (request) => ({ paymentNo: request.trade.paymentNo, refundNo: request.refundNo }), (status) => `state ${status.state}`),
    queryRefund: observe("queryRefund", (request) => channel.queryRefund(request), (request) => ({ paymentNo: request.trade.paymentNo, refundNo: request.refundNo }), (status) => `state ${status.state}`),
    fetchBill: observe("fetchBill", (billDate) => channel.fetchBill(billDate), () => ({}), (bill) => `bill ${bill.billDate}`),
    parseCallback: (request) => channel.parseCallback(request),
    acceptAnswer: () => channel.acceptAnswer(),
    rejectAnswer: (reason) => channel.rejectAnswer(reason),
    openBillFile: (path, billDate, fileOptions) => channel.openBillFile(path, billDate, fileOptions),
    payouts: {
      validatePayee: (payee) => payouts.validatePayee(payee),
      sendPayout: observe("sendPayout", (request) => payouts.sendPayout(request), (request) => ({ payoutNo: request.payoutNo }), (status) => `state ${status.state}`),
      queryPayout: observe("queryPayout", (request) => payouts.queryPayout(request), (request) => ({ payoutNo: request.payoutNo }), (status) => `state ${status.state}`),
    },
  };
  return observed;
}
