/**
 * `npm run bench`: end-to-end CreatePayment and card-callback throughput of the service against
 * hand-written ceilings, measured in one run on one machine. See bench/README.md for what each
 * scenario does.
 *
 * Flags: --duration S (measured seconds per run, default 5), --warmup S (per run, default 1.5),
 * --prime S (per server before its first run, default 3),
 * --reps N (default 3), --concurrency 1,16,64, --only a,b (scenario ids), --out DIR
 * (default bench/results), --profile (run the service and the ceiling under `node --cpu-prof` and
 * print their top costs in the measured windows).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Connection, createConnection } from "mysql2/promise";
import { loadOrCreateDevChannelKeys } from "../src/channels/dev-keys.js";
import { Channel } from "../gen/payments/v1/payment_pb.js";
import { MerchantService } from "../gen/payments/v1/merchant_service_pb.js";
import { PaymentService } from "../gen/payments/v1/payment_service_pb.js";
import { newId } from "../src/ids.js";
import { ensureMysqlServer, type MysqlServer } from "../test/support/mysql-server.js";
import { createGrpcJsClient } from "../test/support/grpc-client.js";
import type { CallbackTargets, LoadOptions, LoadResult } from "./load.js";
import { mysqlServerPid } from "./proc-stats.js";
import { summarizeProfiles } from "./profile-summary.js";
import type { BenchChannel } from "./workload.js";
import { createPaymentRequest, typicalRequestBytes } from "./workload.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const ADMIN_TOKEN = `bench-admin-${randomBytes(12).toString("hex")}`;
const DATA_ENCRYPTION_KEY = `bench-data-key-${randomBytes(24).toString("hex")}`;
/** Re-send gaps of the simulated channels multiplied by this: first webhooks go out at once. */
const SIMULATOR_TIME_SCALE = "0.001";

// ---------------------------------------------------------------------------------------------
// Options

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1.5" },
    prime: { type: "string", default: "3" },
    reps: { type: "string", default: "3" },
    concurrency: { type: "string", default: "1,16,64" },
    only: { type: "string" },
    out: { type: "string", default: join(ROOT, "bench/results") },
    profile: { type: "boolean", default: false },
    "keep-database": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log("usage: npm run bench -- [--duration 5] [--warmup 1.5] [--prime 3] [--reps 3] [--concurrency 1,16,64] [--only ids] [--out dir] [--profile] [--keep-database]");
  console.log(`scenarios: ${SCENARIO_IDS().join(", ")}`);
  process.exit(0);
}
const settings = {
  durationSeconds: positive("duration", Number(flags.duration)),
  warmupSeconds: Math.max(0, Number(flags.warmup)),
  /** Load per server before its first measured run, so JIT, pools and keep-alive sockets are warm; 0: none. */
  primeSeconds: Math.max(0, Number(flags.prime)),
  reps: Math.round(positive("reps", Number(flags.reps))),
  concurrency: flags.concurrency.split(",").map((text) => Math.round(positive("concurrency", Number(text)))),
  only: flags.only?.split(",").map((text) => text.trim()).filter(Boolean),
  out: resolve(flags.out),
  profile: flags.profile,
  /** Leave the bench database in place at the end (to look at the rows written), and say its name. */
  keepDatabase: flags["keep-database"],
};

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type ServerName = "service" | "ceiling" | "callback-ceiling" | "echo-grpc-js" | "echo-connect";

interface Scenario {
  id: string;
  label: string;
  server: ServerName;
  kind: LoadOptions["kind"];
  channel?: BenchChannel;
  concurrencies: number[];
}

function SCENARIO_IDS(): string[] {
  return ["ceiling", "service", "callback-ceiling", "callback", "full-cycle", "echo-grpc-js", "echo-connect", "alipay", "wechatpay"];
}

function scenarios(): Scenario[] {
  const all = settings.concurrency;
  const max = Math.max(...all);
  const cycle = all.filter((n) => n >= 16);
  const list: Scenario[] = [
    { id: "ceiling", label: "ceiling: grpc-js + acquirer + raw mysql2 tx (card)", server: "ceiling", kind: "create", channel: "card", concurrencies: all },
    { id: "service", label: "service: CreatePayment (card)", server: "service", kind: "create", channel: "card", concurrencies: all },
    {
      id: "callback-ceiling",
      label: "callback ceiling: node:http + HMAC + raw mysql2 tx (card)",
      server: "callback-ceiling",
      kind: "callback",
      channel: "card",
      concurrencies: all,
    },
    { id: "callback", label: "service: card callback, PENDING->SUCCEEDED", server: "service", kind: "callback", channel: "card", concurrencies: all },
    {
      id: "full-cycle",
      label: "full cycle: create, pay, callback, GetPayment SUCCEEDED (card)",
      server: "service",
      kind: "full-cycle",
      channel: "card",
      concurrencies: cycle.length > 0 ? cycle : [max],
    },
    { id: "echo-grpc-js", label: "floor: grpc-js echo", server: "echo-grpc-js", kind: "echo", concurrencies: [max] },
    { id: "echo-connect", label: "floor: connect-node gRPC echo", server: "echo-connect", kind: "echo", concurrencies: [max] },
    { id: "alipay", label: "service: CreatePayment (Alipay, RSA2)", server: "service", kind: "create", channel: "alipay", concurrencies: [max] },
    { id: "wechatpay", label: "service: CreatePayment (WeChat Pay, RSA)", server: "service", kind: "create", channel: "wechatpay", concurrencies: [max] },
  ];
  const only = settings.only;
  if (only) {
    const unknown = only.filter((id) => !SCENARIO_IDS().includes(id));
    if (unknown.length > 0) {
      console.error(`unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIO_IDS().join(", ")}`);
      process.exit(2);
    }
    return list.filter((scenario) => only.includes(scenario.id));
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the first line the process printed that parses as JSON. */
  firstJson: Promise<Record<string, unknown>>;
}

const workDir = mkdtempSync(join(tmpdir(), "payments-bench-"));
const procs: Proc[] = [];
/**
 * Where the servers' JavaScript is compiled to: inside the repository (under node_modules/.cache),
 * so the compiled files resolve the installed packages as dist/ does.
 */
const compiledDir = join(ROOT, "node_modules", ".cache", `payments-bench-${process.pid}`);

/**
 * The servers run as a production start does (README, "Production start"): JavaScript compiled by
 * tsc, plain `node` with no TypeScript loader. Under tsx every function the code creates also
 * pays for esbuild's `__name` helper (about 15 µs of CPU per callback), which no deployment runs.
 * The simulator, the ceilings and the echo servers are compiled the same way; only the load
 * generator stays on tsx.
 */
function compileServers(): void {
  execFileSync(
    process.execPath,
    [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "bench/tsconfig.build.json"), "--outDir", compiledDir],
    { cwd: ROOT, stdio: "inherit" },
  );
}

/** Starts `script` (a .ts path under the repository) from its compiled JavaScript. */
function startProcess(name: string, [script, ...args]: [string, ...string[]], env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []): Proc {
  const logFile = join(workDir, `${name}.log`);
  const log = createWriteStream(logFile);
  const compiled = join(compiledDir, script.replace(/\.ts$/, ".js"));
  const child = spawn(process.execPath, [...nodeFlags, compiled, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buffered = "";
  let found = false;
  const firstJson = new Promise<Record<string, unknown>>((resolveJson, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      log.write(chunk);
      // Only the first JSON line is wanted: past it the output goes to the log file unread, so the
      // harness spends no CPU on the service's log lines while the machine is being measured.
      if (found) return;
      buffered += chunk.toString("utf8");
      for (const line of buffered.split("\n").slice(0, -1)) {
        if (line.startsWith("{")) {
          try {
            resolveJson(JSON.parse(line) as Record<string, unknown>);
            found = true;
            buffered = "";
            return;
          } catch {
            // not JSON after all; keep reading
          }
        }
      }
      buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
    });
    child.once("exit", (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before it was ready; log: ${logFile}`)));
  });
  firstJson.catch(() => {});
  child.stderr!.on("data", (chunk: Buffer) => log.write(chunk));
  const proc = { name, child, logFile, firstJson };
  procs.push(proc);
  return proc;
}

async function stopProcess(proc: Proc, graceMs = 15_000): Promise<void> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, proc: Proc, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.child.exitCode}; log: ${proc.logFile}`);
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000}s; log: ${proc.logFile}`);
}

// ---------------------------------------------------------------------------------------------
// Measurement

interface Point {
  scenario: Scenario;
  concurrency: number;
  runs: LoadResult[];
}

function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolveResult, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/load.ts", JSON.stringify(options)], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("exit", (code) => {
      const line = stdout.trim().split("\n").at(-1) ?? "";
      if (code === 0 && line.startsWith("{")) resolveResult(JSON.parse(line) as LoadResult);
      else reject(new Error(`load generator exited with ${code}: ${stderr.slice(-2000) || stdout.slice(-2000)}`));
    });
  });
}

const median = (values: number[]): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

interface Summary {
  scenario: string;
  label: string;
  concurrency: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  cpuSecondsPer1k: number;
  /** Share of the server's CPU spent in the kernel. */
  systemCpuShare: number;
  /** Share of the server's CPU on its main (JavaScript) thread; the rest is V8's helpers and libuv's pool. */
  mainThreadCpuShare: number;
  /** Main-thread CPU seconds per 1,000 calls. */
  mainThreadCpuSecondsPer1k: number;
  /** The server's write system calls per call (sockets, pipes, files: `/proc/<pid>/io`). */
  writesPerCall: number;
  peakRssMiB: number;
  errors: number;
  otherCpuSecondsPer1k: Record<string, number>;
  pollsPerPayment?: number;
  runs: LoadResult[];
}

function summarize(point: Point): Summary {
  const runs = point.runs;
  const perK = (cpu: number, calls: number) => (calls > 0 ? (cpu / calls) * 1000 : 0);
  const otherNames = Object.keys(runs[0]?.otherCpuSeconds ?? {});
  return {
    scenario: point.scenario.id,
    label: point.scenario.label,
    concurrency: point.concurrency,
    throughput: median(runs.map((r) => r.throughput)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    cpuSecondsPer1k: median(runs.map((r) => perK(r.cpuSeconds, r.calls))),
    systemCpuShare: median(runs.map((r) => (r.cpuSeconds > 0 ? r.cpuSystemSeconds / r.cpuSeconds : 0))),
    mainThreadCpuShare: median(runs.map((r) => (r.cpuSeconds > 0 ? r.cpuMainThreadSeconds / r.cpuSeconds : 0))),
    mainThreadCpuSecondsPer1k: median(runs.map((r) => perK(r.cpuMainThreadSeconds, r.calls))),
    writesPerCall: median(runs.map((r) => (r.calls > 0 ? r.io.writes / r.calls : 0))),
    peakRssMiB: median(runs.map((r) => r.peakRssBytes / 2 ** 20)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    otherCpuSecondsPer1k: Object.fromEntries(otherNames.map((name) => [name, median(runs.map((r) => perK(r.otherCpuSeconds[name] ?? 0, r.calls)))])),
    ...(point.scenario.kind === "full-cycle" ? { pollsPerPayment: median(runs.map((r) => r.pollsPerPayment ?? 0)) } : {}),
    runs,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function formatTable(summaries: Summary[]): string {
  const header = ["scenario", "in flight", "calls/s", "p50 ms", "p99 ms", "CPU s/1k", "main thread", "writes/call", "all CPU s/1k", "peak RSS MiB", "errors"];
  const rows = summaries.map((s) => [
    s.label,
    String(s.concurrency),
    s.throughput.toFixed(0),
    s.p50Ms.toFixed(1),
    s.p99Ms.toFixed(1),
    s.cpuSecondsPer1k.toFixed(3),
    `${Math.round(s.mainThreadCpuShare * 100)}%`,
    s.writesPerCall.toFixed(1),
    (s.cpuSecondsPer1k + Object.values(s.otherCpuSecondsPer1k).reduce((a, b) => a + b, 0)).toFixed(3),
    s.peakRssMiB.toFixed(0),
    String(s.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => pad(cell, widths[i]!, i > 0)).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

interface Ratio {
  name: string;
  /** The ratio of the two medians. */
  value: number | null;
  target?: string;
  met?: boolean;
  /**
   * The ratio within each repetition (the service run against the ceiling run just before it):
   * how far the runs spread, and in how many the target was met. Drift between repetitions on a
   * shared machine moves both sides of one of these alike.
   */
  perRep?: number[];
  metInReps?: number;
}

function computeRatios(summaries: Summary[]): Ratio[] {
  const find = (id: string, concurrency?: number) =>
    summaries.find((s) => s.scenario === id && (concurrency === undefined || s.concurrency === concurrency));
  const max = Math.max(...settings.concurrency);
  const ratios: Ratio[] = [];
  const perK = (run: LoadResult) => (run.calls > 0 ? (run.cpuSeconds / run.calls) * 1000 : 0);
  /** Per repetition, `metric` of a's run over b's run of the same repetition. */
  const paired = (a: Summary | undefined, b: Summary | undefined, metric: (run: LoadResult) => number): number[] | undefined => {
    if (!a || !b) return undefined;
    return a.runs.flatMap((run, i) => {
      const other = b.runs[i];
      return other && metric(other) > 0 ? [metric(run) / metric(other)] : [];
    });
  };
  const add = (
    name: string,
    a: number | undefined,
    b: number | undefined,
    target?: { min?: number; max?: number },
    perRep?: number[],
  ) => {
    const value = a !== undefined && b !== undefined && b > 0 ? a / b : null;
    const ratio: Ratio = { name, value };
    const meets = (x: number) => (target?.min !== undefined ? x >= target.min : x <= target!.max!);
    if (target && value !== null) {
      ratio.target = target.min !== undefined ? `>= ${target.min}` : `<= ${target.max}`;
      ratio.met = meets(value);
      if (perRep && perRep.length > 1) {
        ratio.perRep = perRep;
        ratio.metInReps = perRep.filter(meets).length;
      }
    }
    ratios.push(ratio);
  };
  for (const n of settings.concurrency) {
    add(
      `CreatePayment / ceiling (with API-key read) throughput @${n}`,
      find("service", n)?.throughput,
      find("ceiling", n)?.throughput,
      n === max ? { min: 0.9 } : undefined,
      paired(find("service", n), find("ceiling", n), (run) => run.throughput),
    );
  }
  for (const n of settings.concurrency) {
    add(
      `callback service / ceiling throughput @${n}`,
      find("callback", n)?.throughput,
      find("callback-ceiling", n)?.throughput,
      n === max ? { min: 0.8 } : undefined,
      paired(find("callback", n), find("callback-ceiling", n), (run) => run.throughput),
    );
  }
  add(
    `callback service / ceiling CPU per callback @${max}`,
    find("callback", max)?.cpuSecondsPer1k,
    find("callback-ceiling", max)?.cpuSecondsPer1k,
    { max: 1.5 },
    paired(find("callback", max), find("callback-ceiling", max), perK),
  );
  // Where a CPU difference lies: the JavaScript thread, or V8's helper threads (the collector) and libuv's pool.
  add(`callback service / ceiling main-thread CPU per callback @${max}`, find("callback", max)?.mainThreadCpuSecondsPer1k, find("callback-ceiling", max)?.mainThreadCpuSecondsPer1k);
  add(`full cycle / ceiling throughput @${max}`, find("full-cycle", max)?.throughput, find("ceiling", max)?.throughput, { min: 0.5 });
  const p99At = settings.concurrency.includes(16) ? 16 : max;
  add(`CreatePayment / ceiling p99 @${p99At}`, find("service", p99At)?.p99Ms, find("ceiling", p99At)?.p99Ms, { max: 3 });
  add(`service / grpc-js echo throughput @${max}`, find("service", max)?.throughput, find("echo-grpc-js", max)?.throughput);
  add(`ceiling / grpc-js echo throughput @${max}`, find("ceiling", max)?.throughput, find("echo-grpc-js", max)?.throughput);
  add(`connect-node echo / grpc-js echo @${max}`, find("echo-connect", max)?.throughput, find("echo-grpc-js", max)?.throughput);
  add(`CreatePayment / ceiling CPU per call @${max}`, find("service", max)?.cpuSecondsPer1k, find("ceiling", max)?.cpuSecondsPer1k);
  add(`CreatePayment / ceiling main-thread CPU per call @${max}`, find("service", max)?.mainThreadCpuSecondsPer1k, find("ceiling", max)?.mainThreadCpuSecondsPer1k);
  add(`Alipay / card service CPU per call @${max}`, find("alipay", max)?.cpuSecondsPer1k, find("service", max)?.cpuSecondsPer1k);
  add(`WeChat Pay / card service CPU per call @${max}`, find("wechatpay", max)?.cpuSecondsPer1k, find("service", max)?.cpuSecondsPer1k);
  add(`Alipay / card service throughput @${max}`, find("alipay", max)?.throughput, find("service", max)?.throughput);
  add(`WeChat Pay / card service throughput @${max}`, find("wechatpay", max)?.throughput, find("service", max)?.throughput);
  return ratios.filter((ratio) => ratio.value !== null);
}

function formatRatios(ratios: Ratio[]): string {
  const width = Math.max(...ratios.map((r) => r.name.length));
  return ratios
    .map((r) => {
      const verdict = r.target ? `  target ${r.target}: ${r.met ? "met" : "MISSED"}` : "";
      // Two decimals, or three where two would round onto the target and hide which side it is on.
      const bound = Number(r.target?.split(" ")[1]);
      const digits = r.target && Number(r.value!.toFixed(2)) === bound && r.value !== bound ? 3 : 2;
      // The median of the paired ratios too: each pair ran back to back, so drift of the machine
      // between repetitions cancels inside a pair, where the ratio of the two medians can pair a
      // ceiling repetition from a quiet minute with a service one from a busy minute.
      const reps = r.perRep
        ? `  (per rep ${Math.min(...r.perRep).toFixed(2)}x-${Math.max(...r.perRep).toFixed(2)}x, median ${median(r.perRep).toFixed(2)}x, met in ${r.metInReps} of ${r.perRep.length})`
        : "";
      return `${pad(r.name, width)}  ${r.value!.toFixed(digits)}x${verdict}${reps}`;
    })
    .join("\n");
}

// ---------------------------------------------------------------------------------------------
// PENDING payments for the callback scenarios

interface CallbackPayments {
  /** Inserts `count` new PENDING card payments and says where and how to post their webhooks. */
  prepare(count: number, url: string, webhookSecret: string): Promise<CallbackTargets>;
  close(): Promise<void>;
}

let callbackPaymentsConnection: Connection | undefined;

/**
 * One card payment made through the service's own CreatePayment (so it has every column the
 * current schema has, as the service writes it), then copied as many times as a run needs with
 * new ids, payment numbers, order numbers and intent ids. Copying is a few multi-row INSERTs per
 * thousand payments; creating them through the service would take longer than the runs.
 */
async function createCallbackPayments(
  databaseUrl: string,
  grpcTarget: string,
  merchantHeaders: Record<string, string>,
): Promise<CallbackPayments> {
  const payments = createGrpcJsClient(PaymentService, grpcTarget);
  const request = createPaymentRequest("card", `cb-template-${randomBytes(4).toString("hex")}`);
  const template = (await payments.createPayment(request, merchantHeaders)).payment!;
  payments.close();
  // Values read back as text (dates, BIGINT, JSON) go back in unchanged.
  const connection = await createConnection({
    uri: databaseUrl,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  callbackPaymentsConnection = connection;
  const [rows] = await connection.query("SELECT * FROM payment WHERE id = ?", [template.id]);
  const row = (rows as Array<Record<string, unknown>>)[0];
  if (!row) throw new Error(`the template payment ${template.id} is not in the bench database`);
  if (row.status !== "PENDING") throw new Error(`the template payment is ${String(row.status)}, not PENDING`);
  // JSON columns come back parsed (mysql2 reads MariaDB's JSON type marker too): back to text.
  for (const [column, value] of Object.entries(row)) {
    if (value !== null && typeof value === "object" && !Buffer.isBuffer(value)) row[column] = JSON.stringify(value);
  }
  const columns = Object.keys(row);
  const columnList = columns.map((column) => `\`${column}\``).join(", ");
  let batch = 0;
  return {
    async prepare(count, url, webhookSecret) {
      // Payment numbers are at most 32 characters: `K` + 6 random + batch + index.
      const prefix = `K${randomBytes(3).toString("hex")}${(++batch).toString(36)}x`;
      const chunk = 1000;
      for (let start = 0; start < count; start += chunk) {
        const values: unknown[][] = [];
        for (let i = start; i < Math.min(count, start + chunk); i++) {
          const paymentNo = `${prefix}${i}`;
          const overrides: Record<string, unknown> = {
            id: newId(),
            payment_no: paymentNo,
            merchant_order_no: `cb-${paymentNo}`,
            channel_trade_no: `pi_${paymentNo}`,
          };
          values.push(columns.map((column) => (column in overrides ? overrides[column] : row[column])));
        }
        await connection.query(`INSERT INTO payment (${columnList}) VALUES ?`, [values]).catch((error: { message?: string }) => {
          // The error would carry the whole statement: its message is enough.
          throw new Error(`inserting PENDING payments for the callback runs failed: ${error.message}`);
        });
      }
      return { url, webhookSecret, prefix, count, amount: Number(template.amount), currency: template.currency.toLowerCase() };
    },
    async close() {
      await connection.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Main

let mysqlServer: MysqlServer | undefined;
let databaseName: string | undefined;

async function dropDatabase(): Promise<void> {
  if (!mysqlServer || !databaseName) return;
  if (settings.keepDatabase) {
    console.log(`[bench] kept database ${databaseName} (--keep-database); drop it when done`);
    return;
  }
  const connection = await createConnection({ uri: mysqlServer.url });
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${databaseName}\``);
  } finally {
    await connection.end();
  }
}

async function cleanup(): Promise<void> {
  await callbackPaymentsConnection?.end().catch(() => {});
  await Promise.all(procs.map((proc) => stopProcess(proc).catch(() => {})));
  await dropDatabase().catch((error) => console.error("could not drop the bench database:", error));
  await mysqlServer?.stop().catch(() => {});
  rmSync(workDir, { recursive: true, force: true });
  rmSync(compiledDir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const selected = scenarios();
  const needs = (server: ServerName) => selected.some((scenario) => scenario.server === server);
  const log = (message: string) => console.log(`[bench] ${message}`);
  log(`work dir ${workDir}; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), Node ${process.version}`);

  log("compiling the servers (tsc -p bench/tsconfig.build.json), as a production start runs them");
  compileServers();

  // MySQL the way the tests find or start it, and a fresh database for this run.
  mysqlServer = await ensureMysqlServer();
  databaseName = `bench_${randomBytes(5).toString("hex")}`;
  const admin = await createConnection({ uri: mysqlServer.url });
  const [versionRows] = await admin.query("SELECT VERSION() AS version");
  const mysqlVersion = (versionRows as Array<{ version: string }>)[0]?.version ?? "?";
  await admin.query(`CREATE DATABASE \`${databaseName}\` CHARACTER SET utf8mb4`);
  await admin.end();
  const databaseUrl = new URL(mysqlServer.url);
  databaseUrl.pathname = `/${databaseName}`;
  const mysqldPid = ["127.0.0.1", "localhost"].includes(databaseUrl.hostname)
    ? mysqlServerPid(Number(databaseUrl.port || 3306))
    : undefined;
  log(`MySQL ${mysqlVersion} at ${mysqlServer.url}, database ${databaseName}`);

  // Development channel keys, read by the simulator and given to the service as its channel config.
  const dataDir = join(workDir, "data");
  const keys = loadOrCreateDevChannelKeys(dataDir);
  const pemFile = (name: string, pem: string) => {
    const path = join(dataDir, name);
    writeFileSync(path, pem, { mode: 0o600 });
    return path;
  };

  const simulatorPort = await freePort();
  const simulatorUrl = `http://127.0.0.1:${simulatorPort}`;
  // The simulator's control API (the load generator pays trades through it) needs this token.
  const simulatorControlToken = randomBytes(24).toString("base64url");
  const simulator = startProcess("simulator", ["src/simulator/main.ts"], {
    SIMULATOR_PORT: String(simulatorPort),
    SIMULATOR_DATA_DIR: dataDir,
    SIMULATOR_TIME_SCALE,
    SIMULATOR_CONTROL_TOKEN: simulatorControlToken,
  });
  let simulated: string[] = [];
  await waitFor(
    "simulator",
    async () => {
      const response = await fetch(`${simulatorUrl}/simulator`, { headers: { authorization: `Bearer ${simulatorControlToken}` } });
      if (!response.ok) return false;
      simulated = ((await response.json()) as { channels: string[] }).channels;
      return true;
    },
    simulator,
  );
  log(`simulator on ${simulatorUrl} for ${simulated.join(", ")}`);

  const grpcPort = await freePort();
  const httpPort = await freePort();
  const profileDir = join(settings.out, "profiles", new Date().toISOString().replace(/[:.]/g, "-"));
  const profiled: ServerName[] = ["service", "ceiling", "callback-ceiling"];
  const profileFlags = (server: ServerName) =>
    settings.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, server)}`] : [];
  if (settings.profile) for (const server of profiled) mkdirSync(join(profileDir, server), { recursive: true });
  const service = startProcess(
    "service",
    ["src/main.ts"],
    {
      DATABASE_URL: databaseUrl.toString(),
      ADMIN_TOKEN,
      DATA_ENCRYPTION_KEY,
      HOST: "127.0.0.1",
      GRPC_PORT: String(grpcPort),
      HTTP_PORT: String(httpPort),
      DATA_DIR: dataDir,
      SWEEP_INTERVAL_MS: "3600000",
      // One bench merchant makes thousands of calls a second: measure the service, not its rate limit.
      RATE_LIMIT_PER_SECOND: "1000000",
      RATE_LIMIT_BURST: "1000000",
      // Every channel is configured below, pointing at the harness's simulator: main.ts starts none.
      SIMULATED_CHANNELS: "none",
      ALIPAY_GATEWAY_URL: `${simulatorUrl}/alipay/gateway.do`,
      ALIPAY_APP_ID: keys.alipay.appId,
      ALIPAY_APP_PRIVATE_KEY: pemFile("alipay-app-private.pem", keys.alipay.appPrivateKeyPem),
      ALIPAY_PUBLIC_KEY: pemFile("alipay-public.pem", keys.alipay.alipayPublicKeyPem),
      ALIPAY_SELLER_ID: keys.alipay.sellerId,
      WECHATPAY_BASE_URL: `${simulatorUrl}/wechatpay`,
      WECHATPAY_MCH_ID: keys.wechatpay.mchId,
      WECHATPAY_APP_ID: keys.wechatpay.appId,
      WECHATPAY_MCH_SERIAL_NO: keys.wechatpay.mchSerialNo,
      WECHATPAY_MCH_PRIVATE_KEY: pemFile("wechatpay-mch-private.pem", keys.wechatpay.mchPrivateKeyPem),
      WECHATPAY_PUBLIC_KEY: pemFile("wechatpay-platform-public.pem", keys.wechatpay.platformPublicKeyPem),
      WECHATPAY_PUBLIC_KEY_ID: keys.wechatpay.publicKeyId,
      WECHATPAY_APIV3_KEY: keys.wechatpay.apiV3Key,
      CARD_BASE_URL: `${simulatorUrl}/card`,
      CARD_SECRET_KEY: keys.card.secretKey,
      CARD_WEBHOOK_SECRET: keys.card.webhookSecret,
    },
    profileFlags("service"),
  );
  await waitFor("service", async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok, service);
  log(`service: gRPC 127.0.0.1:${grpcPort}, HTTP 127.0.0.1:${httpPort}${settings.profile ? " (under --cpu-prof)" : ""}`);

  if (simulated.includes("card")) {
    // The acquirer sends events to the account's registered endpoints, not per payment: register the shim's.
    const response = await fetch(`${simulatorUrl}/card/v1/webhook_endpoints`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${keys.card.secretKey}`,
        "content-type": "application/x-www-form-urlencoded",
        "idempotency-key": `bench-endpoint-${randomBytes(6).toString("hex")}`,
      },
      body: new URLSearchParams({ url: `http://127.0.0.1:${httpPort}/callbacks/card`, "enabled_events[]": "*" }).toString(),
    });
    if (!response.ok) throw new Error(`registering the card webhook endpoint failed: ${response.status} ${await response.text()}`);
  }

  const merchants = createGrpcJsClient(MerchantService, `127.0.0.1:${grpcPort}`);
  // No notify URL: the ceilings deliver no webhooks, so neither does the measured service (its
  // event feed still numbers every event and fans them out; deliveries have their own figures in
  // docs/performance.md).
  const notifyUrl = "";
  const created = await merchants.createMerchant({ name: "Bench Shop", notifyUrl }, { authorization: `Bearer ${ADMIN_TOKEN}` });
  const merchantId = created.merchant!.id;
  const merchantHeaders = { authorization: `Bearer ${created.apiKey}` };
  // A fee, so a success posts all three legs (clearing, merchant, fee revenue) as it would in production.
  await merchants.setFeeRule(
    { merchantId, channel: Channel.CARD, currency: "USD", rateBps: 290, fixedFee: 30n, minFee: 0n },
    { authorization: `Bearer ${ADMIN_TOKEN}` },
  );
  merchants.close();

  const addresses = new Map<ServerName, { target: string; pid: number }>();
  addresses.set("service", { target: `127.0.0.1:${grpcPort}`, pid: service.child.pid! });
  let ceiling: Proc | undefined;
  if (needs("ceiling")) {
    ceiling = startProcess(
      "ceiling",
      [
        "bench/ceiling-server.ts",
        JSON.stringify({
          databaseUrl: databaseUrl.toString(),
          cardBaseUrl: `${simulatorUrl}/card`,
          cardSecretKey: keys.card.secretKey,
          poolSize: 20,
          port: 0,
        }),
      ],
      {},
      profileFlags("ceiling"),
    );
    const { port } = (await ceiling.firstJson) as { port: number };
    addresses.set("ceiling", { target: `127.0.0.1:${port}`, pid: ceiling.child.pid! });
  }
  if (needs("callback-ceiling")) {
    const callbackCeiling = startProcess(
      "callback-ceiling",
      [
        "bench/callback-ceiling-server.ts",
        JSON.stringify({ databaseUrl: databaseUrl.toString(), webhookSecret: keys.card.webhookSecret, poolSize: 20, port: 0 }),
      ],
      {},
      profileFlags("callback-ceiling"),
    );
    const { port } = (await callbackCeiling.firstJson) as { port: number };
    addresses.set("callback-ceiling", { target: `http://127.0.0.1:${port}/callbacks/card`, pid: callbackCeiling.child.pid! });
  }
  const callbackUrl = (server: ServerName) =>
    server === "service" ? `http://127.0.0.1:${httpPort}/callbacks/card` : addresses.get(server)!.target;
  const callbackPayments = selected.some((scenario) => scenario.kind === "callback")
    ? await createCallbackPayments(databaseUrl.toString(), `127.0.0.1:${grpcPort}`, merchantHeaders)
    : undefined;
  for (const kind of ["grpc-js", "connect"] as const) {
    const name: ServerName = `echo-${kind}`;
    if (!needs(name)) continue;
    const echo = startProcess(name, ["bench/echo-servers.ts", kind, "0"]);
    const { port } = (await echo.firstJson) as { port: number };
    addresses.set(name, { target: `127.0.0.1:${port}`, pid: echo.child.pid! });
  }

  const skipped: Array<{ scenario: string; reason: string }> = [];
  const runnable = selected.filter((scenario) => {
    if (scenario.channel && !simulated.includes(scenario.channel)) {
      skipped.push({ scenario: scenario.id, reason: `the simulator does not serve ${scenario.channel} yet` });
      return false;
    }
    return true;
  });
  for (const skip of skipped) log(`skipping ${skip.scenario}: ${skip.reason}`);

  const tag = `b${Date.now().toString(36)}`;
  const echoBytes = typicalRequestBytes();
  const loadOptions = (scenario: Scenario, concurrency: number, warmupSeconds: number, durationSeconds: number): LoadOptions => {
    const server = addresses.get(scenario.server)!;
    const usesService = scenario.server === "service";
    return {
      target: server.target,
      kind: scenario.kind,
      channel: scenario.channel,
      concurrency,
      warmupSeconds,
      durationSeconds,
      headers: scenario.kind === "echo" ? {} : merchantHeaders,
      idempotency: scenario.kind !== "echo",
      simulatorUrl,
      simulatorControlToken,
      echoBytes,
      serverPid: server.pid,
      otherPids: scenario.kind === "echo" ? {} : { simulator: simulator.child.pid!, ...(mysqldPid ? { mysqld: mysqldPid } : {}) },
      tag: `${tag}${usesService ? "s" : "c"}`,
    };
  };

  // A callback run settles PENDING payments made for it just before (outside every window). Its
  // size comes from the fastest rate seen so far on that server; a run that used them all up is
  // run again with twice as many.
  const callbackRate = new Map<ServerName, number>();
  const runCallbackLoad = async (scenario: Scenario, concurrency: number, warmupSeconds: number, durationSeconds: number) => {
    for (let attempt = 0; ; attempt++) {
      const rate = (callbackRate.get(scenario.server) ?? 1000) * 2 ** attempt;
      const count = Math.ceil(rate * 1.6 * (warmupSeconds + durationSeconds + 0.5)) + 300;
      const callbacks = await callbackPayments!.prepare(count, callbackUrl(scenario.server), keys.card.webhookSecret);
      const result = await runLoad({ ...loadOptions(scenario, concurrency, warmupSeconds, durationSeconds), callbacks });
      const seen = result.calls / Math.max(result.seconds, 0.001);
      callbackRate.set(scenario.server, Math.max(callbackRate.get(scenario.server) ?? 0, seen));
      if (!result.exhausted || attempt >= 3) return result;
      log(`  ${scenario.id} @${concurrency} used all ${count} prepared payments before its window closed: again with more`);
    }
  };
  const measure = (scenario: Scenario, concurrency: number, warmupSeconds: number, durationSeconds: number) =>
    scenario.kind === "callback"
      ? runCallbackLoad(scenario, concurrency, warmupSeconds, durationSeconds)
      : runLoad(loadOptions(scenario, concurrency, warmupSeconds, durationSeconds));

  // Prime every server once (JIT, connection pools, keep-alive sockets) before anything counts.
  for (const scenario of settings.primeSeconds > 0 ? runnable : []) {
    if (scenario !== runnable.find((s) => s.server === scenario.server && s.kind === scenario.kind && s.channel === scenario.channel)) continue;
    const concurrency = Math.max(...scenario.concurrencies);
    log(`priming ${scenario.id} (${settings.primeSeconds}s)`);
    const primed = await measure(scenario, concurrency, settings.primeSeconds, 0.2);
    if (primed.errors > 0) log(`  priming ${scenario.id} saw ${primed.errors} errors, first: ${primed.firstError}`);
  }

  const points: Point[] = runnable.flatMap((scenario) => scenario.concurrencies.map((concurrency) => ({ scenario, concurrency, runs: [] })));
  // Repetitions outermost, and within one the service run right after the ceiling run at the same
  // concurrency, so drift on a noisy machine hits both sides of each ratio alike.
  const pairs: Record<string, [number, number]> = { ceiling: [0, 0], service: [0, 1], "callback-ceiling": [1, 0], callback: [1, 1] };
  const order = (point: Point) => {
    const pair = pairs[point.scenario.id];
    return pair ? pair[0] * 1e7 + point.concurrency * 2 + pair[1] : Number.MAX_SAFE_INTEGER;
  };
  const schedule = [...points].sort((a, b) => order(a) - order(b));
  for (let rep = 1; rep <= settings.reps; rep++) {
    for (const point of schedule) {
      const result = await measure(point.scenario, point.concurrency, settings.warmupSeconds, settings.durationSeconds);
      point.runs.push(result);
      const errors = result.errors > 0 ? `, ${result.errors} errors (first: ${result.firstError})` : "";
      log(
        `rep ${rep}/${settings.reps} ${point.scenario.id} @${point.concurrency}: ${result.throughput.toFixed(0)}/s, ` +
          `p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms${errors}`,
      );
    }
  }

  const summaries = points.map(summarize);
  const ratios = computeRatios(summaries);
  const table = formatTable(summaries);
  const ratioText = formatRatios(ratios);
  console.log("");
  console.log(table);
  console.log("");
  console.log(ratioText);
  for (const skip of skipped) console.log(`(skipped ${skip.scenario}: ${skip.reason})`);
  console.log(
    `\nmedian of ${settings.reps} run(s) of ${settings.durationSeconds}s after ${settings.warmupSeconds}s warm-up; ` +
      "CPU and peak RSS are the server process's (service, ceiling or echo server) within the measured window;\n" +
      `"all CPU" adds the simulator, the load generator${mysqldPid ? " and mysqld (which also serves anything else using that server)" : ""}.`,
  );

  const profile: Record<string, unknown> = {};
  if (settings.profile) {
    // The profiles are written when the processes exit.
    await Promise.all(procs.filter((proc) => (profiled as string[]).includes(proc.name)).map((proc) => stopProcess(proc)));
    for (const server of profiled) {
      const dir = join(profileDir, server);
      const files = existsSync(dir) ? readdirSync(dir).filter((file) => file.endsWith(".cpuprofile")).map((file) => join(dir, file)) : [];
      if (files.length === 0) continue;
      // One summary per scenario the server ran: the service's create and callback paths apart.
      for (const scenario of runnable.filter((s) => s.server === server)) {
        const windows = points.filter((p) => p.scenario === scenario).flatMap((p) => p.runs.map((r) => r.windowUs));
        if (windows.length === 0) continue;
        const summary = summarizeProfiles(files, windows);
        profile[scenario.id] = summary;
        console.log(`\n${scenario.id} (${server}) CPU profile, measured windows only (${relative(ROOT, dir)}):`);
        console.log(summary.text);
      }
    }
  }

  mkdirSync(settings.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const outFile = join(settings.out, `bench-${stamp}.json`);
  writeFileSync(
    outFile,
    `${JSON.stringify(
      {
        startedAt: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, mysql: mysqlVersion },
        settings,
        simulated,
        skipped,
        results: summaries,
        ratios,
        table,
        ...(settings.profile ? { profile } : {}),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwritten to ${relative(process.cwd(), outFile) || outFile}`);
}

let exitCode = 0;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}
try {
  await main();
} catch (error) {
  exitCode = 1;
  console.error("bench failed:", error);
  for (const proc of procs) console.error(`  ${proc.name} log: ${proc.logFile}`);
} finally {
  if (exitCode !== 0) {
    // Keep the logs that explain the failure.
    const keep = mkdtempSync(join(tmpdir(), "payments-bench-logs-"));
    for (const proc of procs) {
      try {
        writeFileSync(join(keep, `${proc.name}.log`), (await import("node:fs")).readFileSync(proc.logFile));
      } catch {
        // no log
      }
    }
    console.error(`  logs kept in ${keep}`);
  }
  await cleanup();
}
process.exit(exitCode);
