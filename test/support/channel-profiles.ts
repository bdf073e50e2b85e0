/**
 * What the channel contract suite (test/integration/channel-contract.test.ts) needs to know about
 * each channel: how to ask for a payment through it, the simulator's operation names for API
 * faults, the channel's callback answers and the states its side reports. Everything else in the
 * suite is the same for every channel.
 */
import type { ChannelName } from "../../src/channels/channel.js";
import type { SimTradeView } from "../../src/simulator/simulator.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import type { TestApp } from "./test-app.js";

/** One channel as the contract suite drives it. */
export interface ChannelProfile {
  /** The simulator's and the callback route's name. */
  name: ChannelName;
  protoChannel: Channel;
  currency: string;
  /** A CreatePayment request's channel-specific fields (the card channel needs a `pm_` token). */
  requestFields: Record<string, unknown>;
  /** The `action` oneof case of a PENDING payment, and its `action_kind` column. */
  actionCase: "qrCodeUrl" | "codeUrl" | "clientSecret";
  actionKind: "qr_code_url" | "code_url" | "client_secret";
  /** The action value that belongs to the channel's trade. */
  expectedAction(trade: SimTradeView): string | RegExp;
  /** Whether the create answer already names the channel's trade (the card intent) or only payment does. */
  createNamesTrade: boolean;
  /** The simulator's operation names, for `apiError`/`apiTimeout` faults. */
  operations: { create: string; query: string; refund: string };
  /** The channel's exact acknowledgement of a callback. */
  accept: { status: number; body: string };
  /** The channel's exact non-success answer for a callback refused for `reason`. */
  reject(reason: string): { status: number; body: string };
  /**
   * Whether the callback log keeps the signed body byte for byte, so a test can deliver it again
   * (the card event's intent carries its client_secret, which the log redacts).
   */
  logKeepsSignedBody: boolean;
  /** Whether the channel signs its API answers (so `badResponseSignature` applies). */
  signsAnswers: boolean;
  /** The channel's state for a trade closed before anyone paid; undefined when an unscanned QR code has no trade to close. */
  closedState?: string;
  /** The channel's state for a fully refunded trade. */
  refundedState: string;
  /** What a refund the channel rejects at once says in `failure_reason`. */
  refundRejection: string;
  /** Whether the channel keeps a refund it rejected at once (as failed) or never records it. */
  rejectedRefundKept: boolean;
  /** The verdict logged for a refund's notify that arrives after the refund finished. */
  lateRefundNotifyVerdict: "applied" | "ignored";
  /** Anything the channel needs before its first payment (the card acquirer's webhook endpoint). */
  setUp(t: TestApp): Promise<void>;
}

export const CHANNEL_PROFILES: readonly ChannelProfile[] = [
  {
    name: "alipay",
    protoChannel: Channel.ALIPAY,
    currency: "CNY",
    requestFields: {},
    actionCase: "qrCodeUrl",
    actionKind: "qr_code_url",
    expectedAction: (trade) => trade.attributes.qr_code!,
    createNamesTrade: false,
    operations: { create: "alipay.trade.precreate", query: "alipay.trade.query", refund: "alipay.trade.refund" },
    accept: { status: 200, body: "success" },
    reject: () => ({ status: 400, body: "fail" }),
    logKeepsSignedBody: true,
    signsAnswers: true,
    closedState: undefined,
    refundedState: "TRADE_CLOSED",
    refundRejection: "ACQ.SELLER_BALANCE_NOT_ENOUGH",
    rejectedRefundKept: true,
    lateRefundNotifyVerdict: "ignored",
    setUp: async () => {},
  },
  {
    name: "wechatpay",
    protoChannel: Channel.WECHAT_PAY,
    currency: "CNY",
    requestFields: {},
    actionCase: "codeUrl",
    actionKind: "code_url",
    expectedAction: (trade) => trade.attributes.code_url!,
    createNamesTrade: false,
    operations: {
      create: "POST /v3/pay/transactions/native",
      query: "GET /v3/pay/transactions/out-trade-no/{out_trade_no}",
      refund: "POST /v3/refund/domestic/refunds",
    },
    accept: { status: 204, body: "" },
    reject: (reason) => ({ status: 400, body: JSON.stringify({ code: "FAIL", message: reason }) }),
    logKeepsSignedBody: true,
    signsAnswers: true,
    closedState: "CLOSED",
    refundedState: "REFUND",
    refundRejection: "NOT_ENOUGH",
    rejectedRefundKept: false,
    lateRefundNotifyVerdict: "applied",
    setUp: async () => {},
  },
  {
    name: "card",
    protoChannel: Channel.CARD,
    currency: "USD",
    requestFields: { paymentMethod: "pm_card_visa" },
    actionCase: "clientSecret",
    actionKind: "client_secret",
    expectedAction: (trade) => new RegExp(`^${trade.channelTradeNo}_secret_\\w+$`),
    createNamesTrade: true,
    operations: { create: "payment_intents.create", query: "payment_intents.retrieve", refund: "refunds.create" },
    accept: { status: 200, body: JSON.stringify({ received: true }) },
    reject: (reason) => ({ status: 400, body: JSON.stringify({ error: reason }) }),
    logKeepsSignedBody: false,
    // The acquirer answers over TLS, unsigned: there is no answer signature to forge.
    signsAnswers: false,
    closedState: "canceled",
    refundedState: "succeeded",
    refundRejection: "expired_or_canceled_card",
    rejectedRefundKept: true,
    lateRefundNotifyVerdict: "applied",
    setUp: (t) => t.registerCardWebhook(),
  },
];
