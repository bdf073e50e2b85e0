/**
 * Merchant keys are compared byte for byte on both drivers: order numbers, idempotency keys, refund
 * numbers and callback notification ids that differ only in case (or a trailing space) are
 * different keys. MySQL's default collation (utf8mb4_general_ci) made them one until the
 * binary-keys migration; SQLite compares BINARY. Also: that migration on a database holding data.
 */
import { createHash } from "node:crypto";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Migrator } from "@mikro-orm/migrations";
import { MySqlDriver, MikroORM as MySqlORM } from "@mikro-orm/mysql";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallbackInbox } from "../../src/callbacks/callback-entities.js";
import { ENTITIES } from "../../src/db/entities.js";
import { MIGRATIONS } from "../../src/db/migrations/index.js";
import { newId } from "../../src/ids.js";
import { IdempotencyRecord } from "../../src/payments/payment-entity.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { createTestDatabase } from "../support/test-database.js";
import { eventually, grpcError } from "../support/waiting.js";

for (const driver of ["mysql", "sqlite"] as const) {
  describe(`keys compared byte for byte (${driver})`, () => {
    let t: TestApp;
    let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
    beforeAll(async () => {
      t = await startTestApp({ database: driver });
      merchant = await t.createMerchant();
    });
    afterAll(() => t?.stop());

    const create = (merchantOrderNo: string, amount = 1000n, headers: Record<string, string> = {}) =>
      t.grpc.payments.createPayment(
        { merchantOrderNo, currency: "CNY", amount, channel: Channel.ALIPAY, subject: "Tea" },
        { ...merchant.headers, ...headers },
      );
    const byOrderNo = (merchantOrderNo: string) =>
      t.grpc.payments.getPayment({ lookup: { key: { case: "merchantOrderNo", value: merchantOrderNo } } }, merchant.headers);

    it("ORDER-X and order-x are two payments, each found only by its own spelling", async () => {
      const upper = (await create("ORDER-X", 1000n)).payment!;
      const lower = (await create("order-x", 2000n)).payment!;
      expect(lower.id).not.toBe(upper.id);
      expect(lower.amount).toBe(2000n);
      expect((await byOrderNo("order-x")).payment?.id).toBe(lower.id);
      expect((await byOrderNo("ORDER-X")).payment?.id).toBe(upper.id);
      expect((await grpcError(byOrderNo("Order-X"))).code).toBe(GrpcStatus.NOT_FOUND);
    });

    it("idempotency keys that differ in case are different keys", async () => {
      const first = (await create("idem-1", 1000n, { "idempotency-key": "Key-1" })).payment!;
      const second = (await create("idem-2", 2000n, { "idempotency-key": "key-1" })).payment!;
      expect(second.id).not.toBe(first.id);
      // The same key and body still answer with the first payment.
      expect((await create("idem-1", 1000n, { "idempotency-key": "Key-1" })).payment?.id).toBe(first.id);
    });

    it("idempotency keys that differ by a trailing space are different keys (headers trim it, so at the store)", async () => {
      const em = t.app.db.em();
      const record = { merchantId: merchant.id, operation: "test", requestHash: "h", resourceId: newId(), createdAt: new Date() };
      await em.insert(IdempotencyRecord, { ...record, id: newId(), idempotencyKey: "k1" });
      await em.insert(IdempotencyRecord, { ...record, id: newId(), idempotencyKey: "k1 " });
      const found = await t.app.db.em().find(IdempotencyRecord, { merchantId: merchant.id, operation: "test", idempotencyKey: "k1" });
      expect(found.map((row) => row.idempotencyKey)).toEqual(["k1"]);
      await expect(t.app.db.em().insert(IdempotencyRecord, { ...record, id: newId(), idempotencyKey: "k1" })).rejects.toThrow();
    });

    it("refund numbers R-1 and r-1 are two refunds", async () => {
      const payment = (await create("refund-case", 1000n)).payment!;
      t.simulator.pay("alipay", payment.paymentNo);
      await eventually(
        () => t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: payment.id } } }, merchant.headers),
        (r) => r.payment?.status === PaymentStatus.SUCCEEDED,
      );
      const upper = (await t.grpc.payments.refundPayment({ paymentId: payment.id, merchantRefundNo: "R-1", amount: 100n, reason: "a" }, merchant.headers)).refund!;
      const lower = (await t.grpc.payments.refundPayment({ paymentId: payment.id, merchantRefundNo: "r-1", amount: 200n, reason: "b" }, merchant.headers)).refund!;
      expect(lower.id).not.toBe(upper.id);
      expect(lower.amount).toBe(200n);
    });

    it("callback notification ids that differ in case or a trailing space are different notifications", async () => {
      const em = t.app.db.em();
      for (const notificationId of ["evt_A", "evt_a", "evt_a "]) {
        await em.insert(CallbackInbox, { id: newId(), channel: "card", notificationId, createdAt: new Date() });
      }
      // find, not count: the ORM's count() fails on the embedded driver's bigint integers.
      expect(await t.app.db.em().find(CallbackInbox, { channel: "card", notificationId: "evt_a" })).toHaveLength(1);
      await expect(
        t.app.db.em().insert(CallbackInbox, { id: newId(), channel: "card", notificationId: "evt_a", createdAt: new Date() }),
      ).rejects.toThrow();
    });

    if (driver === "sqlite") {
      it("declares no case-insensitive collation in the embedded schema", async () => {
        const tables = (await t.app.db.em().execute("select sql from sqlite_master where sql is not null")) as Array<{ sql: string }>;
        expect(tables.length).toBeGreaterThan(0);
        expect(tables.filter((table) => /nocase|rtrim/i.test(table.sql))).toEqual([]);
      });
    }
  });
}

describe("the binary-keys migration on a database at the previous migration", () => {
  it("converts the key columns, keeps the data, and bounds the callback rows already stored", async () => {
    const database = await createTestDatabase();
    const orm = await MySqlORM.init({
      driver: MySqlDriver,
      clientUrl: database.url,
      entities: ENTITIES,
      discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
      extensions: [Migrator],
      migrations: { migrationsList: MIGRATIONS, transactional: false, allOrNothing: false, snapshot: false, silent: true },
    });
    const sql = await createConnection({ uri: database.url });
    try {
      const target = "Migration20261202040000";
      const previous = MIGRATIONS[MIGRATIONS.findIndex((m) => m.name === target) - 1]!.name;
      await orm.getMigrator().up({ to: previous });

      const forged = Buffer.from(`{"pad":"${"茶".repeat(1000)}"}`);
      const cardEvent = Buffer.from('{"id":"evt_1","data":{"object":{"client_secret": "pi_1_secret_abc","amount":1999}}}');
      const insertLog = (id: string, channel: string, verdict: string, body: Buffer) =>
        sql.execute(
          "insert into callback_log (id, channel, received_at, headers, raw_body, verdict, answer_status) values (?, ?, now(3), '{}', ?, ?, 400)",
          [id, channel, body, verdict],
        );
      await insertLog("log-forged", "wechatpay", "rejected", forged);
      await insertLog("log-card", "card", "applied", cardEvent);
      await sql.execute(
        "insert into idempotency_record (id, merchant_id, operation, idempotency_key, request_hash, resource_id, created_at) values ('i1', 'm', 'op', 'k1', 'h', 'r', now(3))",
      );

      await orm.getMigrator().up();
      const [columns] = await sql.query(
        `select table_name as t, column_name as c, collation_name as collation from information_schema.columns
          -- the columns that migration converted (settlement.idempotency_key is created binary later)
          where table_schema = database() and column_name in ('merchant_order_no', 'idempotency_key', 'merchant_refund_no', 'notification_id')
            and table_name <> 'settlement'
          order by table_name, column_name`,
      );
      expect((columns as Array<{ collation: string }>).map((column) => column.collation)).toEqual(
        Array(5).fill(expect.stringMatching(/^utf8mb4_(nopad_bin|0900_bin)$/)),
      );

      const [logs] = await sql.query("select id, raw_body, body_sha256, body_bytes, body_form from callback_log order by id");
      const [card, rejected] = logs as Array<{ raw_body: Buffer; body_sha256: string; body_bytes: number; body_form: string }>;
      expect(rejected!.body_form).toBe("excerpt");
      expect(rejected!.raw_body.length).toBe(512);
      expect(rejected!.body_bytes).toBe(forged.length);
      expect(rejected!.body_sha256).toBe(createHash("sha256").update(forged).digest("hex"));
      expect(card!.body_form).toBe("redacted");
      expect(card!.raw_body.toString()).toBe('{"id":"evt_1","data":{"object":{"client_secret":"[redacted]","amount":1999}}}');

      const addKey = (id: string, key: string) =>
        sql.execute(
          "insert into idempotency_record (id, merchant_id, operation, idempotency_key, request_hash, resource_id, created_at) values (?, 'm', 'op', ?, 'h', 'r', now(3))",
          [id, key],
        );
      await addKey("i2", "K1");
      await addKey("i3", "k1 ");
      await expect(addKey("i4", "k1")).rejects.toThrow(/Duplicate entry/);
    } finally {
      await sql.end();
      await orm.close(true);
      await database.drop();
    }
  });
});
