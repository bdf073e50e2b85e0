/**
 * OpenTelemetry traces: on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP, JSON, to
 * `<endpoint>/v1/traces`), off otherwise, and then free: every call below runs its work directly,
 * with no span objects and no context switching.
 *
 * A trace starts at an incoming RPC (continuing the caller's W3C `traceparent`, from gRPC metadata
 * or HTTP headers alike) or a channel callback, and its spans follow the work through database
 * transactions and channel calls. Each app has its own tracer provider (not the global one), so two
 * instances in a process export separately; the context manager (AsyncLocalStorage) is
 * process-wide, as OpenTelemetry's API requires.
 */
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapSetter,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { loggableMessage } from "../db/database-errors.js";

export { SpanKind };

/** Incoming headers a trace may continue from: fetch `Headers` (Connect, gRPC metadata) or a plain record. */
export type TraceCarrier = Headers | Readonly<Record<string, string | undefined>>;

export interface StartSpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** Continue the trace in these headers (`traceparent`, `tracestate`) instead of the active one. */
  carrier?: TraceCarrier;
  /**
   * Spans this one follows from, as W3C traceparent values (an event's stored `trace_parent`):
   * OpenTelemetry span links. Absent and malformed values are skipped.
   */
  links?: ReadonlyArray<string | null | undefined>;
}

/** A started span; `run` makes it the active one for the work (so its database and channel spans are children). */
export interface ActiveSpan {
  /** The trace id, or undefined when tracing is off. */
  readonly traceId: string | undefined;
  run<T>(work: () => T): T;
  setAttributes(attributes: Attributes): void;
  /** Ends the span; an error marks it failed and is recorded as an exception event. */
  end(error?: unknown): void;
}

export interface Tracing {
  readonly enabled: boolean;
  start(name: string, options?: StartSpanOptions): ActiveSpan;
  /**
   * A span under the active one, or undefined (and nothing started) when no span is active or the
   * active one is not recorded: for work that is worth a span only as part of a trace (database
   * transactions and statements; the event loops' polling would otherwise be a flood of one-span traces).
   */
  startChild(name: string, options?: Omit<StartSpanOptions, "carrier">): ActiveSpan | undefined;
  /** Runs `work` in a new span that ends when it settles. */
  span<T>(name: string, options: StartSpanOptions, work: (span: ActiveSpan) => Promise<T>): Promise<T>;
  /** Whether a recorded span is active: {@link startChild} would start one. */
  inTrace(): boolean;
  /** The active trace id (for log lines and records), or undefined. */
  currentTraceId(): string | undefined;
  /** Sends what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** `OTEL_EXPORTER_OTLP_ENDPOINT`; undefined = tracing off. */
  endpoint?: string;
  serviceName: string;
  serviceVersion?: string;
  /** Spans per export batch and how often batches go out (tests shorten the delay). */
  exportDelayMs?: number;
  /**
   * Told when exports fail (collector down, refusing, too slow), so that dropped spans are not
   * silent: at once for the first failure, then at most once per `exportFailureReportMs`
   * (default {@link EXPORT_FAILURE_REPORT_MS}) with the failures and spans since the last report.
   */
  onExportFailure?: (failure: ExportFailure) => void;
  exportFailureReportMs?: number;
}

/** Failed exports since the last report. */
export interface ExportFailure {
  /** Export requests that failed (after the exporter's own retries). */
  exports: number;
  /** Spans in them, lost. */
  spans: number;
  /** The last failure's error class and message (the collector's address at most; never span content). */
  lastError: string;
}

/** At most one export-failure report per this long (the first comes at once). */
export const EXPORT_FAILURE_REPORT_MS = 60_000;

const NOOP_SPAN: ActiveSpan = Object.freeze({
  traceId: undefined,
  run: <T>(work: () => T) => work(),
  setAttributes: () => {},
  end: () => {},
});

/** The tracing that does nothing: the default when no endpoint is set. */
export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  start: () => NOOP_SPAN,
  startChild: () => undefined,
  inTrace: () => false,
  span: <T>(_name: string, _options: StartSpanOptions, work: (span: ActiveSpan) => Promise<T>) => work(NOOP_SPAN),
  currentTraceId: () => undefined,
  shutdown: async () => {},
});

/** How long {@link Tracing.shutdown} waits for the last spans to be sent. */
export const SHUTDOWN_WAIT_MS = 2000;
/** One export request, the exporter's retries included. */
const EXPORT_TIMEOUT_MS = 10_000;

const propagator = new W3CTraceContextPropagator();

const carrierGetter: TextMapGetter<TraceCarrier> = {
  keys: (carrier) => (carrier instanceof Headers ? [...carrier.keys()] : Object.keys(carrier)),
  get: (carrier, key) => (carrier instanceof Headers ? (carrier.get(key) ?? undefined) : carrier[key]),
};

let contextManagerSet = false;

/**
 * The active recorded span as a W3C traceparent, stored with work that another trace picks up
 * later (an event, whose webhook deliveries link back to it); null outside a recorded trace. With
 * tracing off no context manager is installed and this is one lookup in the root context.
 */
export function activeTraceParent(): string | null {
  const active = context.active();
  if (!trace.getSpan(active)?.isRecording()) return null;
  const carrier: Record<string, string> = {};
  propagator.inject(active, carrier, defaultTextMapSetter);
  return carrier.traceparent ?? null;
}

/** Stored traceparents as span links, read by the same propagator that reads callers' headers (invalid ones are skipped). */
function spanLinks(traceParents: ReadonlyArray<string | null | undefined> | undefined): Link[] | undefined {
  if (!traceParents) return undefined;
  const links: Link[] = [];
  for (const traceparent of traceParents) {
    if (!traceparent) continue;
    const linked = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, { traceparent }, carrierGetter));
    if (linked) links.push({ context: linked });
  }
  return links.length > 0 ? links : undefined;
}

/** The tracing for a configuration: {@link TRACING_OFF} without an endpoint. */
export function createTracing(options: TracingOptions): Tracing {
  if (!options.endpoint) return TRACING_OFF;
  if (!contextManagerSet) {
    // Once per process; returns false (and changes nothing) if something else set one first.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    contextManagerSet = true;
  }
  const exporter = reportingFailures(new OTLPTraceExporter({ url: `${options.endpoint}/v1/traces`, timeoutMillis: EXPORT_TIMEOUT_MS }), options);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      ...(options.serviceVersion ? { [ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
    }),
    spanProcessors: [
      // Bounded: beyond 2048 queued spans new ones are dropped rather than held in memory.
      new BatchSpanProcessor(exporter, {
        maxQueueSize: 2048,
        maxExportBatchSize: 512,
        scheduledDelayMillis: options.exportDelayMs ?? 2000,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
  });
  const tracer: Tracer = provider.getTracer("payments-service");

  function start(name: string, startOptions: StartSpanOptions = {}): ActiveSpan {
    const parent: Context = startOptions.carrier ? propagator.extract(ROOT_CONTEXT, startOptions.carrier, carrierGetter) : context.active();
    return begin(name, startOptions, parent);
  }

  function begin(name: string, startOptions: StartSpanOptions, parent: Context): ActiveSpan {
    const span: Span = tracer.startSpan(
      name,
      { kind: startOptions.kind ?? SpanKind.INTERNAL, attributes: startOptions.attributes, links: spanLinks(startOptions.links) },
      parent,
    );
    const spanContext = trace.setSpan(parent, span);
    let ended = false;
    return {
      traceId: span.spanContext().traceId,
      run: (work) => context.with(spanContext, work),
      setAttributes: (attributes) => span.setAttributes(attributes),
      end(error?: unknown) {
        if (ended) return;
        ended = true;
        if (error !== undefined) {
          // The message as logs get it: a database error's values are replaced by its statement's shape.
          const name = error instanceof Error ? error.name : "Error";
          span.recordException({ name, message: loggableMessage(error) });
          span.setStatus({ code: SpanStatusCode.ERROR, message: name });
        }
        span.end();
      },
    };
  }

  return {
    enabled: true,
    start,
    inTrace: () => trace.getSpan(context.active())?.isRecording() === true,
    startChild(name, startOptions = {}) {
      const parent = context.active();
      if (!trace.getSpan(parent)?.isRecording()) return undefined;
      return begin(name, startOptions, parent);
    },
    async span(name, spanOptions, work) {
      const span = start(name, spanOptions);
      try {
        const result = await span.run(() => work(span));
        span.end();
        return result;
      } catch (error) {
        span.end(error);
        throw error;
      }
    },
    currentTraceId() {
      const span = trace.getSpan(context.active());
      return span?.spanContext().traceId;
    },
    async shutdown() {
      // Spans that cannot be sent are lost, never a reason for stop() to fail or wait long: the
      // last export to a collector that is down fails (after the exporter's retries) or hangs.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

/** The exporter, with its failed exports counted and reported by `options.onExportFailure` (throttled). */
function reportingFailures(exporter: SpanExporter, options: TracingOptions): SpanExporter {
  const report = options.onExportFailure;
  if (!report) return exporter;
  const interval = options.exportFailureReportMs ?? EXPORT_FAILURE_REPORT_MS;
  let pending: ExportFailure | undefined;
  let lastReportAt = Number.NEGATIVE_INFINITY;
  return {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
      exporter.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS) {
          const error = result.error;
          pending = {
            exports: (pending?.exports ?? 0) + 1,
            spans: (pending?.spans ?? 0) + spans.length,
            lastError: error ? `${error.name}: ${error.message}`.slice(0, 300) : "export failed",
          };
          const now = performance.now();
          if (now - lastReportAt >= interval) {
            lastReportAt = now;
            const failure = pending;
            pending = undefined;
            try {
              report(failure);
            } catch {
              // A report that throws must not break the export pipeline.
            }
          }
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
