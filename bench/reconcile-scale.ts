/**
 * Reconciliation at scale: per bill format, N SUCCEEDED payments of one channel on one bill day and
 * a bill of N lines for them (generated with the channels' own streamed writers, so the file is
 * never held), reconciled by the real importStatement (reconciliation-service.ts, in a child process
 * so its peak RSS is its own), against a baseline of the least any reconciliation must do: read the
 * file with the same reader and fetch the matching rows by payment number in batches of 1000 with
 * raw mysql2 queries.
 *
 * Targets: importStatement within 2x the baseline's time, peak RSS under 512 MB.
 *
 *   npx tsx bench/reconcile-scale.ts [--lines 1000000] [--channels alipay,wechatpay,card] [--keep] [--profile DIR]
 *
 * Creates its own database on MYSQL_URL (default mysql://root@127.0.0.1:3306), migrates it through
 * openDatabase, seeds with set-based INSERT ... SELECT from a numbers CTE, and drops it at the end
 * (--keep leaves it for a look). Bill files go to a temporary directory, removed at the end.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { writeAlipayBillFile } from "../src/channels/alipay/alipay-bill-writer.js";
import { readAlipayBill } from "../src/channels/alipay/alipay-bill.js";
import { createAlipayChannel } from "../src/channels/alipay/alipay-channel.js";
import { readCardBill, writeCardBillFile } from "../src/channels/card/card-bill.js";
import { createCardChannel } from "../src/channels/card/card-channel.js";
import { CHANNEL_NAMES, type BillRecord, type ChannelName, type PaymentChannel } from "../src/channels/channel.js";
import { loadOrCreateDevChannelKeys } from "../src/channels/dev-keys.js";
import { ChannelRegistry } from "../src/channels/registry.js";
import { simulatedChannelSettings } from "../src/channels/simulated-settings.js";
import { readWechatBill } from "../src/channels/wechatpay/wechatpay-bill.js";
import { writeWechatBillFile } from "../src/channels/wechatpay/wechatpay-bill-writer.js";
import { createWechatPayChannel } from "../src/channels/wechatpay/wechatpay-channel.js";
import { openDatabase } from "../src/db/database.js";
import { createUnitOfWork } from "../src/db/unit-of-work.js";
import { type FeeTerms, paymentFee } from "../src/fees/fee-calculator.js";
import { billDayWindow } from "../src/reconciliation/bill-days.js";
import { createReconciliationService } from "../src/reconciliation/reconciliation-service.js";

const BILL_DATE = "2026-11-15";
/** Seeded per INSERT ... SELECT: one transaction each, so the undo log stays small. */
const SEED_CHUNK = 100_000;
const BATCH = 1000;
const FEES: Record<ChannelName, FeeTerms> = {
  alipay: { rateBps: 60, fixedFee: 0n, minFee: 0n },
  wechatpay: { rateBps: 60, fixedFee: 0n, minFee: 0n },
  card: { rateBps: 290, fixedFee: 30n, minFee: 0n },
};
const CURRENCY: Record<ChannelName, string> = { alipay: "CNY", wechatpay: "CNY", card: "USD" };
const PREFIX: Record<ChannelName, string> = { alipay: "A", wechatpay: "W", card: "C" };
const MERCHANT_ID = "01BENCHMERCHANT00000000000";

/** Payment n of a channel, as seeded in SQL (the same formulas): its number, amount and time. */
function paymentOf(channel: ChannelName, n: number, dayStart: number) {
  const amountMinor = BigInt(100 + ((n * 37) % 100_000));
  return {
    paymentNo: `P${PREFIX[channel]}${String(n).padStart(30, "0")}`,
    amountMinor,
    feeMinor: paymentFee(amountMinor, FEES[channel]),
    // One second apart, wrapping within the day.
    at: new Date(dayStart + (n % 86_400) * 1000),
  };
}

function channelsFor(dataDir: string): PaymentChannel[] {
  const keys = loadOrCreateDevChannelKeys(dataDir);
  // Port 9 (discard): the benchmark reads bills from files and never calls a channel.
  const settings = simulatedChannelSettings(keys, "http://127.0.0.1:9");
  return [createAlipayChannel(settings.alipay), createWechatPayChannel(settings.wechatpay), createCardChannel(settings.card)];
}

/** Child mode: importStatement of one bill file, reporting time, peak RSS and the run's counts as one JSON line. */
async function child(spec: string): Promise<void> {
  const { url, channel, path, sha1, dataDir } = JSON.parse(spec) as { url: string; channel: ChannelName; path: string; sha1?: string; dataDir: string };
  const db = await openDatabase({ url, dataDir: "./data", poolSize: 4 });
  try {
    const uow = createUnitOfWork(db);
    const reconciliation = createReconciliationService({
      uow,
      channels: new ChannelRegistry(channelsFor(dataDir)),
      payments: {
        queryPayment: () => {
          throw new Error("no payment is pending in the benchmark");
        },
      },
      feeRates: FEES,
      log: () => {},
    });
    const started = performance.now();
    // When each phase began, relative to the start: where the time goes.
    const phases: Record<string, number> = {};
    const run = await reconciliation.importStatement(channel, BILL_DATE, path, {
      sha1,
      onProgress: (progress) => {
        phases[progress.phase] ??= Math.round(performance.now() - started);
      },
    });
    const ms = performance.now() - started;
    // maxRSS is in kilobytes.
    const maxRssMb = process.resourceUsage().maxRSS / 1024;
    console.log(
      JSON.stringify({
        ms,
        maxRssMb,
        phases,
        lines: Number(run.linesTotal),
        matched: Number(run.matched),
        unmatched: Number(run.missingOnOurSide + run.missingOnChannelSide + run.amountMismatch + run.statusMismatch + run.feeMismatch),
      }),
    );
  } finally {
    await db.close();
  }
}

async function writeBill(channel: ChannelName, path: string, lines: number, dataDir: string): Promise<{ sha1?: string }> {
  const dayStart = billDayWindow(channel, BILL_DATE).from.getTime();
  const keys = loadOrCreateDevChannelKeys(dataDir);
  /** The day's `lines` bench payments, each as the format's bill row. */
  async function* rows<Row>(toRow: (p: ReturnType<typeof paymentOf>, n: number) => Row): AsyncGenerator<Row> {
    for (let n = 0; n < lines; n++) yield toRow(paymentOf(channel, n, dayStart), n);
  }
  if (channel === "alipay") {
    const bill = rows((p, n) => ({
      kind: "payment" as const,
      tradeNo: `2026111522001${String(n).padStart(15, "0")}`,
      outTradeNo: p.paymentNo,
      subject: "bench",
      createdAt: p.at,
      finishedAt: p.at,
      amountMinor: p.amountMinor,
      feeMinor: p.feeMinor,
    }));
    await writeAlipayBillFile(path, BILL_DATE, bill, { sellerId: keys.alipay.sellerId });
    return {};
  }
  if (channel === "wechatpay") {
    const bill = rows((p, n) => ({
      kind: "payment" as const,
      paymentNo: p.paymentNo,
      channelTradeNo: `42000${String(n).padStart(23, "0")}`,
      amountMinor: p.amountMinor,
      feeMinor: p.feeMinor,
      currency: "CNY",
      occurredAt: p.at,
      subject: "bench",
    }));
    const { sha1 } = await writeWechatBillFile(path, bill, { appId: keys.wechatpay.appId, mchId: keys.wechatpay.mchId });
    return { sha1 };
  }
  const bill = rows((p, n) => ({
    kind: "payment" as const,
    paymentNo: p.paymentNo,
    intentId: `pi_${n}`,
    amountMinor: p.amountMinor,
    feeMinor: p.feeMinor,
    currency: "USD",
    occurredAt: p.at,
  }));
  await writeCardBillFile(path, bill);
  return {};
}

function reader(channel: ChannelName, path: string): AsyncIterable<BillRecord> {
  if (channel === "alipay") return readAlipayBill(path, BILL_DATE);
  if (channel === "wechatpay") return readWechatBill(path, BILL_DATE);
  return readCardBill(path, BILL_DATE);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: "string", default: "1000000" },
      channels: { type: "string", default: CHANNEL_NAMES.join(",") },
      keep: { type: "boolean", default: false },
      profile: { type: "string" },
      child: { type: "string" },
    },
  });
  if (values.child) return child(values.child);
  const lines = Number(values.lines);
  if (!Number.isSafeInteger(lines) || lines < 1 || lines > 10_000_000) throw new Error("--lines must be a whole number from 1 to 10,000,000");
  const channels = values.channels.split(",").map((name) => name.trim()) as ChannelName[];
  for (const channel of channels) if (!CHANNEL_NAMES.includes(channel)) throw new Error(`unknown channel ${channel}`);

  const serverUrl = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
  const name = `bench_recon_${randomBytes(4).toString("hex")}`;
  const admin = await createConnection({ uri: serverUrl });
  await admin.query(`create database \`${name}\` character set utf8mb4`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const work = await mkdtemp(join(tmpdir(), "bench-recon-"));
  const report: string[] = [`${lines.toLocaleString("en")} lines per bill, bill day ${BILL_DATE}`];
  try {
    const db = await openDatabase({ url: url.toString(), dataDir: "./data", poolSize: 2 });
    await db.close();
    const connection = await createConnection({ uri: url.toString(), supportBigNumbers: true });
    await connection.query("set session max_recursive_iterations = 1000000");

    for (const channel of channels) {
      const dayStart = billDayWindow(channel, BILL_DATE).from;
      const seedStarted = performance.now();
      for (let from = 0; from < lines; from += SEED_CHUNK) {
        const to = Math.min(lines, from + SEED_CHUNK);
        // The same formulas as paymentOf: amount 100 + (37n mod 100000), paid at second n mod 86400 of the bill day.
        await connection.query(
          `insert into payment (id, payment_no, merchant_id, merchant_order_no, amount, currency, channel, status, subject,
             refunded_amount, refund_pending_amount, fee, notify_url, metadata, request_hash, created_at, updated_at, paid_at,
             expires_at, query_attempts, final_channel_queries)
           with recursive seq(n) as (select ? union all select n + 1 from seq where n + 1 < ?)
           select concat('01BR', ?, lpad(n, 21, '0')), concat('P', ?, lpad(n, 30, '0')), ?, concat('order-', ?, n),
             100 + (n * 37) mod 100000, ?, ?, 'SUCCEEDED', 'bench', 0, 0, ((100 + (n * 37) mod 100000) * 100 + 5000) div 10000,
             '', '{}', '', ?, ?, date_add(?, interval (n mod 86400) second), ?, 0, 0
           from seq`,
          [from, to, PREFIX[channel], PREFIX[channel], MERCHANT_ID, PREFIX[channel], CURRENCY[channel], channel, dayStart, dayStart, dayStart, dayStart],
        );
        process.stderr.write(`\r${channel}: seeded ${to.toLocaleString("en")} payments`);
      }
      process.stderr.write("\n");
      const seedMs = performance.now() - seedStarted;
      await connection.query("analyze table payment");

      const path = join(work, `${channel}-bill`);
      const writeStarted = performance.now();
      const { sha1 } = await writeBill(channel, path, lines, work);
      const writeMs = performance.now() - writeStarted;
      const bytes = (await stat(path)).size;

      // Baseline: the same reader, and the matching rows fetched by number, 1000 per raw query.
      const baselineStarted = performance.now();
      let found = 0;
      let batch: string[] = [];
      const fetch = async () => {
        const [rows] = (await connection.query(
          `select id, payment_no, merchant_id, amount, currency, status, fee from payment where channel = ? and payment_no in (?)`,
          [channel, batch],
        )) as unknown as [unknown[]];
        found += rows.length;
        batch = [];
      };
      for await (const record of reader(channel, path)) {
        batch.push(record.paymentNo);
        if (batch.length >= BATCH) await fetch();
      }
      if (batch.length > 0) await fetch();
      const baselineMs = performance.now() - baselineStarted;

      const run = await new Promise<{ ms: number; maxRssMb: number; phases: Record<string, number>; lines: number; matched: number; unmatched: number }>((resolve, reject) => {
        const spec = JSON.stringify({ url: url.toString(), channel, path, sha1, dataDir: work });
        // --profile DIR: the child writes a V8 CPU profile there (open it in Chrome DevTools).
        const profile = values.profile ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [];
        const proc = spawn(process.execPath, [...profile, "--import", "tsx", fileURLToPath(import.meta.url), "--child", spec], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        proc.stdout.on("data", (chunk) => {
          out += chunk;
        });
        proc.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!)) : reject(new Error(`child exited ${code}`))));
      });
      report.push(
        `${channel}: seeded ${(seedMs / 1000).toFixed(1)} s, bill written ${(writeMs / 1000).toFixed(1)} s (${(bytes / 1048576).toFixed(1)} MiB)`,
        `  baseline (read + fetch by key): ${(baselineMs / 1000).toFixed(2)} s (${found.toLocaleString("en")} rows)`,
        `  importStatement:                ${(run.ms / 1000).toFixed(2)} s (${run.matched.toLocaleString("en")} matched, ${run.unmatched} unmatched)`,
        `  ratio:                          ${(run.ms / baselineMs).toFixed(2)}x (target <= 2x)`,
        `  peak RSS (child):               ${run.maxRssMb.toFixed(0)} MB (target < 512 MB)`,
        `  phases began at (ms):           ${JSON.stringify(run.phases)}`,
      );
      console.log(report.slice(-6).join("\n"));
      if (run.matched !== lines || run.unmatched !== 0) throw new Error(`${channel}: the run did not match every line`);
    }
    await connection.end();
    console.log(`\n${report.join("\n")}`);
  } finally {
    await rm(work, { recursive: true, force: true });
    if (values.keep) console.log(`kept database ${name}`);
    else await admin.query(`drop database if exists \`${name}\``);
    await admin.end();
  }
}

await main();
