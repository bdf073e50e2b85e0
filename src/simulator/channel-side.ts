/**
 * The contract between the simulator core and one channel's side of it (Alipay now; WeChat Pay
 * and the card acquirer plug in the same way): the core routes `/{channel}/...` requests and
 * control-API actions to the side, and lends it the shared store, faults, notifier and timers.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { ChannelName } from "../channels/channel.js";
import type { DevChannelKeys } from "../channels/dev-keys.js";
import type { FaultRegistry } from "./faults.js";
import type { Notifier, TimerSet } from "./notifier.js";
import type { SimTrade, TradeStore } from "./trade-store.js";

/** A request under the channel's prefix; `path` is what follows `/{channel}` (e.g. `/gateway.do`). */
export interface SimulatorRequest {
  method: string;
  path: string;
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
  /** The simulator's base URL (valid once it listens), for URLs it hands out such as bill downloads. */
  baseUrl(): string;
}

/** One channel's side of the simulator. */
export interface ChannelSimulator {
  readonly channel: ChannelName;
  /** Serves the channel's own API under `/{channel}/...`. */
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
