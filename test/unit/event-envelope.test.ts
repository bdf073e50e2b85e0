/**
 * The public shape of events, without a database: the objects in `data` (snake_case, amounts as
 * strings of minor units, exact above 2^53, API channel names, no secrets), the envelope, the
 * protobuf mapping of StreamEvents and WatchPayment messages, and which payment statuses end a watch.
 */
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/payments/v1/event_pb.js";
import { PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { eventBody, eventEnvelope } from "../../src/events/event-envelope.js";
import { paymentObject, payoutObject, refundObject } from "../../src/events/event-objects.js";
import { canStillChange, isFinalPaymentEvent } from "../../src/events/event-streams.js";
import type { PaymentRow } from "../../src/payments/payment-entity.js";
import { eventToProto, paymentUpdateToProto } from "../../src/rpc/event-rpc.js";

const created = new Date("2026-12-02T08:00:00.123Z");
const payment = {
  id: "01JF0000000000000000000001",
  paymentNo: "P20261202080000ABCDEFGHJKMNPQRST",
  merchantId: "01JF0000000000000000000002",
  merchantOrderNo: "order-1",
  amount: 12_345_678_901_234_567n,
  currency: "CNY",
  channel: "wechatpay",
  status: "SUCCEEDED",
  statusReason: null,
  subject: "Tea",
  channelTradeNo: "4200000001",
  actionKind: "client_secret",
  actionValue: "pi_secret_do_not_leak",
  refundedAmount: 0n,
  refundPendingAmount: 0n,
  fee: 60n,
  notifyUrl: "https://shop.example/notify",
  metadata: { cart: "7" },
  paymentMethodToken: "pm_card_visa",
  requestHash: "0".repeat(64),
  createdAt: created,
  updatedAt: created,
  paidAt: new Date("2026-12-02T08:01:00Z"),
  succeededAt: new Date("2026-12-02T08:01:01Z"),
  closedAt: null,
  expiresAt: new Date("2026-12-02T08:15:00Z"),
  nextQueryAt: null,
  queryAttempts: 0,
  finalChannelQueries: 0,
  sweepLeaseUntil: null,
} as PaymentRow;

describe("event objects", () => {
  it("shows a payment in snake_case with exact amounts as strings, the API's channel name and no secrets", () => {
    const object = paymentObject(payment);
    expect(object).toEqual({
      id: payment.id,
      payment_no: payment.paymentNo,
      merchant_order_no: "order-1",
      status: "SUCCEEDED",
      amount: "12345678901234567",
      currency: "CNY",
      refunded_amount: "0",
      fee: "60",
      channel: "WECHAT_PAY",
      channel_trade_no: "4200000001",
      subject: "Tea",
      status_reason: null,
      metadata: { cart: "7" },
      created_at: "2026-12-02T08:00:00.123Z",
      paid_at: "2026-12-02T08:01:00.000Z",
      closed_at: null,
      expires_at: "2026-12-02T08:15:00.000Z",
    });
    expect(JSON.stringify(object)).not.toMatch(/secret|pm_card|notify/);
  });

  it("shows a refund with its payment id, and a payout without its payee", () => {
    const refund = refundObject({
      id: "R1",
      refundNo: "R2026",
      paymentId: payment.id,
      merchantRefundNo: "r-1",
      status: "FAILED",
      amount: 100n,
      currency: "CNY",
      feeReturned: 1n,
      reason: "returned",
      channel: "card",
      channelRefundNo: null,
      failureReason: "declined",
      createdAt: created,
      succeededAt: null,
    });
    expect(refund).toMatchObject({ payment_id: payment.id, amount: "100", fee_returned: "1", channel: "CARD", status: "FAILED", failure_reason: "declined" });
    const payout = payoutObject({
      id: "T1",
      payoutNo: "T2026",
      settlementId: "S1",
      settlementNo: "S2026",
      channel: "alipay",
      amount: 5000n,
      currency: "CNY",
      status: "PAID",
      channelPayoutNo: "2026120200",
      failureReason: null,
      createdAt: created,
      finishedAt: created,
    });
    expect(payout).toMatchObject({ settlement_id: "S1", amount: "5000", channel: "ALIPAY", status: "PAID" });
    expect(Object.keys(payout)).not.toContain("payee");
  });
});

describe("the envelope and its protobuf mapping", () => {
  const event = {
    id: "01JF0000000000000000000009",
    eventType: "payment.succeeded",
    createdAt: created,
    merchantId: payment.merchantId,
    aggregateId: payment.id,
    payload: { payment: paymentObject(payment), previous_status: "PENDING", cause: "callback" },
    seq: 42n,
    traceParent: null,
  };

  it("carries the same fields in the webhook body and the StreamEvents message", () => {
    const envelope = eventEnvelope(event);
    expect(JSON.parse(eventBody(event).toString("utf8"))).toEqual(envelope);
    const message = eventToProto(event);
    expect(toJson(EventSchema, message)).toEqual({
      id: envelope.id,
      type: envelope.type,
      merchantId: envelope.merchant_id,
      objectId: envelope.object_id,
      createdAt: envelope.created_at,
      data: envelope.data,
    });
  });

  it("makes WatchPayment's first message payment.current without an event, later ones with it", () => {
    const readAt = new Date("2026-12-02T09:00:00Z");
    const first = paymentUpdateToProto({ view: { payment, items: [] }, readAt });
    expect(first).toMatchObject({ eventId: "", type: "payment.current", payment: { id: payment.id, status: PaymentStatus.SUCCEEDED } });
    expect(first.data).toBeUndefined();
    expect(timestampDate(first.createdAt!)).toEqual(readAt);
    const next = paymentUpdateToProto({ view: { payment, items: [] }, event, readAt });
    expect(next).toMatchObject({ eventId: event.id, type: "payment.succeeded", data: event.payload });
    expect(timestampDate(next.createdAt!)).toEqual(created);
  });

  it("ends a watch at the statuses the transition table lets change no more", () => {
    expect(["PENDING", "SUCCEEDED", "FAILED", "CLOSED", "REFUNDED"].filter((status) => !canStillChange(status))).toEqual(["CLOSED", "REFUNDED"]);
  });

  it("ends a watch on the payment event that made the payment final, judged by the event's own snapshot", () => {
    const event = (eventType: string, payload: Record<string, unknown>) => ({ eventType, payload });
    expect(isFinalPaymentEvent(event("payment.refunded", { payment: { status: "REFUNDED" } }))).toBe(true);
    expect(isFinalPaymentEvent(event("payment.closed", { payment: { status: "CLOSED" } }))).toBe(true);
    expect(isFinalPaymentEvent(event("payment.succeeded", { payment: { status: "SUCCEEDED" } }))).toBe(false);
    expect(isFinalPaymentEvent(event("payment.failed", { payment: { status: "FAILED" } }))).toBe(false);
    // A refund's event comes before the payment.refunded of the same change: never the last one.
    expect(isFinalPaymentEvent(event("refund.succeeded", { refund: { status: "SUCCEEDED" }, payment: { status: "REFUNDED" } }))).toBe(false);
    expect(isFinalPaymentEvent(event("payment.refunded", {}))).toBe(false);
  });
});
