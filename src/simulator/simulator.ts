/**
 * The channel simulator: one HTTP server that speaks each channel's wire format under
 * `/{channel}/...` and a JSON control API under `/simulator/...` for tests and people.
 * Runs in-process (`startSimulator`) or as its own process (`main.ts`).
 *
 * The control API can mark any trade paid, so it answers only requests carrying
 * `authorization: Bearer <control token>`, and the server listens on loopback (127.0.0.1) only.
 * The channel routes keep each channel's own authentication (signatures, secret keys).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { CHANNEL_NAMES, type ChannelName } from "../channels/channel.js";
import type { DevChannelKeys } from "../channels/dev-keys.js";
import { secretsEqual } from "../merchants/credentials.js";
import { createAlipaySimulator } from "./alipay-simulator.js";
import { createCardSimulator } from "./card-simulator.js";
import {
  type ChannelSimulator,
  type ChannelSimulatorFactory,
  HOLD_OPEN,
  type PayOutcome,
  type SimulatorContext,
  type SimulatorResponse,
} from "./channel-side.js";
import { type FaultScope, FaultRegistry, parseSetFaultsRequest, type SetFaultsRequest, type SimulatorFaults } from "./faults.js";
import { Notifier, TimerSet } from "./notifier.js";
import { SimulatorControlError, type SimTradeView, TradeStore, toTradeView } from "./trade-store.js";
import { createWechatPaySimulator } from "./wechatpay-simulator.js";

// Re-exported so tests and tools import the simulator from one module.
export { HOLD_OPEN, type PayOutcome } from "./channel-side.js";
export type { ApiErrorFault, ApiTimeoutFault, FaultScope, SetFaultsRequest, SimulatorFaults } from "./faults.js";
export type { SimTradeView } from "./trade-store.js";

/** Channel sides that exist so far; each new side adds its factory here. */
export const CHANNEL_SIMULATORS: readonly ChannelSimulatorFactory[] = [createAlipaySimulator, createWechatPaySimulator, createCardSimulator];

/** How to start the simulator; `keys` are the channels' identities (see `loadOrCreateDevChannelKeys`). */
export interface SimulatorOptions {
  /** 0 picks a free port; default 8090. */
  port?: number;
  /**
   * The bearer token the control API (`/simulator/...`) requires, at least 16 characters.
   * There is no host option: the simulator listens on 127.0.0.1 only.
   */
  controlToken: string;
  /** Multiplies the channels' re-send gaps; e.g. 0.001 turns Alipay's 4 minutes into 240 ms. Default 1. */
  timeScale?: number;
  keys: DevChannelKeys;
}

/** A running simulator. The control methods mirror the HTTP control API and return the same JSON shapes. */
export interface Simulator {
  /** Base URL, e.g. `http://127.0.0.1:8090`; Alipay's gateway is `${url}/alipay/gateway.do`. */
  readonly url: string;
  readonly channels: readonly ChannelName[];
  /** `POST /simulator/{channel}/trades/{outTradeNo}/pay`. */
  pay(channel: ChannelName, outTradeNo: string, outcome?: PayOutcome): SimTradeView;
  /** `POST /simulator/{channel}/trades/{outTradeNo}/scan`. */
  scan(channel: ChannelName, outTradeNo: string): SimTradeView;
  /** `GET /simulator/{channel}/trades/{outTradeNo}`; undefined instead of 404. */
  getTrade(channel: ChannelName, outTradeNo: string): SimTradeView | undefined;
  /** `GET /simulator/{channel}/trades`. */
  listTrades(channel: ChannelName): SimTradeView[];
  /** `POST /simulator/faults`. */
  setFaults(request: SetFaultsRequest): void;
  /** `DELETE /simulator/faults` (with `?channel=&outTradeNo=` to clear one scope). */
  clearFaults(scope?: FaultScope): void;
  /** `GET /simulator/faults`. */
  listFaults(): { channel?: ChannelName; outTradeNo?: string; faults: SimulatorFaults }[];
  /** Stops re-sends, drops held requests, closes the server. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
/** Shortest control token accepted; matches `SIMULATOR_CONTROL_TOKEN`'s rule. */
export const MIN_CONTROL_TOKEN_LENGTH = 16;
/** The only address the simulator listens on. */
const LOOPBACK = "127.0.0.1";

/** Starts the simulator and resolves once it listens. */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
  const controlToken = options.controlToken;
  if (typeof controlToken !== "string" || controlToken.length < MIN_CONTROL_TOKEN_LENGTH) {
    throw new RangeError(`controlToken must be a string of at least ${MIN_CONTROL_TOKEN_LENGTH} characters`);
  }
  let url = "";

  const trades = new TradeStore();
  const faults = new FaultRegistry();
  const timers = new TimerSet();
  const notifier = new Notifier(faults, timers, timeScale);
  const context: SimulatorContext = { trades, faults, notifier, timers, timeScale, baseUrl: () => url };
  const sides = new Map<ChannelName, ChannelSimulator>();
  for (const factory of CHANNEL_SIMULATORS) {
    const side = factory(context, options.keys);
    sides.set(side.channel, side);
  }

  const sideFor = (channel: string): ChannelSimulator => {
    const side = sides.get(channel as ChannelName);
    if (side) return side;
    if (CHANNEL_NAMES.includes(channel as ChannelName)) throw new SimulatorControlError(404, `channel ${channel} is not simulated yet`);
    throw new SimulatorControlError(404, `unknown channel ${JSON.stringify(channel)}`);
  };
  const view = (channel: ChannelName, outTradeNo: string): SimTradeView => {
    const trade = trades.require(channel, outTradeNo);
    return toTradeView(trade, sideFor(channel).channelState(trade));
  };

  const simulator: Simulator = {
    get url() {
      return url;
    },
    channels: [...sides.keys()],
    pay(channel, outTradeNo, outcome = "success") {
      sideFor(channel).pay(outTradeNo, outcome);
      return view(channel, outTradeNo);
    },
    scan(channel, outTradeNo) {
      sideFor(channel).scan(outTradeNo);
      return view(channel, outTradeNo);
    },
    getTrade(channel, outTradeNo) {
      return trades.get(channel, outTradeNo) ? view(channel, outTradeNo) : undefined;
    },
    listTrades(channel) {
      const side = sideFor(channel);
      return trades.list(channel).map((trade) => toTradeView(trade, side.channelState(trade)));
    },
    setFaults(request) {
      faults.set(parseSetFaultsRequest(request));
    },
    clearFaults(scope) {
      faults.clear(scope);
    },
    listFaults() {
      return faults.snapshot();
    },
    async close() {
      timers.stop();
      for (const response of held) response.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await notifier.settle();
    },
  };

  async function control(method: string, segments: string[], query: URLSearchParams, rawBody: Buffer): Promise<SimulatorResponse> {
    const [resource, second, third, fourth] = segments;
    if (resource === undefined && method === "GET") {
      return json(200, { channels: simulator.channels, timeScale });
    }
    if (resource === "faults" && second === undefined) {
      if (method === "GET") return json(200, { scopes: simulator.listFaults() });
      if (method === "POST") {
        simulator.setFaults(parseJsonBody(rawBody) as SetFaultsRequest);
        return json(200, { scopes: simulator.listFaults() });
      }
      if (method === "DELETE") {
        const channel = query.get("channel") ?? undefined;
        const outTradeNo = query.get("outTradeNo") ?? undefined;
        if (channel !== undefined) sideFor(channel);
        simulator.clearFaults({ channel: channel as ChannelName | undefined, outTradeNo });
        return json(200, { scopes: simulator.listFaults() });
      }
    }
    if (resource !== undefined && resource !== "faults" && second === "trades") {
      const channel = sideFor(resource).channel;
      if (third === undefined && method === "GET") return json(200, { trades: simulator.listTrades(channel) });
      if (third !== undefined && fourth === undefined && method === "GET") return json(200, view(channel, third));
      if (third !== undefined && fourth === "pay" && method === "POST") {
        const body = rawBody.length > 0 ? parseJsonBody(rawBody) : {};
        const outcome = (body as { outcome?: unknown }).outcome ?? "success";
        if (outcome !== "success" && outcome !== "fail") throw new SimulatorControlError(400, 'outcome must be "success" or "fail"');
        return json(200, simulator.pay(channel, third, outcome));
      }
      if (third !== undefined && fourth === "scan" && method === "POST") return json(200, simulator.scan(channel, third));
    }
    throw new SimulatorControlError(404, `no control route ${method} /simulator/${segments.join("/")}`);
  }

  const held = new Set<http.ServerResponse>();
  const server = http.createServer((request, response) => {
    void serve(request, response);
  });

  /** True when the request carries `authorization: Bearer <controlToken>` (compared in constant time). */
  function hasControlToken(request: http.IncomingMessage): boolean {
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? "");
    return match !== null && secretsEqual(match[1]!, controlToken);
  }

  async function serve(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    try {
      const requestUrl = new URL(request.url ?? "/", "http://simulator.invalid");
      const segments = requestUrl.pathname
        .split("/")
        .filter((segment) => segment !== "")
        .map(decodePathSegment);
      const isControl = segments[0] === "simulator";
      // Checked before the body is read: an unauthenticated caller gets nothing buffered for it.
      if (isControl && !hasControlToken(request)) {
        const answer = json(401, {
          error: "the simulator's control API needs authorization: Bearer <SIMULATOR_CONTROL_TOKEN>",
        });
        response.writeHead(answer.status, { ...answer.headers, "www-authenticate": 'Bearer realm="simulator"' });
        response.end(answer.body);
        return;
      }
      const rawBody = await readBody(request);
      const method = request.method ?? "GET";
      let answer: SimulatorResponse | typeof HOLD_OPEN;
      if (isControl) {
        answer = await control(method, segments.slice(1), requestUrl.searchParams, rawBody);
      } else if (segments[0] !== undefined && sides.has(segments[0] as ChannelName)) {
        const side = sides.get(segments[0] as ChannelName) as ChannelSimulator;
        const prefix = `/${requestUrl.pathname.split("/")[1]}`;
        answer = await side.handle({
          method,
          path: requestUrl.pathname.slice(prefix.length) || "/",
          query: requestUrl.searchParams,
          headers: request.headers,
          rawBody,
        });
      } else {
        const channels = [...sides.keys()].join(", ");
        answer = json(404, { error: `nothing at ${requestUrl.pathname}; channels: ${channels}; control API under /simulator` });
      }
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
        const answer = json(status, { error: (error as Error).message });
        response.writeHead(answer.status, answer.headers);
        response.end(answer.body);
      } else response.destroy();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8090, LOOPBACK, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  url = `http://${LOOPBACK}:${port}`;
  return simulator;
}

function json(status: number, body: unknown): SimulatorResponse {
  return { status, headers: { "content-type": "application/json; charset=utf-8" }, body: `${JSON.stringify(body, null, 2)}\n` };
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new SimulatorControlError(400, `bad percent-encoding in path segment ${JSON.stringify(segment)}`);
  }
}

function parseJsonBody(rawBody: Buffer): unknown {
  try {
    return JSON.parse(rawBody.toString("utf8"));
  } catch {
    throw new SimulatorControlError(400, "body is not valid JSON");
  }
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
