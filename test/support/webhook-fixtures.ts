/**
 * For the webhook tests: merchant endpoints as real HTTP servers in the test process, and events
 * written straight into `outbox_event` (unsequenced, as a state change writes them; the
 * sequencer of any replica then gives them their place in the feed).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createConnection } from "mysql2/promise";
import { newId } from "../../src/ids.js";

/** One request a receiver got, with its raw body. */
export interface ReceivedWebhook {
  headers: IncomingMessage["headers"];
  body: Buffer;
  eventId: string;
  at: number;
}

export type WebhookHandler = (request: ReceivedWebhook, response: ServerResponse) => void;

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/<path>` */
  url: string;
  port: number;
  received: ReceivedWebhook[];
  /** Requests being answered right now (a hanging handler keeps them open). */
  open(): number;
  /** The most requests it had open at once. */
  maxOpen(): number;
  handle(handler: WebhookHandler): void;
  close(): Promise<void>;
}

/** Answers 200 `ok` by default. */
export const answerOk: WebhookHandler = (_request, response) => response.end("ok");
/** Never answers (the connection stays open until the sender gives up). */
export const hang: WebhookHandler = () => {};

export async function startReceiver(handler: WebhookHandler = answerOk, path = "/hooks"): Promise<WebhookReceiver> {
  let current = handler;
  const received: ReceivedWebhook[] = [];
  let open = 0;
  let maxOpen = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    open++;
    maxOpen = Math.max(maxOpen, open);
    let counted = true;
    const done = () => {
      if (counted) open--;
      counted = false;
    };
    response.on("close", done);
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const hook = { headers: request.headers, body: Buffer.concat(chunks), eventId: String(request.headers["payments-event-id"] ?? ""), at: Date.now() };
      received.push(hook);
      current(hook, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    received,
    open: () => open,
    maxOpen: () => maxOpen,
    handle(next) {
      current = next;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An event to write; the type defaults to `payment.succeeded`, the object to a fresh id. */
export interface TestEvent {
  merchantId: string;
  aggregateId?: string;
  eventType?: string;
  payload?: Record<string, unknown>;
}

/** Writes the events into `outbox_event` of the database at `databaseUrl`, 1000 rows a statement; resolves with their ids in order. */
export async function insertEvents(databaseUrl: string, events: readonly TestEvent[]): Promise<string[]> {
  const connection = await createConnection({ uri: databaseUrl, timezone: "Z" });
  const ids: string[] = [];
  try {
    for (let start = 0; start < events.length; start += 1000) {
      const rows = events.slice(start, start + 1000).map((event) => {
        const id = newId();
        ids.push(id);
        return [
          id,
          event.merchantId,
          event.aggregateId ?? newId(),
          event.eventType ?? "payment.succeeded",
          JSON.stringify(event.payload ?? { note: `event ${ids.length}` }),
          new Date(),
          null,
        ];
      });
      await connection.query("insert into outbox_event (id, merchant_id, aggregate_id, event_type, payload, created_at, seq) values ?", [rows]);
    }
  } finally {
    await connection.end();
  }
  return ids;
}

/** Runs one statement on the database at `databaseUrl` and returns its rows. */
export async function sql<T = Record<string, unknown>>(databaseUrl: string, statement: string, params: unknown[] = []): Promise<T[]> {
  const connection = await createConnection({ uri: databaseUrl, timezone: "Z" });
  try {
    const [rows] = await connection.query(statement, params);
    return rows as T[];
  } finally {
    await connection.end();
  }
}
