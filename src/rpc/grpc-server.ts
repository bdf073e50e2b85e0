import { type EventEmitter, once } from "node:events";
import * as http2 from "node:http2";
import type { Server as NetServer } from "node:net";
import {
  create,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type Message,
  toBinary,
} from "@bufbuild/protobuf";
import { anyPack, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  createAsyncIterable,
  getAbortSignalReason,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { DEFAULT_GRPC_LIMITS, type GrpcLimits } from "../config.js";
import { promiseOf } from "../promise-of.js";

/** Options for {@link addServiceToGrpcServer}. */
export interface GrpcServiceOptions {
  /**
   * Connect interceptors run around every call, as `createConnectRouter({ interceptors })` runs them
   * on the Connect listener, so cross-cutting rules (authentication, logging) are written once.
   */
  interceptors?: Interceptor[];
  /**
   * Aborts `ctx.signal` of every call in flight, e.g. when the process shuts down; abort it with a
   * `ConnectError` (say `Code.Unavailable`) so calls that give up because of it answer with that code.
   */
  shutdownSignal?: AbortSignal;
}

/** A service and its connect-es implementation, for {@link createGrpcServer}. */
export interface GrpcServiceRegistration<S extends DescService> {
  service: S;
  impl: Partial<ServiceImpl<S>>;
}

/** Options for {@link createGrpcServer}; `services` is typed per element, so each impl is checked against its service. */
export interface GrpcServerOptions<Services extends readonly DescService[]> extends GrpcServiceOptions {
  services: { [K in keyof Services]: GrpcServiceRegistration<Services[K]> };
  /** Largest request message accepted, in bytes; default 4 MiB. */
  maxReceiveMessageLength?: number;
  /** Largest response message sent, in bytes; default 16 MiB. */
  maxSendMessageLength?: number;
  /** Connection and stream bounds; each one left out takes the value of {@link DEFAULT_GRPC_LIMITS}. */
  limits?: Partial<GrpcLimits>;
}

type AnyMethodImplSpec = MethodImplSpec<DescMessage, DescMessage>;
// grpc-js does not export the type all server calls share.
type SurfaceCall = Pick<
  grpc.ServerUnaryCall<Message, Message>,
  "cancelled" | "metadata" | "sendMetadata" | "getDeadline" | "getPath" | "getHost"
> &
  Pick<EventEmitter, "once">;
type ResponseStreamCall = grpc.ServerWritableStream<Message, Message> | grpc.ServerDuplexStream<Message, Message>;

const defaultMaxReceiveMessageLength = 4 * 1024 * 1024;
const defaultMaxSendMessageLength = 16 * 1024 * 1024;
const statusDetailsKey = "grpc-status-details-bin";
// What grpc-js accepts; anything else would make Metadata.add throw.
const validMetadataKey = /^[0-9a-z_.-]+$/;
const validMetadataText = /^[ -~]*$/;
// Set by the gRPC transport itself; copying them from ctx headers or error metadata would corrupt the response.
const transportHeaders = new Set(["content-type", "content-length", "te", "connection", "transfer-encoding"]);
const healthByServer = new WeakMap<grpc.Server, { health: HealthImplementation; names: string[] }>();
const limitsByServer = new WeakMap<grpc.Server, GrpcLimits>();

/**
 * Registers a connect-es service implementation on a grpc-js server: one handler per method
 * (unary, server-, client- and bidi-streaming), protobuf-es binary (de)serialization, a connect
 * `HandlerContext` per call, and errors mapped to gRPC statuses with `grpc-status-details-bin`.
 * Methods missing from `impl` answer `UNIMPLEMENTED`.
 */
export function addServiceToGrpcServer<S extends DescService>(
  server: grpc.Server,
  service: S,
  impl: Partial<ServiceImpl<S>>,
  options: GrpcServiceOptions = {},
): void {
  const spec = createServiceImplSpec(service, impl);
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const methodSpec = spec.methods[method.localName] as AnyMethodImplSpec;
    definition[method.localName] = createMethodDefinition(method);
    handlers[method.localName] = createHandler(methodSpec, options);
  }
  server.addService(definition, handlers);
}

/**
 * Creates a grpc-js server with explicit message size limits, the given services,
 * `grpc.health.v1.Health` (SERVING for "" and every service; see {@link setGrpcServing})
 * and server reflection (v1 and v1alpha) listing them all, built from their protobuf-es descriptors.
 */
export function createGrpcServer<const Services extends readonly DescService[]>(
  options: GrpcServerOptions<Services>,
): grpc.Server {
  const limits: GrpcLimits = { ...DEFAULT_GRPC_LIMITS, ...options.limits };
  const server = new grpc.Server({
    // No channelz service is served, so its per-call counters and socket tracking would only cost.
    "grpc.enable_channelz": 0,
    "grpc.max_receive_message_length": options.maxReceiveMessageLength ?? defaultMaxReceiveMessageLength,
    "grpc.max_send_message_length": options.maxSendMessageLength ?? defaultMaxSendMessageLength,
    // Sent in the HTTP/2 SETTINGS; nghttp2 refuses (RST_STREAM REFUSED_STREAM) the streams above it.
    "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
    "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
    "grpc.max_connection_age_ms": limits.maxConnectionAgeMs,
    "grpc.max_connection_age_grace_ms": limits.maxConnectionAgeGraceMs,
    // Node's maxSessionMemory, in MB: past it nghttp2 refuses new streams with ENHANCE_YOUR_CALM.
    "grpc-node.max_session_memory": limits.maxSessionMemoryMb,
    interceptors: [createReceiveTimeoutInterceptor(limits.requestTimeoutMs)],
  });
  limitsByServer.set(server, limits);
  for (const { service, impl } of options.services) {
    addServiceToGrpcServer(server, service, impl, options);
  }

  const names = options.services.map(({ service }) => service.typeName);
  const health = new HealthImplementation(Object.fromEntries(["", ...names].map((name) => [name, "SERVING"])));
  health.addToServer(server);
  healthByServer.set(server, { health, names });

  // grpc-health-check serves Health from its own copy of health.proto, vendored under proto/grpc for
  // reflection: proto-loader's descriptor of it is not one Go clients accept (its map entry is misnamed).
  const services = [...options.services.map(({ service }) => service), Health];
  new ReflectionService(reflectionPackage(services), { services: services.map((service) => service.typeName) }).addToServer(server);
  return server;
}

/**
 * Sets the health status reported for "" and every service of a server made by {@link createGrpcServer};
 * `false` before shutting down lets load balancers stop sending new calls.
 */
export function setGrpcServing(server: grpc.Server, serving: boolean): void {
  const entry = healthByServer.get(server);
  if (!entry) return;
  const status: ServingStatus = serving ? "SERVING" : "NOT_SERVING";
  for (const name of ["", ...entry.names]) entry.health.setStatus(name, status);
}

/**
 * Binds the server to `host:port` (cleartext unless `credentials` are given, e.g. from
 * `TlsSource.grpcCredentials()`) and applies the connection limits grpc-js has no option for:
 * at most `maxConnections` open connections (more are closed as soon as they are accepted), ping
 * enforcement (`keepaliveMinIntervalMs`), and a stream reset once its call has been answered while the
 * client is still sending. Resolves with the bound port (useful with port 0).
 */
export async function listenGrpc(
  server: grpc.Server,
  host: string,
  port: number,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<number> {
  const address = host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
  const before = new Set(http2ServersOf(server));
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (error, bound) => {
      if (error) reject(error);
      else resolve(bound);
    });
  });
  const limits = limitsByServer.get(server) ?? DEFAULT_GRPC_LIMITS;
  const added = http2ServersOf(server).filter((listener) => !before.has(listener));
  if (added.length === 0) {
    server.forceShutdown();
    throw new Error("grpc-js internals changed: cannot find the HTTP/2 listener to apply the connection limits to");
  }
  for (const listener of added) applyConnectionLimits(listener, limits);
  return boundPort;
}

type Http2Listener = (http2.Http2Server | http2.Http2SecureServer) & NetServer;

/**
 * The HTTP/2 servers grpc-js listens with. grpc-js has no public hook for connections or sessions, so this
 * reads its private `http2Servers` map (present from 1.10 through 1.14); {@link listenGrpc} refuses to
 * start when it is missing, so a grpc-js upgrade that renames it fails closed rather than running unlimited.
 */
function http2ServersOf(server: grpc.Server): Http2Listener[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    throw new Error("grpc-js internals changed: grpc.Server has no http2Servers map; cannot apply connection limits");
  }
  return [...servers.keys()] as Http2Listener[];
}

// gRPC core's default: the third ping too soon ends the connection.
const maxPingStrikes = 2;
// A PING ACK is 17 bytes; more written since the previous ping means the server sent headers or data.
const pingAckBytes = 17;

function applyConnectionLimits(listener: Http2Listener, limits: GrpcLimits): void {
  // net.Server closes each connection accepted above this at once.
  listener.maxConnections = limits.maxConnections;
  listener.on("session", (session: http2.ServerHttp2Session) => {
    closeWithoutPreface(session, limits.requestTimeoutMs);
    enforcePingInterval(session, limits.keepaliveMinIntervalMs);
  });
  listener.on("stream", (stream: http2.ServerHttp2Stream) => resetWhenAnswered(stream, limits.requestTimeoutMs));
}

/**
 * A connection that has not sent the HTTP/2 preface (with its SETTINGS) within `timeoutMs` is cut, as
 * the HTTP listener cuts one that has not sent its headers, rather than waiting for the idle timeout.
 */
function closeWithoutPreface(session: http2.ServerHttp2Session, timeoutMs: number): void {
  const timer = setTimeout(() => session.destroy(), timeoutMs);
  timer.unref();
  session.once("remoteSettings", () => clearTimeout(timer));
  session.once("close", () => clearTimeout(timer));
}

/**
 * Pings more often than `minIntervalMs` are strikes unless the server sent something since the previous
 * ping (so flow-control pings that clients send while receiving data are fine); past
 * {@link maxPingStrikes} the connection gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (which gRPC
 * clients answer by pinging less often) and is closed, as gRPC core and grpc-go servers do.
 */
function enforcePingInterval(session: http2.ServerHttp2Session, minIntervalMs: number): void {
  let lastPingAt = Number.NEGATIVE_INFINITY;
  let bytesWrittenAtLastPing = 0;
  let strikes = 0;
  session.on("ping", () => {
    if (session.destroyed) return;
    const now = performance.now();
    const bytesWritten = session.socket.bytesWritten;
    if (bytesWritten - bytesWrittenAtLastPing > 2 * pingAckBytes) strikes = 0;
    else if (now - lastPingAt < minIntervalMs) strikes++;
    lastPingAt = now;
    bytesWrittenAtLastPing = bytesWritten;
    if (strikes > maxPingStrikes) {
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, undefined, Buffer.from("too_many_pings"));
      session.destroy();
    }
  });
}

/**
 * Once the server has ended a stream (answered the call) while the client is still sending, the rest of
 * the request is useless: after the answer's last frame has gone out, the stream is reset with NO_ERROR
 * (RFC 9113 section 8.1), so a client that never finishes its request cannot hold the stream (and its
 * slot among the connection's concurrent streams) open. The answer's trailers go out first: a reset
 * right away would overtake them. If they cannot go out (a client that stops reading) the stream is
 * cancelled after `waitMs`.
 */
function resetWhenAnswered(stream: http2.ServerHttp2Stream, waitMs: number): void {
  stream.once("finish", () => {
    if (stream.readableEnded || stream.closed || stream.destroyed) return;
    const startedAt = performance.now();
    const check = setInterval(() => {
      if (stream.closed || stream.destroyed) {
        clearInterval(check);
      } else if (stream.state.localClose === 1) {
        clearInterval(check);
        stream.close(http2.constants.NGHTTP2_NO_ERROR);
      } else if (performance.now() - startedAt > waitMs) {
        clearInterval(check);
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    }, 10);
    check.unref();
  });
}

/**
 * Each time a call waits for its next request message (or the end of the request), it must arrive
 * within `timeoutMs`; otherwise the call ends with DEADLINE_EXCEEDED (and {@link resetWhenAnswered}
 * resets its stream). This bounds how long a request that is trickled or never finished holds a stream
 * and its partly received message in memory. A handler that is slow to read a client stream is not
 * affected: the clock only runs while the server is waiting for the client.
 */
function createReceiveTimeoutInterceptor(timeoutMs: number): grpc.ServerInterceptor {
  return (_method, call) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    const intercepted = new ReceiveTimeoutCall(call, {
      start(next) {
        next({
          onReceiveMessage(message, nextMessage) {
            stop();
            nextMessage(message);
          },
          onReceiveHalfClose(nextHalfClose) {
            stop();
            nextHalfClose();
          },
          onCancel: stop,
        });
      },
      sendStatus(status, next) {
        stop();
        next(status);
      },
    });
    intercepted.onStartRead = () => {
      stop();
      timer = setTimeout(() => {
        timer = undefined;
        intercepted.sendStatus({
          code: grpc.status.DEADLINE_EXCEEDED,
          details: `request message not received within ${timeoutMs} ms`,
        });
      }, timeoutMs);
    };
    return intercepted;
  };
}

/** A grpc-js intercepting call that reports when the server asks for the next request message. */
class ReceiveTimeoutCall extends grpc.ServerInterceptingCall {
  onStartRead: () => void = () => {};

  override startRead(): void {
    this.onStartRead();
    super.startRead();
  }
}

/**
 * Reports NOT_SERVING, stops accepting calls and waits for those in flight;
 * after `graceMs` cancels whatever is still running (long-lived streams, stuck calls).
 */
export function shutdownGrpc(server: grpc.Server, graceMs: number): Promise<void> {
  setGrpcServing(server, false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function createMethodDefinition(method: DescMethod): grpc.MethodDefinition<Message, Message> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    originalName: method.localName,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (message) => toBuffer(toBinary(method.input, message)),
    requestDeserialize: (bytes) => fromBinary(method.input, bytes),
    responseSerialize: (message) => toBuffer(toBinary(method.output, message)),
    responseDeserialize: (bytes) => fromBinary(method.output, bytes),
  };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// The streaming handlers reuse connect's own invocation helper (exported from "@connectrpc/connect/protocol",
// marked internal, so package.json pins @connectrpc/connect exactly) so output normalization and
// interceptors behave exactly as on the Connect listener.
// Unary calls go through invokeUnary below, which does what connect's invokeUnaryImplementation does
// without making the context's signal on every call.
function createHandler(spec: AnyMethodImplSpec, options: GrpcServiceOptions): grpc.UntypedHandleCall {
  const interceptors = options.interceptors ?? [];
  switch (spec.kind) {
    case "unary": {
      const invoke =
        interceptors.length === 0
          ? async (ctx: CallContext, request: Message) => create(spec.method.output, await spec.impl(request, ctx))
          : unaryInvoker(spec, interceptors);
      return ((call, callback) => {
        const ctx = createContext(call, spec.method, options.shutdownSignal);
        answerOnce(call, ctx, callback, invoke(ctx, call.request));
      }) satisfies grpc.handleUnaryCall<Message, Message>;
    }
    case "client_streaming":
      return ((call, callback) => {
        const ctx = createContext(call, spec.method, options.shutdownSignal);
        const requests: AsyncIterable<Message> = call.iterator({ destroyOnReturn: false });
        answerOnce(call, ctx, callback, firstOf(transformInvokeImplementation(spec, ctx, interceptors)(requests)));
      }) satisfies grpc.handleClientStreamingCall<Message, Message>;
    case "server_streaming":
      return ((call) => {
        const ctx = createContext(call, spec.method, options.shutdownSignal);
        const responses = transformInvokeImplementation(spec, ctx, interceptors)(createAsyncIterable([call.request]));
        void streamResponses(call, ctx, responses);
      }) satisfies grpc.handleServerStreamingCall<Message, Message>;
    case "bidi_streaming":
      return ((call) => {
        const ctx = createContext(call, spec.method, options.shutdownSignal);
        // The default async iterator destroys the stream when it ends, and with it the response side of a duplex.
        const requests: AsyncIterable<Message> = call.iterator({ destroyOnReturn: false });
        const responses = transformInvokeImplementation(spec, ctx, interceptors)(requests);
        void streamResponses(call, ctx, responses);
      }) satisfies grpc.handleBidiStreamingCall<Message, Message>;
  }
}

type UnaryMethodImplSpec = Extract<AnyMethodImplSpec, { kind: "unary" }>;

/** Where a unary request carries its call's context through the interceptors (object spreads copy it along). */
const CALL_CONTEXT = Symbol("grpc call context");
type ContextCarrier = { [CALL_CONTEXT]?: CallContext };

/**
 * Runs a unary implementation through the interceptors, as connect's `invokeUnaryImplementation`
 * does, except that:
 * - the interceptor chain is built once per method, not per call: the call's context travels on
 *   the request (under {@link CALL_CONTEXT}) to the implementation at its end, so an interceptor
 *   keeps per-call state inside its `(req) => ...` function (ours all do), never in the outer one;
 * - the request's `signal` is a getter: connect's helper reads the context's signal to copy it,
 *   which would make the AbortController that {@link createContext} makes only on first use;
 * - promise chains rather than async functions (one frame less per call).
 * The implementation gets the call's own context unless an interceptor replaced the request's
 * headers, context values or signal.
 */
function unaryInvoker(spec: UnaryMethodImplSpec, interceptors: Interceptor[]): (ctx: CallContext, input: Message) => Promise<Message> {
  const method = spec.method;
  const implementation = (req: UnaryRequest | StreamRequest): Promise<UnaryResponse> => {
    const ctx = (req as ContextCarrier)[CALL_CONTEXT];
    if (ctx === undefined) return Promise.reject(new ConnectError("an interceptor dropped the call's context", Code.Internal));
    return promiseOf(() => spec.impl(req.message as Message, handlerContextOf(ctx, req))).then((message) => ({
      stream: false,
      message: create(method.output, message),
      method,
      service: method.parent,
      header: ctx.responseHeader,
      trailer: ctx.responseTrailer,
    }));
  };
  const next = interceptors.reduceRight<(req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>>(
    (inner, interceptor) => interceptor(inner),
    implementation,
  );
  return (ctx, input) => {
    const request: UnaryRequest & ContextCarrier = {
      stream: false,
      message: input,
      method,
      service: method.parent,
      requestMethod: ctx.requestMethod,
      url: ctx.url,
      header: ctx.requestHeader,
      contextValues: ctx.values,
      get signal() {
        return ctx.signal;
      },
      [CALL_CONTEXT]: ctx,
    };
    return promiseOf(() => next(request)).then((response) => {
      if (response.stream) throw new ConnectError("protocol error: a unary call answered with a stream", Code.Internal);
      copyHeaders(response.header, ctx.responseHeader);
      copyHeaders(response.trailer, ctx.responseTrailer);
      return response.message;
    });
  };
}

/** The context the implementation gets: the call's own, or one with what an interceptor replaced. */
function handlerContextOf(ctx: CallContext, req: UnaryRequest | StreamRequest): HandlerContext {
  const signalKept = Object.getOwnPropertyDescriptor(req, "signal")?.get !== undefined || req.signal === ctx.signal;
  if (req.header === ctx.requestHeader && req.contextValues === ctx.values && signalKept) return ctx;
  return { ...ctx, requestHeader: req.header, values: req.contextValues, signal: req.signal };
}

function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  for (const [key, value] of from) to.set(key, value);
}

async function firstOf(messages: AsyncIterable<Message>): Promise<Message> {
  for await (const message of messages) return message;
  throw new ConnectError("protocol error: missing output message", Code.Internal);
}

async function streamResponses(
  call: ResponseStreamCall,
  ctx: CallContext,
  responses: AsyncIterable<Message>,
): Promise<void> {
  let headersSent = false;
  try {
    for await (const response of responses) {
      if (call.cancelled) break;
      // Connect lets an implementation set response headers until it yields its first message.
      if (!headersSent) {
        sendHeaders(call, ctx);
        headersSent = true;
      }
      if (!call.write(response)) {
        await once(call, "drain", { signal: ctx.signal });
      }
    }
    if (!headersSent) sendHeaders(call, ctx);
    call.end(toMetadata(ctx.responseTrailer));
  } catch (error) {
    if (!headersSent) sendHeaders(call, ctx);
    call.emit("error", toStatus(error, call, ctx));
  } finally {
    ctx.abort(callFinished);
  }
}

/**
 * Passed to `ctx.abort` once a call has finished, so nothing is left listening on the shutdown
 * signal or waiting on the deadline timer; one shared reason saves building a DOMException per call.
 */
const callFinished = new ConnectError("call finished", Code.Canceled);

/** A connect `HandlerContext` plus the adapter's handle to abort it. */
type CallContext = HandlerContext & { abort(reason?: unknown): void };

/**
 * The connect `HandlerContext` of one call, as `createHandlerContext` makes it, except that its
 * AbortSignal (with the deadline timer and the link to the shutdown signal) is only made when
 * something reads `signal`: the unary implementations here never do, and those two
 * AbortControllers, their listeners and abort events were about 5% of a CreatePayment's CPU
 * (docs/performance.md). An abort before the signal exists is remembered, so a signal made later
 * is already aborted, with that reason.
 */
function createContext(call: SurfaceCall, method: DescMethod, shutdownSignal: AbortSignal | undefined): CallContext {
  const timeoutMs = remainingMs(call.getDeadline());
  const deadlineAt = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  let controller: AbortController | undefined;
  let aborted = false;
  let abortReason: unknown;
  let deadlineTimer: NodeJS.Timeout | undefined;
  const onShutdown = () => abort(getAbortSignalReason(shutdownSignal!));

  function abort(reason?: unknown): void {
    if (aborted) return;
    aborted = true;
    abortReason = reason;
    if (!controller) return;
    clearTimeout(deadlineTimer);
    shutdownSignal?.removeEventListener("abort", onShutdown);
    controller.abort(reason);
  }

  function signal(): AbortSignal {
    if (controller) return controller.signal;
    controller = new AbortController();
    if (aborted) {
      controller.abort(abortReason);
    } else if (shutdownSignal?.aborted) {
      abort(getAbortSignalReason(shutdownSignal));
    } else {
      shutdownSignal?.addEventListener("abort", onShutdown);
      if (deadlineAt !== undefined) {
        const timedOut = () => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
        const left = deadlineAt - Date.now();
        if (left <= 0) timedOut();
        else deadlineTimer = setTimeout(timedOut, left);
      }
    }
    return controller.signal;
  }

  // grpc-js also emits "cancelled" after every call it has answered, by when ctx is aborted already:
  // building a ConnectError (with its stack) for those cost about 1% of the CPU of a CreatePayment.
  call.once("cancelled", () => {
    if (!aborted) abort(new ConnectError("call cancelled by the client", Code.Canceled));
  });
  return {
    service: method.parent,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://${call.getHost()}${call.getPath()}`,
    get signal() {
      return signal();
    },
    timeoutMs: () => (deadlineAt === undefined ? undefined : deadlineAt - Date.now()),
    requestHeader: new Headers(toHeaders(call.metadata)),
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values: createContextValues(),
    abort,
  };
}

function remainingMs(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** gRPC metadata as connect header pairs; binary (`-bin`) values base64-encoded, as connect encodes them. */
function toHeaders(metadata: grpc.Metadata): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) {
      pairs.push([key, typeof value === "string" ? value : value.toString("base64")]);
    }
  }
  return pairs;
}

/** Connect `Headers` as gRPC metadata, or undefined when there is nothing to send. */
function toMetadata(...sources: Headers[]): grpc.Metadata | undefined {
  let metadata: grpc.Metadata | undefined;
  for (const headers of sources) {
    headers.forEach((value, key) => {
      if (key.startsWith("grpc-") || transportHeaders.has(key) || !validMetadataKey.test(key)) return;
      if (key.endsWith("-bin")) {
        metadata ??= new grpc.Metadata();
        // Headers joins repeated values with ", ".
        for (const part of value.split(",")) metadata.add(key, Buffer.from(part.trim(), "base64"));
      } else if (validMetadataText.test(value)) {
        metadata ??= new grpc.Metadata();
        metadata.add(key, value);
      }
    });
  }
  return metadata;
}

/** Sends the one answer of a unary or client-streaming call, then ends its context. */
function answerOnce(
  call: SurfaceCall,
  ctx: CallContext,
  callback: grpc.sendUnaryData<Message>,
  response: Promise<Message>,
): void {
  response
    .then(
      (message) => {
        sendHeaders(call, ctx);
        callback(null, message, toMetadata(ctx.responseTrailer));
      },
      (error: unknown) => {
        sendHeaders(call, ctx);
        callback(toStatus(error, call, ctx));
      },
    )
    .finally(() => ctx.abort(callFinished));
}

function sendHeaders(call: SurfaceCall, ctx: HandlerContext): void {
  const metadata = toMetadata(ctx.responseHeader);
  if (metadata && !call.cancelled) call.sendMetadata(metadata);
}

/**
 * The gRPC status for an error thrown by an implementation: a `ConnectError` keeps its code, message,
 * metadata and details (as a `google.rpc.Status` in `grpc-status-details-bin`); anything else is
 * logged and answered with INTERNAL so internals do not leak.
 */
function toStatus(reason: unknown, call: SurfaceCall, ctx: HandlerContext): Partial<grpc.StatusObject> {
  let error: ConnectError;
  if (reason instanceof ConnectError) {
    error = reason;
  } else if (ctx.signal.aborted && ctx.signal.reason instanceof ConnectError) {
    // The implementation gave up because the call was cancelled, timed out or the server is stopping.
    error = ctx.signal.reason;
  } else {
    if (!call.cancelled) console.error(`gRPC ${call.getPath()} failed:`, reason);
    error = new ConnectError("internal error", Code.Internal);
  }

  const metadata = toMetadata(ctx.responseTrailer, error.metadata) ?? new grpc.Metadata();
  if (error.details.length > 0) {
    const status = create(StatusSchema, {
      code: error.code,
      message: error.rawMessage,
      details: error.details.map((detail) =>
        "desc" in detail
          ? anyPack(detail.desc, create(detail.desc, detail.value))
          : { typeUrl: `type.googleapis.com/${detail.type}`, value: detail.value },
      ),
    });
    metadata.set(statusDetailsKey, toBuffer(toBinary(StatusSchema, status)));
  }
  // Connect's Code numbers are the gRPC status codes.
  return { code: error.code as number as grpc.status, details: error.rawMessage, metadata };
}

/**
 * What `@grpc/reflection` reads: it only uses `fileDescriptorProtos`, so one entry per service
 * carrying the service's file and its transitive dependencies is enough.
 */
function reflectionPackage(services: DescService[]): ConstructorParameters<typeof ReflectionService>[0] {
  const encoded = new Map<DescFile, Buffer>();
  const collect = (file: DescFile, into: Set<DescFile>): void => {
    if (into.has(file)) return;
    into.add(file);
    for (const dependency of file.dependencies) collect(dependency, into);
  };
  const encode = (file: DescFile): Buffer => {
    let bytes = encoded.get(file);
    if (!bytes) {
      bytes = toBuffer(toBinary(FileDescriptorProtoSchema, file.proto));
      encoded.set(file, bytes);
    }
    return bytes;
  };
  const entries = services.map((service) => {
    const files = new Set<DescFile>();
    collect(service.file, files);
    // The format tag only satisfies proto-loader's types; reflection ignores it.
    const definition = {
      format: "Protocol Buffer 3 EnumDescriptorProto" as const,
      type: {},
      fileDescriptorProtos: [...files].map(encode),
    };
    return [service.typeName, definition] as const;
  });
  return Object.fromEntries(entries);
}
