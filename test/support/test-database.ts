import { randomBytes } from "node:crypto";
import { createConnection } from "mysql2/promise";
import { inject } from "vitest";

/** A database of its own for one test file, on the shared test server. */
export interface TestDatabase {
  /** `mysql://…/<name>` of the database. */
  url: string;
  name: string;
  /** Drops the database. */
  drop(): Promise<void>;
}

/**
 * Creates an empty, uniquely named utf8mb4 database (`test_<random>`) on the server found by the global setup.
 * Use one per test file (create in `beforeAll`, drop in `afterAll`) so files run in parallel.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject("mysqlUrl");
  if (!serverUrl) {
    throw new Error(inject("mysqlError") || "no MySQL server: is test/support/global-setup.ts configured?");
  }
  const name = `test_${randomBytes(6).toString("hex")}`;
  await execute(serverUrl, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => execute(serverUrl, `DROP DATABASE IF EXISTS \`${name}\``),
  };
}

async function execute(serverUrl: string, sql: string): Promise<void> {
  const connection = await createConnection({ uri: serverUrl });
  try {
    await connection.query(sql);
  } finally {
    await connection.end();
  }
}
