/**
 * The requests the load generator sends: one CreatePayment body per channel, the same bytes for
 * the ceiling and the service, differing per call only in the order number (and idempotency key).
 */
import { create, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Channel } from "../gen/payments/v1/payment_pb.js";
import { type CreatePaymentRequest, CreatePaymentRequestSchema } from "../gen/payments/v1/payment_service_pb.js";

export type BenchChannel = "card" | "alipay" | "wechatpay";

export const CREATE_PAYMENT_PATH = "/payments.v1.PaymentService/CreatePayment";
export const GET_PAYMENT_PATH = "/payments.v1.PaymentService/GetPayment";

const PROTO_CHANNEL: Record<BenchChannel, Channel> = {
  card: Channel.CARD,
  alipay: Channel.ALIPAY,
  wechatpay: Channel.WECHAT_PAY,
};

/** A typical two-line order: 2 x 9.99 + 1 x 5.00 in the channel's usual currency. */
export function createPaymentRequest(channel: BenchChannel, merchantOrderNo: string): CreatePaymentRequest {
  return create(CreatePaymentRequestSchema, {
    merchantOrderNo,
    currency: channel === "card" ? "USD" : "CNY",
    amount: 2498n,
    channel: PROTO_CHANNEL[channel],
    subject: "Bench order: tea and cups",
    items: [
      { sku: "TEA-250", name: "Oolong tea 250g", quantity: 2n, unitAmount: 999n },
      { sku: "CUP-01", name: "Tasting cup", quantity: 1n, unitAmount: 500n },
    ],
    metadata: { cart_id: `cart-${merchantOrderNo}`, source: "bench" },
    paymentMethod: channel === "card" ? "pm_card_visa" : "",
  });
}

/** The encoded size of a typical create request: the echo benchmark sends a payload this big. */
export function typicalRequestBytes(): number {
  const message: MessageShape<typeof CreatePaymentRequestSchema> = createPaymentRequest("card", "bench-0000000000-000000");
  return toBinary(CreatePaymentRequestSchema, message).length;
}
