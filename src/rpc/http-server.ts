/**
 * The HTTP listener: the same services over Connect (JSON and binary) and gRPC-Web via
 * connect-node, plus the channel callback shim (`POST /callbacks/{channel}`), `GET /healthz` and the admin
 * console (`GET /console`, console-handler.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { CallbackService } from "../callbacks/callback-service.js";
import { CHANNEL_NAMES, type ChannelName } from "../channels/channel.js";
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from "../config.js";
import { serveConsole } from "../console/console-handler.js";
import { hasMetricsToken, type RenderMetrics, serveMetrics } from "../observability/metrics-listener.js";
import type { TlsSource } from "./tls.js";

/** Callbacks are small; anything larger is not a channel's notification. */
const MAX_CALLBACK_BYTES = 64 * 1024;

export interface HttpServerOptions {
  // biome-ignore lint/suspicious/noExplicitAny: a list of services of different types
  services: ReadonlyArray<{ service: DescService; impl: Partial<ServiceImpl<any>> }>;
  callbacks: CallbackService;
  /** Connect interceptors around every RPC (authentication, error mapping), as on the gRPC listener. */
  interceptors?: Interceptor[];
  maxRequestBytes: number;
  /** Answers /healthz: false while draining or when the database is unreachable. */
  isHealthy: () => Promise<boolean>;
  /** Connection bounds; each one left out takes the value of {@link DEFAULT_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
  /** `GET /metrics` for callers with this bearer token (`METRICS_TOKEN`); absent = not served here. */
  metrics?: { token: string; render: RenderMetrics };
  /** Serve HTTPS with this certificate, following its rotations; absent = cleartext HTTP. */
  tls?: TlsSource;
}

/** The HTTP listener: node:http, or node:https when TLS is on (both HTTP/1.1). */
export type HttpListener = Server | HttpsServer;

class BodyTooLargeError extends Error {}

/**
 * The request body, at most `limit` bytes; past it reading stops (the caller answers and closes
 * the connection). With `data` and `end` listeners rather than the stream's async iterator, which
 * costs a few microseconds more per callback (an end-of-stream watcher and a promise per chunk).
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        req.pause();
        reject(new BodyTooLargeError());
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.once("error", reject);
    req.once("close", () => {
      if (!req.complete) reject(new Error("request aborted"));
    });
  });
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Creates the HTTP listener with its connection bounds: at most `maxConnections` open connections (more
 * are closed as soon as they are accepted), request headers within `headersTimeoutMs` and the whole
 * request within `requestTimeoutMs` (else 408 and the connection is closed: this cuts slow-loris
 * clients), idle keep-alive connections closed after `keepAliveTimeoutMs`. With `tls`, HTTPS whose
 * certificate follows the source's rotations (new connections get the new certificate).
 */
export function createHttpServer(options: HttpServerOptions): HttpListener {
  async function fallback(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0]!;
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      const healthy = await options.isHealthy().catch(() => false);
      send(res, healthy ? 200 : 503, "application/json", JSON.stringify({ status: healthy ? "ok" : "unavailable" }));
      return;
    }
    if (path === "/metrics") {
      if (!options.metrics) {
        send(res, 404, "text/plain", "metrics are not served on this listener: set METRICS_TOKEN (served here with that bearer token) or METRICS_PORT (a listener of their own)");
      } else if (!hasMetricsToken(req, options.metrics.token)) {
        res.setHeader("www-authenticate", 'Bearer realm="metrics"');
        send(res, 401, "text/plain", "metrics need Authorization: Bearer <METRICS_TOKEN>");
      } else {
        await serveMetrics(res, options.metrics.render, req.method);
      }
      return;
    }
    const match = /^\/callbacks\/([a-z]+)$/.exec(path);
    if (match && CHANNEL_NAMES.includes(match[1] as ChannelName)) {
      if (req.method !== "POST") {
        send(res, 405, "text/plain", "method not allowed");
        return;
      }
      let rawBody: Buffer;
      try {
        rawBody = await readBody(req, MAX_CALLBACK_BYTES);
      } catch (error) {
        if (error instanceof BodyTooLargeError) {
          // The rest of the body is not read: the connection closes once the answer is written.
          res.setHeader("connection", "close");
          send(res, 413, "text/plain", "callback too large");
        } else {
          res.destroy();
        }
        return;
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
      const result = await options.callbacks.handle(match[1] as ChannelName, { headers, rawBody });
      send(res, result.answer.status, result.answer.contentType, result.answer.body);
      return;
    }
    if (await serveConsole(req, res, path)) return;
    send(res, 404, "text/plain", "not found");
  }

  const handler = connectNodeAdapter({
    routes(router: ConnectRouter) {
      for (const { service, impl } of options.services) router.service(service, impl);
    },
    interceptors: options.interceptors,
    readMaxBytes: options.maxRequestBytes,
    writeMaxBytes: 16 * 1024 * 1024,
    fallback(req, res) {
      // This listener is HTTP/1.1 only, so these are always the http module's types.
      const response = res as unknown as ServerResponse;
      fallback(req as IncomingMessage, response).catch(() => {
        if (!response.headersSent) send(response, 500, "text/plain", "internal error");
        else response.destroy();
      });
    },
  });
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  // Node refuses a headers timeout above the request timeout; the request timeout covers the headers anyway.
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  const serverOptions: ServerOptions = {
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks both timeouts only this often (default 30 s), which would let a slow request run far past them.
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(headersTimeout / 2))),
  };
  let server: HttpListener;
  if (options.tls) {
    const { tls } = options;
    const { cert, key } = tls.current();
    // A TLS handshake must not take longer than sending the headers may.
    const https = createHttpsServer({ ...serverOptions, cert, key, handshakeTimeout: headersTimeout }, handler);
    const unsubscribe = tls.onChange((material) => https.setSecureContext({ cert: material.cert, key: material.key }));
    https.once("close", unsubscribe);
    server = https;
  } else {
    server = createServer(serverOptions, handler);
  }
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  return server;
}
