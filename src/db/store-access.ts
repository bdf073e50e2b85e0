/**
 * For stores only: what a unit-of-work handle is underneath. A session is a {@link SessionHandle};
 * an ORM transaction is an EntityManager bound to the transaction; a row transaction is a
 * `RowTransaction` of db/rows.ts. The boundary test keeps every other module from importing this.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import { MySqlPlatform } from "@mikro-orm/mysql";
import type { RowExecutor } from "./rows.js";
import type { RowScope, Session } from "./unit-of-work.js";

/**
 * A session: an EntityManager fork for ORM calls, hand-written SQL and ORM transactions, made the
 * first time a store asks for it, and a shared EntityManager for row statements, which take only
 * its metadata, platform and connection pool (it is never in a transaction and holds no
 * entities). Forking cost about 2% of a callback's CPU (docs/performance.md), and the create and
 * callback paths run row statements only, so they never fork.
 */
export class SessionHandle {
  #forked: SqlEntityManager | undefined;

  constructor(
    private readonly fork: () => SqlEntityManager,
    /** Where row statements of this session run: outside any transaction, on a pooled connection. */
    readonly rows: SqlEntityManager,
  ) {}

  /** The session's own EntityManager, forked on first use. */
  get em(): SqlEntityManager {
    this.#forked ??= this.fork();
    return this.#forked;
  }
}

/** The EntityManager behind a session or an ORM transaction, for ORM calls and hand-written SQL. */
export function entityManager(session: Session): SqlEntityManager {
  return session instanceof SessionHandle ? session.em : (session as unknown as SqlEntityManager);
}

/** Where the row helpers of db/rows.ts run for a session or either kind of transaction. */
export function rowExecutor(scope: RowScope): RowExecutor {
  return scope instanceof SessionHandle ? scope.rows : (scope as unknown as RowExecutor);
}

/** Whether the session's database is MySQL/MariaDB (else the embedded SQLite): for the statements the dialects spell differently. */
export function isMysql(session: Session): boolean {
  const em = session instanceof SessionHandle ? session.rows : (session as unknown as SqlEntityManager);
  return em.getPlatform() instanceof MySqlPlatform;
}

/** Sum of raw SQL aggregates as bigint, whatever the driver returns (string, number, bigint). */
export function toBigInt(value: unknown): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === "bigint") return value;
  return BigInt(String(value).replace(/\.0+$/, ""));
}
