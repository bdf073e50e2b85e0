/**
 * The daily settlement run at scale: N SUCCEEDED payments over M merchants on one day, settled by
 * the real RunSettlement code (settlement-service.ts, in a child process so its peak RSS is its
 * own), against a baseline of the cheapest possible answer, one GROUP BY over the same rows:
 *
 *   SELECT merchant_id, currency, SUM(amount), SUM(fee), COUNT(*) FROM payment
 *   WHERE succeeded_at in the period AND status IN (paid) GROUP BY merchant_id, currency
 *
 * Targets: settlement within 3x the baseline's time, peak RSS under 512 MB. Also printed: the
 * ledger check's settlement queries over the result (every order's totals recomputed from its
 * derived rows, and the settled-twice checks) and the first page of 100 derived lines of an order.
 *
 *   npx tsx bench/settlement-scale.ts [--payments 1000000] [--merchants 1000] [--keep]
 *
 * Creates its own database on MYSQL_URL (default mysql://root@127.0.0.1:3306), migrates it through
 * openDatabase, seeds with set-based INSERT ... SELECT from a numbers CTE, and drops it at the end
 * (--keep leaves it for a look).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { ChannelRegistry } from "../src/channels/registry.js";
import { loadSettlementSchedule } from "../src/config.js";
import { openDatabase } from "../src/db/database.js";
import { createUnitOfWork } from "../src/db/unit-of-work.js";
import { SecretBox } from "../src/merchants/credentials.js";
import { PAID } from "../src/payments/payment-status.js";
import { createPayoutService } from "../src/payouts/payout-service.js";
import { createSettlementService, SETTLEABLE_STATUSES } from "../src/settlement/settlement-service.js";
import { ordersNotMatchingLines, settledTwice } from "../src/settlement/settlement-store.js";
import { settlementPeriod } from "../src/settlement/settlement-period.js";

const SETTLEMENT_DATE = "2026-11-02";
/** Seeded per INSERT ... SELECT: one transaction each, so the undo log stays small. */
const SEED_CHUNK = 100_000;

/** Child mode: run the settlement against `url` and report time and peak RSS as one JSON line. */
async function child(url: string): Promise<void> {
  const db = await openDatabase({ url, dataDir: "./data", poolSize: 8 });
  try {
    const uow = createUnitOfWork(db);
    const payouts = createPayoutService({
      uow,
      channels: new ChannelRegistry([]),
      secrets: new SecretBox(randomBytes(32).toString("hex")),
      log: () => {},
      leaseMs: 30_000,
    });
    const settlements = createSettlementService({ uow, payouts, schedule: loadSettlementSchedule({}) });
    const started = performance.now();
    const result = await settlements.runSettlement(uow.session(), SETTLEMENT_DATE);
    const ms = performance.now() - started;
    // maxRSS is in kilobytes.
    const maxRssMb = process.resourceUsage().maxRSS / 1024;
    console.log(JSON.stringify({ ms, maxRssMb, ordersCreated: result.ordersCreated, linesSettled: result.linesSettled }));
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      payments: { type: "string", default: "1000000" },
      merchants: { type: "string", default: "1000" },
      keep: { type: "boolean", default: false },
      child: { type: "string" },
    },
  });
  if (values.child) return child(values.child);
  const payments = Number(values.payments);
  const merchants = Number(values.merchants);
  if (!Number.isSafeInteger(payments) || payments < 1 || !Number.isSafeInteger(merchants) || merchants < 1 || merchants > payments) {
    throw new Error("--payments and --merchants must be whole numbers, 1 <= merchants <= payments");
  }
  const serverUrl = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
  const name = `bench_settle_${randomBytes(4).toString("hex")}`;
  const admin = await createConnection({ uri: serverUrl });
  await admin.query(`create database \`${name}\` character set utf8mb4`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  try {
    const db = await openDatabase({ url: url.toString(), dataDir: "./data", poolSize: 2 });
    await db.close();
    const connection = await createConnection({ uri: url.toString() });
    const period = settlementPeriod(SETTLEMENT_DATE, loadSettlementSchedule({}));
    const daySeconds = Math.floor((period.end.getTime() - period.start.getTime()) / 1000);

    const seedStarted = performance.now();
    await connection.query("set session max_recursive_iterations = 1000000");
    for (let from = 0; from < payments; from += SEED_CHUNK) {
      const to = Math.min(payments, from + SEED_CHUNK);
      // n over [from, to): merchant n mod M, paid at second n mod (day) of the period, fee 0.6 % + 0.10.
      await connection.query(
        `insert into payment (id, payment_no, merchant_id, merchant_order_no, amount, currency, channel, status, subject,
           refunded_amount, refund_pending_amount, fee, notify_url, metadata, request_hash, created_at, updated_at, paid_at,
           succeeded_at, expires_at, query_attempts, final_channel_queries)
         with recursive seq(n) as (select ? union all select n + 1 from seq where n + 1 < ?)
         select concat('01BENCHPAY', lpad(n, 16, '0')), concat('P', lpad(n, 31, '0')),
           concat('01BENCHMER', lpad(n mod ?, 16, '0')), concat('order-', n),
           100 + (n * 37) mod 100000 as amount, 'CNY', 'alipay', 'SUCCEEDED', 'bench', 0, 0,
           ((100 + (n * 37) mod 100000) * 60 + 5000) div 10000 + 10, '', '{}', '', ?, ?,
           date_add(?, interval (n mod ?) second), date_add(?, interval (n mod ?) second), ?, 0, 0
         from seq`,
        [from, to, merchants, period.start, period.start, period.start, daySeconds, period.start, daySeconds, period.end],
      );
      process.stderr.write(`\rseeded ${to.toLocaleString("en")} payments`);
    }
    process.stderr.write("\n");
    const seedMs = performance.now() - seedStarted;
    await connection.query("analyze table payment");

    const statuses = [...PAID];
    const baseline = () =>
      connection.query(
        `select merchant_id, currency, sum(amount), sum(fee), count(*) from payment
         where succeeded_at >= ? and succeeded_at < ? and status in (${statuses.map(() => "?").join(", ")}) group by merchant_id, currency`,
        [period.start, period.end, ...statuses],
      );
    await baseline(); // warm the buffer pool the same way the settlement's own reads will find it
    const baselineStarted = performance.now();
    const [groups] = (await baseline()) as unknown as [unknown[]];
    const baselineMs = performance.now() - baselineStarted;
    await connection.end();

    const run = await new Promise<{ ms: number; maxRssMb: number; ordersCreated: number; linesSettled: number }>((resolve, reject) => {
      const proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", url.toString()], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      proc.stdout.on("data", (chunk) => {
        out += chunk;
      });
      proc.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!)) : reject(new Error(`child exited ${code}`))));
    });

    // The reads the new model adds: the ledger check's settlement queries (set-based over every
    // order and payment) and a page of an order's derived lines.
    const readDb = await openDatabase({ url: url.toString(), dataDir: "./data", poolSize: 2 });
    let checkMs: number;
    let pageMs: number;
    let checkFound: number;
    try {
      const uow = createUnitOfWork(readDb);
      const session = uow.session();
      const checkStarted = performance.now();
      checkFound = (await ordersNotMatchingLines(session, SETTLEABLE_STATUSES)).length + (await settledTwice(session, SETTLEABLE_STATUSES)).length;
      checkMs = performance.now() - checkStarted;
      // (The whole check-ledger is not timed: the seeded payments have no journal entries.)
      if (checkFound > 0) throw new Error(`the settlement checks found ${checkFound} violations`);
      const settlements = createSettlementService({
        uow,
        payouts: { lockPayoutAccount: async () => undefined, createPayout: async () => undefined, payoutsOfSettlements: async () => new Map() },
        schedule: loadSettlementSchedule({}),
      });
      const [order] = await settlements.ordersOfDate(session, SETTLEMENT_DATE);
      const pageStarted = performance.now();
      await settlements.getSettlement(session, order!.merchantId, { settlementId: order!.id, linesPageSize: 100, linesPageToken: "" });
      pageMs = performance.now() - pageStarted;
    } finally {
      await readDb.close();
    }

    const lines = [
      `payments ${payments.toLocaleString("en")} over ${merchants.toLocaleString("en")} merchants, one day (${SETTLEMENT_DATE}); seeded in ${(seedMs / 1000).toFixed(1)} s`,
      `baseline GROUP BY:  ${(baselineMs / 1000).toFixed(2)} s (${groups.length} groups)`,
      `RunSettlement:      ${(run.ms / 1000).toFixed(2)} s (${run.ordersCreated} orders, ${run.linesSettled.toLocaleString("en")} lines)`,
      `ratio:              ${(run.ms / baselineMs).toFixed(2)}x (target <= 3x)`,
      `check (settlement): ${(checkMs / 1000).toFixed(2)} s (every order's totals recomputed, settled twice; ${checkFound} found)`,
      `100 derived lines:  ${pageMs.toFixed(0)} ms (GetSettlement's first page of an order)`,
      `peak RSS (child):   ${run.maxRssMb.toFixed(0)} MB (target < 512 MB)`,
    ];
    console.log(lines.join("\n"));
    if (run.ordersCreated !== merchants || run.linesSettled !== payments) throw new Error("the run did not settle every payment once");
  } finally {
    if (values.keep) console.log(`kept database ${name}`);
    else await admin.query(`drop database if exists \`${name}\``);
    await admin.end();
  }
}

await main();
