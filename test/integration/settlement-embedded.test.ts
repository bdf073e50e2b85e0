/**
 * The daily settlement on the embedded database (libSQL): the statements the dialects spell
 * differently (insert-or-ignore, dates bound as the driver stores them, derived lines read back
 * with dates as epoch milliseconds) build and show the same order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { Payment } from "../../src/payments/payment-entity.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { SettlementLineKind, SettlementStatus } from "../../gen/payments/v1/settlement_service_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ database: "sqlite" });
});
afterAll(() => t?.stop());

describe("settlement on the embedded database", () => {
  it("builds the order once, with its lines, ledger entry and a clean ledger check", async () => {
    const merchant = await t.createMerchant("Embedded Tea");
    const ids: string[] = [];
    for (const [amount, paidAt] of [
      [1_000n, "2026-11-01T04:00:00.000Z"],
      [2_345n, "2026-11-01T15:59:59.999Z"],
      [999n, "2026-11-01T16:00:00.000Z"],
    ] as const) {
      const created = await t.grpc.payments.createPayment(
        { merchantOrderNo: `embedded-${amount}`, currency: "CNY", amount, channel: Channel.ALIPAY, subject: "Oolong" },
        merchant.headers,
      );
      t.simulator.pay("alipay", created.payment!.paymentNo);
      const paid = await eventually(
        async () => (await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.payment!.id } } }, merchant.headers)).payment!,
        (p) => p.status === PaymentStatus.SUCCEEDED,
      );
      expect(paid.status).toBe(PaymentStatus.SUCCEEDED);
      await t.app.db.em().nativeUpdate(Payment, { id: paid.id }, { paidAt: new Date(paidAt), succeededAt: new Date(paidAt) });
      ids.push(paid.id);
    }

    const first = await t.grpc.settlement.runSettlement({ settlementDate: "2026-11-02" }, t.adminHeaders);
    expect(first).toMatchObject({ ordersCreated: 1n, linesSettled: 2n });
    expect(await t.grpc.settlement.runSettlement({ settlementDate: "2026-11-02" }, t.adminHeaders)).toMatchObject({
      ordersCreated: 0n,
      ordersExisting: 1n,
    });
    const [order] = (await t.grpc.settlement.listSettlements({ includeLines: true }, merchant.headers)).settlements;
    expect(order).toMatchObject({ status: SettlementStatus.SETTLED, paymentsAmount: 3_345n, grossAmount: 3_345n, lineCount: 2n });
    expect(order!.lines.map((line) => line.kind)).toEqual([SettlementLineKind.PAYMENT, SettlementLineKind.PAYMENT]);
    expect(order!.lines.map((line) => line.paymentId).sort()).toEqual(ids.slice(0, 2).sort());
    expect((await t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers)).available).toBe(order!.netAmount);
    expect((await checkLedger(t.app.uow.session())).violations).toEqual([]);
  });
});
