/**
 * `npm run reconcile` (scripts/reconcile.ts) as an operator runs it: a real process with the
 * service's configuration, reconciling an imported card bill (JSON lines of balance transactions)
 * against a MySQL database. Exit 0 when every line matched, 1 when a discrepancy was found, 2 for
 * bad arguments or a bill that cannot be read (naming the line).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeCardBillFile } from "../../src/channels/card/card-bill.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

let database: TestDatabase;
let directory: string;

beforeAll(async () => {
  database = await createTestDatabase();
  directory = await mkdtemp(join(tmpdir(), "reconcile-cli-"));
});
afterAll(async () => {
  await database?.drop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

async function reconcileScript(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? "",
    DATABASE_URL: database.url,
    ADMIN_TOKEN: "cli-test-admin-token-0123456789",
    DATA_ENCRYPTION_KEY: "cli-test-data-encryption-key-0123456789abcdef",
    SIMULATED_CHANNELS: "card",
    DATA_DIR: directory,
  };
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/reconcile.ts", ...args], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("npm run reconcile", () => {
  it("exits 0 when every line matched (an empty day), with the summary table", async () => {
    const path = join(directory, "empty.jsonl");
    await writeCardBillFile(path, []);
    const { code, stdout } = await reconcileScript(["--channel", "card", "--date", "2026-11-10", "--file", path]);
    expect(stdout).toMatch(/lines on the bill\s+0/);
    expect(stdout).toMatch(/MISSING_ON_OUR_SIDE\s+0/);
    expect(code).toBe(0);
  });

  it("exits 1 when a discrepancy was found, counting it in its class", async () => {
    const path = join(directory, "foreign.jsonl");
    await writeCardBillFile(path, [
      {
        kind: "payment",
        paymentNo: "P-NOT-OURS-1",
        intentId: "pi_not_ours",
        amountMinor: 2_000n,
        feeMinor: 88n,
        currency: "USD",
        occurredAt: new Date("2026-11-11T08:00:00Z"),
      },
    ]);
    const { code, stdout, stderr } = await reconcileScript(["--channel", "card", "--date", "2026-11-11", "--file", path]);
    expect(stdout).toMatch(/MISSING_ON_OUR_SIDE\s+1/);
    expect(stdout).toMatch(/channel fee 88 USD/);
    // Not a terminal: plain progress lines.
    expect(stderr).toMatch(/matching lines: 1\/1/);
    expect(code).toBe(1);
  });

  it("exits 2 on bad arguments and on a bill that cannot be read, naming the line", async () => {
    expect((await reconcileScript(["--channel", "card"])).code).toBe(2);
    expect((await reconcileScript(["--channel", "paypal", "--date", "2026-11-11"])).code).toBe(2);
    expect((await reconcileScript(["--channel", "card", "--date", "2026-11-31", "--file", "x"])).code).toBe(2);
    const path = join(directory, "broken.jsonl");
    await writeFile(path, '{"id":"txn_1"}\n{broken\n');
    const broken = await reconcileScript(["--channel", "card", "--date", "2026-11-12", "--file", path]);
    expect(broken.stderr).toMatch(/line 1/);
    expect(broken.code).toBe(2);
  });
});
