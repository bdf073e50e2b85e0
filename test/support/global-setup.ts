import type { TestProject } from "vitest/node";
import { ensureMysqlServer } from "./mysql-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Server URL for `createTestDatabase`; empty when no server could be found or started. */
    mysqlUrl: string;
    /** Why `mysqlUrl` is empty. */
    mysqlError: string;
  }
}

/**
 * Vitest global setup: finds or starts the MySQL server that integration tests share
 * (see `ensureMysqlServer`) and stops it after the run.
 * Failing to get one is reported by `createTestDatabase`, so tests without a database still run.
 */
export default async function setup({ provide }: Pick<TestProject, "provide">): Promise<() => Promise<void>> {
  try {
    const server = await ensureMysqlServer();
    provide("mysqlUrl", server.url);
    provide("mysqlError", "");
    return () => server.stop();
  } catch (error) {
    provide("mysqlUrl", "");
    provide("mysqlError", error instanceof Error ? error.message : String(error));
    return async () => {};
  }
}
