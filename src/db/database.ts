/**
 * Opens the database: MySQL/MariaDB when a URL is given (versioned migrations applied at start),
 * otherwise an embedded SQLite file through libSQL (schema created from the entities at start).
 */
import { join } from "node:path";
import type { EntityMetadata, EntityProperty, EntitySchema, Options } from "@mikro-orm/core";
import type { MikroORM, SqlEntityManager } from "@mikro-orm/knex";
import { LibSqlDriver, MikroORM as LibSqlORM } from "@mikro-orm/libsql";
import { Migrator } from "@mikro-orm/migrations";
import { MySqlDriver, MikroORM as MySqlORM } from "@mikro-orm/mysql";
import { ENTITIES } from "./entities.js";
import { MIGRATIONS } from "./migrations/index.js";

export type DatabaseKind = "mysql" | "sqlite";

export interface Database {
  readonly kind: DatabaseKind;
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
    return wrap("mysql", orm as unknown as MikroORM);
  }
  const orm = await LibSqlORM.init({
    ...common,
    driver: LibSqlDriver,
    dbName: join(options.dataDir, "payments.sqlite"),
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
  return wrap("sqlite", orm as unknown as MikroORM);
}

function wrap(kind: DatabaseKind, orm: MikroORM): Database {
  return {
    kind,
    orm,
    em: () => orm.em.fork() as SqlEntityManager,
    close: () => orm.close(true),
  };
}

/*
 * Row-level SQL for hot paths, used behind repository functions: the same rows `em.insert`,
 * `em.findOne` and `em.nativeUpdate` write and read, without building a query through the query
 * builder and knex each time (measured on the bench machine: about 0.2 ms of CPU per statement
 * instead of 0.45-0.9 ms; see docs/performance.md). Statements are cached per entity and column
 * set; values go through the entity's own types (`BigIntType`, `JsonType`, the platform's date
 * handling) and `em.execute`'s escaping, so both drivers store and return exactly what
 * the ORM would. Only equality conditions; anything richer belongs to the ORM.
 */

type Row = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: any entity schema
type AnyEntity = EntitySchema<any, any>;

interface Statement {
  sql: string;
  props: EntityProperty[];
}

const statements = new WeakMap<EntityMetadata, Map<string, Statement>>();

function metadataOf(em: SqlEntityManager, entity: AnyEntity): EntityMetadata {
  return em.getMetadata().get(entity.meta.className);
}

function statement(em: SqlEntityManager, meta: EntityMetadata, key: string, build: (quote: (id: string) => string) => Statement): Statement {
  let cached = statements.get(meta);
  if (!cached) {
    cached = new Map();
    statements.set(meta, cached);
  }
  let found = cached.get(key);
  if (!found) {
    const platform = em.getPlatform();
    found = build((id) => platform.quoteIdentifier(id));
    cached.set(key, found);
  }
  return found;
}

function property(meta: EntityMetadata, name: string): EntityProperty {
  const prop = meta.properties[name];
  if (!prop?.fieldNames?.[0]) throw new Error(`${meta.className}.${name} is not a column`);
  return prop;
}

function toDatabase(em: SqlEntityManager, prop: EntityProperty, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  const platform = em.getPlatform();
  if (prop.customType) return prop.customType.convertToDatabaseValue(value, platform, { mode: "query-data" });
  if (value instanceof Date) return platform.processDateProperty(value);
  return value;
}

function fromDatabase(em: SqlEntityManager, meta: EntityMetadata, raw: Row): Row {
  const row = em.getDriver().mapResult(raw, meta) as Row;
  const platform = em.getPlatform();
  for (const prop of meta.props) {
    if (prop.customType && row[prop.name] !== null && row[prop.name] !== undefined) {
      row[prop.name] = prop.customType.convertToJSValue(row[prop.name], platform);
    }
  }
  return row;
}

function whereClause(meta: EntityMetadata, names: string[], quote: (id: string) => string): { sql: string; props: EntityProperty[] } {
  const props = names.map((name) => property(meta, name));
  return { sql: props.map((prop) => `${quote(prop.fieldNames[0]!)} = ?`).join(" and "), props };
}

/** Through the driver, so errors arrive as the ORM's exceptions (e.g. UniqueConstraintViolationException). */
function run(em: SqlEntityManager, sql: string, params: unknown[], method: "all" | "run") {
  return em.execute(sql, params, method);
}

/**
 * Runs `work` in a transaction (a savepoint inside an outer one) with a fork of `em` bound to it,
 * committing when it resolves and rolling back when it throws. The same as `em.transactional` for
 * code that writes with `insert`/`nativeUpdate`/the row helpers (the fork is still flushed), minus
 * the transaction-context propagation and event machinery: about 0.2-0.3 ms of CPU less per
 * transaction on the bench machine.
 */
export function inTransaction<T>(em: SqlEntityManager, work: (tx: SqlEntityManager) => Promise<T>): Promise<T> {
  return em.getConnection().transactional(
    async (trx) => {
      const tx = em.fork({ clear: true }) as SqlEntityManager;
      tx.setTransactionContext(trx);
      const result = await work(tx);
      await tx.flush();
      return result;
    },
    { ctx: em.getTransactionContext() },
  );
}

/** Inserts rows of one entity (all with the same properties) in one statement, in `em`'s transaction if any. */
export async function insertRows<T extends object>(em: SqlEntityManager, entity: AnyEntity, rows: readonly T[]): Promise<void> {
  if (rows.length === 0) return;
  const meta = metadataOf(em, entity);
  const names = Object.keys(rows[0]!);
  const { sql, props } = statement(em, meta, `insert:${rows.length}:${names.join(",")}`, (quote) => {
    const props = names.map((name) => property(meta, name));
    const tuple = `(${props.map(() => "?").join(", ")})`;
    return {
      sql: `insert into ${quote(meta.tableName)} (${props.map((prop) => quote(prop.fieldNames[0]!)).join(", ")}) values ${rows.map(() => tuple).join(", ")}`,
      props,
    };
  });
  const params: unknown[] = [];
  for (const row of rows) for (const prop of props) params.push(toDatabase(em, prop, (row as Row)[prop.name]));
  await run(em, sql, params, "run");
}

/** Inserts one row, in `em`'s transaction if any. */
export function insertRow<T extends object>(em: SqlEntityManager, entity: AnyEntity, row: T): Promise<void> {
  return insertRows(em, entity, [row]);
}

/**
 * The rows matching every `where` equality, as the ORM would hydrate them (plain objects), in
 * `orderBy` order; `limit` caps how many.
 */
export async function findRows<T>(
  em: SqlEntityManager,
  entity: AnyEntity,
  where: Readonly<Record<string, unknown>>,
  options: { orderBy?: ReadonlyArray<readonly [string, "asc" | "desc"]>; limit?: number } = {},
): Promise<T[]> {
  const meta = metadataOf(em, entity);
  const names = Object.keys(where);
  const order = options.orderBy ?? [];
  const key = `select:${names.join(",")}:${order.map(([name, direction]) => `${name} ${direction}`).join(",")}:${options.limit ?? ""}`;
  const { sql, props } = statement(em, meta, key, (quote) => {
    const condition = whereClause(meta, names, quote);
    const orderSql = order.map(([name, direction]) => `${quote(property(meta, name).fieldNames[0]!)} ${direction}`).join(", ");
    return {
      sql:
        `select * from ${quote(meta.tableName)} where ${condition.sql}` +
        (orderSql ? ` order by ${orderSql}` : "") +
        (options.limit !== undefined ? ` limit ${Math.floor(options.limit)}` : ""),
      props: condition.props,
    };
  });
  const rows = (await run(em, sql, props.map((prop) => toDatabase(em, prop, where[prop.name])), "all")) as Row[];
  return rows.map((raw) => fromDatabase(em, meta, raw) as T);
}

/** The one row matching every `where` equality, or undefined. */
export async function findRow<T>(em: SqlEntityManager, entity: AnyEntity, where: Readonly<Record<string, unknown>>): Promise<T | undefined> {
  return (await findRows<T>(em, entity, where, { limit: 1 }))[0];
}

/**
 * `UPDATE ... SET changes WHERE` every `where` equality holds, in `em`'s transaction if any;
 * resolves with the number of rows changed (as `nativeUpdate`).
 */
export async function updateRows(
  em: SqlEntityManager,
  entity: AnyEntity,
  where: Readonly<Record<string, unknown>>,
  changes: Readonly<Record<string, unknown>>,
): Promise<number> {
  const meta = metadataOf(em, entity);
  const names = Object.keys(where);
  const changed = Object.keys(changes);
  const { sql, props } = statement(em, meta, `update:${changed.join(",")}:${names.join(",")}`, (quote) => {
    const set = changed.map((name) => property(meta, name));
    const condition = whereClause(meta, names, quote);
    return {
      sql: `update ${quote(meta.tableName)} set ${set.map((prop) => `${quote(prop.fieldNames[0]!)} = ?`).join(", ")} where ${condition.sql}`,
      props: [...set, ...condition.props],
    };
  });
  const values = props.map((prop, i) => toDatabase(em, prop, i < changed.length ? changes[prop.name] : where[prop.name]));
  const result = (await run(em, sql, values, "run")) as { affectedRows?: number };
  return result.affectedRows ?? 0;
}
