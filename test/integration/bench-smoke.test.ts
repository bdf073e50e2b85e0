/**
 * A small run of the benchmark harness (`npm run bench`) with tiny durations: it starts every
 * process, measures every scenario once and writes its table and JSON. Asserts only that it works
 * (every scenario measured, calls completed, no errors), never how fast: timings are not tests.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inject } from "vitest";

const SCENARIOS = ["ceiling", "service", "callback-ceiling", "callback", "full-cycle", "echo-grpc-js", "echo-connect", "alipay", "wechatpay"];

const outDir = mkdtempSync(join(tmpdir(), "bench-smoke-"));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

function runHarness(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const mysqlUrl = inject("mysqlUrl");
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], {
      // The server the test run already found or started, so the harness does not start another.
      env: { ...process.env, ...(mysqlUrl ? { MYSQL_URL: mysqlUrl } : {}) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.on("exit", (code) => resolve({ code, output }));
  });
}

describe("npm run bench", () => {
  it("measures every scenario and prints the table, the ratios and the JSON file", { timeout: 180_000 }, async () => {
    const { code, output } = await runHarness([
      "--duration",
      "0.7",
      "--warmup",
      "0.3",
      "--prime",
      "0",
      "--reps",
      "1",
      "--concurrency",
      "4",
      "--out",
      outDir,
    ]);
    expect(code, output).toBe(0);
    expect(output).toContain("calls/s");
    expect(output).toMatch(/CreatePayment \/ ceiling \(with API-key read\) throughput @4\s+\d+\.\d{2,3}x/);
    expect(output).toMatch(/callback service \/ ceiling throughput @4\s+\d+\.\d{2,3}x/);
    expect(output).toMatch(/callback service \/ ceiling CPU per callback @4\s+\d+\.\d{2,3}x/);

    const files = readdirSync(outDir).filter((file) => file.endsWith(".json"));
    expect(files).toHaveLength(1);
    const report = JSON.parse(readFileSync(join(outDir, files[0]!), "utf8")) as {
      results: Array<{
        scenario: string;
        concurrency: number;
        throughput: number;
        errors: number;
        writesPerCall: number;
        runs: Array<{ firstError?: string; exhausted?: boolean }>;
      }>;
      skipped: Array<{ scenario: string }>;
      ratios: Array<{ name: string; value: number }>;
    };
    expect(report.skipped).toEqual([]);
    expect(new Set(report.results.map((result) => result.scenario))).toEqual(new Set(SCENARIOS));
    expect(report.results.filter((result) => result.scenario === "service").map((result) => result.concurrency)).toEqual([4]);
    expect(report.results.filter((result) => result.scenario === "callback").map((result) => result.concurrency)).toEqual([4]);
    for (const result of report.results) {
      const what = `${result.scenario} @${result.concurrency}: ${result.runs.map((run) => run.firstError ?? "").join(" ")}`;
      expect(result.errors, what).toBe(0);
      expect(result.throughput, what).toBeGreaterThan(0);
      // Every answer leaves the server by a write system call (counted from /proc/<pid>/io).
      expect(result.writesPerCall, what).toBeGreaterThan(0);
      // A callback run that ran out of prepared payments would measure less than its window.
      expect(result.runs.filter((run) => run.exhausted), what).toEqual([]);
    }
    expect(report.ratios.map((ratio) => ratio.name)).toContain("full cycle / ceiling throughput @4");
    expect(report.ratios.map((ratio) => ratio.name)).toContain("callback service / ceiling CPU per callback @4");
    expect(report.ratios.map((ratio) => ratio.name)).toContain("callback service / ceiling main-thread CPU per callback @4");
  });
});
