/**
 * The one interface every payment channel adapter implements. Domain code (payments,
 * callbacks, sweeper, refunds, reconciliation) talks to channels only through it; the wire
 * format of each channel lives entirely inside its own folder under `src/channels/`.
 */

/** Channel identifiers as stored in the database and used in callback paths. */
export type ChannelName = "alipay" | "wechatpay" | "card";

export const CHANNEL_NAMES: readonly ChannelName[] = ["alipay", "wechatpay", "card"];

/** What the shopper needs to pay: a QR URL (Alipay), a code URL (WeChat) or a client secret (card). */
export type PaymentAction =
  | { kind: "qr_code_url"; value: string }
  | { kind: "code_url"; value: string }
  | { kind: "client_secret"; value: string };

export interface ChannelCreatePaymentRequest {
  /** Our payment number: the channel's `out_trade_no` (or metadata on the card acquirer). */
  paymentNo: string;
  /** Amount in the currency's minor units. Adapters convert to their wire format. */
  amountMinor: bigint;
  /** ISO 4217 code. */
  currency: string;
  subject: string;
  expiresAt: Date;
  /** Absolute URL of our callback route for this channel. */
  notifyUrl: string;
  /** Stable per payment: retrying a create with the same key must not create a second trade. */
  idempotencyKey: string;
  /** Card only: the acquirer's payment-method token (never a card number). */
  paymentMethodToken?: string;
}

export interface ChannelPaymentCreated {
  /** The channel's own id, when the create call already returns one (card: `pi_...`). */
  channelTradeNo?: string;
  action: PaymentAction;
}

/** A payment's state as the channel reports it, normalised. */
export type ChannelTradeState =
  | "pending" // created, waiting for the shopper (WAIT_BUYER_PAY, NOTPAY, USERPAYING, requires_*)
  | "succeeded" // paid (TRADE_SUCCESS, TRADE_FINISHED, SUCCESS, REFUND, succeeded)
  | "failed" // the attempt failed for good (PAYERROR, payment_failed)
  | "closed" // closed or cancelled without payment
  | "not_found"; // the channel has no such trade (e.g. the shopper never scanned the Alipay QR)

export interface ChannelTradeStatus {
  state: ChannelTradeState;
  channelTradeNo?: string;
  /** Amount the channel holds for the trade, in minor units, when it says. */
  amountMinor?: bigint;
  currency?: string;
  paidAt?: Date;
  /** Channel's failure or state text, kept for support. */
  detail?: string;
}

/** Identifies a trade at the channel: our number plus the channel's id when we know it. */
export interface ChannelTradeRef {
  paymentNo: string;
  channelTradeNo?: string | null;
  amountMinor: bigint;
  currency: string;
}

export interface ChannelRefundRequest {
  trade: ChannelTradeRef;
  /** Our refund number: the channel's `out_request_no` / `out_refund_no`; the idempotency key. */
  refundNo: string;
  /** The channel's refund id once known (lets the card acquirer look it up directly). */
  channelRefundNo?: string | null;
  amountMinor: bigint;
  reason?: string;
  notifyUrl: string;
}

/**
 * `not_found` comes only from `queryRefund`: the channel has no refund with our number, e.g. the
 * process died after accepting it but before sending it. Never a failure: sending it again under the
 * same number is safe at every channel, and is what the refund sweeper does.
 */
export type ChannelRefundState = "succeeded" | "processing" | "failed" | "not_found";

export interface ChannelRefundStatus {
  state: ChannelRefundState;
  channelRefundNo?: string;
  detail?: string;
}

/** An inbound callback exactly as received: lower-cased header names, the raw body bytes. */
export interface CallbackRequest {
  headers: Readonly<Record<string, string | undefined>>;
  rawBody: Buffer;
}

/** A verified, parsed callback about a payment. */
export interface PaymentNotification {
  kind: "payment";
  /** The channel's id for this notification; the same across re-sends (inbox dedup key). */
  notificationId: string;
  paymentNo: string;
  channelTradeNo?: string;
  state: ChannelTradeState;
  /** The order amount the channel says it was for, in minor units: cross-checked against ours. */
  amountMinor: bigint;
  currency: string;
  paidAt?: Date;
  /** The channel's own event/status name, for the audit trail. */
  channelStatus: string;
}

/** A verified, parsed callback about a refund. */
export interface RefundNotification {
  kind: "refund";
  notificationId: string;
  paymentNo: string;
  refundNo: string;
  channelRefundNo?: string;
  state: ChannelRefundState;
  amountMinor: bigint;
  channelStatus: string;
}

/** A verified callback that carries nothing for us to apply (an event type we do not use). */
export interface IgnoredNotification {
  kind: "ignored";
  notificationId: string;
  channelStatus: string;
}

/** A verified, parsed callback about a payout (the card acquirer's `payout.paid` / `payout.failed`). */
export interface PayoutNotification {
  kind: "payout";
  notificationId: string;
  /** Our payout number, as the payout's metadata carries it. */
  payoutNo: string;
  channelPayoutNo?: string;
  state: "paid" | "failed";
  amountMinor: bigint;
  currency: string;
  /** The channel's event name, plus its failure text for a failed payout. */
  channelStatus: string;
}

export type ChannelNotification = PaymentNotification | RefundNotification | PayoutNotification | IgnoredNotification;

/** The HTTP answer the channel expects. */
export interface CallbackAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** A row of a channel's daily bill, normalised. */
export interface BillRecord {
  kind: "payment" | "refund";
  paymentNo: string;
  channelTradeNo?: string;
  refundNo?: string;
  /** The payment's or refund's amount, positive, in minor units. */
  amountMinor: bigint;
  /** The channel's fee on the line, in minor units: positive for a payment, the fee returned (not positive) for a refund. */
  feeMinor: bigint;
  currency: string;
  occurredAt: Date;
  /** 1-based line number in the bill file (or position in the card acquirer's list), for error messages and discrepancies. */
  line: number;
}

/**
 * A channel's bill for one day, held in a temporary file (never whole in memory) and read line by
 * line. Reading it again starts a fresh pass over the file.
 */
export interface BillFile {
  readonly channel: ChannelName;
  readonly billDate: string;
  /** The records in file order. Throws {@link BillFormatError} naming the line on anything malformed. */
  records(): AsyncIterable<BillRecord>;
  /** Deletes the temporary file (not a caller's upload). */
  dispose(): Promise<void>;
}

/** A bill that cannot be read: malformed, truncated, oversized or wrongly hashed. Nothing of its run is stored. */
export class BillFormatError extends Error {
  readonly reason = "BILL_INVALID";
  constructor(
    readonly channel: ChannelName,
    /** What is wrong, e.g. `bad amount "1.2.3" in column 订单金额`. */
    readonly detail: string,
    /** 1-based line of the file, when the fault is on one line. */
    readonly line?: number,
  ) {
    super(`${channel} bill${line === undefined ? "" : ` line ${line}`}: ${detail}`);
  }
}

/** The merchant's payee at a payout channel (its settlement account). */
export interface PayeeAccount {
  type: "ALIPAY_USER_ID" | "ALIPAY_LOGON_ID" | "WECHAT_OPENID" | "BANK_ACCOUNT";
  account: string;
  /** The payee's real name, where the channel wants it. */
  name?: string;
}

export interface ChannelPayoutRequest {
  /** Our payout number: Alipay `out_biz_no`, WeChat `out_batch_no` and `out_detail_no`, the card acquirer's idempotency key and metadata. The same on every retry. */
  payoutNo: string;
  /** The channel's id once known. */
  channelPayoutNo?: string | null;
  amountMinor: bigint;
  currency: string;
  payee: PayeeAccount;
  /** Shown to the payee, e.g. "Settlement S20261202...". */
  remark: string;
}

/**
 * `processing`: accepted, not finished. `not_found` comes only from `queryPayout`: the channel has no
 * transfer under our number (never sent, or lost before it arrived), so sending it again is safe.
 */
export type ChannelPayoutState = "processing" | "paid" | "failed" | "not_found";

export interface ChannelPayoutStatus {
  state: ChannelPayoutState;
  channelPayoutNo?: string;
  /** The channel's failure text or state name, for support. */
  detail?: string;
}

/** Transfers to merchants (settlement by transfer), in the channel's own payout API. */
export interface PayoutOperations {
  /** Checks the payee's shape for this channel; returns what is wrong, or undefined. Nothing is sent. */
  validatePayee(payee: PayeeAccount): string | undefined;
  /** Sends the transfer; idempotent under `payoutNo`. Throws ChannelUnavailableError when the outcome is unknown. */
  sendPayout(request: ChannelPayoutRequest): Promise<ChannelPayoutStatus>;
  queryPayout(request: ChannelPayoutRequest): Promise<ChannelPayoutStatus>;
}

export interface PaymentChannel {
  readonly name: ChannelName;
  createPayment(request: ChannelCreatePaymentRequest): Promise<ChannelPaymentCreated>;
  queryPayment(trade: ChannelTradeRef): Promise<ChannelTradeStatus>;
  /**
   * Closes an unpaid trade. Resolves when the trade is closed or never existed at the channel;
   * throws {@link ChannelTradePaidError} when the channel says it was paid.
   */
  closePayment(trade: ChannelTradeRef): Promise<void>;
  refund(request: ChannelRefundRequest): Promise<ChannelRefundStatus>;
  queryRefund(request: ChannelRefundRequest): Promise<ChannelRefundStatus>;
  /**
   * Verifies the signature over the raw bytes first, then the account identity (app id, mchid),
   * then parses. Throws {@link CallbackRejectedError} on anything invalid.
   */
  parseCallback(request: CallbackRequest): ChannelNotification;
  /** The exact acknowledgement the channel expects for a processed callback. */
  acceptAnswer(): CallbackAnswer;
  /** A non-success answer, so the channel re-sends later (or gives up on a forged one). */
  rejectAnswer(reason: string): CallbackAnswer;
  /** Downloads the day's bill (`YYYY-MM-DD`) into a temporary file, checking its hash where the channel gives one. */
  fetchBill(billDate: string): Promise<BillFile>;
  /**
   * Reads a bill file in this channel's download format (ImportStatement), checking `sha1` when given.
   * The file stays the caller's: `dispose()` leaves it.
   */
  openBillFile(path: string, billDate: string, options?: { sha1?: string }): Promise<BillFile>;
  /** Transfers to merchants through this channel. */
  readonly payouts: PayoutOperations;
}

/** The channel could not be reached or answered 5xx/timeout: retry later, never guess an outcome. */
export class ChannelUnavailableError extends Error {
  readonly reason = "CHANNEL_UNAVAILABLE";
  constructor(
    readonly channel: ChannelName,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${channel}: ${message}`, options);
  }
}

/**
 * The channel answered, but the answer cannot be trusted (its signature does not verify) or read
 * (an unexpected shape). What happened at the channel is unknown, exactly as when it cannot be
 * reached: callers retry or ask again later and never act on the content. `code` says which.
 */
export class ChannelAnswerUntrustedError extends ChannelUnavailableError {
  constructor(
    channel: ChannelName,
    readonly code: "RESPONSE_SIGNATURE_INVALID" | "UNEXPECTED_RESPONSE",
    message: string,
  ) {
    super(channel, message);
  }
}

/** The channel answered, and said no (business failure). `code` is the channel's own code. */
export class ChannelRejectedError extends Error {
  readonly reason = "CHANNEL_REJECTED";
  constructor(
    readonly channel: ChannelName,
    readonly code: string,
    message: string,
  ) {
    super(`${channel} rejected: ${code}: ${message}`);
  }
}

/** Asked to close a trade the channel says is paid. */
export class ChannelTradePaidError extends Error {
  readonly reason = "CHANNEL_TRADE_PAID";
  constructor(readonly channel: ChannelName) {
    super(`${channel}: trade is already paid`);
  }
}

/** A callback failed verification or parsing. `reason` is logged and stored, never the secrets. */
export class CallbackRejectedError extends Error {
  constructor(
    readonly channel: ChannelName,
    readonly reason: string,
  ) {
    super(`${channel} callback rejected: ${reason}`);
  }
}
