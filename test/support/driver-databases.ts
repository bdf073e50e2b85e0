/**
 * Databases on either driver for one test file: `open("mysql")` migrates a fresh database on the
 * test server (created on first use, shared by the file), `open("sqlite")` an embedded one in a
 * temporary directory. `close()` closes every one opened and drops the MySQL database.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/db/database.js";
import { createTestDatabase, type TestDatabase } from "./test-database.js";

export type Driver = "mysql" | "sqlite";
export const DRIVERS: readonly Driver[] = ["mysql", "sqlite"];

export function driverDatabases(tempPrefix: string) {
  let mysql: Promise<TestDatabase> | undefined;
  const opened: Database[] = [];
  return {
    /** `poolSize`: connections of a MySQL database's pool (the service's default otherwise). */
    async open(driver: Driver, options: { poolSize?: number } = {}): Promise<Database> {
      if (driver === "mysql" && mysql === undefined) mysql = createTestDatabase();
      const url = driver === "mysql" ? (await mysql)?.url : undefined;
      const db = await openDatabase({ url, dataDir: mkdtempSync(join(tmpdir(), tempPrefix)), poolSize: options.poolSize });
      opened.push(db);
      return db;
    },
    async close(): Promise<void> {
      for (const db of opened) await db.close();
      if (mysql) await (await mysql).drop();
    },
  };
}
