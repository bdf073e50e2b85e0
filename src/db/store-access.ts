/**
 * For stores only: what a unit-of-work handle is underneath. A session or an ORM transaction is an
 * EntityManager (forked per request, or bound to the transaction); a row transaction is a
 * `RowTransaction` of db/rows.ts. The boundary test keeps every other module from importing this.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import { MySqlPlatform } from "@mikro-orm/mysql";
import type { RowExecutor } from "./rows.js";
import type { RowScope, Session } from "./unit-of-work.js";

/** The EntityManager behind a session or an ORM transaction, for ORM calls and hand-written SQL. */
export function entityManager(session: Session): SqlEntityManager {
  return session as unknown as SqlEntityManager;
}

/** Where the row helpers of db/rows.ts run for a session or either kind of transaction. */
export function rowExecutor(scope: RowScope): RowExecutor {
  return scope as unknown as RowExecutor;
}

/** Whether the session's database is MySQL/MariaDB (else the embedded SQLite): for the statements the dialects spell differently. */
export function isMysql(session: Session): boolean {
  return entityManager(session).getPlatform() instanceof MySqlPlatform;
}

/** Sum of raw SQL aggregates as bigint, whatever the driver returns (string, number, bigint). */
export function toBigInt(value: unknown): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === "bigint") return value;
  return BigInt(String(value).replace(/\.0+$/, ""));
}
