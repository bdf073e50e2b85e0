/**
 * `/metrics` in Prometheus text format: on its own listener (`METRICS_PORT`, no token: keep that
 * port off the public network) or on the HTTP listener behind `METRICS_TOKEN`. With neither set,
 * metrics are not served (the HTTP listener answers 404 naming the two settings).
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export type RenderMetrics = () => Promise<{ contentType: string; body: string }>;

/** Scrapers are few: more connections than this are closed as soon as they are accepted. */
export const METRICS_MAX_CONNECTIONS = 16;

export type MetricsListener = Server;

/** Answers `GET /metrics` (and HEAD); anything else is 404. */
export async function serveMetrics(res: ServerResponse, render: RenderMetrics, method: string | undefined): Promise<void> {
  if (method !== "GET" && method !== "HEAD") {
    res.writeHead(405, { "content-type": "text/plain", allow: "GET, HEAD" });
    res.end("method not allowed");
    return;
  }
  const { contentType, body } = await render();
  res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(method === "HEAD" ? undefined : body);
}

/** Whether the request carries `Authorization: Bearer <token>`, compared in constant time. */
export function hasMetricsToken(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? "";
  const match = /^Bearer (.+)$/i.exec(header);
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** The separate listener for `METRICS_PORT`. */
export function createMetricsListener(render: RenderMetrics): MetricsListener {
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found: this listener serves /metrics only");
      return;
    }
    serveMetrics(res, render, req.method).catch(() => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("metrics could not be collected");
    });
  });
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  return server;
}
