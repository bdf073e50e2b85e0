/**
 * `npm run check-ledger` (scripts/check-ledger.ts) as an operator runs it: a real process against a
 * MySQL database, configured by DATABASE_URL alone. A read-only check needs neither ADMIN_TOKEN nor
 * DATA_ENCRYPTION_KEY nor any channel; its exit code says whether the ledger holds.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

/** Runs the script with exactly `env` (plus PATH); resolves with its exit code and output. */
async function checkLedgerScript(env: Record<string, string>): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/check-ledger.ts"], {
      env: { PATH: process.env.PATH ?? "", ...env },
      timeout: 60_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

describe("npm run check-ledger", () => {
  it("checks a clean ledger with DATABASE_URL only (no ADMIN_TOKEN, DATA_ENCRYPTION_KEY or channels) and exits 0", async () => {
    const { code, output } = await checkLedgerScript({ DATABASE_URL: database.url });
    expect(output).not.toMatch(/ADMIN_TOKEN|DATA_ENCRYPTION_KEY|SIMULATED_CHANNELS/);
    expect(output).toContain("ledger OK");
    expect(code).toBe(0);
  });

  it("exits 1 and names the entry when the ledger is broken", async () => {
    // An entry without postings, written behind the service's back (the first run created the tables).
    const connection = await createConnection({ uri: database.url });
    try {
      await connection.query(
        "insert into journal_entry (id, ref, entry_type, merchant_id, currency, created_at) values (?, ?, ?, ?, ?, now(3))",
        ["01JBROKENENTRY000000000000", "test:broken", "PAYMENT_SUCCEEDED", "01JMERCHANT000000000000000", "CNY"],
      );
    } finally {
      await connection.end();
    }
    const { code, output } = await checkLedgerScript({ DATABASE_URL: database.url });
    expect(output).toMatch(/ENTRY_UNBALANCED 01JBROKENENTRY000000000000/);
    expect(output).toContain("ledger BROKEN");
    expect(code).toBe(1);
  });
});
