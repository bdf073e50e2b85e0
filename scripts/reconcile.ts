/**
 * Reconciles one channel's bill for one day, in this process, with the service's configuration
 * (the same variables as `npm start`: the channel's settings to download its bill, DATABASE_URL,
 * ADMIN_TOKEN and DATA_ENCRYPTION_KEY when a database URL is set):
 *
 *   npm run reconcile -- --channel alipay --date 2026-12-01
 *   npm run reconcile -- --channel wechatpay --date 2026-12-01 --file bill.csv --sha1 <hash_value>
 *   npm run reconcile -- --channel card --date 2026-12-01 --file balance-transactions.jsonl
 *
 * Without `--file` the bill is downloaded from the channel; with it the file (in the channel's
 * download format) is read instead. Shows a progress bar on a terminal (plain progress lines
 * otherwise) and a table of the classes at the end. Exit status: 0 every line matched, 1 some
 * discrepancy was found, 2 bad arguments or a bill that cannot be read (the message names the
 * line), 3 the channel or the database could not be reached.
 */
import { parseArgs } from "node:util";
import { buildChannels, type ResolvedConfig } from "../src/app.js";
import { CHANNEL_NAMES, type ChannelName } from "../src/channels/channel.js";
import { loadOrCreateDevChannelKeys } from "../src/channels/dev-keys.js";
import { ChannelRegistry } from "../src/channels/registry.js";
import { simulatedChannelSettings } from "../src/channels/simulated-settings.js";
import { type Config, ConfigError, loadConfig } from "../src/config.js";
import { openDatabase } from "../src/db/database.js";
import { createUnitOfWork } from "../src/db/unit-of-work.js";
import { DomainError, ValidationError } from "../src/errors.js";
import { createPaymentService } from "../src/payments/payment-service.js";
import type { ReconciliationRunRow } from "../src/reconciliation/reconciliation-entities.js";
import { createReconciliationService, type ReconciliationProgress } from "../src/reconciliation/reconciliation-service.js";

const USAGE = "usage: npm run reconcile -- --channel alipay|wechatpay|card --date YYYY-MM-DD [--file bill] [--sha1 HEX]";

function fail(message: string, code: number): never {
  console.error(message);
  process.exit(code);
}

let args: { channel?: string; date?: string; file?: string; sha1?: string; help?: boolean };
try {
  args = parseArgs({
    options: {
      channel: { type: "string" },
      date: { type: "string" },
      file: { type: "string" },
      sha1: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`, 2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!args.channel || !(CHANNEL_NAMES as readonly string[]).includes(args.channel)) fail(`--channel must be one of ${CHANNEL_NAMES.join(", ")}\n${USAGE}`, 2);
if (!args.date) fail(`--date is required\n${USAGE}`, 2);
const channelName = args.channel as ChannelName;

/** The channel settings, with simulated channels pointed at the simulator with the development keys (as main.ts does). */
function channelSettings(config: Readonly<Config>): Pick<Config, "alipay" | "wechatpay" | "card"> {
  const simulator = `http://127.0.0.1:${config.simulatorPort}`;
  let { alipay, wechatpay, card } = config;
  if (config.simulatedChannels.length === 0) return { alipay, wechatpay, card };
  const simulated = simulatedChannelSettings(loadOrCreateDevChannelKeys(config.dataDir), simulator);
  if (config.simulatedChannels.includes("alipay")) alipay = simulated.alipay;
  if (config.simulatedChannels.includes("wechatpay")) wechatpay = simulated.wechatpay;
  if (config.simulatedChannels.includes("card")) card = simulated.card;
  return { alipay, wechatpay, card };
}

let config: Readonly<Config>;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  fail(error.message, 2);
}
const settings = channelSettings(config);
const channels = new ChannelRegistry(buildChannels({ ...config, ...settings } as ResolvedConfig));
if (!channels.has(channelName)) fail(`channel ${channelName} is not configured (set its variables, or SIMULATED_CHANNELS)`, 2);

/** Progress on stderr: a bar redrawn in place on a terminal, a line per phase and per tenth otherwise. */
function progressReporter(): (progress: ReconciliationProgress) => void {
  const tty = process.stderr.isTTY === true;
  let lastPhase = "";
  let lastTenth = -1;
  let total: number | undefined;
  return (progress) => {
    if (progress.total !== undefined) total = progress.total;
    const of = progress.phase === "channel_side" || total === undefined ? "" : `/${total}`;
    const label = { validating: "checking the bill", matching: "matching lines", channel_side: "our payments and refunds of the day", done: "done" }[progress.phase];
    if (tty) {
      const fraction = progress.phase === "matching" && total ? progress.done / total : progress.phase === "done" ? 1 : undefined;
      const bar = fraction === undefined ? "" : `[${"#".repeat(Math.round(fraction * 30)).padEnd(30, ".")}] `;
      process.stderr.write(`\r\x1b[2K${bar}${label} ${progress.done}${of}`);
      if (progress.phase === "done") process.stderr.write("\n");
      return;
    }
    const tenth = total ? Math.floor((progress.done * 10) / Math.max(total, 1)) : 0;
    if (progress.phase !== lastPhase || (progress.phase === "matching" && tenth !== lastTenth)) {
      console.error(`${label}: ${progress.done}${of}`);
      lastPhase = progress.phase;
      lastTenth = tenth;
    }
  };
}

function summary(run: ReconciliationRunRow): string {
  const rows: Array<[string, bigint]> = [
    ["lines on the bill", run.linesTotal],
    ["matched", run.matched],
    ["MISSING_ON_OUR_SIDE", run.missingOnOurSide],
    ["MISSING_ON_CHANNEL_SIDE", run.missingOnChannelSide],
    ["BILL_AMOUNT_MISMATCH", run.amountMismatch],
    ["STATUS_MISMATCH", run.statusMismatch],
    ["FEE_MISMATCH", run.feeMismatch],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = [`run ${run.id}: ${run.channel} bill of ${run.billDate} (${run.source})`, ...rows.map(([name, count]) => `  ${name.padEnd(width)}  ${String(count).padStart(10)}`)];
  const currency = run.currency || "-";
  lines.push(`  channel fee ${run.channelFee} ${currency}, our fee ${run.merchantFee} ${currency}, margin ${run.merchantFee - run.channelFee} ${currency}`);
  if (!run.feeChecked) lines.push(`  (no contracted rate for ${run.channel}: line fees were not checked)`);
  if (run.itemsCapped) lines.push("  (more unmatched lines than items kept: the rest were counted only)");
  return lines.join("\n");
}

const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 4 });
let exitCode = 0;
try {
  const uow = createUnitOfWork(db);
  const payments = createPaymentService({
    uow,
    channels,
    publicBaseUrl: config.publicBaseUrl,
    notifyUrls: config.notifyUrls,
    finalPaymentChannelQueries: config.finalPaymentChannelQueries,
  });
  const reconciliation = createReconciliationService({
    uow,
    channels,
    payments,
    feeRates: config.channelFeeRates,
    log: (message) => console.error(message),
  });
  const onProgress = progressReporter();
  const run = args.file
    ? await reconciliation.importStatement(channelName, args.date, args.file, { sha1: args.sha1, onProgress })
    : await reconciliation.reconcileChannel(channelName, args.date, { onProgress });
  console.log(summary(run));
  const unmatched = run.missingOnOurSide + run.missingOnChannelSide + run.amountMismatch + run.statusMismatch + run.feeMismatch;
  exitCode = unmatched > 0n ? 1 : 0;
} catch (error) {
  if (error instanceof ValidationError) {
    console.error(error.violations.map((violation) => `${violation.field}: ${violation.description}`).join("\n"));
    exitCode = 2;
  } else if (error instanceof DomainError) {
    console.error(`${error.reason}: ${error.message}`);
    exitCode = 2;
  } else {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    exitCode = 3;
  }
} finally {
  await db.close();
}
process.exit(exitCode);
