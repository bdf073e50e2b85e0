/**
 * A small HTTP client for channel calls: one keep-alive agent per origin, a hard deadline per call,
 * and one error type for everything that is not an HTTP answer. Plain `fetch` opened a new
 * connection per call here and halved throughput, hence `node:http` with pooled sockets.
 */
import http from "node:http";
import https from "node:https";

/** One outgoing request. `timeoutMs` bounds the whole exchange, including reading the body. */
export interface HttpRequest {
  method: string;
  url: string;
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer;
  timeoutMs: number;
}

/** A complete answer: lower-cased header names (repeated headers joined with ", "), raw body bytes. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The exchange failed below HTTP: connection refused or reset, DNS, TLS, or the deadline passed. */
export class HttpTransportError extends Error {
  constructor(
    readonly kind: "timeout" | "network",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "HttpTransportError";
  }
}

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const IDLE_SOCKET_TIMEOUT_MS = 30_000;

const agents = new Map<string, http.Agent>();

function agentFor(url: URL): http.Agent {
  let agent = agents.get(url.origin);
  if (!agent) {
    // An idle-socket timeout makes Node honour the server's `Keep-Alive: timeout=N` hint (it only ever
    // shortens this value), so pooled sockets are dropped before the server closes them under us.
    const options: http.AgentOptions = { keepAlive: true, maxSockets: 256, timeout: IDLE_SOCKET_TIMEOUT_MS };
    agent = url.protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
    agents.set(url.origin, agent);
  }
  return agent;
}

/**
 * Sends one request and resolves with the full response for any HTTP status; rejects only with
 * {@link HttpTransportError}.
 */
export function sendHttpRequest(request: HttpRequest): Promise<HttpResponse> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch (error) {
    return Promise.reject(new HttpTransportError("network", `invalid URL ${JSON.stringify(request.url)}`, { cause: error }));
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new HttpTransportError("network", `unsupported protocol ${url.protocol}`));
  }
  // A text body goes as text (node writes it with the headers), measured without being copied into a Buffer.
  const body = request.body;
  const headers: Record<string, string> = { ...request.headers };
  if (body !== undefined) headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.length);
  const transport = url.protocol === "https:" ? https : http;
  const target = `${request.method} ${url.origin}${url.pathname}`;

  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const fail = (error: HttpTransportError) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(error);
    };

    const outgoing = transport.request(url, { method: request.method, headers, agent: agentFor(url) }, (incoming) => {
      const chunks: Buffer[] = [];
      let received = 0;
      incoming.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_RESPONSE_BYTES) {
          outgoing.destroy();
          fail(new HttpTransportError("network", `${target}: response larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      incoming.on("error", (error) => fail(new HttpTransportError("network", `${target}: ${error.message}`, { cause: error })));
      incoming.on("close", () => {
        if (!incoming.complete) fail(new HttpTransportError("network", `${target}: connection closed mid-response`));
      });
      incoming.on("end", () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        const responseHeaders: Record<string, string> = {};
        for (const [name, value] of Object.entries(incoming.headers)) {
          if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(", ") : value;
        }
        resolve({ status: incoming.statusCode ?? 0, headers: responseHeaders, body: Buffer.concat(chunks) });
      });
    });

    const deadline = setTimeout(() => {
      fail(new HttpTransportError("timeout", `${target}: no complete answer within ${request.timeoutMs} ms`));
      outgoing.destroy();
    }, request.timeoutMs);

    outgoing.on("error", (error) => fail(new HttpTransportError("network", `${target}: ${error.message}`, { cause: error })));
    outgoing.end(body);
  });
}

/** Closes every pooled connection; for process shutdown and tests. Later calls open new ones. */
export function closeHttpAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}
