/**
 * Logs, metrics and traces of one app, built once from the configuration and handed to the places
 * that observe: the RPC interceptor, the channel observer, the callback shim, the sweeper tick and
 * webhook deliveries.
 */
import type { ObservabilityConfig } from "../config.js";
import { createLogger, type Logger } from "./logger.js";
import { createMetrics, type ServiceMetrics } from "./metrics.js";
import { createTracing, type Tracing } from "./tracing.js";

export interface Telemetry {
  readonly logger: Logger;
  readonly metrics: ServiceMetrics;
  readonly tracing: Tracing;
}

export interface TelemetryOptions {
  /** Replaces the configured logger (tests read or silence it). */
  logger?: Logger;
  /** Replaces the configured tracing (tests shorten the export delay). */
  tracing?: Tracing;
  serviceVersion?: string;
}

export function createTelemetry(config: ObservabilityConfig, options: TelemetryOptions = {}): Telemetry {
  const logger = options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat, redact: config.logRedact });
  return {
    logger,
    metrics: createMetrics(),
    tracing:
      options.tracing ??
      createTracing({
        endpoint: config.otlpEndpoint,
        serviceName: config.serviceName,
        serviceVersion: options.serviceVersion,
        // Spans the collector never got are lost: say so (throttled to one line a minute).
        onExportFailure: (failure) => logger.warn({ failed_exports: failure.exports, lost_spans: failure.spans, error: failure.lastError }, "trace export failed"),
      }),
  };
}
