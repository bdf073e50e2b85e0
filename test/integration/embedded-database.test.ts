/**
 * The embedded default (libSQL/SQLite file, no DATABASE_URL): the core flow works on it too,
 * and BIGINT money stays exact above 2^53 on both drivers, in entities and in raw aggregates.
 * Values are bound, never written into SQL text, and a failed statement is logged without them.
 */
import { format } from "node:util";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallbackLog } from "../../src/callbacks/callback-entities.js";
import type { Database } from "../../src/db/database.js";
import { loggableError } from "../../src/db/database-errors.js";
import { findRow, insertRow } from "../../src/db/rows.js";
import { IdempotencyRecord, Payment, PaymentItem } from "../../src/payments/payment-entity.js";
import { JournalPosting } from "../../src/ledger/ledger-entities.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { toBigInt } from "../../src/db/store-access.js";
import { newId } from "../../src/ids.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { capturingLogger } from "../support/log-lines.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { driverDatabases } from "../support/driver-databases.js";
import { eventually, grpcError } from "../support/waiting.js";

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

    const check = await checkLedger(t.app.uow.session());
    expect(check.violations).toEqual([]);
    expect(check.ok).toBe(true);
  });

  it("sweeps a pending payment that is due: INTEGER columns read as numbers, not bigint", async () => {
    const merchant = await t.createMerchant();
    const created = await t.grpc.payments.createPayment(
      { merchantOrderNo: "embedded-sweep", currency: "CNY", amount: 500n, channel: Channel.ALIPAY, subject: "Tea" },
      merchant.headers,
    );
    await t.app.db.em().nativeUpdate(Payment, { id: created.payment!.id }, { nextQueryAt: new Date(Date.now() - 1000) });
    const result = await t.app.sweeper.runOnce();
    expect(result.claimed).toBeGreaterThanOrEqual(1);
    const swept = await t.app.db.em().findOneOrFail(Payment, { id: created.payment!.id }, { disableIdentityMap: true });
    expect(swept.queryAttempts).toBe(1);
    expect(typeof swept.queryAttempts).toBe("number");
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
    expect((await checkLedger(t.app.uow.session())).ok).toBe(true);
  });
});

describe("BIGINT above 2^53", () => {
  const big = 12_345_678_901_234_567n;
  const databases = driverDatabases("payments-bigint-");
  afterAll(() => databases.close());

  for (const driver of ["mysql", "sqlite"] as const) {
    it(`comes back exact from ${driver}, in entities and in SUM()`, async () => {
      const db = await databases.open(driver);
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

describe("values never enter SQL text", () => {
  const tricky = `it's a \\ "quoted" ? -- 🍵 茶 \u0001\n'); drop table payment_item; --`;
  const databases = driverDatabases("payments-binding-");
  afterAll(() => databases.close());

  async function open(driver: "mysql" | "sqlite"): Promise<Database> {
    const db = await databases.open(driver);
    return db;
  }

  function callbackRow(reason: string) {
    return {
      id: newId(),
      channel: "card",
      receivedAt: new Date(),
      headers: { "user-agent": `a\u0000b ${tricky}` },
      rawBody: Buffer.from(`\u0000${tricky}`),
      bodySha256: "0".repeat(64),
      bodyBytes: 1,
      bodyForm: "excerpt",
      verdict: "rejected",
      reason,
      answerStatus: 400,
    };
  }

  for (const driver of ["mysql", "sqlite"] as const) {
    it(`round-trips quotes, backslashes, placeholders, emoji and control characters byte for byte (${driver})`, async () => {
      const db = await open(driver);
      const item = { paymentId: newId(), merchantId: newId(), position: 0, quantity: 1n, unitAmount: 2n };
      const viaRows = { ...item, id: newId(), sku: tricky.slice(0, 64), name: tricky };
      const viaOrm = { ...item, id: newId(), sku: "orm", name: `${tricky} (orm)` };
      await insertRow(db.em(), PaymentItem, viaRows);
      await db.em().insert(PaymentItem, viaOrm);
      expect((await findRow<{ name: string; sku: string }>(db.em(), PaymentItem, { name: tricky }))?.sku).toBe(viaRows.sku);
      expect((await db.em().findOneOrFail(PaymentItem, { id: viaOrm.id })).name).toBe(viaOrm.name);
      expect((await db.em().findOneOrFail(PaymentItem, { name: viaRows.name })).id).toBe(viaRows.id);

      // U+0000 inside JSON (escaped by JSON) and BLOB columns is fine on both drivers.
      const row = callbackRow(tricky);
      await insertRow(db.em(), CallbackLog, row);
      const read = await findRow<typeof row>(db.em(), CallbackLog, { id: row.id });
      expect(read?.headers).toEqual(row.headers);
      expect(Buffer.from(read!.rawBody).equals(row.rawBody)).toBe(true);
      expect(read?.reason).toBe(tricky);
    });
  }

  it("keeps U+0000 in a text column on MySQL", async () => {
    const db = await open("mysql");
    const row = callbackRow("before\u0000after");
    await insertRow(db.em(), CallbackLog, row);
    expect((await findRow<typeof row>(db.em(), CallbackLog, { id: row.id }))?.reason).toBe("before\u0000after");
  });

  it("refuses U+0000 in a text column on the embedded database, which could not read it back", async () => {
    const db = await open("sqlite");
    const row = callbackRow("secret-before\u0000after");
    const error = await insertRow(db.em(), CallbackLog, row).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/U\+0000/);
    expect(error?.message).not.toContain("secret-before");
    expect(await findRow(db.em(), CallbackLog, { id: row.id })).toBeUndefined();
  });

  it("logs a failed statement without its values", async () => {
    const logs = capturingLogger("error");
    const t = await startTestApp({ database: "sqlite", logger: logs.logger });
    try {
      const merchant = await t.createMerchant();
      await t.app.db.em().execute("alter table payment_item rename to payment_item_gone");
      const error = await grpcError(
        t.grpc.payments.createPayment(
          {
            merchantOrderNo: "logged-1",
            currency: "CNY",
            amount: 1999n,
            channel: Channel.ALIPAY,
            subject: "Secret-Subject-Value",
            items: [{ sku: "SKU-SECRET", name: "Secret-Item-Name", quantity: 1n, unitAmount: 1999n }],
          },
          merchant.headers,
        ),
      );
      expect(error.code).toBe(GrpcStatus.INTERNAL);
      const text = logs.text();
      expect(text).toContain("payment_item");
      for (const value of ["Secret-Subject-Value", "Secret-Item-Name", "SKU-SECRET", "logged-1"]) {
        expect(text.includes(value), `${value} in the log:\n${text}`).toBe(false);
      }
    } finally {
      await t.stop();
    }
  });

  it("redacts a real MySQL unique violation, whose message quotes the duplicate value", async () => {
    const db = await open("mysql");
    const record = { merchantId: "m", operation: "op", idempotencyKey: "Secret-Idem-Key", requestHash: "h", resourceId: "r", createdAt: new Date() };
    await db.em().insert(IdempotencyRecord, { ...record, id: newId() });
    const error = await db.em().insert(IdempotencyRecord, { ...record, id: newId() }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toContain("Secret-Idem-Key");
    const logged = format(loggableError(error));
    expect(logged).toContain("idempotency_record");
    expect(logged).not.toContain("Secret-Idem-Key");
  });
});
