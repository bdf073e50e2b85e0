/**
 * Runs the settlement of one date against the configured database (DATABASE_URL, or the embedded
 * one under DATA_DIR), the same service function as RunSettlement, and prints what the date's
 * orders hold. Safe to run again and after a crash: built orders are kept, missing ones built.
 * Needs neither ADMIN_TOKEN, DATA_ENCRYPTION_KEY nor any channel (payouts are created for merchants
 * with a settlement account and sent later by the service's sweeper). Exit 0, 2 on bad arguments
 * or settings (a malformed date, a date whose period has not ended), 3 when the database cannot be
 * reached.
 *
 *   DATABASE_URL=mysql://user:pass@host:3306/payments npm run settle -- --date 2026-12-02 [--merchant ID]
 */
import { parseArgs } from "node:util";
import { ConfigError, loadDatabaseConfig, loadSettlementSchedule } from "../src/config.js";
import { openDatabase } from "../src/db/database.js";
import { createUnitOfWork } from "../src/db/unit-of-work.js";
import { DomainError, PreconditionError, ValidationError } from "../src/errors.js";
import { formatMinor } from "../src/money/currency.js";
import { createOfflinePayoutService } from "../src/payouts/payout-service.js";
import { createSettlementService } from "../src/settlement/settlement-service.js";

const USAGE = "usage: npm run settle -- --date YYYY-MM-DD [--merchant MERCHANT_ID]";
/** Held payments listed by id; more are only counted. */
const MAX_HOLDS_LISTED = 100;
const BAR_WIDTH = 30;

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

let date: string;
let merchantId: string | undefined;
try {
  const { values } = parseArgs({ options: { date: { type: "string" }, merchant: { type: "string" } }, strict: true, allowPositionals: false });
  if (!values.date) fail(`--date is required\n${USAGE}`);
  date = values.date;
  merchantId = values.merchant;
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`);
}

let database: ReturnType<typeof loadDatabaseConfig>;
let schedule: ReturnType<typeof loadSettlementSchedule>;
try {
  database = loadDatabaseConfig();
  schedule = loadSettlementSchedule();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  fail(error.message);
}

/** Progress on a terminal as a bar redrawn in place; elsewhere (a log, a pipe) a plain line every tenth. */
function progress(done: number, total: number): void {
  if (process.stderr.isTTY) {
    const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
    process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${done}/${total} merchant currencies`);
    if (done === total) process.stderr.write("\n");
    return;
  }
  const step = Math.max(1, Math.ceil(total / 10));
  if (done === total || done % step === 0) console.error(`settled ${done}/${total} merchant currencies`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column >= 2 && column <= 5 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join("  ")).join("\n");
}

let db: Awaited<ReturnType<typeof openDatabase>>;
try {
  db = await openDatabase({ url: database.databaseUrl, dataDir: database.dataDir, poolSize: 8 });
} catch (error) {
  // One line, as for the other failures: the database's own message names what is wrong (host, login).
  console.error(`cannot open the database: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(3);
}
try {
  const uow = createUnitOfWork(db);
  const payouts = createOfflinePayoutService(uow);
  const settlements = createSettlementService({ uow, payouts, schedule });
  const session = uow.session();
  let result: Awaited<ReturnType<typeof settlements.runSettlement>>;
  try {
    result = await settlements.runSettlement(session, date, { merchantId, onProgress: progress });
  } catch (error) {
    if (error instanceof ValidationError || error instanceof PreconditionError) fail(`${error.reason}: ${error.message}`);
    if (error instanceof DomainError) fail(error.message);
    throw error;
  }

  console.log(
    `settlement ${result.settlementDate}: period ${result.periodStart.toISOString()} .. ${result.periodEnd.toISOString()} (${schedule.timeZone})`,
  );
  console.log(
    `${result.ordersCreated} orders built, ${result.ordersExisting} existing, ${result.linesSettled} payment and refund lines settled, ${result.paymentsHeld} payments held`,
  );
  const orders = await settlements.ordersOfDate(session, date, merchantId);
  const rows = [["merchant", "currency", "lines", "gross", "fee", "net", "status"]];
  const totals = new Map<string, { orders: number; lines: bigint; gross: bigint; fee: bigint; net: bigint }>();
  for (const order of orders) {
    rows.push([
      order.merchantId,
      order.currency,
      String(order.lineCount),
      formatMinor(order.grossAmount, order.currency),
      formatMinor(order.feeAmount, order.currency),
      formatMinor(order.netAmount, order.currency),
      order.status,
    ]);
    const sum = totals.get(order.currency) ?? { orders: 0, lines: 0n, gross: 0n, fee: 0n, net: 0n };
    sum.orders++;
    sum.lines += order.lineCount;
    sum.gross += order.grossAmount;
    sum.fee += order.feeAmount;
    sum.net += order.netAmount;
    totals.set(order.currency, sum);
  }
  for (const [currency, sum] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
    rows.push([
      "TOTAL",
      currency,
      String(sum.lines),
      formatMinor(sum.gross, currency),
      formatMinor(sum.fee, currency),
      formatMinor(sum.net, currency),
      `${sum.orders} orders`,
    ]);
  }
  if (orders.length > 0) console.log(table(rows));
  else console.log("no orders for this date");

  if (result.paymentsHeld > 0) {
    const holds = await settlements.holdsOfDate(session, date, merchantId, MAX_HOLDS_LISTED);
    console.log(`held (an OPEN discrepancy; settled by a later run once resolved):`);
    for (const hold of holds) {
      const released = hold.releasedIntoId === null ? "" : ` (released into order ${hold.releasedIntoId})`;
      console.log(`  payment ${hold.paymentId} merchant ${hold.merchantId} ${hold.currency}${released}`);
    }
    if (result.paymentsHeld > holds.length) console.log(`  ... and ${result.paymentsHeld - holds.length} more`);
  }
} finally {
  await db.close();
}
