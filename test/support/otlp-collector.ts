/**
 * A local OTLP/HTTP trace collector for tests: `POST /v1/traces` with an ExportTraceServiceRequest
 * in OTLP's JSON encoding (what `@opentelemetry/exporter-trace-otlp-http` sends by default:
 * `Content-Type: application/json`, uncompressed unless `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`,
 * which is accepted too). Each span is kept flattened with its resource's attributes; tests wait
 * for the spans they expect with {@link OtlpCollector.waitForSpans} (a bounded wait that returns
 * what it has, so the assertion after it shows the real spans).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { gunzipSync } from "node:zlib";

/** An OTLP `AnyValue` decoded to plain JavaScript (int64 values arrive as numbers or strings). */
export type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

/** One received span. */
export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP's numbering: 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
  kind: number;
  attributes: Record<string, AttributeValue>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage?: string;
  events: Array<{ name: string; attributes: Record<string, AttributeValue> }>;
  /** The spans this one links to (OpenTelemetry span links). */
  links: Array<{ traceId: string; spanId: string }>;
  resource: Record<string, AttributeValue>;
  scope: string;
}

export const OTLP_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;

export interface OtlpCollector {
  /** The endpoint to give the exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`): `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** Every span received so far, in arrival order. */
  readonly spans: readonly CollectedSpan[];
  /** Every request body received, as JSON text (decompressed): for scanning what left the service. */
  readonly bodies: readonly string[];
  /** Every request's content type and content encoding. */
  readonly requests: ReadonlyArray<{ contentType: string | undefined; contentEncoding: string | undefined }>;
  /**
   * Resolves with the spans `select` picks once `done` holds for them (default: at least one), or
   * when `timeoutMs` has passed (then with what there is).
   */
  waitForSpans(select: (span: CollectedSpan) => boolean, done?: (spans: CollectedSpan[]) => boolean, timeoutMs?: number): Promise<CollectedSpan[]>;
  close(): Promise<void>;
}

/** Largest export body accepted (the exporter sends at most 512 spans per request). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpAnyValue[] };
}
type OtlpAttributes = Array<{ key: string; value?: OtlpAnyValue }> | undefined;

function decodeValue(value: OtlpAnyValue | undefined): AttributeValue {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(decodeValue);
  return undefined;
}

function decodeAttributes(attributes: OtlpAttributes): Record<string, AttributeValue> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, decodeValue(value)]));
}

interface ExportTraceServiceRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttributes };
    scopeSpans?: Array<{
      scope?: { name?: string };
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
        attributes?: OtlpAttributes;
        status?: { code?: number; message?: string };
        events?: Array<{ name: string; attributes?: OtlpAttributes }>;
        links?: Array<{ traceId: string; spanId: string }>;
      }>;
    }>;
  }>;
}

/** The spans of one export request, flattened. */
export function decodeExportRequest(request: ExportTraceServiceRequest): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = decodeAttributes(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        out.push({
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? "",
          name: span.name,
          kind: span.kind ?? 0,
          attributes: decodeAttributes(span.attributes),
          statusCode: span.status?.code ?? 0,
          statusMessage: span.status?.message,
          events: (span.events ?? []).map((event) => ({ name: event.name, attributes: decodeAttributes(event.attributes) })),
          links: (span.links ?? []).map((link) => ({ traceId: link.traceId, spanId: link.spanId })),
          resource,
          scope: scopeSpans.scope?.name ?? "",
        });
      }
    }
  }
  return out;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`export body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export interface OtlpCollectorOptions {
  /** Answer every export with this HTTP status (default 200; 400 is a failure the exporter does not retry). */
  status?: number;
}

/** Starts a collector on a free port of 127.0.0.1. */
export async function startOtlpCollector(options: OtlpCollectorOptions = {}): Promise<OtlpCollector> {
  const spans: CollectedSpan[] = [];
  const bodies: string[] = [];
  const requests: Array<{ contentType: string | undefined; contentEncoding: string | undefined }> = [];
  const server: Server = createServer((request, response) => {
    void (async () => {
      if (request.method !== "POST" || request.url !== "/v1/traces") {
        response.writeHead(404).end();
        return;
      }
      const contentType = request.headers["content-type"];
      const contentEncoding = request.headers["content-encoding"];
      requests.push({ contentType, contentEncoding });
      if (options.status !== undefined && options.status !== 200) {
        request.resume();
        response.writeHead(options.status, { "content-type": "text/plain" }).end("refused by the test");
        return;
      }
      try {
        if (!contentType?.startsWith("application/json")) throw new Error(`unsupported content type ${contentType}`);
        const raw = await readBody(request);
        const text = (contentEncoding === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
        bodies.push(text);
        spans.push(...decodeExportRequest(JSON.parse(text) as ExportTraceServiceRequest));
        response.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch (error) {
        response.writeHead(400, { "content-type": "text/plain" }).end(String(error));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    requests,
    async waitForSpans(select, done = (found) => found.length > 0, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = spans.filter(select);
        if (done(found) || Date.now() > deadline) return found;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
