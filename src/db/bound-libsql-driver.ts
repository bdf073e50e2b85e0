/**
 * The embedded (libSQL) driver with bound parameters. MikroORM 6 writes every value into the SQL
 * text before it runs a statement (`platform.formatQuery`), on every driver. For SQLite that text
 * is then cut at the first U+0000 (the statement fails with INTERNAL and its error message carries
 * every value), and a value's bytes depend on the escaping being right. Here the ORM's statement
 * keeps its `?` placeholders and the values go to libSQL as bindings, so no value is ever part of
 * SQL text, and a failing statement's message shows only placeholders. Text with U+0000 is refused
 * ({@link UnstorableTextError}): libSQL could store it but not read it back whole.
 */
import { type Configuration, JsonProperty, RawQueryFragment, Utils } from "@mikro-orm/core";
import { AbstractSqlDriver, type Knex } from "@mikro-orm/knex";
import { LibSqlConnection, LibSqlPlatform } from "@mikro-orm/libsql";

/**
 * A text value with U+0000: libSQL stores it, but reads text back only up to the first U+0000
 * (SQLite's own string functions stop there too), so it would come back silently shortened.
 * Refused instead; the RPC edge refuses control characters before they get here.
 */
export class UnstorableTextError extends Error {
  constructor() {
    super("a text value contains U+0000, which the embedded database cannot read back; refused");
    this.name = "UnstorableTextError";
  }
}

/** A value libSQL binds as it is. */
type Bindable = string | number | bigint | Buffer | Uint8Array | null;

interface BoundStatement {
  sql: string;
  bindings: Bindable[];
}

function isKnexRaw(value: unknown): value is Knex.Raw {
  return typeof value === "object" && value !== null && "client" in value && value.constructor.name === "Raw";
}

/**
 * Turns MikroORM's statement and parameters into SQL with placeholders and a flat list of values,
 * with the meaning `platform.formatQuery` gives them: `??` an identifier (quoted into the text, as
 * identifiers come from the schema, not from input), `?` a value (arrays become lists, nested
 * arrays tuples, objects JSON text, dates epoch milliseconds as the SQLite platform stores them),
 * raw fragments their own SQL with their parameters bound in turn.
 */
export function bindStatement(platform: LibSqlPlatform, sql: string, params: readonly unknown[]): BoundStatement {
  const out: BoundStatement = { sql: "", bindings: [] };
  let next = 0;
  const value = (param: unknown): string => {
    if (param === undefined || param === null) {
      out.bindings.push(null);
      return "?";
    }
    if (RawQueryFragment.isRaw(param)) {
      const fragment = param as RawQueryFragment;
      const inner = bindStatement(platform, fragment.sql, fragment.params ?? []);
      out.bindings.push(...inner.bindings);
      return inner.sql;
    }
    if (isKnexRaw(param)) {
      const native = param.toSQL();
      const inner = bindStatement(platform, native.sql, native.bindings ?? []);
      out.bindings.push(...inner.bindings);
      return inner.sql;
    }
    if (Array.isArray(param)) {
      return param.map((item) => (Array.isArray(item) ? `(${item.map(value).join(", ")})` : value(item))).join(", ");
    }
    if (param instanceof Date) {
      out.bindings.push(param.getTime());
      return "?";
    }
    if (typeof param === "boolean") {
      out.bindings.push(param ? 1 : 0);
      return "?";
    }
    if (typeof param === "string") {
      if (param.includes("\u0000")) throw new UnstorableTextError();
      out.bindings.push(param);
      return "?";
    }
    if (typeof param === "number" || typeof param === "bigint") {
      out.bindings.push(param);
      return "?";
    }
    if (Buffer.isBuffer(param) || param instanceof Uint8Array) {
      out.bindings.push(param);
      return "?";
    }
    if (Utils.isPlainObject(param) || (param as Record<PropertyKey, unknown>)[JsonProperty]) {
      out.bindings.push(JSON.stringify(param));
      return "?";
    }
    throw new TypeError(`cannot bind a ${(param as object).constructor?.name ?? typeof param} as an SQL value`);
  };

  let pos = 0;
  while (pos < sql.length) {
    const at = sql.indexOf("?", pos);
    if (at === -1) {
      out.sql += sql.slice(pos);
      break;
    }
    if (at > 0 && sql[at - 1] === "\\") {
      // An escaped `?` would have to survive knex's own placeholder scan; nothing here writes one.
      throw new Error("escaped '?' in a statement is not supported on the embedded database");
    }
    out.sql += sql.slice(pos, at);
    if (sql[at + 1] === "?") {
      out.sql += platform.quoteIdentifier(params[next++] as string);
      pos = at + 2;
    } else {
      out.sql += value(params[next++]);
      pos = at + 1;
    }
  }
  return out;
}

/** LibSqlConnection whose statements carry bound parameters instead of inlined values. */
export class BoundLibSqlConnection extends LibSqlConnection {
  // biome-ignore lint/suspicious/noExplicitAny: the base class's generic signature
  override async execute<T = any>(
    queryOrKnex: string | Knex.QueryBuilder | Knex.Raw,
    params: unknown[] = [],
    method: "all" | "get" | "run" = "all",
    ctx?: Knex.Transaction,
    loggerContext?: Record<string, unknown>,
  ): Promise<T> {
    await this.ensureConnection();
    let sql: string;
    if (Utils.isObject<Knex.QueryBuilder | Knex.Raw>(queryOrKnex)) {
      ctx ??= (queryOrKnex as unknown as { client: { transacting?: boolean } }).client.transacting
        ? (queryOrKnex as unknown as Knex.Transaction)
        : undefined;
      const native = queryOrKnex.toSQL();
      sql = native.sql;
      params = [...(native.bindings ?? [])];
    } else {
      sql = queryOrKnex;
    }
    sql = this.config.get("onQuery")(sql, params);
    const bound = params.length === 0 ? { sql, bindings: [] } : bindStatement(this.platform as LibSqlPlatform, sql, params);
    return this.executeQuery(
      bound.sql,
      async () => {
        const knex = this.getKnex();
        const query = bound.bindings.length === 0 ? knex.raw(bound.sql) : knex.raw(bound.sql, bound.bindings as Knex.RawBinding[]);
        if (ctx) query.transacting(ctx);
        return this.transformRawResult<T>(await query, method);
      },
      { query: bound.sql, params: [], ...loggerContext },
    );
  }
}

/** The libSQL driver with {@link BoundLibSqlConnection}; otherwise MikroORM's LibSqlDriver. */
export class BoundLibSqlDriver extends AbstractSqlDriver<BoundLibSqlConnection, LibSqlPlatform> {
  constructor(config: Configuration) {
    super(config, new LibSqlPlatform(), BoundLibSqlConnection, ["knex", "libsql"]);
  }
}
