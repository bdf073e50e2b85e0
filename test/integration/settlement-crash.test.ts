/**
 * Crash safety of the daily run, with `npm run settle` (scripts/settle.ts) as an operator runs it:
 * a real process over ~200 merchants, SIGKILLed after its first orders are committed, then run
 * again. Every order must exist exactly once, hold exactly what a single run would, and the
 * ledger must check. To kill at a known point the test holds some merchants' orders of the date
 * inserted in an open transaction: the run's insert of those orders waits on their unique key,
 * with the earlier orders committed. (The order's reads of the period's payments are plain reads,
 * which wait for no lock.)
 * Payments are made paid through the payment domain with an in-process channel stand-in (the wire
 * formats are covered by the channel tests), so the ledger has every entry a real payment has.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PaymentChannel } from "../../src/channels/channel.js";
import { ChannelRegistry } from "../../src/channels/registry.js";
import { type Database, openDatabase } from "../../src/db/database.js";
import { createUnitOfWork, type UnitOfWork } from "../../src/db/unit-of-work.js";
import { setFeeRule } from "../../src/fees/fee-rules.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { SecretBox } from "../../src/merchants/credentials.js";
import { createMerchantService } from "../../src/merchants/merchant-service.js";
import { applyChannelStatus } from "../../src/payments/channel-outcome.js";
import { createPaymentService } from "../../src/payments/payment-service.js";
import { RUN_CONCURRENCY } from "../../src/settlement/settlement-service.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";
import { eventually } from "../support/waiting.js";

const MERCHANTS = 200;
const SETTLEMENT_DATE = "2026-11-02";
/** Noon in China on 2026-11-01: inside the period 2026-11-02 settles. */
const PAID_AT = new Date("2026-11-01T04:00:00.000Z");

/** A card channel that accepts every payment; success is applied by the test. */
const standIn = {
  name: "card",
  async createPayment(request: { paymentNo: string }) {
    return { channelTradeNo: `pi_${request.paymentNo}`, action: { kind: "client_secret", value: "secret" } };
  },
} as unknown as PaymentChannel;

let testDb: TestDatabase;
let db: Database;
let uow: UnitOfWork;
const merchantIds: string[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url, dataDir: "./data", poolSize: 8 });
  uow = createUnitOfWork(db);
  const merchants = createMerchantService(new SecretBox("crash-test-key-0123456789abcdef"));
  const payments = createPaymentService({ uow, channels: new ChannelRegistry([standIn]), publicBaseUrl: "http://127.0.0.1:1" });
  let seq = 0;
  const seedMerchant = async (n: number) => {
    const session = uow.session();
    const merchant = (await merchants.createMerchant(session, { name: `Crash Shop ${n}`, notifyUrl: "" })).merchant;
    await setFeeRule(session, { merchantId: merchant.id, channel: "card", currency: "CNY", rateBps: 60, fixedFee: 10n, minFee: 0n, refundFeePolicy: "RETAIN" });
    for (let i = 0; i <= n % 3; i++) {
      const view = await payments.createPayment(session, merchant, {
        merchantOrderNo: `crash-${++seq}`,
        currency: "CNY",
        items: [],
        amount: BigInt(1_000 + n * 7 + i),
        channel: "card",
        subject: "crash test",
        expireSeconds: 0,
        notifyUrl: "",
        metadata: {},
        paymentMethod: "pm_card_visa",
      });
      await uow.transaction(session, (tx) =>
        applyChannelStatus(tx, view.payment, { state: "succeeded", channelTradeNo: `pi_${view.payment.paymentNo}` }, "crash test"),
      );
    }
    return merchant.id;
  };
  for (let n = 0; n < MERCHANTS; n += 10) {
    merchantIds.push(...(await Promise.all(Array.from({ length: Math.min(10, MERCHANTS - n) }, (_, i) => seedMerchant(n + i)))));
  }
  merchantIds.sort();
  await sql("update payment set paid_at = ?, succeeded_at = ?", [PAID_AT, PAID_AT]);
}, 120_000);

afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

async function sql(statement: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  return db.em().getConnection().execute(statement, params);
}

async function count(statement: string, params: unknown[] = []): Promise<number> {
  return Number((await sql(statement, params))[0]?.n ?? 0);
}

function settle(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "scripts/settle.ts", ...args], {
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: testDb.url },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

async function settleToEnd(args: string[], env: Record<string, string> = { DATABASE_URL: "" }): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/settle.ts", ...args], {
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: env.DATABASE_URL || testDb.url },
      timeout: 60_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

describe("npm run settle", () => {
  it("exits 2 on bad arguments and on a date whose period has not ended, building nothing", async () => {
    for (const args of [[], ["--date"], ["--date", "2026-02-30"], ["--date", "2026-11-02", "--shop", "x"], ["--date", "2999-01-01"]]) {
      const { code, output } = await settleToEnd(args);
      expect(code, output).toBe(2);
    }
    expect(await count("select count(*) as n from settlement")).toBe(0);
  });

  it("killed mid-run and run again, builds every order exactly once with a single run's totals, and the ledger checks", async () => {
    // Hold the orders of the 101st merchant and the next ones, as many as the run builds at once
    // (inserted, not committed): the run commits the first 100 orders, then every worker waits.
    // Not always all 100: a worker's duplicate-key check on a held order waits with a next-key
    // lock request, which covers the gap below that order, and the insert of a neighbour still in
    // flight (one of the RUN_CONCURRENCY - 1 merchants just below) queues behind it. CI once
    // stopped at 98 this way.
    const COMMITTED_FLOOR = 100 - (RUN_CONCURRENCY - 1);
    const blocker = await createConnection({ uri: testDb.url });
    let child: ChildProcess | undefined;
    try {
      await blocker.query("begin");
      const held = merchantIds.slice(100, 100 + RUN_CONCURRENCY);
      for (const [i, merchantId] of held.entries()) {
        await blocker.query(
          `insert into settlement (id, settlement_no, merchant_id, currency, kind, settlement_date, period_start, period_end, payments_amount,
             refunds_amount, fee_amount, carried_amount, gross_amount, net_amount, line_count, status, created_at)
           values (?, ?, ?, 'CNY', 'SCHEDULED', ?, now(3), now(3), 0, 0, 0, 0, 0, 0, 0, 'SETTLED', now(3))`,
          [`BLOCKER${String(i).padStart(19, "0")}`, `SBLOCKER${i}`, merchantId, SETTLEMENT_DATE],
        );
      }
      child = settle(["--date", SETTLEMENT_DATE]);
      // Uncommitted rows are not counted: the committed orders only. Kill once the count has
      // reached the floor and stopped moving, so every worker is waiting.
      let last = -1;
      let changedAt = Date.now();
      await eventually(
        async () => {
          const n = await count("select count(*) as n from settlement");
          if (n !== last) [last, changedAt] = [n, Date.now()];
          return n;
        },
        (n) => n >= COMMITTED_FLOOR && Date.now() - changedAt >= 1_500,
        60_000,
      );
      child.kill("SIGKILL");
      await new Promise((resolve) => child!.once("exit", resolve));
    } finally {
      child?.kill("SIGKILL");
      await blocker.query("rollback");
      await blocker.end();
    }
    const committed = await count("select count(*) as n from settlement");
    expect(committed).toBeGreaterThanOrEqual(COMMITTED_FLOOR);
    expect(committed).toBeLessThanOrEqual(100);
    // The killed order's transaction was rolled back with its connection: no line without its order.
    expect(await count("select count(*) as n from settlement_line l where not exists (select 1 from settlement s where s.id = l.settlement_id)")).toBe(0);

    const rerun = await settleToEnd(["--date", SETTLEMENT_DATE]);
    expect(rerun.code, rerun.output).toBe(0);
    expect(rerun.output).toContain(`${MERCHANTS - committed} orders built, ${committed} existing`);
    expect(rerun.output).toMatch(/TOTAL\s+CNY/);
    // Not a terminal: progress as plain lines, not a redrawn bar.
    expect(rerun.output).toContain(`settled ${MERCHANTS}/${MERCHANTS} merchant currencies`);
    expect(rerun.output).not.toContain("\r[");

    expect(await count("select count(*) as n from settlement")).toBe(MERCHANTS);
    expect(await count("select count(*) as n from (select merchant_id from settlement group by merchant_id having count(*) = 1) once")).toBe(MERCHANTS);
    // Every paid payment on exactly one order's lines: all derived (nothing stored), one order per
    // merchant, and the orders' line counts add up to the payments.
    expect(await count("select count(*) as n from settlement_line")).toBe(0);
    expect(await count("select sum(line_count) as n from settlement")).toBe(await count("select count(*) as n from payment"));
    // What one uninterrupted run would hold: per merchant, its payments' amounts less fees.
    const expected = await sql("select merchant_id, sum(amount) as gross, sum(fee) as fee, sum(amount - fee) as net from payment group by merchant_id order by merchant_id");
    const built = await sql(
      "select merchant_id, gross_amount as gross, fee_amount as fee, net_amount as net from settlement order by merchant_id",
    );
    expect(built.map((row) => [row.merchant_id, String(row.gross), String(row.fee), String(row.net)])).toEqual(
      expected.map((row) => [row.merchant_id, String(row.gross), String(row.fee), String(row.net)]),
    );
    expect(await count("select count(*) as n from journal_entry where entry_type = 'settlement'")).toBe(MERCHANTS);

    const ledger = await checkLedger(uow.session());
    expect(ledger.violations).toEqual([]);

    const again = await settleToEnd(["--date", SETTLEMENT_DATE, "--merchant", merchantIds[0]!]);
    expect(again.code).toBe(0);
    expect(again.output).toMatch(/0 orders built, 1 existing/);
  }, 150_000);
});
