/**
 * The embedded default (libSQL/SQLite file, no DATABASE_URL): the core flow works on it too,
 * and BIGINT money stays exact above 2^53 on both drivers, in entities and in raw aggregates.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { JournalPosting } from "../../src/ledger/ledger-entities.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { toBigInt } from "../../src/ledger/ledger.js";
import { newId } from "../../src/ids.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";
import { eventually } from "../support/waiting.js";

describe("the core flow on the embedded database", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ database: "sqlite" });
  });
  afterAll(() => t?.stop());

  it("runs on SQLite", () => {
    expect(t.app.db.kind).toBe("sqlite");
  });

  it("creates, pays by callback, refunds, closes and keeps the ledger balanced", async () => {
    const merchant = await t.createMerchant();
    const created = await t.grpc.payments.createPayment(
      { merchantOrderNo: "embedded-1", currency: "CNY", amount: 1999n, channel: Channel.ALIPAY, subject: "Tea" },
      merchant.headers,
    );
    const payment = created.payment!;
    t.simulator.pay("alipay", payment.paymentNo);
    const paid = await eventually(
      () => t.connect.payments.getPayment({ lookup: { key: { case: "paymentId", value: payment.id } } }, { headers: merchant.headers }),
      (r) => r.payment?.status === PaymentStatus.SUCCEEDED,
    );
    expect(paid.payment?.status).toBe(PaymentStatus.SUCCEEDED);

    const refund = await t.grpc.payments.refundPayment(
      { paymentId: payment.id, merchantRefundNo: "r1", amount: 999n, reason: "one cup broken" },
      merchant.headers,
    );
    expect(refund.refund?.status).toBe(RefundStatus.SUCCEEDED);
    const balance = await t.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers);
    expect(balance.pending).toBe(1000n);

    const other = await t.grpc.payments.createPayment(
      { merchantOrderNo: "embedded-2", currency: "CNY", amount: 500n, channel: Channel.ALIPAY, subject: "Tea" },
      merchant.headers,
    );
    const closed = await t.grpc.payments.closePayment({ paymentId: other.payment!.id }, merchant.headers);
    expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);

    const check = await checkLedger(t.app.db.em());
    expect(check.violations).toEqual([]);
    expect(check.ok).toBe(true);
  });

  it("records money paid after close as a discrepancy", async () => {
    const merchant = await t.createMerchant();
    const created = await t.grpc.payments.createPayment(
      { merchantOrderNo: "embedded-3", currency: "CNY", amount: 700n, channel: Channel.ALIPAY, subject: "Tea" },
      merchant.headers,
    );
    await t.grpc.payments.closePayment({ paymentId: created.payment!.id }, merchant.headers);
    // Alipay keeps an unscanned QR code payable after our close: the shopper pays anyway.
    t.simulator.pay("alipay", created.payment!.paymentNo);
    const listed = await eventually(
      () => t.grpc.settlement.listDiscrepancies({ status: "OPEN" }, t.adminHeaders),
      (r) => r.discrepancies.some((d) => d.paymentId === created.payment!.id),
    );
    const discrepancy = listed.discrepancies.find((d) => d.paymentId === created.payment!.id);
    expect(discrepancy?.kind).toBe("PAID_AFTER_CLOSE");
    expect(discrepancy?.channelTradeNo).not.toBe("");
    const read = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.payment!.id } } }, merchant.headers);
    expect(read.payment?.status).toBe(PaymentStatus.CLOSED);
    expect((await checkLedger(t.app.db.em())).ok).toBe(true);
  });
});

describe("BIGINT above 2^53", () => {
  const big = 12_345_678_901_234_567n;
  let mysql: TestDatabase;
  const opened: Database[] = [];
  beforeAll(async () => {
    mysql = await createTestDatabase();
  });
  afterAll(async () => {
    for (const db of opened) await db.close();
    await mysql?.drop();
  });

  for (const driver of ["mysql", "sqlite"] as const) {
    it(`comes back exact from ${driver}, in entities and in SUM()`, async () => {
      const { mkdtempSync } = await import("node:fs");
      const { tmpdir } = await import("node:os");
      const { join } = await import("node:path");
      const db = await openDatabase({
        url: driver === "mysql" ? mysql.url : undefined,
        dataDir: mkdtempSync(join(tmpdir(), "payments-bigint-")),
      });
      opened.push(db);
      const em = db.em();
      const row = { id: newId(), entryId: newId(), merchantId: newId(), account: "big", currency: "CNY", amount: big };
      await em.insert(JournalPosting, row);
      await em.insert(JournalPosting, { ...row, id: newId(), amount: big });
      const read = await db.em().findOneOrFail(JournalPosting, { id: row.id });
      expect(read.amount).toBe(big);
      const sum = await db.em().execute("select sum(amount) as total from journal_posting where account = 'big'");
      expect(toBigInt(sum[0]?.total)).toBe(2n * big);
    });
  }
});
