/** Conversions between domain rows and the generated protobuf messages. Only src/rpc sees gen/. */
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { ChannelName } from "../channels/channel.js";
import type { MerchantRow } from "../merchants/merchant-entity.js";
import type { CreatePaymentInput } from "../payments/payment-input.js";
import type { PaymentView } from "../payments/payment-service.js";
import type { PaymentStatus as DomainPaymentStatus } from "../payments/payment-status.js";
import { type Merchant, MerchantSchema, RefundFeePolicy } from "../../gen/payments/v1/merchant_service_pb.js";
import {
  Channel,
  type Payment,
  PaymentSchema,
  PaymentStatus,
} from "../../gen/payments/v1/payment_pb.js";
import {
  type CreatePaymentRequest,
  type PaymentLookup,
  type Refund,
  RefundSchema,
  RefundStatus,
} from "../../gen/payments/v1/payment_service_pb.js";
import type { RefundRow } from "../refunds/refund-entity.js";
import type { PaymentLookup as DomainLookup } from "../payments/payment-service.js";
import { ValidationError, Violations } from "../errors.js";
import type { RefundFeePolicy as DomainRefundFeePolicy } from "../fees/fee-calculator.js";
import { checkLookupId } from "../input-text.js";

const CHANNEL_TO_PROTO: Record<ChannelName, Channel> = {
  alipay: Channel.ALIPAY,
  wechatpay: Channel.WECHAT_PAY,
  card: Channel.CARD,
};

const STATUS_TO_PROTO: Record<DomainPaymentStatus, PaymentStatus> = {
  PENDING: PaymentStatus.PENDING,
  SUCCEEDED: PaymentStatus.SUCCEEDED,
  FAILED: PaymentStatus.FAILED,
  CLOSED: PaymentStatus.CLOSED,
  REFUNDED: PaymentStatus.REFUNDED,
};

function channelFromProto(channel: Channel): ChannelName | undefined {
  return (Object.keys(CHANNEL_TO_PROTO) as ChannelName[]).find((name) => CHANNEL_TO_PROTO[name] === channel);
}

function statusFromProto(status: PaymentStatus): DomainPaymentStatus | undefined {
  return (Object.keys(STATUS_TO_PROTO) as DomainPaymentStatus[]).find((name) => STATUS_TO_PROTO[name] === status);
}

/**
 * Proto3 enums are open: a client may send any number, and a number this server does not know
 * arrives as that number. UNSPECIFIED (0) means "not set"; an unknown number is a violation, never
 * "not set" (a filter on it must not silently become no filter).
 */
function enumValue<T>(v: Violations, field: string, enumName: string, value: number, known: T | undefined): T | undefined {
  if (value === 0) return undefined;
  if (known === undefined) v.add(field, "UNKNOWN_ENUM_VALUE", `${value} is not a ${enumName} this server knows`);
  return known;
}

/** The channel chosen or filtered on; undefined when UNSPECIFIED; a violation for an unknown number. */
export function optionalChannelFromProto(v: Violations, field: string, channel: Channel): ChannelName | undefined {
  return enumValue(v, field, "Channel", channel, channelFromProto(channel));
}

/** The payment status filtered on; undefined when UNSPECIFIED; a violation for an unknown number. */
export function optionalStatusFromProto(v: Violations, field: string, status: PaymentStatus): DomainPaymentStatus | undefined {
  return enumValue(v, field, "PaymentStatus", status, statusFromProto(status));
}

/** The refund fee policy; undefined when UNSPECIFIED; a violation for an unknown number. */
export function optionalRefundFeePolicyFromProto(v: Violations, field: string, policy: RefundFeePolicy): DomainRefundFeePolicy | undefined {
  const known =
    policy === RefundFeePolicy.RETAIN ? "RETAIN" : policy === RefundFeePolicy.PRORATE ? "PRORATE" : undefined;
  return enumValue<DomainRefundFeePolicy>(v, field, "RefundFeePolicy", policy, known);
}

/** google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
const MIN_TIMESTAMP_SECONDS = -62_135_596_800n;
const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;

/** The time, or undefined when unset; a violation when seconds or nanos are outside the Timestamp range. */
export function optionalTimestamp(v: Violations, field: string, ts: Timestamp | undefined): Date | undefined {
  if (!ts) return undefined;
  if (ts.seconds < MIN_TIMESTAMP_SECONDS || ts.seconds > MAX_TIMESTAMP_SECONDS || ts.nanos < 0 || ts.nanos > 999_999_999) {
    v.add(field, "OUT_OF_RANGE", "must be a valid timestamp between years 1 and 9999");
    return undefined;
  }
  return timestampDate(ts);
}

/** The fields ListPayments and SearchPayments filter and page by, as the proto requests carry them. */
interface PaymentListRequest {
  status: PaymentStatus;
  channel: Channel;
  createdAfter?: Timestamp;
  createdBefore?: Timestamp;
  pageSize: number;
  pageToken: string;
}

/** The status, channel, creation window and page of a payment list request; violations named by field. */
export function paymentListFilterFromProto(v: Violations, req: PaymentListRequest) {
  return {
    status: optionalStatusFromProto(v, "status", req.status),
    channel: optionalChannelFromProto(v, "channel", req.channel),
    createdAfter: optionalTimestamp(v, "created_after", req.createdAfter),
    createdBefore: optionalTimestamp(v, "created_before", req.createdBefore),
    pageSize: req.pageSize,
    pageToken: req.pageToken,
  };
}

function timestamp(date: Date | null | undefined): Timestamp | undefined {
  return date ? timestampFromDate(date) : undefined;
}

export function merchantToProto(merchant: MerchantRow): Merchant {
  return create(MerchantSchema, {
    id: merchant.id,
    name: merchant.name,
    notifyUrl: merchant.notifyUrl,
    apiKeyPrefix: merchant.apiKeyPrefix,
    createdAt: timestampFromDate(merchant.createdAt),
  });
}

export function paymentToProto({ payment, items }: PaymentView): Payment {
  const pending = payment.status === "PENDING";
  return create(PaymentSchema, {
    id: payment.id,
    paymentNo: payment.paymentNo,
    merchantId: payment.merchantId,
    merchantOrderNo: payment.merchantOrderNo,
    amount: payment.amount,
    currency: payment.currency,
    channel: CHANNEL_TO_PROTO[payment.channel as ChannelName],
    status: STATUS_TO_PROTO[payment.status as DomainPaymentStatus],
    subject: payment.subject,
    items: items.map((item) => ({
      sku: item.sku,
      name: item.name,
      quantity: item.quantity,
      unitAmount: item.unitAmount,
    })),
    channelTradeNo: payment.channelTradeNo ?? "",
    action:
      pending && payment.actionKind && payment.actionValue
        ? { action: { case: actionCase(payment.actionKind), value: payment.actionValue } }
        : undefined,
    refundedAmount: payment.refundedAmount,
    fee: payment.fee,
    createdAt: timestampFromDate(payment.createdAt),
    paidAt: timestamp(payment.paidAt),
    closedAt: timestamp(payment.closedAt),
    expiresAt: timestampFromDate(payment.expiresAt),
    notifyUrl: payment.notifyUrl,
    metadata: payment.metadata,
    statusReason: payment.statusReason ?? "",
  });
}

function actionCase(kind: string): "qrCodeUrl" | "codeUrl" | "clientSecret" {
  switch (kind) {
    case "qr_code_url":
      return "qrCodeUrl";
    case "code_url":
      return "codeUrl";
    default:
      return "clientSecret";
  }
}

/** The domain input; throws INVALID_ARGUMENT at once for a channel number no Channel has. */
export function createPaymentInputFromProto(req: CreatePaymentRequest): CreatePaymentInput {
  const v = new Violations();
  optionalChannelFromProto(v, "channel", req.channel);
  v.throwIfAny();
  return {
    merchantOrderNo: req.merchantOrderNo,
    currency: req.currency,
    items: req.items.map((item) => ({
      sku: item.sku,
      name: item.name,
      quantity: item.quantity,
      unitAmount: item.unitAmount,
    })),
    amount: req.amount,
    channel: channelFromProto(req.channel),
    subject: req.subject,
    expireSeconds: req.expireSeconds,
    notifyUrl: req.notifyUrl,
    metadata: { ...req.metadata },
    paymentMethod: req.paymentMethod,
  };
}

/** The payment to look up; INVALID_ARGUMENT when unset, or for an id no payment can have. */
export function lookupFromProto(lookup: PaymentLookup | undefined): DomainLookup {
  const v = new Violations();
  switch (lookup?.key.case) {
    case "paymentId":
      if (lookup.key.value === "") break;
      if (checkLookupId(v, "lookup.payment_id", lookup.key.value)) return { paymentId: lookup.key.value };
      v.throwIfAny();
      break;
    case "merchantOrderNo":
      if (lookup.key.value === "") break;
      if (checkLookupId(v, "lookup.merchant_order_no", lookup.key.value)) return { merchantOrderNo: lookup.key.value };
      v.throwIfAny();
      break;
  }
  throw new ValidationError([
    { field: "lookup", reason: "REQUIRED", description: "set lookup.payment_id or lookup.merchant_order_no" },
  ]);
}

const REFUND_STATUS_TO_PROTO: Record<string, RefundStatus> = {
  PROCESSING: RefundStatus.PROCESSING,
  SUCCEEDED: RefundStatus.SUCCEEDED,
  FAILED: RefundStatus.FAILED,
};

export function refundToProto(refund: RefundRow): Refund {
  return create(RefundSchema, {
    id: refund.id,
    refundNo: refund.refundNo,
    paymentId: refund.paymentId,
    merchantRefundNo: refund.merchantRefundNo,
    amount: refund.amount,
    currency: refund.currency,
    status: REFUND_STATUS_TO_PROTO[refund.status] ?? RefundStatus.UNSPECIFIED,
    reason: refund.reason,
    channelRefundNo: refund.channelRefundNo ?? "",
    feeReturned: refund.feeReturned,
    failureReason: refund.failureReason ?? "",
    createdAt: timestampFromDate(refund.createdAt),
    succeededAt: timestamp(refund.succeededAt),
  });
}

export function channelToProto(channel: string): Channel {
  return CHANNEL_TO_PROTO[channel as ChannelName] ?? Channel.UNSPECIFIED;
}
