/**
 * The channel simulator. One shared listener speaks each channel's wire format under
 * `/{channel}/...` and a JSON control API under `/simulator/...` for tests and people; each channel
 * is also served at the root of its own listener (`channelUrls`), so that a channel's official
 * client, which knows only a host and port (the `stripe` npm client calls `/v1/...`), works
 * unchanged. Unknown paths are answered in each channel's own error shape. Runs in-process
 * (`startSimulator`) or as its own process (`main.ts`).
 *
 * The control API can mark any trade paid, so it answers only requests carrying
 * `authorization: Bearer <control token>`, and every listener is on loopback (127.0.0.1) only.
 * The channel routes keep each channel's own authentication (signatures, secret keys).
 */
import { CHANNEL_NAMES, type ChannelName } from "../channels/channel.js";
import type { DevChannelKeys } from "../channels/dev-keys.js";
import { secretsEqual } from "../merchants/credentials.js";
import { createAlipaySimulator } from "./alipay/alipay-side.js";
import { createCardSimulator } from "./card/card-side.js";
import type { ChannelSimulator, ChannelSimulatorFactory, PayOutcome, SimulatorContext } from "./channel-side.js";
import { handleControl } from "./control-api.js";
import { type FaultScope, FaultRegistry, parseSetFaultsRequest, type SetFaultsRequest, type SimulatorFaults } from "./faults.js";
import { jsonResponse, type Listener, type ListenerRequest, startListener } from "./http-listener.js";
import { Notifier, TimerSet } from "./notifier.js";
import { SimulatorControlError, type SimTradeView, TradeStore, toTradeView } from "./trade-store.js";
import { createWechatPaySimulator } from "./wechatpay/wechatpay-side.js";

// Re-exported so tests and tools import the simulator from one module.
export { cardPublishableKey } from "./card/card-side.js";
export { HOLD_OPEN, type PayOutcome } from "./channel-side.js";
export type { ApiErrorFault, ApiTimeoutFault, FaultScope, SetFaultsRequest, SimulatorFaults } from "./faults.js";
export type { SimTradeView } from "./trade-store.js";

/** Channel sides that exist so far; each new side adds its factory here. */
export const CHANNEL_SIMULATORS: readonly ChannelSimulatorFactory[] = [createAlipaySimulator, createWechatPaySimulator, createCardSimulator];

/** How to start the simulator; `keys` are the channels' identities (see `loadOrCreateDevChannelKeys`). */
export interface SimulatorOptions {
  /** The shared listener's port; 0 picks a free port; default 8090. */
  port?: number;
  /** The port of each channel's own listener (the channel at `/`); default 0, a free port. */
  channelPorts?: Partial<Record<ChannelName, number>>;
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
  /** The shared listener, e.g. `http://127.0.0.1:8090`; Alipay's gateway is `${url}/alipay/gateway.do`. */
  readonly url: string;
  /**
   * Each channel served at the root of its own listener, e.g. `card: "http://127.0.0.1:8093"`:
   * `${channelUrls.card}/v1/payment_intents`, `${channelUrls.alipay}/gateway.do`, `${channelUrls.wechatpay}/v3/...`.
   */
  readonly channelUrls: Readonly<Record<ChannelName, string>>;
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
  /** Stops re-sends, drops held requests, closes the listeners. */
  close(): Promise<void>;
}

/** Shortest control token accepted; matches `SIMULATOR_CONTROL_TOKEN`'s rule. */
export const MIN_CONTROL_TOKEN_LENGTH = 16;

/** Starts the simulator and resolves once every listener listens. */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
  const controlToken = options.controlToken;
  if (typeof controlToken !== "string" || controlToken.length < MIN_CONTROL_TOKEN_LENGTH) {
    throw new RangeError(`controlToken must be a string of at least ${MIN_CONTROL_TOKEN_LENGTH} characters`);
  }

  const trades = new TradeStore();
  const faults = new FaultRegistry();
  const timers = new TimerSet();
  const notifier = new Notifier(faults, timers, timeScale);
  const context: SimulatorContext = { trades, faults, notifier, timers, timeScale };
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

  /** True when the request carries `authorization: Bearer <controlToken>` (compared in constant time). */
  const hasControlToken = (request: ListenerRequest): boolean => {
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? "");
    return match !== null && secretsEqual(match[1]!, controlToken);
  };

  const listeners: Listener[] = [];
  const channelUrls: Partial<Record<ChannelName, string>> = {};
  const simulator: Simulator = {
    get url() {
      return listeners[0]?.url ?? "";
    },
    channelUrls: channelUrls as Record<ChannelName, string>,
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
      await Promise.all(listeners.map((listener) => listener.close()));
      await notifier.settle();
    },
  };

  const shared = await startListener(options.port ?? 8090, async (request) => {
    const pathname = request.url.pathname;
    const first = pathname.split("/")[1] ?? "";
    if (first === "simulator") {
      // Checked before the body is read: an unauthenticated caller gets nothing buffered for it.
      if (!hasControlToken(request)) {
        const message = "the simulator's control API needs authorization: Bearer <SIMULATOR_CONTROL_TOKEN>";
        return jsonResponse(401, { error: message }, { "www-authenticate": 'Bearer realm="simulator"' });
      }
      const segments = pathname.split("/").filter((segment) => segment !== "").slice(1).map(decodePathSegment);
      const rawBody = await request.readBody();
      const requireChannel = (channel: string) => sideFor(channel).channel;
      return handleControl(simulator, timeScale, requireChannel, { method: request.method, segments, query: request.url.searchParams, rawBody });
    }
    const side = sides.get(decodePathSegment(first) as ChannelName);
    if (side) return serveChannel(side, request, `/${first}`, shared.url);
    const channels = [...sides.keys()].join(", ");
    if (pathname.startsWith("/v1/") && channelUrls.card) {
      // A Stripe client pointed at this listener: answered in Stripe's shape, so it reads a clear
      // invalid-request error instead of taking a string `error` for an OAuth one.
      const message = `Unrecognized request URL (${request.method}: ${pathname}). The simulated card acquirer is at ${shared.url}/card/v1/... on this listener, or at the root of ${channelUrls.card}.`;
      return jsonResponse(404, { error: { type: "invalid_request_error", message } });
    }
    return jsonResponse(404, {
      error: `nothing at ${pathname}; channels under /{${channels}} (or at their own roots: ${Object.values(channelUrls).join(", ")}); control API under /simulator`,
    });
  });
  listeners.push(shared);
  try {
    for (const side of sides.values()) {
      const own = await startListener(options.channelPorts?.[side.channel] ?? 0, (request) => serveChannel(side, request, "", own.url));
      listeners.push(own);
      channelUrls[side.channel] = own.url;
    }
  } catch (error) {
    await simulator.close();
    throw error;
  }
  return simulator;
}

async function serveChannel(side: ChannelSimulator, request: ListenerRequest, mount: string, origin: string) {
  return side.handle({
    method: request.method,
    path: request.url.pathname.slice(mount.length) || "/",
    mount,
    origin,
    query: request.url.searchParams,
    headers: request.headers,
    rawBody: await request.readBody(),
  });
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new SimulatorControlError(400, `bad percent-encoding in path segment ${JSON.stringify(segment)}`);
  }
}
