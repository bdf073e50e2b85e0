/**
 * Several service instances on one MySQL: every coordination goes through the database, so two
 * instances sweeping the same pending payments at once do each payment's work exactly once.
 * The two apps here have their own connection pools, sweepers and channel clients; only the
 * database and the channel simulator are shared, as between two replicas.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutboxEvent } from "../../src/outbox/outbox-entity.js";
import { Payment } from "../../src/payments/payment-entity.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { countingChannel, startReplica, startTestApp, type TestApp } from "../support/test-app.js";

const queries = new Map<string, number>();
const closes = new Map<string, number>();

const counting = countingChannel({ queryPayment: queries, closePayment: closes });

let first: TestApp;
let second: TestApp;

beforeAll(async () => {
  first = await startTestApp({ wrapChannel: counting });
  second = await startReplica(first, { wrapChannel: counting });
});
afterAll(async () => {
  await second?.stop();
  await first?.stop();
});

async function createPending(count: number): Promise<Array<{ id: string; paymentNo: string }>> {
  const merchant = await first.createMerchant("Scale Shop");
  const created = [];
  for (let i = 0; i < count; i++) {
    const response = await first.grpc.payments.createPayment(
      { merchantOrderNo: `scale-${Date.now()}-${i}`, currency: "CNY", amount: 100n + BigInt(i), channel: Channel.ALIPAY, subject: "Tea" },
      merchant.headers,
    );
    created.push({ id: response.payment!.id, paymentNo: response.payment!.paymentNo });
  }
  return created;
}

describe("two instances sweeping one database", () => {
  it("query each overdue payment once between them and settle the paid ones once", async () => {
    const payments = await createPending(40);
    const paid = payments.filter((_, i) => i % 2 === 0);
    for (const { paymentNo } of paid) {
      first.simulator.setFaults({ channel: "alipay", outTradeNo: paymentNo, faults: { dropNotifies: true } });
      first.simulator.pay("alipay", paymentNo);
    }
    const em = first.app.db.em();
    await em.nativeUpdate(Payment, { id: { $in: payments.map((p) => p.id) } }, { nextQueryAt: new Date(Date.now() - 1000) });
    queries.clear();

    const [a, b] = await Promise.all([first.app.sweeper.runOnce(), second.app.sweeper.runOnce()]);

    expect(a.claimed + b.claimed).toBe(40);
    expect(a.claimed).toBeGreaterThan(0);
    expect(b.claimed).toBeGreaterThan(0);
    for (const { paymentNo } of payments) expect(queries.get(paymentNo)).toBe(1);
    expect(a.settled + b.settled).toBe(20);
    for (const { id } of paid) {
      expect(await em.count(OutboxEvent, { aggregateId: id, eventType: "payment.succeeded" })).toBe(1);
    }
    const stillPending = await em.find(Payment, { id: { $in: payments.map((p) => p.id) }, status: "PENDING" });
    expect(stillPending).toHaveLength(20);
    for (const row of stillPending) {
      expect(row.queryAttempts).toBe(1);
      expect(row.nextQueryAt!.getTime()).toBeGreaterThan(Date.now());
    }
  });

  it("close each expired payment once between them", async () => {
    const payments = await createPending(30);
    const past = new Date(Date.now() - 1000);
    const em = first.app.db.em();
    await em.nativeUpdate(Payment, { id: { $in: payments.map((p) => p.id) } }, { nextQueryAt: past, expiresAt: past });
    closes.clear();

    const results = await Promise.all([
      first.app.sweeper.runOnce(),
      second.app.sweeper.runOnce(),
      first.app.sweeper.runOnce(),
      second.app.sweeper.runOnce(),
    ]);

    expect(results.reduce((sum, r) => sum + r.closed, 0)).toBe(30);
    for (const { paymentNo } of payments) expect(closes.get(paymentNo)).toBe(1);
    for (const { id } of payments) {
      expect(await em.count(OutboxEvent, { aggregateId: id, eventType: "payment.closed" })).toBe(1);
    }
  });
});
