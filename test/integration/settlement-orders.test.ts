/**
 * Settlement orders on MySQL through the whole service: payments paid through the simulated Alipay
 * (create, the shopper pays, notify through the shim), their success time (and the channel's paid
 * time with it) then placed in the period a test settles (and a refund's success time likewise),
 * RunSettlement over grpc-js and Connect, the merchant's reads (derived and stored lines),
 * SubmitSettlement, a success recorded late, the ledger check and the scheduler's lease.
 */
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DiscrepancyRow } from "../../src/discrepancies/discrepancy-entity.js";
import { insertDiscrepancy } from "../../src/discrepancies/discrepancy-store.js";
import { newId } from "../../src/ids.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { applyChannelStatus } from "../../src/payments/channel-outcome.js";
import { reloadPayment } from "../../src/payments/payment-store.js";
import { createSettlementScheduler, SETTLEMENT_JOB } from "../../src/settlement/settlement-scheduler.js";
import { createSettlementService, NO_PAYOUT_ACCOUNTS, SETTLEMENT_GRACE_MS } from "../../src/settlement/settlement-service.js";
import { addDays, currentSettlementDate, settlementPeriod } from "../../src/settlement/settlement-period.js";
import { RefundFeePolicy } from "../../gen/payments/v1/merchant_service_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import {
  PayeeAccountType,
  PayoutStatus,
  type Settlement,
  SettlementKind,
  SettlementLineKind,
  SettlementStatus,
} from "../../gen/payments/v1/settlement_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, eventually, grpcError } from "../support/waiting.js";

type Merchant = Awaited<ReturnType<TestApp["createMerchant"]>>;

let t: TestApp;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

async function sql(statement: string, params: Array<string | number | bigint | Date | null> = []): Promise<Array<Record<string, unknown>>> {
  return t.app.db.em().getConnection().execute(statement, params);
}

/** Noon in China (UTC+8) of a calendar day: well inside that day's period. */
function chinaNoon(day: string): Date {
  return new Date(`${day}T04:00:00.000Z`);
}

/** A merchant charged 0.6 % + 0.10 CNY on Alipay CNY payments. */
async function merchantWithFee(name: string, policy = RefundFeePolicy.RETAIN): Promise<Merchant> {
  const merchant = await t.createMerchant(name);
  await t.grpc.merchants.setFeeRule(
    { merchantId: merchant.id, channel: Channel.ALIPAY, currency: "CNY", rateBps: 60, fixedFee: 10n, minFee: 0n, refundFeePolicy: policy },
    t.adminHeaders,
  );
  return merchant;
}

/** A payment paid through the simulated Alipay, its success (our clock) and paid time then moved to `paidAt`. */
async function paidPayment(merchant: Merchant, amount: bigint, paidAt: Date) {
  const created = await t.grpc.payments.createPayment(
    { merchantOrderNo: `settle-${Date.now()}-${++orderSeq}`, currency: "CNY", amount, channel: Channel.ALIPAY, subject: "Oolong, 250 g" },
    merchant.headers,
  );
  const payment = created.payment!;
  t.simulator.pay("alipay", payment.paymentNo);
  const paid = await eventually(
    async () => (await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: payment.id } } }, merchant.headers)).payment!,
    (p) => p.status === PaymentStatus.SUCCEEDED,
  );
  expect(paid.status).toBe(PaymentStatus.SUCCEEDED);
  await sql("update payment set paid_at = ?, succeeded_at = ? where id = ?", [paidAt, paidAt, payment.id]);
  return paid;
}

/** A refund Alipay confirms at once, its success time then moved to `succeededAt`. */
async function succeededRefund(merchant: Merchant, paymentId: string, amount: bigint, succeededAt: Date) {
  const refund = (
    await t.grpc.payments.refundPayment({ paymentId, merchantRefundNo: `r-${++orderSeq}`, amount, reason: "returned" }, merchant.headers)
  ).refund!;
  expect(refund.status).toBe(RefundStatus.SUCCEEDED);
  await sql("update refund set succeeded_at = ? where id = ?", [succeededAt, refund.id]);
  return refund;
}

function run(settlementDate: string, merchantId = "") {
  return t.grpc.settlement.runSettlement({ settlementDate, merchantId }, t.adminHeaders);
}

async function ordersOf(merchant: Merchant, settlementDate = ""): Promise<Settlement[]> {
  const listed = await t.grpc.settlement.listSettlements({ settlementDate, includeLines: true, pageSize: 100 }, merchant.headers);
  return listed.settlements;
}

async function onlyOrder(merchant: Merchant, settlementDate: string): Promise<Settlement> {
  const orders = await ordersOf(merchant, settlementDate);
  expect(orders).toHaveLength(1);
  return orders[0]!;
}

function reasonOf(error: ServiceError): string | undefined {
  return readGrpcErrorDetails(error).errorInfo?.reason;
}

/** gross = net + fee on every line and in the totals, and every total is the sum of its lines. */
function expectConsistent(order: Settlement) {
  for (const line of order.lines) expect(line.gross).toBe(line.net + line.fee);
  const sum = (pick: (line: Settlement["lines"][number]) => bigint, kind?: SettlementLineKind) =>
    order.lines.filter((line) => kind === undefined || line.kind === kind).reduce((total, line) => total + pick(line), 0n);
  expect(order.grossAmount).toBe(order.netAmount + order.feeAmount);
  expect(order.grossAmount).toBe(sum((line) => line.gross));
  expect(order.netAmount).toBe(sum((line) => line.net));
  expect(order.feeAmount).toBe(sum((line) => line.fee));
  expect(order.paymentsAmount).toBe(sum((line) => line.gross, SettlementLineKind.PAYMENT));
  expect(order.refundsAmount).toBe(sum((line) => line.gross, SettlementLineKind.REFUND));
  expect(order.carriedAmount).toBe(sum((line) => line.gross, SettlementLineKind.CARRIED));
  expect(order.lineCount).toBe(BigInt(order.lines.length));
}

async function balance(merchant: Merchant) {
  return t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers);
}

describe("RunSettlement", () => {
  it("builds one order per merchant and currency whose totals are its lines' sums (gross = net + fee), and moves the net to available", async () => {
    const merchant = await merchantWithFee("Totals Tea");
    const first = await paidPayment(merchant, 10_000n, chinaNoon("2026-11-01"));
    const second = await paidPayment(merchant, 2_550n, new Date("2026-11-01T01:00:00.000Z"));
    const nextDay = await paidPayment(merchant, 777n, chinaNoon("2026-11-02"));

    const result = await run("2026-11-02", merchant.id);
    expect(result).toMatchObject({ settlementDate: "2026-11-02", ordersCreated: 1n, ordersExisting: 0n, linesSettled: 2n, paymentsHeld: 0n });
    // T+1 in Asia/Shanghai: 2026-11-02 settles 2026-11-01, China midnight to midnight.
    expect(timestampDate(result.periodStart!).toISOString()).toBe("2026-10-31T16:00:00.000Z");
    expect(timestampDate(result.periodEnd!).toISOString()).toBe("2026-11-01T16:00:00.000Z");

    const order = await onlyOrder(merchant, "2026-11-02");
    expect(order).toMatchObject({
      kind: SettlementKind.SCHEDULED,
      status: SettlementStatus.SETTLED,
      currency: "CNY",
      merchantId: merchant.id,
      paymentsAmount: 12_550n,
      refundsAmount: 0n,
      carriedAmount: 0n,
      feeAmount: first.fee + second.fee,
      netAmount: 12_550n - first.fee - second.fee,
    });
    expect(order.settlementNo).toMatch(/^S\d{14}[0-9A-Z]{16}$/);
    expect(order.lines.map((line) => line.paymentId).sort()).toEqual([first.id, second.id].sort());
    expect(first.fee).toBe(70n);
    expectConsistent(order);

    const after = await balance(merchant);
    expect(after.available).toBe(order.netAmount);
    expect(after.pending).toBe(nextDay.amount - nextDay.fee);
  });

  it("changes nothing when run again: the order exists, no line or ledger entry is added", async () => {
    const merchant = await merchantWithFee("Rerun Tea");
    await paidPayment(merchant, 3_000n, chinaNoon("2026-11-01"));
    await run("2026-11-02", merchant.id);
    const before = await onlyOrder(merchant, "2026-11-02");
    const entries = await sql("select count(*) as n from journal_entry where merchant_id = ?", [merchant.id]);

    const again = await run("2026-11-02", merchant.id);
    expect(again).toMatchObject({ ordersCreated: 0n, ordersExisting: 1n, linesSettled: 0n });
    expect(await onlyOrder(merchant, "2026-11-02")).toEqual(before);
    expect(await sql("select count(*) as n from journal_entry where merchant_id = ?", [merchant.id])).toEqual(entries);
  });

  it("puts a payment at 23:59:59.999 China time and one at 00:00 the next day on different settlement dates", async () => {
    const merchant = await merchantWithFee("Midnight Tea");
    const late = await paidPayment(merchant, 1_000n, new Date("2026-11-03T15:59:59.999Z"));
    const early = await paidPayment(merchant, 2_000n, new Date("2026-11-03T16:00:00.000Z"));

    await run("2026-11-04", merchant.id);
    await run("2026-11-05", merchant.id);
    expect((await onlyOrder(merchant, "2026-11-04")).lines.map((line) => line.paymentId)).toEqual([late.id]);
    expect((await onlyOrder(merchant, "2026-11-05")).lines.map((line) => line.paymentId)).toEqual([early.id]);
  });

  it("settles a refund in the period it succeeded in: gross and net negative, fee the fee returned", async () => {
    const merchant = await merchantWithFee("Refund Tea", RefundFeePolicy.PRORATE);
    const payment = await paidPayment(merchant, 10_000n, chinaNoon("2026-11-06"));
    const other = await paidPayment(merchant, 8_000n, chinaNoon("2026-11-07"));
    await run("2026-11-07", merchant.id);
    const refund = await succeededRefund(merchant, payment.id, 4_000n, chinaNoon("2026-11-07"));
    await run("2026-11-08", merchant.id);

    const first = await onlyOrder(merchant, "2026-11-07");
    expect(first.refundsAmount).toBe(0n);
    const second = await onlyOrder(merchant, "2026-11-08");
    const refundLine = second.lines.find((line) => line.kind === SettlementLineKind.REFUND)!;
    expect(refundLine).toMatchObject({ refundId: refund.id, paymentId: payment.id, gross: -4_000n, fee: -28n, net: -3_972n });
    expect(second.refundsAmount).toBe(-4_000n);
    expect(second.paymentsAmount).toBe(other.amount);
    expect(second.netAmount).toBe(other.amount - other.fee - 3_972n);
    expectConsistent(second);
  });

  it("carries a negative net forward into the merchant's next order, moving nothing meanwhile", async () => {
    const merchant = await merchantWithFee("Carry Tea");
    const payment = await paidPayment(merchant, 1_000n, chinaNoon("2026-11-09"));
    await run("2026-11-10", merchant.id);
    await succeededRefund(merchant, payment.id, 1_000n, chinaNoon("2026-11-10"));
    const entriesBefore = await sql("select count(*) as n from journal_entry where merchant_id = ? and entry_type = 'settlement'", [merchant.id]);

    await run("2026-11-11", merchant.id);
    const carried = await onlyOrder(merchant, "2026-11-11");
    expect(carried.status).toBe(SettlementStatus.CARRIED_FORWARD);
    expect(carried.netAmount).toBe(-1_000n);
    expect(await sql("select count(*) as n from journal_entry where merchant_id = ? and entry_type = 'settlement'", [merchant.id])).toEqual(
      entriesBefore,
    );

    const later = await paidPayment(merchant, 5_000n, chinaNoon("2026-11-11"));
    await run("2026-11-12", merchant.id);
    const next = await onlyOrder(merchant, "2026-11-12");
    const carriedLine = next.lines.find((line) => line.kind === SettlementLineKind.CARRIED)!;
    expect(carriedLine).toMatchObject({ carriedFromSettlementId: carried.id, gross: -1_000n, fee: 0n, net: -1_000n });
    expect(next.carriedAmount).toBe(-1_000n);
    expect(next.netAmount).toBe(later.amount - later.fee - 1_000n);
    expect(next.status).toBe(SettlementStatus.SETTLED);
    expectConsistent(next);
    const [row] = await sql("select carried_into_id from settlement where id = ?", [carried.id]);
    expect(row?.carried_into_id).toBe(next.id);
    // Everything paid in minus everything refunded, less fees kept, is what became available.
    expect((await balance(merchant)).available).toBe(1_000n - payment.fee + (later.amount - later.fee) - 1_000n);
  });

  it("leaves out a payment with an OPEN discrepancy, records the hold, and settles it in a later run once resolved", async () => {
    const merchant = await merchantWithFee("Held Tea");
    const held = await paidPayment(merchant, 4_000n, chinaNoon("2026-11-13"));
    const clear = await paidPayment(merchant, 6_000n, chinaNoon("2026-11-13"));
    const discrepancyId = newId();
    await insertDiscrepancy(t.app.uow.session(), {
      id: discrepancyId,
      kind: "BILL_AMOUNT_MISMATCH",
      subjectRef: `test:${held.id}`,
      channel: "alipay",
      merchantId: merchant.id,
      paymentId: held.id,
      channelTradeNo: held.channelTradeNo,
      amount: held.amount,
      currency: "CNY",
      detail: "the bill says 39.00",
      status: "OPEN",
      resolution: null,
      createdAt: new Date(),
      resolvedAt: null,
    } as DiscrepancyRow);

    const first = await run("2026-11-14", merchant.id);
    expect(first).toMatchObject({ ordersCreated: 1n, linesSettled: 1n, paymentsHeld: 1n });
    expect((await onlyOrder(merchant, "2026-11-14")).lines.map((line) => line.paymentId)).toEqual([clear.id]);
    const heldFrom = await onlyOrder(merchant, "2026-11-14");
    expect(await sql("select payment_id, settlement_id, settlement_date, released_into_id from settlement_hold where merchant_id = ?", [merchant.id])).toEqual([
      { payment_id: held.id, settlement_id: heldFrom.id, settlement_date: "2026-11-14", released_into_id: null },
    ]);

    // Still open: a later run leaves it where it is.
    expect(await run("2026-11-15", merchant.id)).toMatchObject({ ordersCreated: 0n, linesSettled: 0n });
    await t.grpc.settlement.resolveDiscrepancy({ discrepancyId, resolution: "bill corrected by Alipay", resolvedBy: "ops" }, t.adminHeaders);
    const second = await run("2026-11-16", merchant.id);
    expect(second).toMatchObject({ ordersCreated: 1n, linesSettled: 1n });
    const released = await onlyOrder(merchant, "2026-11-16");
    expect(released.lines.map((line) => line.paymentId)).toEqual([held.id]);
    expect(released.netAmount).toBe(held.amount - held.fee);
    expectConsistent(released);
    // The hold row stays as the audit trail, naming the order that settled the payment; the first
    // order's derived lines still leave the payment out.
    expect(await sql("select payment_id, settlement_id, released_into_id from settlement_hold where merchant_id = ?", [merchant.id])).toEqual([
      { payment_id: held.id, settlement_id: heldFrom.id, released_into_id: released.id },
    ]);
    expect(await onlyOrder(merchant, "2026-11-14")).toEqual(heldFrom);
    expect(await run("2026-11-17", merchant.id)).toMatchObject({ ordersCreated: 0n, linesSettled: 0n });
    expect((await checkLedger(t.app.uow.session())).violations).toEqual([]);
  });

  it("settles only the merchant asked for, and the others on a run for all", async () => {
    const a = await merchantWithFee("Filter Tea A");
    const b = await merchantWithFee("Filter Tea B");
    await paidPayment(a, 1_500n, chinaNoon("2026-11-18"));
    await paidPayment(b, 2_500n, chinaNoon("2026-11-18"));

    expect(await run("2026-11-19", a.id)).toMatchObject({ ordersCreated: 1n, ordersExisting: 0n });
    expect(await ordersOf(b, "2026-11-19")).toEqual([]);
    expect(await run("2026-11-19")).toMatchObject({ ordersCreated: 1n, ordersExisting: 1n });
    expect((await onlyOrder(b, "2026-11-19")).paymentsAmount).toBe(2_500n);
  });

  it("builds each order once when two runs race, one over grpc-js and one over Connect", async () => {
    const merchants = await Promise.all([1, 2, 3, 4, 5].map((n) => merchantWithFee(`Race Tea ${n}`)));
    const payments = [];
    for (const merchant of merchants) {
      payments.push(await paidPayment(merchant, 1_000n, chinaNoon("2026-11-20")));
      payments.push(await paidPayment(merchant, 2_000n, new Date("2026-11-20T15:00:00.000Z")));
    }

    const [viaGrpc, viaConnect] = await Promise.all([
      run("2026-11-21"),
      t.connect.settlement.runSettlement({ settlementDate: "2026-11-21" }, { headers: t.adminHeaders }),
    ]);
    expect(viaGrpc.ordersCreated + viaConnect.ordersCreated).toBe(5n);
    expect(viaGrpc.linesSettled + viaConnect.linesSettled).toBe(10n);
    expect(viaGrpc.ordersCreated + viaGrpc.ordersExisting).toBe(5n);
    expect(viaConnect.ordersCreated + viaConnect.ordersExisting).toBe(5n);
    // Every payment on exactly one order's lines.
    const settled: string[] = [];
    for (const merchant of merchants) {
      const order = await onlyOrder(merchant, "2026-11-21");
      expectConsistent(order);
      settled.push(...order.lines.map((line) => line.paymentId));
    }
    expect(settled.sort()).toEqual(payments.map((payment) => payment.id).sort());
  });

  it("refuses a date whose period has not ended (SETTLEMENT_PERIOD_OPEN) and a malformed date (naming settlement_date)", async () => {
    // Two days ahead: its period (tomorrow, China time) cannot have ended, whatever the hour.
    const ahead = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const open = await grpcError(run(ahead));
    expect(open.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(reasonOf(open)).toBe("SETTLEMENT_PERIOD_OPEN");

    for (const bad of ["2026-13-01", "2026-02-30", "20261101", "x".repeat(100_000)]) {
      const error = await grpcError(run(bad));
      expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["settlement_date"]);
    }
    const viaConnect = await connectError(t.connect.settlement.runSettlement({ settlementDate: "2026-11-31" }, { headers: t.adminHeaders }));
    expect(viaConnect.code).toBe(Code.InvalidArgument);
  });

  it("refuses a date whose period overlaps settled dates after the schedule changed (SETTLEMENT_PERIOD_OVERLAP), building nothing", async () => {
    const merchant = await merchantWithFee("Overlap Tea");
    await paidPayment(merchant, 1_000n, chinaNoon("2026-09-20"));
    await run("2026-09-21", merchant.id);
    // With a 12:00 cut-off, 2026-09-20 settles 2026-09-19 12:00 to 2026-09-20 12:00 China time,
    // half of which the order of 2026-09-21 under the 00:00 cut-off covers already.
    const noon = createSettlementService({ uow: t.app.uow, payouts: NO_PAYOUT_ACCOUNTS, schedule: { ...t.config.settlement, cutoffMinutes: 12 * 60 } });
    await expect(noon.runSettlement(t.app.uow.session(), "2026-09-20", { merchantId: merchant.id })).rejects.toMatchObject({
      reason: "SETTLEMENT_PERIOD_OVERLAP",
    });
    expect(await ordersOf(merchant, "2026-09-20")).toEqual([]);
  });

  it("refuses a merchant_id that cannot be an id, naming it", async () => {
    for (const merchantId of ["x".repeat(65), "bad id"]) {
      const error = await grpcError(run("2026-11-02", merchantId));
      expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["merchant_id"]);
    }
  });

  it("is an admin call: a merchant key is refused", async () => {
    const merchant = await t.createMerchant("Not Admin Tea");
    const error = await grpcError(t.grpc.settlement.runSettlement({ settlementDate: "2026-11-02" }, merchant.headers));
    expect(error.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });
});

describe("GetSettlement and ListSettlements", () => {
  it("answers NOT_FOUND for another merchant's order, over grpc-js and Connect", async () => {
    const owner = await merchantWithFee("Owner Tea");
    const stranger = await t.createMerchant("Stranger Tea");
    await paidPayment(owner, 1_200n, chinaNoon("2026-11-22"));
    await run("2026-11-23", owner.id);
    const order = await onlyOrder(owner, "2026-11-23");

    expect((await t.grpc.settlement.getSettlement({ settlementId: order.id }, owner.headers)).settlement?.id).toBe(order.id);
    const viaGrpc = await grpcError(t.grpc.settlement.getSettlement({ settlementId: order.id }, stranger.headers));
    expect(viaGrpc.code).toBe(GrpcStatus.NOT_FOUND);
    expect(reasonOf(viaGrpc)).toBe("SETTLEMENT_NOT_FOUND");
    const viaConnect = await connectError(t.connect.settlement.getSettlement({ settlementId: order.id }, { headers: stranger.headers }));
    expect(viaConnect.code).toBe(Code.NotFound);
    expect(await ordersOf(stranger)).toEqual([]);
  });

  it("pages an order's lines (1-1000 a page) and orders (1-100 a page), refusing sizes out of range and foreign tokens", async () => {
    const merchant = await merchantWithFee("Paging Tea");
    for (const amount of [1_001n, 1_002n, 1_003n]) await paidPayment(merchant, amount, chinaNoon("2026-11-24"));
    await paidPayment(merchant, 1_004n, chinaNoon("2026-11-25"));
    await run("2026-11-25", merchant.id);
    await run("2026-11-26", merchant.id);
    const order = await onlyOrder(merchant, "2026-11-25");

    const seen: string[] = [];
    let token = "";
    do {
      const page = (await t.grpc.settlement.getSettlement({ settlementId: order.id, linesPageSize: 1, linesPageToken: token }, merchant.headers))
        .settlement!;
      expect(page.lines).toHaveLength(1);
      seen.push(page.lines[0]!.paymentId);
      token = page.nextLinesPageToken;
    } while (token !== "");
    expect(seen.sort()).toEqual(order.lines.map((line) => line.paymentId).sort());
    expect(seen).toHaveLength(3);

    for (const linesPageSize of [-1, 1001]) {
      const error = await grpcError(t.grpc.settlement.getSettlement({ settlementId: order.id, linesPageSize }, merchant.headers));
      expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["lines_page_size"]);
    }
    const full = await t.grpc.settlement.getSettlement({ settlementId: order.id, linesPageSize: 1000 }, merchant.headers);
    expect(full.settlement?.lines).toHaveLength(3);

    const firstPage = await t.grpc.settlement.listSettlements({ pageSize: 1 }, merchant.headers);
    expect(firstPage.settlements).toHaveLength(1);
    expect(firstPage.settlements[0]?.lines).toEqual([]);
    const secondPage = await t.grpc.settlement.listSettlements({ pageSize: 1, pageToken: firstPage.nextPageToken }, merchant.headers);
    expect(secondPage.settlements[0]?.id).not.toBe(firstPage.settlements[0]?.id);
    const foreign = await grpcError(
      t.grpc.settlement.getSettlement({ settlementId: order.id, linesPageToken: firstPage.nextPageToken }, merchant.headers),
    );
    expect(readGrpcErrorDetails(foreign).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["lines_page_token"]);
    for (const request of [{ pageSize: 101 }, { currency: "XXX" }, { settlementDate: "yesterday" }]) {
      expect((await grpcError(t.grpc.settlement.listSettlements(request, merchant.headers))).code).toBe(GrpcStatus.INVALID_ARGUMENT);
    }
  });
});

describe("payouts of settlement orders", () => {
  async function withAccount(merchant: Merchant) {
    await t.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: "2088123412341234" },
      t.adminHeaders,
    );
  }

  it("pays out an order's net at once when the merchant has a settlement account", async () => {
    const merchant = await merchantWithFee("Payout Tea");
    await withAccount(merchant);
    const payment = await paidPayment(merchant, 9_000n, chinaNoon("2026-11-27"));
    await run("2026-11-28", merchant.id);
    const order = await onlyOrder(merchant, "2026-11-28");
    expect(order.status).toBe(SettlementStatus.PAYING_OUT);
    expect(order.payout).toMatchObject({ amount: payment.amount - payment.fee, currency: "CNY", status: PayoutStatus.PENDING, channel: Channel.ALIPAY });
    expect((await balance(merchant)).available).toBe(0n);
  });

  it("SubmitSettlement refuses under the minimum, without an account, and beyond the available balance; then pays out on request", async () => {
    const merchant = await merchantWithFee("Submit Tea");
    const payment = await paidPayment(merchant, 20_000n, chinaNoon("2026-11-27"));
    await run("2026-11-28", merchant.id);
    const available = payment.amount - payment.fee;
    expect((await balance(merchant)).available).toBe(available);

    const noAccount = await grpcError(t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 5_000n }, merchant.headers));
    expect(noAccount.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(reasonOf(noAccount)).toBe("NO_SETTLEMENT_ACCOUNT");

    await withAccount(merchant);
    const below = await grpcError(t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 99n }, merchant.headers));
    expect(below.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(reasonOf(below)).toBe("AMOUNT_BELOW_MINIMUM");
    expect(readGrpcErrorDetails(below).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["amount"]);

    const short = await grpcError(t.grpc.settlement.submitSettlement({ currency: "CNY", amount: available + 1n }, merchant.headers));
    expect(short.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(reasonOf(short)).toBe("INSUFFICIENT_BALANCE");
    expect(short.details).toContain("198.70 CNY");

    const headers = { ...merchant.headers, "idempotency-key": "withdraw-1" };
    const submitted = (await t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 5_000n }, headers)).settlement!;
    expect(submitted).toMatchObject({
      kind: SettlementKind.ON_REQUEST,
      settlementDate: "",
      status: SettlementStatus.PAYING_OUT,
      grossAmount: 5_000n,
      netAmount: 5_000n,
      feeAmount: 0n,
      lineCount: 1n,
    });
    expect(submitted.lines).toMatchObject([{ kind: SettlementLineKind.WITHDRAWAL, gross: 5_000n, fee: 0n, net: 5_000n }]);
    expect(submitted.payout).toMatchObject({ amount: 5_000n, status: PayoutStatus.PENDING });
    expect((await balance(merchant)).available).toBe(available - 5_000n);

    const again = (await t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 5_000n }, headers)).settlement!;
    expect(again.id).toBe(submitted.id);
    const reused = await grpcError(t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 6_000n }, headers));
    expect(reused.code).toBe(GrpcStatus.ALREADY_EXISTS);
    expect(reasonOf(reused)).toBe("IDEMPOTENCY_KEY_REUSED");
    const tooLong = await grpcError(
      t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 5_000n }, { ...merchant.headers, "idempotency-key": "k".repeat(256) }),
    );
    expect(readGrpcErrorDetails(tooLong).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["idempotency-key"]);
    expect((await balance(merchant)).available).toBe(available - 5_000n);
  });

  it("never overdraws when one merchant submits concurrently", async () => {
    const merchant = await merchantWithFee("Concurrent Submit Tea");
    await paidPayment(merchant, 10_000n, chinaNoon("2026-11-29"));
    await run("2026-11-30", merchant.id);
    await withAccount(merchant);
    const available = (await balance(merchant)).available;
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => t.connect.settlement.submitSettlement({ currency: "CNY", amount: 3_000n }, { headers: merchant.headers })),
    );
    const succeeded = results.filter((result) => result.status === "fulfilled").length;
    expect(succeeded).toBe(Number(available / 3_000n));
    expect((await balance(merchant)).available).toBe(available - BigInt(succeeded) * 3_000n);
  });
});

describe("a success recorded late", () => {
  it("is settled in the period of its recording (our clock), not in the settled period of the channel's paid time", async () => {
    const merchant = await merchantWithFee("Late Tea");
    const early = await paidPayment(merchant, 2_000n, chinaNoon("2026-10-05"));
    await run("2026-10-06", merchant.id);
    const settled = await onlyOrder(merchant, "2026-10-06");
    expect(settled.lines.map((line) => line.paymentId)).toEqual([early.id]);

    // The channel paid it at noon on 2026-10-05 (China); its notification reaches us only now.
    const created = (
      await t.grpc.payments.createPayment(
        { merchantOrderNo: `late-${++orderSeq}`, currency: "CNY", amount: 3_000n, channel: Channel.ALIPAY, subject: "Oolong, 250 g" },
        merchant.headers,
      )
    ).payment!;
    const channelPaidAt = new Date("2026-10-05T06:00:00.000Z");
    const before = new Date();
    const outcome = await t.app.uow.transaction(t.app.uow.session(), async (tx) =>
      applyChannelStatus(
        tx,
        await reloadPayment(tx, created.id),
        { state: "succeeded", channelTradeNo: `late-trade-${orderSeq}`, amountMinor: 3_000n, currency: "CNY", paidAt: channelPaidAt },
        "test: a late notification",
      ),
    );
    const after = new Date();
    expect(outcome.effect).toBe("applied");
    const late = (await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.id } } }, merchant.headers)).payment!;
    expect(late.status).toBe(PaymentStatus.SUCCEEDED);
    // The API's paid_at is the channel's time.
    expect(timestampDate(late.paidAt!).toISOString()).toBe(channelPaidAt.toISOString());

    // The settled date stays as it was.
    expect(await run("2026-10-06", merchant.id)).toMatchObject({ ordersCreated: 0n, ordersExisting: 1n, linesSettled: 0n });
    expect(await onlyOrder(merchant, "2026-10-06")).toEqual(settled);

    // The date whose period holds the moment we recorded it, settled once that period ended (and
    // not before its grace has passed).
    const schedule = t.config.settlement;
    const date = addDays(currentSettlementDate(before, schedule), 1);
    const period = settlementPeriod(date, schedule);
    const session = t.app.uow.session();
    const early5 = createSettlementService({ uow: t.app.uow, payouts: NO_PAYOUT_ACCOUNTS, schedule, now: () => new Date(period.end.getTime() + SETTLEMENT_GRACE_MS - 1) });
    await expect(early5.runSettlement(session, date, { merchantId: merchant.id })).rejects.toMatchObject({ reason: "SETTLEMENT_PERIOD_OPEN" });
    const later = createSettlementService({ uow: t.app.uow, payouts: NO_PAYOUT_ACCOUNTS, schedule, now: () => new Date(period.end.getTime() + SETTLEMENT_GRACE_MS) });
    expect(await later.runSettlement(session, date, { merchantId: merchant.id })).toMatchObject({ ordersCreated: 1, linesSettled: 1 });
    const order = await onlyOrder(merchant, date);
    expect(order.lines.map((line) => line.paymentId)).toEqual([created.id]);
    const occurredAt = timestampDate(order.lines[0]!.occurredAt!).getTime();
    expect(occurredAt).toBeGreaterThanOrEqual(before.getTime());
    expect(occurredAt).toBeLessThanOrEqual(after.getTime());
    expect(order.netAmount).toBe(late.amount - late.fee);
    expectConsistent(order);
  });
});

describe("the scheduler", () => {
  it("runs the day's settlement on one of two replicas (job lease), once", async () => {
    const merchant = await merchantWithFee("Scheduled Tea");
    await paidPayment(merchant, 3_300n, chinaNoon("2026-10-20"));
    // Past the end of 2026-10-20 in China: the current settlement date is 2026-10-21.
    const now = () => new Date("2026-10-21T05:00:00.000Z");
    const replicas = ["replica-a", "replica-b"].map((holder) =>
      createSettlementScheduler({ uow: t.app.uow, settlements: t.app.settlements, schedule: t.config.settlement, log: () => {}, holder, now }),
    );
    const runs = await Promise.all(replicas.map((replica) => replica.runIfDue()));
    expect(runs.flat()).toHaveLength(1);
    expect(runs.flat()[0]).toMatchObject({ settlementDate: "2026-10-21" });
    expect((await onlyOrder(merchant, "2026-10-21")).paymentsAmount).toBe(3_300n);
    const [lease] = await sql("select completed_key, holder from job_lease where name = ?", [SETTLEMENT_JOB]);
    expect(lease).toEqual({ completed_key: "2026-10-21", holder: null });

    // Completed: neither replica runs it again.
    expect((await Promise.all(replicas.map((replica) => replica.runIfDue()))).flat()).toEqual([]);
  });

  it("takes over a lease its holder let expire", async () => {
    const now = () => new Date("2026-10-23T05:00:00.000Z");
    await sql("update job_lease set holder = 'dead-replica', lease_until = ? where name = ?", [new Date(Date.now() + 60_000), SETTLEMENT_JOB]);
    const scheduler = createSettlementScheduler({ uow: t.app.uow, settlements: t.app.settlements, schedule: t.config.settlement, log: () => {}, now });
    expect(await scheduler.runIfDue()).toEqual([]);
    await sql("update job_lease set lease_until = ? where name = ?", [new Date(Date.now() - 1000), SETTLEMENT_JOB]);
    const runs = await scheduler.runIfDue();
    expect(runs.map((result) => result.settlementDate)).toEqual(["2026-10-22", "2026-10-23"]);
  });
});

describe("the ledger check", () => {
  it("stays OK after all of the above", async () => {
    const result = await checkLedger(t.app.uow.session());
    expect(result.violations).toEqual([]);
    expect((await t.grpc.settlement.checkLedger({}, t.adminHeaders)).ok).toBe(true);
  });

  it("reports an order whose totals differ from its lines, a line with gross != net + fee, and payouts beyond settlements", async () => {
    const [order] = await sql("select id from settlement where kind = 'SCHEDULED' order by id limit 1");
    const [line] = await sql("select id from settlement_line where kind = 'PAYMENT' order by id limit 1");
    await sql("update settlement set net_amount = net_amount + 1 where id = ?", [String(order!.id)]);
    await sql("update settlement_line set fee = fee + 1, net = net + 1 where id = ?", [String(line!.id)]);
    const merchant = await t.createMerchant("Overdrawn Tea");
    const entryId = newId();
    await sql("insert into journal_entry (id, ref, entry_type, merchant_id, currency, created_at) values (?, ?, 'payout', ?, 'CNY', now(3))", [
      entryId,
      `test-payout:${entryId}`,
      merchant.id,
    ]);
    await sql("insert into journal_posting (id, entry_id, merchant_id, account, currency, amount) values (?, ?, ?, ?, 'CNY', 500), (?, ?, ?, ?, 'CNY', -500)", [
      newId(),
      entryId,
      merchant.id,
      `merchant_available:${merchant.id}`,
      newId(),
      entryId,
      merchant.id,
      "payout_in_transit:alipay",
    ]);

    const result = await checkLedger(t.app.uow.session());
    const checks = result.violations.map((violation) => `${violation.check} ${violation.subject}`);
    expect(checks).toContain(`SETTLEMENT_LINES_MISMATCH ${order!.id}`);
    expect(checks).toContain(`SETTLEMENT_LINES_MISMATCH ${line!.id}`);
    expect(checks).toContain(`PAID_OUT_EXCEEDS_SETTLED merchant_available:${merchant.id} CNY`);
  });

  it("reports SETTLEMENT_LINES_MISMATCH when a success is moved into a settled period behind the service's back, and SETTLED_TWICE for a derived payment also on a stored line", async () => {
    const merchant = await merchantWithFee("Moved Tea");
    await paidPayment(merchant, 1_100n, chinaNoon("2026-09-10"));
    const moved = await paidPayment(merchant, 2_200n, chinaNoon("2026-09-12"));
    await run("2026-09-11", merchant.id);
    const order = await onlyOrder(merchant, "2026-09-11");
    const subjects = async (check: string) =>
      (await checkLedger(t.app.uow.session())).violations.filter((violation) => violation.check === check).map((violation) => violation.subject);
    expect(await subjects("SETTLEMENT_LINES_MISMATCH")).not.toContain(order.id);

    await sql("update payment set succeeded_at = ? where id = ?", [chinaNoon("2026-09-10"), moved.id]);
    expect(await subjects("SETTLEMENT_LINES_MISMATCH")).toContain(order.id);

    await sql("update payment set succeeded_at = ? where id = ?", [chinaNoon("2026-09-12"), moved.id]);
    expect(await subjects("SETTLEMENT_LINES_MISMATCH")).not.toContain(order.id);
    await run("2026-09-13", merchant.id);
    expect(await subjects("SETTLED_TWICE")).not.toContain(moved.id);
    await sql(
      "insert into settlement_line (id, settlement_id, merchant_id, kind, payment_id, refund_id, gross, fee, net, occurred_at) values (?, ?, ?, 'PAYMENT', ?, null, ?, ?, ?, now(3))",
      [moved.id, order.id, merchant.id, moved.id, moved.amount, moved.fee, moved.amount - moved.fee],
    );
    expect(await subjects("SETTLED_TWICE")).toContain(moved.id);
  });
});
