/**
 * Opens the database: MySQL/MariaDB when a URL is given (versioned migrations applied at start),
 * otherwise an embedded SQLite file through libSQL (schema created from the entities at start).
 */
import type { PoolUse } from "../observability/metrics.js";
import { join } from "node:path";
import { IntegerType, type Options, type Platform, type Type } from "@mikro-orm/core";
import type { MikroORM, SqlEntityManager } from "@mikro-orm/knex";
import { MikroORM as LibSqlORM } from "@mikro-orm/libsql";
import { Migrator } from "@mikro-orm/migrations";
import { MySqlDriver, MikroORM as MySqlORM } from "@mikro-orm/mysql";
import { idleInCache, type TarnPool } from "./connection-cache.js";
import { BoundLibSqlDriver } from "./bound-libsql-driver.js";
import { ENTITIES } from "./entities.js";
import { MIGRATIONS } from "./migrations/index.js";

export type DatabaseKind = "mysql" | "sqlite";
/** The server as OpenTelemetry names it (`db.system.name`): MariaDB speaks MySQL's dialect but is its own system. */
export type DatabaseSystem = "mysql" | "mariadb" | "sqlite";

export interface Database {
  /** The SQL dialect the stores write. */
  readonly kind: DatabaseKind;
  /** The server, for telemetry. */
  readonly system: DatabaseSystem;
  readonly orm: MikroORM;
  /** A fresh EntityManager for one request or one job; never shared. */
  em(): SqlEntityManager;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** `mysql://user:pass@host:port/db`; undefined = embedded SQLite under `dataDir`. */
  url?: string;
  dataDir: string;
  /** Connections per process (MySQL only). */
  poolSize?: number;
}

const common = {
  entities: ENTITIES,
  discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
  forceUtcTimezone: true,
  // Ids are assigned by the application; nothing relies on the ORM's identity map across calls.
  allowGlobalContext: false,
  debug: false,
  // knex would otherwise write a failed statement's values into the error message; the statement
  // with its placeholders is all a log needs (see db/database-errors.ts).
  driverOptions: { compileSqlOnError: false },
} satisfies Options;

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.url) {
    const orm = await MySqlORM.init({
      ...common,
      driver: MySqlDriver,
      clientUrl: options.url.replace(/^mariadb:/, "mysql:"),
      timezone: "+00:00",
      pool: { min: 0, max: options.poolSize ?? 20 },
      extensions: [Migrator],
      // MySQL commits DDL implicitly, so a migration cannot be wrapped in a transaction.
      migrations: { migrationsList: MIGRATIONS, transactional: false, allOrNothing: false, snapshot: false, silent: true },
    });
    await orm.getMigrator().up();
    const [server] = await orm.em.getConnection().execute<Array<{ version: string }>>("select version() as version");
    return wrap("mysql", orm as unknown as MikroORM, /mariadb/i.test(String(server?.version)) ? "mariadb" : "mysql");
  }
  const orm = await LibSqlORM.init({
    ...common,
    // Bound parameters: MikroORM's own libSQL driver writes values into the SQL text.
    driver: BoundLibSqlDriver as never,
    dbName: join(options.dataDir, "payments.sqlite"),
    discovery: { ...common.discovery, getMappedType: sqliteMappedType },
    // One connection: SQLite has one writer anyway, and this keeps transactions from
    // failing with SQLITE_BUSY. Safe integers make BIGINT exact above 2^53.
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { defaultSafeIntegers(on: boolean): void }, done: (e: unknown, c: unknown) => void) {
        conn.defaultSafeIntegers(true);
        done(null, conn);
      },
    },
  });
  await orm.schema.updateSchema();
  return wrap("sqlite", orm as unknown as MikroORM, "sqlite");
}

/**
 * An INTEGER column as a JavaScript number on the embedded database. The connection's safe integers
 * (needed for exact BIGINT money) make libSQL return every integer column as a bigint, and the ORM
 * hands that through for `p.integer()` properties, where the code does number arithmetic
 * (`queryAttempts + 1` threw "Cannot mix BigInt"). INTEGER columns hold counts far below 2^53.
 */
class NumberIntegerType extends IntegerType {
  override convertToJSValue(value: unknown): number {
    return value === null || value === undefined ? (value as unknown as number) : Number(value);
  }
  override compareAsType(): string {
    return "number";
  }
}

function sqliteMappedType(type: string, platform: Platform): Type<unknown> | undefined {
  const mapped = (platform as Platform & { getDefaultMappedType(type: string): Type<unknown> }).getDefaultMappedType(type);
  return mapped instanceof IntegerType ? new NumberIntegerType() : mapped;
}

function wrap(kind: DatabaseKind, orm: MikroORM, system: DatabaseSystem): Database {
  return {
    kind,
    system,
    orm,
    em: () => orm.em.fork() as SqlEntityManager,
    close: () => orm.close(true),
  };
}

/**
 * The connection pool's use for the metrics: connections lent out (`used`), idle in the pool
 * (`free`, also those the row helpers keep between statements: connection-cache.ts), callers
 * waiting for one (`pending`) and the pool's size (`max`). Both databases run on a
 * knex (tarn) pool: on MySQL up to `poolSize` connections, made on demand (`min: 0`, so `used + free`
 * may be below `max`); embedded, the one libSQL connection (`max` 1: `used` 1 while a statement or
 * transaction holds it, and `pending` counts what queues behind it). All zeros before the pool
 * exists (knex makes it with the first query) or after close.
 */
export function poolUse(db: Database): PoolUse {
  const client = (db.orm.em as SqlEntityManager).getConnection().getKnex().client as { pool?: TarnPool | null };
  const pool = client.pool;
  if (!pool) return { used: 0, free: 0, pending: 0, max: 0 };
  // Connections the row helpers keep between statements are lent out as far as tarn knows, and idle.
  const kept = idleInCache(pool);
  // Pending acquires: every caller not yet handed a connection, also one whose connection is being made.
  return { used: pool.numUsed() - kept, free: pool.numFree() + kept, pending: pool.numPendingAcquires(), max: pool.max };
}
