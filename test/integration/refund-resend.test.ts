/**
 * A refund accepted here but never received by the channel (the process died, or the request was
 * lost, between the two) is sent again by the refund sweeper under the same refund number, on every
 * channel: it ends SUCCEEDED with the money returned once, never FAILED by a "not found" query.
 * Found by the crash-safety test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelUnavailableError, type ChannelName, type PaymentChannel } from "../../src/channels/channel.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { Refund as RefundEntity } from "../../src/refunds/refund-entity.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

/** Set by a test: the service's next refund send is dropped before it leaves this process. */
let dropNextSend = false;
let sends = 0;

function losingRefundSends(channel: PaymentChannel): PaymentChannel {
  return {
    ...channel,
    refund: async (request) => {
      sends++;
      if (dropNextSend) {
        dropNextSend = false;
        throw new ChannelUnavailableError(channel.name, "request lost (test)");
      }
      return channel.refund(request);
    },
  };
}

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let seq = 0;

beforeAll(async () => {
  t = await startTestApp({ wrapChannel: losingRefundSends });
  merchant = await t.createMerchant("Resend Shop");
  await t.registerCardWebhook();
});
afterAll(() => t?.stop());

const cases: Array<{ channel: ChannelName; proto: Channel; currency: string; paymentMethod: string }> = [
  { channel: "alipay", proto: Channel.ALIPAY, currency: "CNY", paymentMethod: "" },
  { channel: "wechatpay", proto: Channel.WECHAT_PAY, currency: "CNY", paymentMethod: "" },
  { channel: "card", proto: Channel.CARD, currency: "USD", paymentMethod: "pm_card_visa" },
];

describe.each(cases)("a refund the $channel channel never received", ({ channel, proto, currency, paymentMethod }) => {
  it("is sent again by the sweeper and succeeds once", async () => {
    const created = await t.grpc.payments.createPayment(
      { merchantOrderNo: `resend-${channel}-${++seq}`, currency, amount: 3000n, channel: proto, subject: "Jasmine tea", paymentMethod },
      merchant.headers,
    );
    const { id, paymentNo } = created.payment!;
    t.simulator.pay(channel, paymentNo);
    await eventually(
      async () => (await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: id } } }, merchant.headers)).payment!,
      (p) => p.status === PaymentStatus.SUCCEEDED,
    );

    // Accept the refund; its first send is lost, so the channel knows nothing of it.
    dropNextSend = true;
    const sendsBefore = sends;
    const accepted = (
      await t.grpc.payments.refundPayment(
        { paymentId: id, merchantRefundNo: `resend-refund-${seq}`, amount: 1000n, reason: "lost send" },
        merchant.headers,
      )
    ).refund!;
    expect(accepted.status).toBe(RefundStatus.PROCESSING);
    expect(sends - sendsBefore).toBe(1);
    expect(t.simulator.getTrade(channel, paymentNo)).toMatchObject({ refundedMinor: "0" });

    // The sweeper finds it unknown at the channel and sends it again.
    await t.app.db.em().nativeUpdate(RefundEntity, { id: accepted.id }, { nextQueryAt: new Date(Date.now() - 1000) });
    await t.app.refundSweeper.runOnce();
    expect(sends - sendsBefore).toBe(2);
    // Synchronous channels answer the re-send at once; the card acquirer confirms by webhook.
    const finished = await eventually(
      async () => (await t.grpc.payments.getRefund({ refundId: accepted.id }, merchant.headers)).refund!,
      (r) => r.status !== RefundStatus.PROCESSING,
    );
    expect(finished.status).toBe(RefundStatus.SUCCEEDED);
    expect(t.simulator.getTrade(channel, paymentNo)).toMatchObject({ refundedMinor: "1000" });

    const ledger = await checkLedger(t.app.uow.session());
    expect(ledger.violations).toEqual([]);
  });
});
