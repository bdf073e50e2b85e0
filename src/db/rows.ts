import { type EntityMetadata, type EntityProperty, type EntitySchema, type Platform, Uint8ArrayType } from "@mikro-orm/core";
import type { SqlEntityManager } from "@mikro-orm/knex";
import { MySqlPlatform } from "@mikro-orm/mysql";
import { SpanKind, type Tracing } from "../observability/tracing.js";
import { connectionCache, type KnexClient, type MysqlConnection } from "./connection-cache.js";

/*
 * Row-level SQL for hot paths, used behind repository functions: the same rows `em.insert`,
 * `em.findOne` and `em.nativeUpdate` write and read, without the query builder, knex's query
 * runner and the ORM's per-query layers. On MySQL each statement is a prepared statement on one of
 * the ORM's pooled connections, kept between statements (connection-cache.ts; the server skips
 * parsing literals too); elsewhere it goes through
 * `em.execute`. Measured on the bench machine, a statement costs about 0.15 ms of CPU this way
 * instead of 0.3-0.9 ms (docs/performance.md). Statements are cached per entity and column set,
 * each with its values' conversions chosen when it is built (per value, only the conversion runs);
 * values go through the entity's own types (`BigIntType`, `JsonType`, the platform's dates), so
 * both drivers store and return exactly what the ORM would. Only equality (and `in` for an update's
 * guard) conditions: anything richer belongs to the ORM or to a store's own statement
 * ({@link runStatement}).
 */

type Row = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: any entity schema
type AnyEntity = EntitySchema<any, any>;

/**
 * A transaction for the row helpers only, from {@link inRowTransaction}. It is not an
 * EntityManager on purpose: ORM calls have no place in it.
 */
export interface RowTransaction {
  /**
   * Where the rows' metadata and types come from. Not for queries: on MySQL it is not bound to
   * the transaction, so anything run through it would run outside.
   */
  readonly em: SqlEntityManager;
  /** MySQL: the connection the transaction runs on. */
  readonly connection?: MysqlConnection;
}

/** Where a row helper runs its statement: an EntityManager (its transaction, if any) or a row transaction. */
export type RowExecutor = SqlEntityManager | RowTransaction;

/**
 * How a statement is sent and what it resolves with: prepared, with its rows (`all`) or
 * `{ affectedRows }` (`run`); or as text with the values escaped by the driver, likewise (`text`,
 * `text-run`).
 */
type Method = "all" | "run" | "text" | "text-run";

/** What a property's value is sent to the driver as (null for null and undefined). */
type ToDatabase = (value: unknown) => unknown;

interface Statement {
  sql: string;
  /** The statement's shape for spans (`UPDATE payment`), worked out once when it is built. */
  summary: string;
  /** The properties bound, in order, each with its value's conversion (an `in` list's values are spread in its place). */
  params: ReadonlyArray<{ readonly name: string; readonly toDatabase: ToDatabase }>;
  /** The property names it was built for, in order. */
  names: readonly string[];
}

/** What the helpers know of an entity, worked out once per ORM: its metadata and its custom-typed properties. */
interface EntityInfo {
  meta: EntityMetadata;
  mysql: boolean;
  /** Properties whose values a hydrated row holds converted by their type (bigint, JSON). */
  customReads: ReadonlyArray<{ readonly name: string; readonly type: NonNullable<EntityProperty["customType"]> }>;
  /** Per statement kind, the statements built so far (usually one per kind). */
  statements: Map<string, Statement[]>;
}

/** Per ORM (its metadata storage), per entity schema. */
const entityInfos = new WeakMap<object, WeakMap<AnyEntity, EntityInfo>>();

function entityManager(executor: RowExecutor): SqlEntityManager {
  return "fork" in executor ? executor : executor.em;
}

function isMysql(em: SqlEntityManager): boolean {
  return em.getPlatform() instanceof MySqlPlatform;
}

function entityInfo(em: SqlEntityManager, entity: AnyEntity): EntityInfo {
  const storage = em.getMetadata();
  let byEntity = entityInfos.get(storage);
  if (!byEntity) {
    byEntity = new WeakMap();
    entityInfos.set(storage, byEntity);
  }
  let info = byEntity.get(entity);
  if (!info) {
    const meta = storage.get(entity.meta.className);
    const customReads = meta.props.filter((prop) => prop.customType).map((prop) => ({ name: prop.name, type: prop.customType! }));
    info = { meta, mysql: isMysql(em), customReads, statements: new Map() };
    byEntity.set(entity, info);
  }
  return info;
}

/**
 * The cached statement of this kind for these property names, built on first use. Looked up by
 * comparing the names, not by joining them into a key: that string building was a measurable
 * part of each call.
 */
function statement(
  em: SqlEntityManager,
  info: EntityInfo,
  kind: string,
  names: readonly string[],
  build: (quote: (id: string) => string) => { sql: string; props: EntityProperty[] },
): Statement {
  let built = info.statements.get(kind);
  if (!built) {
    built = [];
    info.statements.set(kind, built);
  }
  for (const candidate of built) if (sameNames(candidate.names, names)) return candidate;
  const platform = em.getPlatform();
  const { sql, props } = build((id) => platform.quoteIdentifier(id));
  const created = { sql, summary: statementSummary(sql), params: props.map((prop) => ({ name: prop.name, toDatabase: converter(platform, prop) })), names: [...names] };
  built.push(created);
  return created;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function property(meta: EntityMetadata, name: string): EntityProperty {
  const prop = meta.properties[name];
  if (!prop?.fieldNames?.[0]) throw new Error(`${meta.className}.${name} is not a column`);
  return prop;
}

const QUERY_DATA = { mode: "query-data" } as const;

/** How a property's values are sent, decided once per statement instead of per value. */
function converter(platform: Platform, prop: EntityProperty): ToDatabase {
  const type = prop.customType;
  // A blob's type copies every value into a new Buffer; one that is a Buffer already goes as it is (the same bytes).
  if (type instanceof Uint8ArrayType) return (value) => (value === null || value === undefined ? null : Buffer.isBuffer(value) ? value : type.convertToDatabaseValue(value as Uint8Array));
  if (type) return (value) => (value === null || value === undefined ? null : type.convertToDatabaseValue(value, platform, QUERY_DATA));
  // MySQL: the Date itself, which mysql2 sends in the connection's time zone (UTC); SQLite: epoch milliseconds.
  return (value) => (value === null || value === undefined ? null : value instanceof Date ? platform.processDateProperty(value) : value);
}

function fromDatabase(em: SqlEntityManager, info: EntityInfo, raw: Row): Row {
  const row = em.getDriver().mapResult(raw, info.meta) as Row;
  const platform = em.getPlatform();
  for (const { name, type } of info.customReads) {
    const value = row[name];
    if (value !== null && value !== undefined) row[name] = type.convertToJSValue(value, platform);
  }
  return row;
}

/**
 * `a = ? and b = ?`; a property listed in `inSizes` with n values is `c in (?, ..., ?)` instead
 * (its values are spread into the parameters in place).
 */
function whereClause(
  meta: EntityMetadata,
  names: readonly string[],
  quote: (id: string) => string,
  inSizes?: ReadonlyMap<string, number>,
): { sql: string; props: EntityProperty[] } {
  const props = names.map((name) => property(meta, name));
  const sql = props
    .map((prop) => {
      const size = inSizes?.get(prop.name);
      const column = quote(prop.fieldNames[0]!);
      return size === undefined ? `${column} = ?` : `${column} in (${Array.from({ length: size }, () => "?").join(", ")})`;
    })
    .join(" and ");
  return { sql, props };
}

/**
 * Runs one statement: on a row transaction's connection; on MySQL as a prepared statement on the
 * EntityManager's transaction connection or a connection from the ORM's pool; elsewhere through
 * `em.execute`. Errors arrive as the ORM's exceptions (e.g. UniqueConstraintViolationException).
 */
function run(executor: RowExecutor, sql: string, params: unknown[], method: Method, mysql?: boolean, summary?: string): Promise<unknown> {
  // Tracing off in every app of the process: one module variable read, nothing allocated.
  if (statementTracings === undefined) return execute(executor, sql, params, method, mysql);
  const em = entityManager(executor);
  const traced = statementTracings.get(em.getMetadata());
  // The embedded database's statements go through the ORM's knex, whose spans are traceOrmStatements' (unit-of-work.ts).
  if (traced === undefined || (!(executor as RowTransaction).connection && !(mysql ?? isMysql(em)))) return execute(executor, sql, params, method, mysql);
  const shape = summary ?? statementSummary(sql);
  const span = traced.tracing.startChild(shape, { kind: SpanKind.CLIENT, attributes: { "db.system.name": traced.system, "db.query.summary": shape } });
  if (span === undefined) return execute(executor, sql, params, method, mysql);
  return execute(executor, sql, params, method, mysql).then(
    (result) => {
      span.end();
      return result;
    },
    (error: unknown) => {
      span.end(statementFailure(error));
      throw error;
    },
  );
}

/**
 * {@link run} itself. Plain promise chains rather than `async` functions: a statement is on every
 * hot path, and each `async` layer and awaited callback wrapper cost a promise and a microtask more.
 */
function execute(executor: RowExecutor, sql: string, params: unknown[], method: Method, mysql?: boolean): Promise<unknown> {
  const em = entityManager(executor);
  const own = (executor as RowTransaction).connection;
  if (own) return executeOn(own, em, sql, params, method);
  if (!(mysql ?? isMysql(em))) return em.execute(sql, params, method === "text" ? "all" : method === "text-run" ? "run" : method);
  const context = em.getTransactionContext<{ client: KnexClient }>();
  // A knex transaction's client hands out the transaction's connection and never returns it to the pool.
  if (context) return onAcquired(context.client, context.client.acquireConnection(), em, sql, params, method);
  const client = em.getConnection().getKnex().client as unknown as KnexClient;
  const cache = connectionCache(client);
  if (!cache) return onAcquired(client, client.acquireConnection(), em, sql, params, method);
  const kept = cache.take();
  if (kept) return releasedAfter(cache, kept, executeOn(kept, em, sql, params, method));
  return cache.acquire().then((connection) => releasedAfter(cache, connection, executeOn(connection, em, sql, params, method)));
}

/** Runs the statement on a connection from `acquired`, then gives it back to `client`. */
function onAcquired(client: KnexClient, acquired: Promise<MysqlConnection>, em: SqlEntityManager, sql: string, params: unknown[], method: Method): Promise<unknown> {
  return acquired.then((connection) => releasedAfter({ release: (used) => client.releaseConnection(used) }, connection, executeOn(connection, em, sql, params, method)));
}

/** `work`'s outcome, once `connection` has been given back to `to`. */
function releasedAfter(to: { release(connection: MysqlConnection): unknown }, connection: MysqlConnection, work: Promise<unknown>): Promise<unknown> {
  return work.then(
    (result) => {
      to.release(connection);
      return result;
    },
    (error: unknown) => {
      to.release(connection);
      throw error;
    },
  );
}

/**
 * One statement on `connection`: prepared (`all`, `run`), or as text with the values escaped by the
 * driver (`text`, `text-run`). Errors arrive as the ORM's exceptions.
 */
function executeOn(connection: MysqlConnection, em: SqlEntityManager, sql: string, params: unknown[], method: Method): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, result: unknown) => {
      if (error) reject(em.getDriver().convertException(error));
      else resolve(method === "all" || method === "text" ? result : { affectedRows: (result as { affectedRows?: number }).affectedRows ?? 0 });
    };
    if (method === "text" || method === "text-run") connection.query(sql, params, done);
    else connection.execute(sql, params, done);
  });
}

/** A text statement (BEGIN, COMMIT, ROLLBACK) on `connection`. */
function queryOn(connection: MysqlConnection, em: SqlEntityManager, sql: string): Promise<void> {
  return new Promise((resolve, reject) => connection.query(sql, [], (error) => (error ? reject(em.getDriver().convertException(error)) : resolve())));
}

/**
 * Runs `work` in a transaction for the row helpers: committed when it resolves, rolled back when it
 * throws. On MySQL it is BEGIN ... COMMIT on one connection taken from the ORM's pool; elsewhere,
 * or inside an outer ORM transaction (as a savepoint), a knex transaction. Measured on the bench
 * machine: about 0.5 ms of CPU less than `em.transactional` with `em.insert`s.
 */
export async function inRowTransaction<T>(em: SqlEntityManager, work: (tx: RowTransaction) => Promise<T>): Promise<T> {
  if (!isMysql(em) || em.getTransactionContext()) {
    return em.getConnection().transactional(
      async (trx) => {
        const fork = em.fork({ clear: true }) as SqlEntityManager;
        fork.setTransactionContext(trx);
        return work({ em: fork });
      },
      { ctx: em.getTransactionContext() },
    );
  }
  const client = em.getConnection().getKnex().client as unknown as KnexClient;
  const cache = connectionCache(client);
  const connection = cache?.take() ?? (await (cache ? cache.acquire() : client.acquireConnection()));
  let broken = false;
  try {
    await queryOn(connection, em, "BEGIN");
    const result = await work({ em, connection });
    await queryOn(connection, em, "COMMIT");
    return result;
  } catch (error) {
    // Never hand a connection back to the pool inside a transaction: if even ROLLBACK fails,
    // close it, and the pool's validation drops it.
    await queryOn(connection, em, "ROLLBACK").catch(() => {
      broken = true;
      connection.destroy();
    });
    throw error;
  } finally {
    if (!cache) client.releaseConnection(connection);
    else if (broken) cache.discard(connection);
    else cache.release(connection);
  }
}

/** Inserts rows of one entity (all with the same properties) in one statement. */
export function insertRows<T extends object>(executor: RowExecutor, entity: AnyEntity, rows: readonly T[]): Promise<void> {
  if (rows.length === 0) return Promise.resolve();
  const em = entityManager(executor);
  const info = entityInfo(em, entity);
  const { meta } = info;
  const names = Object.keys(rows[0]!);
  const { sql, summary, params: columns } = statement(em, info, `insert:${rows.length}`, names, (quote) => {
    const props = names.map((name) => property(meta, name));
    const tuple = `(${props.map(() => "?").join(", ")})`;
    return {
      sql: `insert into ${quote(meta.tableName)} (${props.map((prop) => quote(prop.fieldNames[0]!)).join(", ")}) values ${rows.map(() => tuple).join(", ")}`,
      props,
    };
  });
  const params: unknown[] = [];
  for (const row of rows) for (const { name, toDatabase } of columns) params.push(toDatabase((row as Row)[name]));
  return run(executor, sql, params, "run", info.mysql, summary).then(ignore);
}

function ignore(): void {}

/** Inserts one row. */
export function insertRow<T extends object>(executor: RowExecutor, entity: AnyEntity, row: T): Promise<void> {
  return insertRows(executor, entity, [row]);
}

/** Options of {@link findRows}. */
export interface FindOptions {
  orderBy?: ReadonlyArray<readonly [string, "asc" | "desc"]>;
  limit?: number;
  /**
   * Only these properties (a constant array: the statement is cached by its identity); all of
   * them when absent. A row read on a hot path names what it uses: every column costs a column
   * definition to parse and a value to decode on each read.
   */
  columns?: readonly string[];
}

/** A key per constant column list, so a statement is looked up without joining the names on every call. */
const columnListKeys = new WeakMap<readonly string[], string>();

function columnListKey(columns: readonly string[] | undefined): string {
  if (columns === undefined) return "*";
  let key = columnListKeys.get(columns);
  if (key === undefined) {
    key = columns.join(",");
    columnListKeys.set(columns, key);
  }
  return key;
}

/**
 * The rows matching every `where` equality, as the ORM would hydrate them (plain objects, with
 * only `columns` when given), in `orderBy` order; `limit` caps how many.
 */
export function findRows<T>(
  executor: RowExecutor,
  entity: AnyEntity,
  where: Readonly<Record<string, unknown>>,
  options: FindOptions = {},
): Promise<T[]> {
  const em = entityManager(executor);
  const info = entityInfo(em, entity);
  const { meta } = info;
  const names = Object.keys(where);
  const order = options.orderBy ?? [];
  const columns = options.columns;
  const kind =
    (order.length === 0 ? `select::${options.limit ?? ""}` : `select:${order.map(([name, direction]) => `${name} ${direction}`).join(",")}:${options.limit ?? ""}`) +
    `:${columnListKey(columns)}`;
  const { sql, summary, params } = statement(em, info, kind, names, (quote) => {
    const condition = whereClause(meta, names, quote);
    const orderSql = order.map(([name, direction]) => `${quote(property(meta, name).fieldNames[0]!)} ${direction}`).join(", ");
    const selected = columns === undefined ? "*" : columns.map((name) => quote(property(meta, name).fieldNames[0]!)).join(", ");
    return {
      sql:
        `select ${selected} from ${quote(meta.tableName)} where ${condition.sql}` +
        (orderSql ? ` order by ${orderSql}` : "") +
        (options.limit !== undefined ? ` limit ${Math.floor(options.limit)}` : ""),
      props: condition.props,
    };
  });
  const values = params.map(({ name, toDatabase }) => toDatabase(where[name]));
  return run(executor, sql, values, "all", info.mysql, summary).then((rows) => (rows as Row[]).map((raw) => fromDatabase(em, info, raw) as T));
}

/** The one row matching every `where` equality (only `columns`, when given), or undefined. */
export function findRow<T>(
  executor: RowExecutor,
  entity: AnyEntity,
  where: Readonly<Record<string, unknown>>,
  columns?: readonly string[],
): Promise<T | undefined> {
  return findRows<T>(executor, entity, where, columns === undefined ? ONE_ROW : { limit: 1, columns }).then(firstRow);
}

const ONE_ROW: FindOptions = { limit: 1 };

function firstRow<T>(rows: T[]): T | undefined {
  return rows[0];
}

/**
 * `UPDATE ... SET changes WHERE` every `where` equality holds; resolves with the number of rows
 * changed (as `nativeUpdate`).
 */
export function updateRows(
  executor: RowExecutor,
  entity: AnyEntity,
  where: Readonly<Record<string, unknown>>,
  changes: Readonly<Record<string, unknown>>,
): Promise<number> {
  const em = entityManager(executor);
  const info = entityInfo(em, entity);
  const { meta } = info;
  const names = Object.keys(where);
  const changed = Object.keys(changes);
  // A condition given a list of values is `in (...)`: the statement differs per list length.
  let inSizes: Map<string, number> | undefined;
  let kind = `update:${changed.length}`;
  for (const name of names) {
    const value = where[name];
    if (!Array.isArray(value)) continue;
    if (value.length === 0) return Promise.resolve(0);
    inSizes ??= new Map();
    inSizes.set(name, value.length);
    kind += `:${name}=${value.length}`;
  }
  const { sql, summary, params } = statement(em, info, kind, [...changed, ...names], (quote) => {
    const set = changed.map((name) => property(meta, name));
    const condition = whereClause(meta, names, quote, inSizes);
    return {
      sql: `update ${quote(meta.tableName)} set ${set.map((prop) => `${quote(prop.fieldNames[0]!)} = ?`).join(", ")} where ${condition.sql}`,
      props: [...set, ...condition.props],
    };
  });
  const values: unknown[] = [];
  for (let i = 0; i < params.length; i++) {
    const { name, toDatabase } = params[i]!;
    const value = i < changed.length ? changes[name] : where[name];
    if (Array.isArray(value)) for (const item of value) values.push(toDatabase(item));
    else values.push(toDatabase(value));
  }
  return run(executor, sql, values, "run", info.mysql, summary).then((result) => (result as { affectedRows?: number }).affectedRows ?? 0);
}

/** Whether the executor's database is MySQL/MariaDB (else the embedded SQLite), for statements the dialects spell differently. */
export function isMysqlExecutor(executor: RowExecutor): boolean {
  return isMysql(entityManager(executor));
}

/**
 * A hand-written statement (an upsert, column arithmetic) run like the helpers' own: on MySQL a
 * prepared statement on the transaction's connection, elsewhere through `em.execute`. Values go
 * as given (bigint, string, Date: mysql2 sends dates in the connection's time zone, UTC). Resolves
 * with the number of rows changed.
 */
export async function runStatement(executor: RowExecutor, sql: string, params: readonly unknown[]): Promise<number> {
  const result = (await run(executor, sql, [...params], "run")) as { affectedRows?: number };
  return Number(result.affectedRows ?? 0);
}

/**
 * A hand-written statement sent as text, with its values escaped by the driver, on the connection
 * the helpers would use (the transaction's, or a kept one): for statements whose text changes with
 * the length of a list (a prepared statement per length would pile up on every pooled connection,
 * against the server's `max_prepared_stmt_count`) and for the event loops' reads, which the ORM's
 * `execute` ran as text too, with its own layers. Resolves with the rows as the driver returns
 * them; elsewhere through `em.execute`, as before.
 */
export function queryRows<T = Record<string, unknown>>(executor: RowExecutor, sql: string, params: readonly unknown[] = []): Promise<T[]> {
  return run(executor, sql, [...params], "text") as Promise<T[]>;
}

/** As {@link queryRows}, for a statement that changes rows; resolves with how many. */
export function queryChanges(executor: RowExecutor, sql: string, params: readonly unknown[] = []): Promise<number> {
  return run(executor, sql, [...params], "text-run").then((result) => Number((result as { affectedRows?: number }).affectedRows ?? 0));
}

/**
 * The tracing of each ORM (by its metadata storage) whose row statements get spans; undefined
 * until some app in the process turns tracing on, so that with tracing off a statement costs one
 * variable read and no lookup.
 */
let statementTracings: WeakMap<object, { tracing: Tracing; system: string }> | undefined;

/**
 * From now on every row statement this ORM runs on MySQL inside a trace is a CLIENT span (a child
 * of the active span: the transaction's, the RPC's) named by its shape, with `db.query.summary`
 * and never its values; outside a trace it gets none. On the embedded database the ORM's own
 * statement spans cover them (unit-of-work.ts).
 */
export function traceRowStatements(em: SqlEntityManager, tracing: Tracing, system: string): void {
  if (!tracing.enabled) return;
  statementTracings ??= new WeakMap();
  statementTracings.set(em.getMetadata(), { tracing, system });
}

/** A single-quoted string value, as the ORM's MySQL formatting writes one (backslash and doubled-quote escapes). */
const QUOTED_TEXT = /'(?:[^'\\]|\\.|'')*'/g;
const SHAPES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^select\b[\s\S]*?\bfrom\s+[`"]?(\w+)/i, "SELECT"],
  [/^insert\s+(?:ignore\s+)?into\s+[`"]?(\w+)/i, "INSERT"],
  [/^update\s+[`"]?(\w+)/i, "UPDATE"],
  [/^delete\s+from\s+[`"]?(\w+)/i, "DELETE"],
];

/**
 * A statement's shape for a span name and `db.query.summary`: its operation and first table
 * (`UPDATE payment`, `SELECT merchant`), else its first keyword (`BEGIN`). The ORM writes values
 * into its MySQL statements' text, so quoted string values are cut out before the table is looked
 * for: a summary only ever holds a keyword and a bare or quoted name.
 */
export function statementSummary(sql: string): string {
  const text = sql.trimStart().slice(0, 4096).replace(QUOTED_TEXT, "?");
  for (const [shape, operation] of SHAPES) {
    const match = shape.exec(text);
    if (match) return `${operation} ${match[1]}`;
  }
  return (/^[a-z]+/i.exec(text)?.[0] ?? "SQL").toUpperCase();
}

/**
 * What a failed statement's span records: the error's class and driver code only. The ORM's and
 * the driver's messages carry the statement with its values (a duplicate key names the value).
 */
export function statementFailure(error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  const failure = new Error(typeof code === "string" ? code : "statement failed");
  failure.name = error instanceof Error ? error.name : "Error";
  return failure;
}
