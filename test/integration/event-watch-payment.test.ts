/**
 * WatchPayment on MySQL over gRPC (grpc-js) and Connect: the payment's state first, then one
 * message per event of the payment, each with the payment as stored: paid by the Alipay simulator
 * through a real callback to the shim, refunded in part and then in full, and the stream ends by
 * itself once the payment can change no more. Another merchant's payment is NOT_FOUND.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { PaymentEvent } from "../../gen/payments/v1/event_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { connectServerStream, grpcServerStream, type StreamReader } from "../support/event-stream-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

type Merchant = Awaited<ReturnType<TestApp["createMerchant"]>>;

let t: TestApp;
let merchant: Merchant;
let other: Merchant;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp({ runEventWorkers: true, config: { events: { ...loadConfig({}).events, pollIntervalMs: 50 } } });
  merchant = await t.createMerchant("Watched Shop");
  other = await t.createMerchant("Other Shop");
});
afterAll(() => t?.stop());

async function createPayment(owner: Merchant = merchant) {
  const created = await t.grpc.payments.createPayment(
    { merchantOrderNo: `watch-${Date.now()}-${++orderSeq}`, currency: "CNY", amount: 8888n, channel: Channel.ALIPAY, subject: "Oolong tea" },
    owner.headers,
  );
  return created.payment!;
}

const transports = {
  grpc: (paymentId: string, owner: Merchant): StreamReader<PaymentEvent> =>
    grpcServerStream(`127.0.0.1:${t.app.grpcPort}`, PaymentService.method.watchPayment, { paymentId }, owner.headers),
  connect: (paymentId: string, owner: Merchant): StreamReader<PaymentEvent> =>
    connectServerStream((client, options) => client.watchPayment({ paymentId }, options), t.connect.payments, owner.headers),
};

function refund(paymentId: string, merchantRefundNo: string, amount: bigint) {
  return t.grpc.payments.refundPayment({ paymentId, merchantRefundNo, amount, reason: "returned" }, merchant.headers);
}

describe.each(Object.entries(transports))("WatchPayment over %s", (_name, watch) => {
  it("sends the current state, then the success a real callback applied, the refunds, and ends once fully refunded", async () => {
    const payment = await createPayment();
    const reader = watch(payment.id, merchant);
    await eventually(() => reader.messages.length, (n) => n >= 1);
    const [current] = reader.messages;
    expect(current).toMatchObject({ eventId: "", type: "payment.current", payment: { id: payment.id, status: PaymentStatus.PENDING } });
    expect(current?.createdAt).toBeDefined();

    t.simulator.pay("alipay", payment.paymentNo);
    await eventually(() => reader.messages.length, (n) => n >= 2);
    const paid = reader.messages[1]!;
    expect(paid).toMatchObject({ type: "payment.succeeded", payment: { status: PaymentStatus.SUCCEEDED } });
    expect(paid.eventId).toHaveLength(26);
    expect(paid.payment?.channelTradeNo).not.toBe("");
    expect(paid.data).toMatchObject({ previous_status: "PENDING", payment: { id: payment.id, status: "SUCCEEDED", amount: "8888" } });

    await refund(payment.id, "part", 2000n);
    await eventually(() => reader.messages.length, (n) => n >= 4);
    expect(reader.done).toBe(false);
    await refund(payment.id, "rest", 6888n);
    const ended = await reader.ended;
    expect(ended.code).toBeUndefined();

    expect(reader.messages.map((message) => message.type)).toEqual([
      "payment.current",
      "payment.succeeded",
      "refund.created",
      "refund.succeeded",
      "refund.created",
      "refund.succeeded",
      "payment.refunded",
    ]);
    const afterPart = reader.messages[3]!;
    expect(afterPart.payment).toMatchObject({ status: PaymentStatus.SUCCEEDED, refundedAmount: 2000n });
    expect(afterPart.data).toMatchObject({ refund: { payment_id: payment.id, amount: "2000", status: "SUCCEEDED", merchant_refund_no: "part" } });
    expect(reader.messages.at(-1)?.payment).toMatchObject({ status: PaymentStatus.REFUNDED, refundedAmount: 8888n });
    expect(new Set(reader.messages.slice(1).map((message) => message.eventId)).size).toBe(6);
  });

  it("sends a payment that can change no more once and ends", async () => {
    const payment = await createPayment();
    await t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers);
    const reader = watch(payment.id, merchant);
    expect((await reader.ended).code).toBeUndefined();
    expect(reader.messages.map((message) => [message.type, message.payment?.status])).toEqual([["payment.current", PaymentStatus.CLOSED]]);
  });

  it("answers NOT_FOUND (PAYMENT_NOT_FOUND) for another merchant's payment and INVALID_ARGUMENT without an id", async () => {
    const theirs = await createPayment(other);
    const refused = await watch(theirs.id, merchant).ended;
    expect(refused.code).toBe(Code.NotFound);
    expect(reasonOf(refused.error)).toBe("PAYMENT_NOT_FOUND");
    const empty = await watch("", merchant).ended;
    expect(empty.code).toBe(Code.InvalidArgument);
    await eventually(() => t.app.events.subscriberCount, (n) => n === 0);
    expect(t.app.events.subscriberCount).toBe(0);
  });
});

/** The ErrorInfo reason of a stream's error, from either transport. */
function reasonOf(error: unknown): string | undefined {
  if (error instanceof ConnectError) return error.findDetails(ErrorInfoSchema)[0]?.reason;
  return readGrpcErrorDetails(error as ServiceError).errorInfo?.reason;
}
