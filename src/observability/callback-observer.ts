/**
 * Every channel callback the shim receives: a span (the root of the callback's trace: its
 * transaction is a child), a log line with the verdict and the payment it concerned, and the
 * callback metrics.
 */
import type { CallbackService } from "../callbacks/callback-service.js";
import type { Telemetry } from "./telemetry.js";
import { SpanKind } from "./tracing.js";

/** The most of a refusal's or failure's reason a line carries. */
const MAX_REASON_CHARS = 512;

/** Verdicts that mean the callback was refused or failed; logged as warnings. */
const REFUSED = new Set(["rejected", "mismatch", "unknown_payment", "error"]);

export function observeCallbacks(callbacks: CallbackService, telemetry: Telemetry): CallbackService {
  const { logger, metrics, tracing } = telemetry;
  return {
    handle(channel, request) {
      const started = performance.now();
      return tracing.span(`callback ${channel}`, { kind: SpanKind.SERVER, carrier: request.headers, attributes: { "payments.channel": channel } }, async (span) => {
        const result = await callbacks.handle(channel, request);
        const latencyMs = performance.now() - started;
        metrics.callbacks.inc({ channel, verdict: result.verdict });
        metrics.callbackDuration.observe({ channel }, latencyMs / 1000);
        span.setAttributes({
          "payments.callback.verdict": result.verdict,
          ...(result.paymentId ? { "payments.payment_id": result.paymentId } : {}),
          ...(result.effect ? { "payments.callback.effect": result.effect } : {}),
        });
        const line = {
          callback: channel,
          verdict: result.verdict,
          reason: result.reason?.slice(0, MAX_REASON_CHARS),
          notification_id: result.notificationId,
          payment_id: result.paymentId,
          effect: result.effect,
          answer_status: result.answer.status,
          latency_ms: Math.round(latencyMs),
          trace_id: span.traceId,
        };
        if (REFUSED.has(result.verdict)) logger.warn(line, "callback");
        else logger.info(line, "callback");
        return result;
      });
    },
  };
}
