/**
 * Refunds of Alipay payments through the whole service on MySQL: amounts and idempotency, the
 * refund faults (still processing, rejected), racing refunds, fee rules and the balance they
 * leave, and the ledger invariants after every scenario (and proof that the check can fail).
 */
import type { ServiceError } from "@grpc/grpc-js";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { Refund as RefundEntity } from "../../src/refunds/refund-entity.js";
import { RefundFeePolicy } from "../../gen/payments/v1/merchant_service_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

type Merchant = Awaited<ReturnType<TestApp["createMerchant"]>>;

let t: TestApp;
let merchant: Merchant;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Refunding Tea");
});
afterEach(async () => {
  t.simulator.clearFaults();
  const ledger = await checkLedger(t.app.uow.session());
  expect(ledger.violations).toEqual([]);
  expect(ledger.ok).toBe(true);
});
afterAll(() => t?.stop());

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

async function getPayment(id: string, owner: Merchant = merchant) {
  return (await t.grpc.payments.getPayment(lookup(id), owner.headers)).payment!;
}

/** A payment the shopper paid, confirmed by Alipay's notify. */
async function paidPayment(amount: bigint, owner: Merchant = merchant) {
  const created = await t.grpc.payments.createPayment(
    { merchantOrderNo: `refund-${Date.now()}-${++orderSeq}`, currency: "CNY", amount, channel: Channel.ALIPAY, subject: "Pu-erh cake" },
    owner.headers,
  );
  const payment = created.payment!;
  t.simulator.pay("alipay", payment.paymentNo);
  const paid = await eventually(
    () => getPayment(payment.id, owner),
    (p) => p.status === PaymentStatus.SUCCEEDED,
  );
  expect(paid.status).toBe(PaymentStatus.SUCCEEDED);
  return paid;
}

function refund(paymentId: string, merchantRefundNo: string, amount: bigint, owner: Merchant = merchant) {
  return t.grpc.payments
    .refundPayment({ paymentId, merchantRefundNo, amount, reason: "customer changed their mind" }, owner.headers)
    .then((response) => response.refund!);
}

function reasonOf(error: ServiceError): string | undefined {
  return readGrpcErrorDetails(error).errorInfo?.reason;
}

function alipayRefunds(paymentNo: string) {
  return t.simulator.getTrade("alipay", paymentNo)!.refunds;
}

/** Makes the refund sweeper consider the refund due now. */
async function dueNow(refundId: string): Promise<void> {
  await t.app.db.em().nativeUpdate(RefundEntity, { id: refundId }, { nextQueryAt: new Date(Date.now() - 1000) });
}

describe("refund amounts", () => {
  it("refuses to refund a PENDING payment with INVALID_TRANSITION", async () => {
    const created = await t.grpc.payments.createPayment(
      { merchantOrderNo: `pending-${++orderSeq}`, currency: "CNY", amount: 100n, channel: Channel.ALIPAY, subject: "Green tea" },
      merchant.headers,
    );
    const error = await grpcError(refund(created.payment!.id, "early", 100n));
    expect(error.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(reasonOf(error)).toBe("INVALID_TRANSITION");
    expect(await t.app.db.em().count(RefundEntity, { paymentId: created.payment!.id })).toBe(0);
  });
});

describe("refund faults at Alipay", () => {
  it("sends a refund Alipay abandoned (refund query finds none) again three times, then marks it FAILED", async () => {
    const payment = await paidPayment(8888n);
    t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { refundDelayMs: 300, refundFails: true } });
    const abandoned = await refund(payment.id, "abandoned", 5000n);
    expect(abandoned.status).toBe(RefundStatus.PROCESSING);
    const abandonedAtAlipay = () =>
      eventually(
        () => alipayRefunds(payment.paymentNo)[0]?.state,
        (state) => state === "failed",
      );
    await abandonedAtAlipay();

    // Alipay's rule: a failed refund is retried under the same out_request_no, so each sweep sends it again.
    for (let sweep = 1; sweep <= 3; sweep++) {
      await dueNow(abandoned.id);
      expect(await t.app.refundSweeper.runOnce()).toMatchObject({ claimed: 1, finished: 0 });
      expect((await t.grpc.payments.getRefund({ refundId: abandoned.id }, merchant.headers)).refund?.status).toBe(RefundStatus.PROCESSING);
      await abandonedAtAlipay();
    }
    expect(alipayRefunds(payment.paymentNo)).toHaveLength(1);
    await dueNow(abandoned.id);
    expect(await t.app.refundSweeper.runOnce()).toMatchObject({ finished: 1 });
    const failed = await t.grpc.payments.getRefund({ paymentId: payment.id, merchantRefundNo: "abandoned" }, merchant.headers);
    expect(failed.refund?.status).toBe(RefundStatus.FAILED);
    expect((await getPayment(payment.id)).refundedAmount).toBe(0n);

    t.simulator.clearFaults();
    expect((await refund(payment.id, "after-abandon", 8888n)).status).toBe(RefundStatus.SUCCEEDED);
  });
});

describe("fees and balances", () => {
  async function merchantWithFee(name: string, policy: RefundFeePolicy) {
    const owner = await t.createMerchant(name);
    // 0.6 % plus 0.10 CNY per payment.
    await t.grpc.merchants.setFeeRule(
      { merchantId: owner.id, channel: Channel.ALIPAY, currency: "CNY", rateBps: 60, fixedFee: 10n, minFee: 0n, refundFeePolicy: policy },
      t.adminHeaders,
    );
    return owner;
  }

  async function pendingBalance(owner: Merchant): Promise<bigint> {
    return (await t.grpc.settlement.getBalance({ currency: "CNY" }, owner.headers)).pending;
  }

  it("RETAIN: fixes the fee on the payment when it succeeds and keeps it through refunds", async () => {
    const owner = await merchantWithFee("Retaining Tea", RefundFeePolicy.RETAIN);
    const payment = await paidPayment(10_000n, owner);
    expect(payment.fee).toBe(70n);
    expect(await pendingBalance(owner)).toBe(10_000n - 70n);

    // A later rule change does not touch a payment that already succeeded.
    await t.grpc.merchants.setFeeRule(
      { merchantId: owner.id, channel: Channel.ALIPAY, currency: "CNY", rateBps: 500, fixedFee: 0n, minFee: 0n },
      t.adminHeaders,
    );
    const part = await refund(payment.id, "retain-1", 5000n, owner);
    expect(part.feeReturned).toBe(0n);
    expect((await getPayment(payment.id, owner)).fee).toBe(70n);
    expect(await pendingBalance(owner)).toBe(10_000n - 70n - 5000n);

    const rest = await refund(payment.id, "retain-2", 5000n, owner);
    expect(rest.feeReturned).toBe(0n);
    expect(await pendingBalance(owner)).toBe(-70n);
  });

  it("PRORATE: returns the fee with each refund, adding up to the fee exactly, and the balance follows", async () => {
    const owner = await merchantWithFee("Prorating Tea", RefundFeePolicy.PRORATE);
    const payment = await paidPayment(9999n, owner);
    // round_half_up(9999 × 60 / 10000) = 60, plus 10 fixed.
    expect(payment.fee).toBe(70n);
    let expectedPending = 9999n - 70n;
    expect(await pendingBalance(owner)).toBe(expectedPending);

    const returned: bigint[] = [];
    for (const [number, amount] of [
      ["prorate-1", 1n],
      ["prorate-2", 4998n],
      ["prorate-3", 5000n],
    ] as const) {
      const part = await refund(payment.id, number, amount, owner);
      expect(part.status).toBe(RefundStatus.SUCCEEDED);
      returned.push(part.feeReturned);
      expectedPending -= amount - part.feeReturned;
      expect(await pendingBalance(owner)).toBe(expectedPending);
    }
    // 70 × 1 / 9999 rounds to 0, 70 × 4998 / 9999 to 35, and the last refund returns what is left.
    expect(returned).toEqual([0n, 35n, 35n]);
    expect(returned.reduce((sum, fee) => sum + fee, 0n)).toBe(70n);
    expect(await pendingBalance(owner)).toBe(0n);
    expect((await getPayment(payment.id, owner)).status).toBe(PaymentStatus.REFUNDED);
  });

  it("PRORATE: a failed refund gives its returned fee back, so the fee still adds up", async () => {
    const owner = await merchantWithFee("Unlucky Tea", RefundFeePolicy.PRORATE);
    const payment = await paidPayment(10_000n, owner);
    t.simulator.setFaults({ channel: "alipay", outTradeNo: payment.paymentNo, faults: { refundFails: true } });
    const rejected = await refund(payment.id, "fails", 5000n, owner);
    expect(rejected.status).toBe(RefundStatus.FAILED);
    expect(await pendingBalance(owner)).toBe(10_000n - 70n);

    t.simulator.clearFaults();
    const half = await refund(payment.id, "half", 5000n, owner);
    const rest = await refund(payment.id, "rest", 5000n, owner);
    expect(half.feeReturned + rest.feeReturned).toBe(70n);
    expect(await pendingBalance(owner)).toBe(0n);
  });
});

describe("the ledger check", () => {
  it("fails on a tampered posting, naming the entry and the payment", async () => {
    const throwaway = await t.createMerchant("Throwaway Tea");
    const payment = await paidPayment(4321n, throwaway);
    const connection = t.app.db.em().getConnection();
    const [posting] = (await connection.execute(
      `select p.id as id, p.entry_id as entry_id, p.account as account from journal_posting p
       join journal_entry e on e.id = p.entry_id
       where e.payment_id = ? and e.entry_type = 'payment_succeeded' and p.account like 'merchant_%'`,
      [payment.id],
    )) as { id: string; entry_id: string; account: string }[];
    expect(posting).toBeDefined();

    await connection.execute("update journal_posting set amount = amount - 1 where id = ?", [posting!.id]);
    try {
      const broken = await checkLedger(t.app.uow.session());
      expect(broken.ok).toBe(false);
      expect(broken.violations).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ check: "ENTRY_UNBALANCED", subject: posting!.entry_id }),
          expect.objectContaining({ check: "CURRENCY_NOT_ZERO", subject: "CNY" }),
          expect.objectContaining({ check: "PAYMENT_LEDGER_MISMATCH", subject: payment.id }),
          expect.objectContaining({ check: "BALANCE_CACHE_MISMATCH", subject: `${posting!.account} CNY` }),
        ]),
      );
      // Nothing of the other merchants' payments is blamed.
      const blamed = new Set(broken.violations.map((v) => v.subject));
      expect([...blamed].sort()).toEqual([posting!.entry_id, payment.id, "CNY", `${posting!.account} CNY`].sort());
    } finally {
      await connection.execute("update journal_posting set amount = amount + 1 where id = ?", [posting!.id]);
    }
    expect((await checkLedger(t.app.uow.session())).ok).toBe(true);
  });
});
