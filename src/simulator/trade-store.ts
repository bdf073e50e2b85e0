/**
 * The simulator's in-memory trades, shared by every channel side. A trade holds what is common to
 * all channels; a side keeps its wire-specific bits in `attributes`.
 */
import type { ChannelName } from "../channels/channel.js";
import { formatMinor } from "../money/currency.js";

/**
 * Channel-neutral trade states. `created`: the channel accepted the order but the shopper has not
 * opened it yet (for Alipay the trade does not exist at the channel until the QR code is scanned).
 */
export type SimTradeState = "created" | "pending" | "paid" | "failed" | "closed";

/** A refund as the channel recorded it. */
export interface SimRefund {
  refundNo: string;
  channelRefundNo?: string;
  amountMinor: bigint;
  state: "succeeded" | "processing" | "failed";
  reason?: string;
  createdAt: Date;
}

/** One HTTP delivery of a notification (one copy, when duplicates are injected). */
export interface NotifyAttemptRecord {
  attempt: number;
  copy: number;
  at: Date;
  status?: number;
  /** The receiver's answer body, cut to 200 characters. */
  body?: string;
  error?: string;
  acknowledged: boolean;
}

/** Where a notification is: waiting, re-sending, done, given up after the schedule, or dropped by a fault. */
export type SimNotificationState = "queued" | "retrying" | "acknowledged" | "gave_up" | "dropped";

/** A notification and every delivery of it. */
export interface SimNotificationRecord {
  /** The channel's notification id, constant across re-sends. */
  id: string;
  /** What it reports, e.g. `payment`, `closed`, `refund`. */
  kind: string;
  url: string;
  state: SimNotificationState;
  attempts: NotifyAttemptRecord[];
}

/** A trade at the simulated channel. */
export interface SimTrade {
  channel: ChannelName;
  outTradeNo: string;
  channelTradeNo: string;
  amountMinor: bigint;
  currency: string;
  subject: string;
  notifyUrl?: string;
  state: SimTradeState;
  createdAt: Date;
  /** When the shopper opened the payment (scanned the QR code). */
  openedAt?: Date;
  paidAt?: Date;
  closedAt?: Date;
  expiresAt?: Date;
  buyerId?: string;
  refunds: SimRefund[];
  notifications: SimNotificationRecord[];
  attributes: Record<string, string>;
}

/** A control-API error: the HTTP status and a message for the caller. */
export class SimulatorControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "SimulatorControlError";
  }
}

/** Sum of the refunds that went through. */
export function refundedMinor(trade: SimTrade): bigint {
  return trade.refunds.reduce((sum, refund) => (refund.state === "failed" ? sum : sum + refund.amountMinor), 0n);
}

/**
 * All trades of all channels, keyed by channel and `out_trade_no` and indexed by the channel's
 * trade number. Holds at most `maxTrades`, forgetting the oldest, so long benchmarks stay in memory.
 */
export class TradeStore {
  readonly #trades = new Map<string, SimTrade>();
  readonly #byChannelTradeNo = new Map<string, SimTrade>();

  constructor(private readonly maxTrades = 200_000) {}

  get(channel: ChannelName, outTradeNo: string): SimTrade | undefined {
    return this.#trades.get(`${channel}\u0000${outTradeNo}`);
  }

  /** Like {@link get}, but a missing trade is a 404 control error. */
  require(channel: ChannelName, outTradeNo: string): SimTrade {
    const trade = this.get(channel, outTradeNo);
    if (!trade) throw new SimulatorControlError(404, `no ${channel} trade with out_trade_no ${JSON.stringify(outTradeNo)}`);
    return trade;
  }

  add(trade: SimTrade): void {
    const key = `${trade.channel}\u0000${trade.outTradeNo}`;
    if (this.#trades.has(key)) throw new Error(`duplicate ${trade.channel} trade ${trade.outTradeNo}`);
    this.#trades.set(key, trade);
    this.#byChannelTradeNo.set(`${trade.channel}\u0000${trade.channelTradeNo}`, trade);
    if (this.#trades.size > this.maxTrades) {
      const [oldestKey, oldest] = this.#trades.entries().next().value as [string, SimTrade];
      this.#trades.delete(oldestKey);
      this.#byChannelTradeNo.delete(`${oldest.channel}\u0000${oldest.channelTradeNo}`);
    }
  }

  findByChannelTradeNo(channel: ChannelName, channelTradeNo: string): SimTrade | undefined {
    return this.#byChannelTradeNo.get(`${channel}\u0000${channelTradeNo}`);
  }

  list(channel?: ChannelName): SimTrade[] {
    return [...this.#trades.values()].filter((trade) => channel === undefined || trade.channel === channel);
  }

  clear(): void {
    this.#trades.clear();
    this.#byChannelTradeNo.clear();
  }
}

/** The JSON shape of a trade in the control API: amounts as decimal strings of minor units. */
export interface SimTradeView {
  channel: ChannelName;
  outTradeNo: string;
  channelTradeNo: string;
  state: SimTradeState;
  /** The status the channel reports on the wire, e.g. `TRADE_SUCCESS`. */
  channelState: string;
  amountMinor: string;
  /** Human-readable amount, e.g. `"88.88"`. */
  amount: string;
  currency: string;
  subject: string;
  notifyUrl?: string;
  createdAt: string;
  openedAt?: string;
  paidAt?: string;
  closedAt?: string;
  expiresAt?: string;
  refundedMinor: string;
  refunds: { refundNo: string; channelRefundNo?: string; amountMinor: string; state: SimRefund["state"]; createdAt: string }[];
  notifications: {
    id: string;
    kind: string;
    url: string;
    state: SimNotificationState;
    attempts: { attempt: number; copy: number; at: string; status?: number; body?: string; error?: string; acknowledged: boolean }[];
  }[];
  attributes: Record<string, string>;
}

/** Builds the control-API view of a trade. */
export function toTradeView(trade: SimTrade, channelState: string): SimTradeView {
  const iso = (date: Date) => date.toISOString();
  const optionalIso = (date: Date | undefined) => date?.toISOString();
  return {
    channel: trade.channel,
    outTradeNo: trade.outTradeNo,
    channelTradeNo: trade.channelTradeNo,
    state: trade.state,
    channelState,
    amountMinor: trade.amountMinor.toString(),
    amount: formatMinor(trade.amountMinor, trade.currency),
    currency: trade.currency,
    subject: trade.subject,
    notifyUrl: trade.notifyUrl,
    createdAt: iso(trade.createdAt),
    openedAt: optionalIso(trade.openedAt),
    paidAt: optionalIso(trade.paidAt),
    closedAt: optionalIso(trade.closedAt),
    expiresAt: optionalIso(trade.expiresAt),
    refundedMinor: refundedMinor(trade).toString(),
    refunds: trade.refunds.map((refund) => ({
      refundNo: refund.refundNo,
      channelRefundNo: refund.channelRefundNo,
      amountMinor: refund.amountMinor.toString(),
      state: refund.state,
      createdAt: iso(refund.createdAt),
    })),
    notifications: trade.notifications.map((notification) => ({
      id: notification.id,
      kind: notification.kind,
      url: notification.url,
      state: notification.state,
      attempts: notification.attempts.map((attempt) => ({ ...attempt, at: iso(attempt.at) })),
    })),
    attributes: { ...trade.attributes },
  };
}
