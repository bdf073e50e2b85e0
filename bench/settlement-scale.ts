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
 *   npx tsx bench/settlement-scale.ts [--payments 1000000] [--merchants 1000] [--days 1] [--keep]
 *
 * --days N (history): the payments are spread over the N days up to the settled one (payment n on
 * day (n div M) mod N), and every merchant has a scheduled order for each of the N - 1 earlier
 * dates, inserted with its totals by one INSERT ... SELECT (as the run would have built them): the
 * ledger check then recomputes N x M orders over the whole history. RunSettlement still settles the
 * last date alone.
 *
 * Creates its own database on MYSQL_URL (default mysql://root@127.0.0.1:3306), migrates it through
 * openDatabase, seeds with set-based INSERT ... SELECT from a numbers CTE, and drops it at the end
 * (--keep leaves it for a look).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Connection, createConnection } from "mysql2/promise";
import { loadSettlementSchedule } from "../src/config.js";
import { openDatabase } from "../src/db/database.js";
import { createUnitOfWork } from "../src/db/unit-of-work.js";
import { PAID } from "../src/payments/payment-status.js";
import { createOfflinePayoutService } from "../src/payouts/payout-service.js";
import { createSettlementService, SETTLEABLE_STATUSES } from "../src/settlement/settlement-service.js";
import { checkSettlementOrders } from "../src/settlement/settlement-check.js";
import { addDays, type SettlementPeriod, settlementPeriod } from "../src/settlement/settlement-period.js";

const SETTLEMENT_DATE = "2026-11-02";
/** Seeded per INSERT ... SELECT: one transaction each, so the undo log stays small. */
const SEED_CHUNK = 100_000;

/** Child mode: run the settlement against `url` and report time and peak RSS as one JSON line. */
async function child(url: string): Promise<void> {
  const db = await openDatabase({ url, dataDir: "./data", poolSize: 8 });
  try {
    const uow = createUnitOfWork(db);
    const payouts = createOfflinePayoutService(uow);
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

/**
 * Every merchant's scheduled order of each earlier date, with the totals the run would have given
 * it (its period's payments; an order of a day without any is all zeros).
 */
async function seedHistoryOrders(connection: Connection, merchants: number, periods: SettlementPeriod[], daySeconds: number): Promise<void> {
  await connection.query("create temporary table bench_day (n int primary key, settlement_date varchar(10), period_start datetime(3), period_end datetime(3))");
  await connection.query(
    `insert into bench_day values ${periods.map(() => "(?, ?, ?, ?)").join(", ")}`,
    periods.flatMap((each, index) => [index, each.settlementDate, each.start, each.end]),
  );
  // Each order's totals first, keyed (a join to a grouped derived table was 45 s for 18,250 orders).
  await connection.query(
    `create temporary table bench_order_totals (day int, merchant_id varchar(26), gross bigint, fee bigint, n bigint, primary key (day, merchant_id))
     select timestampdiff(second, ?, succeeded_at) div ? as day, merchant_id, sum(amount) as gross, sum(fee) as fee, count(*) as n
     from payment group by day, merchant_id`,
    [periods[0]!.start, daySeconds],
  );
  await connection.query(
    `insert into settlement (id, settlement_no, merchant_id, currency, kind, settlement_date, period_start, period_end,
       payments_amount, refunds_amount, fee_amount, carried_amount, gross_amount, net_amount, line_count, status,
       carried_into_id, idempotency_key, request_hash, created_at)
     with recursive merchant(m) as (select 0 union all select m + 1 from merchant where m + 1 < ?)
     select concat('01BENCHSET', lpad(d.n * ? + merchant.m, 16, '0')), concat('S', lpad(d.n * ? + merchant.m, 31, '0')),
       concat('01BENCHMER', lpad(merchant.m, 16, '0')), 'CNY', 'SCHEDULED', d.settlement_date, d.period_start, d.period_end,
       coalesce(t.gross, 0), 0, coalesce(t.fee, 0), 0, coalesce(t.gross, 0), coalesce(t.gross - t.fee, 0), coalesce(t.n, 0), 'SETTLED',
       null, null, null, now(3)
     from bench_day d cross join merchant
     left join bench_order_totals t on t.day = d.n and t.merchant_id = concat('01BENCHMER', lpad(merchant.m, 16, '0'))`,
    [merchants, merchants, merchants],
  );
  await connection.query("drop temporary table bench_order_totals");
  await connection.query("drop temporary table bench_day");
  process.stderr.write(`seeded ${(periods.length * merchants).toLocaleString("en")} orders of earlier dates\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      payments: { type: "string", default: "1000000" },
      merchants: { type: "string", default: "1000" },
      days: { type: "string", default: "1" },
      keep: { type: "boolean", default: false },
      child: { type: "string" },
    },
  });
  if (values.child) return child(values.child);
  const payments = Number(values.payments);
  const merchants = Number(values.merchants);
  const days = Number(values.days);
  if (!Number.isSafeInteger(days) || days < 1 || days > 3660) throw new Error("--days must be a whole number from 1 to 3660");
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
    // The history's dates, oldest first; each period one day long and right after the one before.
    const dates = Array.from({ length: days }, (_, index) => addDays(SETTLEMENT_DATE, index - days + 1));
    const periods = dates.map((date) => settlementPeriod(date, loadSettlementSchedule({})));
    for (const [index, each] of periods.entries()) {
      const previous = periods[index - 1];
      if (each.end.getTime() - each.start.getTime() !== daySeconds * 1000 || (previous && previous.end.getTime() !== each.start.getTime())) {
        throw new Error(`the period of ${each.settlementDate} is not the day after the one before`);
      }
    }
    const historyStart = periods[0]!.start;

    const seedStarted = performance.now();
    await connection.query("set session max_recursive_iterations = 1000000");
    for (let from = 0; from < payments; from += SEED_CHUNK) {
      const to = Math.min(payments, from + SEED_CHUNK);
      // n over [from, to): merchant n mod M, paid at second n mod (day) of day (n div M) mod N, fee 0.6 % + 0.10.
      await connection.query(
        `insert into payment (id, payment_no, merchant_id, merchant_order_no, amount, currency, channel, status, subject,
           refunded_amount, refund_pending_amount, fee, notify_url, metadata, request_hash, created_at, updated_at, paid_at,
           succeeded_at, expires_at, query_attempts, final_channel_queries)
         with recursive seq(n) as (select ? union all select n + 1 from seq where n + 1 < ?)
         select concat('01BENCHPAY', lpad(n, 16, '0')), concat('P', lpad(n, 31, '0')),
           concat('01BENCHMER', lpad(n mod ?, 16, '0')), concat('order-', n),
           100 + (n * 37) mod 100000 as amount, 'CNY', 'alipay', 'SUCCEEDED', 'bench', 0, 0,
           ((100 + (n * 37) mod 100000) * 60 + 5000) div 10000 + 10, '', '{}', '', ?, ?,
           date_add(?, interval ((n div ?) mod ?) * ? + n mod ? second), date_add(?, interval ((n div ?) mod ?) * ? + n mod ? second), ?, 0, 0
         from seq`,
        [
          from,
          to,
          merchants,
          period.start,
          period.start,
          historyStart,
          merchants,
          days,
          daySeconds,
          daySeconds,
          historyStart,
          merchants,
          days,
          daySeconds,
          daySeconds,
          period.end,
        ],
      );
      process.stderr.write(`\rseeded ${to.toLocaleString("en")} payments`);
    }
    process.stderr.write("\n");
    if (days > 1) await seedHistoryOrders(connection, merchants, periods.slice(0, -1), daySeconds);
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
    const [groups] = (await baseline()) as unknown as [Array<Record<string, unknown>>];
    const paymentsOfDay = groups.reduce((total, group) => total + Number(group["count(*)"]), 0);
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
      checkFound = (await checkSettlementOrders(session, SETTLEABLE_STATUSES)).length;
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
      `payments ${payments.toLocaleString("en")} over ${merchants.toLocaleString("en")} merchants, ${days === 1 ? "one day" : `${days} days, ${((days - 1) * merchants).toLocaleString("en")} orders of earlier dates`} (up to ${SETTLEMENT_DATE}); seeded in ${(seedMs / 1000).toFixed(1)} s`,
      `baseline GROUP BY:  ${(baselineMs / 1000).toFixed(2)} s (${groups.length} groups)`,
      `RunSettlement:      ${(run.ms / 1000).toFixed(2)} s (${run.ordersCreated} orders, ${run.linesSettled.toLocaleString("en")} lines)`,
      `ratio:              ${(run.ms / baselineMs).toFixed(2)}x (target <= 3x)`,
      `check (settlement): ${(checkMs / 1000).toFixed(2)} s (every order's totals recomputed, settled twice; ${checkFound} found)`,
      `100 derived lines:  ${pageMs.toFixed(0)} ms (GetSettlement's first page of an order)`,
      `peak RSS (child):   ${run.maxRssMb.toFixed(0)} MB (target < 512 MB)`,
    ];
    console.log(lines.join("\n"));
    if (run.ordersCreated !== groups.length || run.linesSettled !== paymentsOfDay) throw new Error("the run did not settle every payment once");
  } finally {
    if (values.keep) console.log(`kept database ${name}`);
    else await admin.query(`drop database if exists \`${name}\``);
    await admin.end();
  }
}

await main();
