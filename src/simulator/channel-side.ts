/**
 * The contract between the simulator core and one channel's side of it: the core routes the
 * channel's requests (under `/{channel}` on the shared listener, and everything on the channel's
 * own listener) and control-API actions to the side, and lends it the shared store, faults,
 * notifier and timers.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { ChannelName } from "../channels/channel.js";
import type { DevChannelKeys } from "../channels/dev-keys.js";
import type { FaultRegistry } from "./faults.js";
import type { Notifier, TimerSet } from "./notifier.js";
import type { SimTrade, TradeStore } from "./trade-store.js";

/** A request for one channel; `path` is what follows the mount prefix (e.g. `/gateway.do`). */
export interface SimulatorRequest {
  method: string;
  path: string;
  /** Where the channel is mounted: `/{channel}` on the shared listener, `""` at the root of its own listener. */
  mount: string;
  /** The listener's origin, e.g. `http://127.0.0.1:8090`; `${origin}${mount}` is the channel's base URL. */
  origin: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
}

/** A channel side's answer, written as is. */
export interface SimulatorResponse {
  status: number;
  headers?: Record<string, string>;
  body: string | Buffer;
}

/** Returned instead of a response to leave the request unanswered (simulated timeout). */
export const HOLD_OPEN: unique symbol = Symbol("hold the request open");

/** What the shopper does when paying through the control API. */
export type PayOutcome = "success" | "fail";

/** The shared machinery a channel side uses. */
export interface SimulatorContext {
  readonly trades: TradeStore;
  readonly faults: FaultRegistry;
  readonly notifier: Notifier;
  readonly timers: TimerSet;
  /** Multiplies the channels' real re-send gaps (1 = real time). */
  readonly timeScale: number;
}

/** One channel's side of the simulator. */
export interface ChannelSimulator {
  readonly channel: ChannelName;
  /** Serves the channel's own API; answers a path it does not know in the channel's own error shape. */
  handle(request: SimulatorRequest): Promise<SimulatorResponse | typeof HOLD_OPEN>;
  /**
   * The shopper pays (or fails to). Changes the trade at once and queues the notify; throws a
   * {@link SimulatorControlError} (404 unknown trade, 409 wrong state).
   */
  pay(outTradeNo: string, outcome: PayOutcome): void;
  /** The shopper opens the payment (scans the QR code) without paying yet. */
  scan(outTradeNo: string): void;
  /** The status this channel would report for the trade on the wire, e.g. `WAIT_BUYER_PAY`. */
  channelState(trade: SimTrade): string;
}

/** Builds a channel side; listed in `startSimulator`. */
export type ChannelSimulatorFactory = (context: SimulatorContext, keys: DevChannelKeys) => ChannelSimulator;
