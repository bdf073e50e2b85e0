/**
 * The outermost interceptor on both listeners: one span, one log line and the RPC metrics per call,
 * with the status code the caller gets (it runs outside error mapping, so it sees the mapped code).
 *
 * - Trace: continues the caller's W3C `traceparent` (gRPC metadata and HTTP headers reach
 *   interceptors alike as request headers).
 * - Request id: the caller's `x-request-id` when it is a sensible token, else a new one; sent back
 *   in the `x-request-id` response header (in the error's metadata when the call fails) and on the
 *   log line.
 * - The line names the merchant (once authenticated) and the payment, refund, settlement and
 *   payout ids found in the request and the answer.
 * - Streams are measured to their end, not to their first message.
 */
import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type { Telemetry } from "../observability/telemetry.js";
import { SpanKind } from "../observability/tracing.js";
import { callerKey } from "./auth.js";
import { promiseOf } from "../promise-of.js";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The codes that mark the RPC's span as failed: faults of the service, as OpenTelemetry's gRPC
 * conventions list them for servers. The rest (INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED, ...)
 * answer what the caller asked and are kept only as `rpc.grpc.status_code`.
 */
const SERVER_FAULTS: ReadonlySet<Code> = new Set([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

/** The ids a log line carries, read from messages by field name. */
interface Subject {
  payment_id?: string;
  refund_id?: string;
  settlement_id?: string;
  payout_id?: string;
  merchant_id?: string;
}

const ID_FIELDS: ReadonlyArray<readonly [string, keyof Subject]> = [
  ["paymentId", "payment_id"],
  ["refundId", "refund_id"],
  ["settlementId", "settlement_id"],
  ["payoutId", "payout_id"],
  ["merchantId", "merchant_id"],
];
/** Messages whose own `id` is one of those ids, and the fields holding such messages. */
const OBJECT_FIELDS: ReadonlyArray<readonly [string, keyof Subject]> = [
  ["payment", "payment_id"],
  ["refund", "refund_id"],
  ["settlement", "settlement_id"],
  ["payout", "payout_id"],
  ["merchant", "merchant_id"],
];

/** Ids are at most 64 characters once validated; a request's unvalidated one is cut, so a line stays small. */
const MAX_ID_CHARS = 64;

function boundedId(value: string): string {
  return value.length <= MAX_ID_CHARS ? value : `${value.slice(0, MAX_ID_CHARS)}...`;
}

function collectIds(message: unknown, into: Subject): void {
  if (typeof message !== "object" || message === null) return;
  const fields = message as Record<string, unknown>;
  for (const [field, key] of ID_FIELDS) {
    const value = fields[field];
    if (typeof value === "string" && value !== "" && into[key] === undefined) into[key] = boundedId(value);
  }
  for (const [field, key] of OBJECT_FIELDS) {
    const nested = fields[field];
    if (typeof nested === "object" && nested !== null) {
      const id = (nested as Record<string, unknown>).id;
      if (typeof id === "string" && id !== "" && into[key] === undefined) into[key] = boundedId(id);
    }
  }
}

function codeName(code: Code | undefined): string {
  if (code === undefined) return "OK";
  // Code.InvalidArgument → INVALID_ARGUMENT, the names gRPC status codes go by.
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Connect's own content types are `connect_rpc`; gRPC (over grpc-js, whose metadata has none) and gRPC-Web are `grpc`. */
function rpcSystem(header: Headers): string {
  const type = header.get("content-type") ?? "";
  return /^application\/(json|proto|connect\+)/.test(type) ? "connect_rpc" : "grpc";
}

/**
 * The error with the request id in its metadata (trailers on gRPC, headers on Connect), so a caller
 * reporting a failure can quote the id its log line carries. Errors reach here mapped already.
 */
function withRequestId(error: unknown, requestId: string): unknown {
  const mapped = error instanceof ConnectError ? error : ConnectError.from(error);
  mapped.metadata.set("x-request-id", requestId);
  return mapped;
}

export function createTelemetryInterceptor(telemetry: Telemetry): Interceptor {
  const { logger, metrics, tracing } = telemetry;
  // A promise chain, not an async function: one layer and its microtasks less on every call.
  return (next) => (req) => {
    const method: DescMethod = req.method;
    const name = `${req.service.typeName}/${method.name}`;
    const started = performance.now();
    const given = req.header.get("x-request-id");
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    // With tracing off the span does nothing: no attributes are worked out for it.
    const span = tracing.start(name, {
      kind: SpanKind.SERVER,
      carrier: req.header,
      attributes: tracing.enabled ? { "rpc.system": rpcSystem(req.header), "rpc.service": req.service.typeName, "rpc.method": method.name } : undefined,
    });
    const subject: Subject = {};
    if (!req.stream) collectIds(req.message, subject);

    const finish = (error?: unknown, response?: DescMessage | unknown) => {
      const code = error === undefined ? undefined : ConnectError.from(error).code;
      const codeText = codeName(code);
      const latencyMs = performance.now() - started;
      metrics.rpcRequests.inc({ method: name, code: codeText });
      metrics.rpcDuration.observe({ method: name }, latencyMs / 1000);
      if (response !== undefined) collectIds(response, subject);
      const caller = req.contextValues.get(callerKey);
      if (caller?.kind === "merchant") subject.merchant_id ??= caller.merchant.id;
      if (tracing.enabled) span.setAttributes({ "rpc.grpc.status_code": code ?? 0, ...Object.fromEntries(Object.entries(subject).map(([key, value]) => [`payments.${key}`, value])) });
      span.end(code !== undefined && SERVER_FAULTS.has(code) ? error : undefined);
      const line = { rpc: name, code: codeText, request_id: requestId, caller: caller?.kind, ...subject, latency_ms: Math.round(latencyMs), trace_id: span.traceId };
      if (code === undefined || code !== Code.Internal) logger.info(line, "rpc");
      else logger.error(line, "rpc");
    };

    const failed = (error: unknown): never => {
      finish(error);
      throw withRequestId(error, requestId);
    };
    // An interceptor inside may throw before returning its promise.
    return promiseOf(() => span.run(() => next(req))).then((response) => {
      response.header.set("x-request-id", requestId);
      if (!response.stream) {
        finish(undefined, response.message);
        return response;
      }
      const messages = response.message;
      return {
        ...response,
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            failed(error);
          }
          finish();
        })(),
      };
    }, failed);
  };
}
