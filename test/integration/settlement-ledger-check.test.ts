/**
 * check-ledger's settlement checks (src/settlement/settlement-check.ts) on MySQL and on the
 * embedded database: one merge per merchant currency of its orders with its payments and refunds
 * read in keyset pages by success instant or in windows of buckets aligned to the periods. Run with
 * pages of one instant and windows of one bucket too, so every page boundary (and two payments at
 * the same instant) is crossed; a payment that slipped past
 * settlement, a held one, history before settlement began, and overlapping periods.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Payment } from "../../src/payments/payment-entity.js";
import { Refund } from "../../src/refunds/refund-entity.js";
import { checkSettlementOrders } from "../../src/settlement/settlement-check.js";
import { Settlement, SettlementHold } from "../../src/settlement/settlement-entity.js";
import { SETTLEABLE_STATUSES } from "../../src/settlement/settlement-service.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

type Merchant = Awaited<ReturnType<TestApp["createMerchant"]>>;

describe.each(["mysql", "sqlite"] as const)("the ledger check's settlement merge on %s", (database) => {
  let t: TestApp;
  let seq = 0;

  beforeAll(async () => {
    t = await startTestApp({ database });
  });
  afterAll(() => t?.stop());

  /** A payment paid through the simulated Alipay, its success time (our clock) then moved to `at`. */
  async function paidPayment(merchant: Merchant, amount: bigint, at: string) {
    const created = await t.grpc.payments.createPayment(
      { merchantOrderNo: `check-${++seq}`, currency: "CNY", amount, channel: Channel.ALIPAY, subject: "Oolong" },
      merchant.headers,
    );
    t.simulator.pay("alipay", created.payment!.paymentNo);
    const paid = await eventually(
      async () => (await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.payment!.id } } }, merchant.headers)).payment!,
      (p) => p.status === PaymentStatus.SUCCEEDED,
    );
    expect(paid.status).toBe(PaymentStatus.SUCCEEDED);
    await moveSuccess(paid.id, at);
    return paid;
  }

  async function moveSuccess(paymentId: string, at: string) {
    await t.app.db.em().nativeUpdate(Payment, { id: paymentId }, { paidAt: new Date(at), succeededAt: new Date(at) });
  }

  function run(settlementDate: string, merchantId: string) {
    return t.grpc.settlement.runSettlement({ settlementDate, merchantId }, t.adminHeaders);
  }

  /** The settlement violations naming the merchant's orders or the merchant, read by instant (pages of one and the default) and by bucket (which must agree). */
  async function violationsOf(merchant: Merchant) {
    const orders = (await t.app.db.em().find(Settlement, { merchantId: merchant.id })).map((order) => order.id);
    const mine = (violations: Awaited<ReturnType<typeof checkSettlementOrders>>) =>
      violations
        .filter((violation) => orders.includes(violation.subject) || violation.subject.startsWith(merchant.id))
        .map((violation) => `${violation.check} ${violation.subject} ${violation.detail}`)
        .sort();
    const paged = mine(await checkSettlementOrders(t.app.uow.session(), SETTLEABLE_STATUSES, { instantsPerPage: 1, byInstant: true }));
    expect(mine(await checkSettlementOrders(t.app.uow.session(), SETTLEABLE_STATUSES, { byInstant: true }))).toEqual(paged);
    // By buckets a day wide (every boundary is midnight China time), in one window and in windows of one bucket.
    expect(mine(await checkSettlementOrders(t.app.uow.session(), SETTLEABLE_STATUSES))).toEqual(paged);
    expect(mine(await checkSettlementOrders(t.app.uow.session(), SETTLEABLE_STATUSES, { instantsPerPage: 1 }))).toEqual(paged);
    return paged;
  }

  it("finds every order's totals right across page boundaries (two payments at one instant, a refund), and an order that lost or gained a payment", async () => {
    const merchant = await t.createMerchant("Paged Tea");
    const first = await paidPayment(merchant, 1_000n, "2026-11-01T04:00:00.000Z");
    await paidPayment(merchant, 2_000n, "2026-11-01T04:00:00.000Z");
    await paidPayment(merchant, 3_000n, "2026-11-01T15:59:59.999Z");
    const moved = await paidPayment(merchant, 4_000n, "2026-11-02T04:00:00.000Z");
    await paidPayment(merchant, 5_000n, "2026-11-03T04:00:00.000Z");
    const refund = (
      await t.grpc.payments.refundPayment({ paymentId: first.id, merchantRefundNo: `r-${++seq}`, amount: 400n, reason: "returned" }, merchant.headers)
    ).refund!;
    expect(refund.status).toBe(RefundStatus.SUCCEEDED);
    await t.app.db.em().nativeUpdate(Refund, { id: refund.id }, { succeededAt: new Date("2026-11-02T05:00:00.000Z") });
    for (const date of ["2026-11-02", "2026-11-03", "2026-11-04"]) expect((await run(date, merchant.id)).ordersCreated).toBe(1n);
    expect(await violationsOf(merchant)).toEqual([]);

    // Moved behind the service's back from the 11-03 order's period into the 11-02 order's.
    await moveSuccess(moved.id, "2026-11-01T05:00:00.000Z");
    const [gained, lost] = await Promise.all(
      ["2026-11-02", "2026-11-03"].map(async (date) => (await t.app.db.em().findOneOrFail(Settlement, { merchantId: merchant.id, settlementDate: date })).id),
    );
    const found = await violationsOf(merchant);
    expect(found).toHaveLength(2);
    expect(found.find((line) => line.includes(gained!))).toContain("its lines add up to gross 10000, fee");
    expect(found.find((line) => line.includes(lost!))).toMatch(/^SETTLEMENT_LINES_MISMATCH \S+ order gross 3600, .* its lines add up to gross -400, .* over 1 lines$/);
    await moveSuccess(moved.id, "2026-11-02T04:00:00.000Z");
    expect(await violationsOf(merchant)).toEqual([]);
  });

  it("reports a payment that succeeded before the latest settled period end in no order's period, unless it is held; not history from before settlement began", async () => {
    const merchant = await t.createMerchant("Gap Tea");
    await paidPayment(merchant, 1_100n, "2026-10-01T04:00:00.000Z");
    await paidPayment(merchant, 1_200n, "2026-11-01T04:00:00.000Z");
    const gap = await paidPayment(merchant, 1_300n, "2026-11-02T04:00:00.000Z");
    await paidPayment(merchant, 1_400n, "2026-11-03T04:00:00.000Z");
    await run("2026-11-02", merchant.id);
    await run("2026-11-04", merchant.id);

    expect(await violationsOf(merchant)).toEqual([
      `SETTLEMENT_LINES_MISMATCH ${merchant.id} CNY 1 payments (amount 1300) and 0 refunds (amount 0) succeeded between ` +
        "2026-10-31T16:00:00.000Z and the latest settled period end 2026-11-03T16:00:00.000Z in no order's period, " +
        "neither held nor on a stored line: not settled (a date not run for it, or a success time changed)",
    ]);

    const [order] = await t.app.db.em().find(Settlement, { merchantId: merchant.id, settlementDate: "2026-11-02" });
    await t.app.db.em().insert(SettlementHold, {
      paymentId: gap.id,
      settlementId: order!.id,
      merchantId: merchant.id,
      currency: "CNY",
      settlementDate: "2026-11-02",
      createdAt: new Date(),
      releasedIntoId: null,
      releasedAt: null,
    });
    expect(await violationsOf(merchant)).toEqual([]);
    await t.app.db.em().nativeDelete(SettlementHold, { paymentId: gap.id });

    // The missing date run: the payment is on its order, nothing slipped.
    expect((await run("2026-11-03", merchant.id)).ordersCreated).toBe(1n);
    expect(await violationsOf(merchant)).toEqual([]);
  });

  it("reports two scheduled orders whose periods overlap as SETTLED_TWICE, naming the later-built order", async () => {
    const merchant = await t.createMerchant("Overlap Tea");
    await paidPayment(merchant, 2_100n, "2026-11-01T04:00:00.000Z");
    await paidPayment(merchant, 2_200n, "2026-11-02T04:00:00.000Z");
    await run("2026-11-02", merchant.id);
    await run("2026-11-03", merchant.id);
    const first = await t.app.db.em().findOneOrFail(Settlement, { merchantId: merchant.id, settlementDate: "2026-11-02" });
    const second = await t.app.db.em().findOneOrFail(Settlement, { merchantId: merchant.id, settlementDate: "2026-11-03" });
    expect(await violationsOf(merchant)).toEqual([]);

    await t.app.db.em().nativeUpdate(Settlement, { id: second.id }, { periodStart: new Date("2026-11-01T12:00:00.000Z") });
    const found = await violationsOf(merchant);
    const [earlier, later] = [first.id, second.id].sort();
    expect(found).toContain(`SETTLED_TWICE ${later} its period overlaps that of order ${earlier} of the same merchant and currency`);
    // The stretched order now also derives the 11-01 payment after 12:00 UTC: none, so its totals still match.
    expect(found).toHaveLength(1);
  });
});
