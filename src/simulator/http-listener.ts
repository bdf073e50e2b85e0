/**
 * The simulator's HTTP plumbing, shared by its listeners: loopback only, bodies read up to 1 MiB,
 * requests a handler holds open (simulated timeouts) dropped on close, and an unexpected error
 * answered as a 500 (a {@link SimulatorControlError} with its own status).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { HOLD_OPEN, type SimulatorResponse } from "./channel-side.js";
import { SimulatorControlError } from "./trade-store.js";

const MAX_BODY_BYTES = 1024 * 1024;
/** The only address the simulator listens on. */
const LOOPBACK = "127.0.0.1";

/** A request as a listener hands it to its handler. */
export interface ListenerRequest {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  /** Reads the body (at most 1 MiB, else 413); a handler that refuses early never reads it. */
  readBody(): Promise<Buffer>;
}

/** Answers one request; `HOLD_OPEN` leaves it unanswered until the listener closes. */
export type ListenerHandler = (request: ListenerRequest) => Promise<SimulatorResponse | typeof HOLD_OPEN>;

/** A listening server. */
export interface Listener {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` (0 = a free port) and resolves once it does. */
export async function startListener(port: number, handler: ListenerHandler): Promise<Listener> {
  const held = new Set<http.ServerResponse>();
  const server = http.createServer((request, response) => {
    void serve(request, response);
  });

  async function serve(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    try {
      const answer = await handler({
        method: request.method ?? "GET",
        url: new URL(request.url ?? "/", "http://simulator.invalid"),
        headers: request.headers,
        readBody: () => readBody(request),
      });
      if (answer === HOLD_OPEN) {
        held.add(response);
        response.on("close", () => held.delete(response));
        return;
      }
      response.writeHead(answer.status, answer.headers);
      response.end(answer.body);
    } catch (error) {
      const status = error instanceof SimulatorControlError ? error.status : 500;
      if (status === 500) console.error("simulator: request failed", error);
      if (!response.headersSent) {
        const answer = jsonResponse(status, { error: (error as Error).message });
        response.writeHead(answer.status, answer.headers);
        response.end(answer.body);
      } else response.destroy();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, LOOPBACK, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const url = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      for (const response of held) response.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A pretty-printed JSON answer. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): SimulatorResponse {
  return { status, headers: { "content-type": "application/json; charset=utf-8", ...headers }, body: `${JSON.stringify(body, null, 2)}\n` };
}

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new SimulatorControlError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}
