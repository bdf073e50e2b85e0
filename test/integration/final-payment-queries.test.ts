/**
 * QueryPayment on a payment that is already final asks the channel only
 * `FINAL_PAYMENT_CHANNEL_QUERIES` times in the payment's life, however many queries arrive and
 * through which listener: the channel account all merchants share is not a resource one merchant
 * may spend at will. The first asks still find money that arrived after the close.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { countingChannel, startTestApp, type TestApp } from "../support/test-app.js";

const channelQueries = new Map<string, number>();
const countingQueries = countingChannel({ queryPayment: channelQueries });

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });
let orderSeq = 0;

for (const database of ["mysql", "sqlite"] as const) {
  describe(`QueryPayment on a final payment (${database})`, () => {
    let t: TestApp;
    let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;

    beforeAll(async () => {
      t = await startTestApp({ database, wrapChannel: countingQueries });
      merchant = await t.createMerchant("Closed Tea");
    });
    afterAll(() => t?.stop());

    async function closedPayment() {
      const created = await t.grpc.payments.createPayment(
        { merchantOrderNo: `final-${Date.now()}-${++orderSeq}`, currency: "CNY", amount: 1234n, channel: Channel.ALIPAY, subject: "Tea" },
        merchant.headers,
      );
      const closed = await t.grpc.payments.closePayment({ paymentId: created.payment!.id }, merchant.headers);
      expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);
      return closed.payment!;
    }

    it("asks the channel at most FINAL_PAYMENT_CHANNEL_QUERIES times for 300 queries of a CLOSED payment", async () => {
      const limit = t.config.finalPaymentChannelQueries;
      expect(limit).toBe(3);
      const payment = await closedPayment();
      const total = database === "mysql" ? 300 : 60;
      // Batches of concurrent queries over both listeners, so the claims race each other.
      const statuses: PaymentStatus[] = [];
      for (let batch = 0; batch < total / 30; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            i % 2 === 0
              ? t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)
              : t.connect.payments.queryPayment(lookup(payment.id), { headers: merchant.headers }),
          ),
        );
        statuses.push(...answers.map((answer) => answer.payment!.status));
      }
      expect(statuses).toHaveLength(total);
      expect(statuses.every((status) => status === PaymentStatus.CLOSED)).toBe(true);
      expect(channelQueries.get(payment.paymentNo)).toBe(limit);
    });

    it("still finds money paid after the close on the first asks", async () => {
      const payment = await closedPayment();
      // The shopper pays the QR code after the close and the notify never arrives: only a query can tell.
      t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { dropNotifies: true } });
      t.simulator.pay("alipay", payment.paymentNo);
      const queried = await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers);
      expect(queried.payment?.status).toBe(PaymentStatus.CLOSED);
      const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
      expect(open.discrepancies.filter((d) => d.paymentId === payment.id).map((d) => d.kind)).toEqual(["PAID_AFTER_CLOSE"]);
      expect(channelQueries.get(payment.paymentNo)).toBe(1);
      t.simulator.clearFaults();
    });

    it("keeps asking about a PENDING payment: the limit starts when the payment is final", async () => {
      const created = await t.grpc.payments.createPayment(
        { merchantOrderNo: `pending-${Date.now()}-${++orderSeq}`, currency: "CNY", amount: 99n, channel: Channel.ALIPAY, subject: "Tea" },
        merchant.headers,
      );
      for (let i = 0; i < 6; i++) {
        const queried = await t.grpc.payments.queryPayment(lookup(created.payment!.id), merchant.headers);
        expect(queried.payment?.status).toBe(PaymentStatus.PENDING);
      }
      expect(channelQueries.get(created.payment!.paymentNo)).toBe(6);
    });
  });
}
