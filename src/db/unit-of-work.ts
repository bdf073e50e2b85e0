/**
 * The unit of work: the only way domain code reaches the database. It hands out a session per
 * request or job and runs work in a transaction; domain code passes these handles to the stores
 * (`src/<aggregate>/*-store.ts`), which hold every statement. The handles are opaque on purpose:
 * nothing outside a store can run SQL or an ORM call through them.
 *
 * Two kinds of transaction:
 * - {@link UnitOfWork.transaction}: an ORM transaction; every store function runs in it.
 * - {@link UnitOfWork.rowTransaction}: on MySQL a bare BEGIN ... COMMIT on one pooled connection,
 *   about 0.5 ms of CPU cheaper (docs/performance.md); only the store functions that take a
 *   {@link RowScope} (prepared row statements) run in it. The create hot path uses it.
 */
import { DeadlockException, IsolationLevel, UniqueConstraintViolationException } from "@mikro-orm/core";
import type { SqlEntityManager } from "@mikro-orm/knex";
import { MySqlPlatform } from "@mikro-orm/mysql";
import type { Attributes } from "@opentelemetry/api";
import { type ActiveSpan, SpanKind, type Tracing } from "../observability/tracing.js";
import type { Database } from "./database.js";
import { inRowTransaction, statementFailure, statementSummary, traceRowStatements } from "./rows.js";
import { entityManager, SessionHandle } from "./store-access.js";

declare const sessionBrand: unique symbol;
declare const txBrand: unique symbol;
declare const rowTxBrand: unique symbol;

/** Database access for one request or one job (reads and single statements outside a transaction). */
export interface Session {
  readonly [sessionBrand]: true;
}

/** An open transaction from {@link UnitOfWork.transaction}; also a session whose reads see the transaction. */
export interface Tx extends Session {
  readonly [txBrand]: true;
}

/** An open transaction from {@link UnitOfWork.rowTransaction}: only row-statement store functions run in it. */
export interface RowTx {
  readonly [rowTxBrand]: true;
}

/** Where a row-statement store function may run: a session, either kind of transaction. */
export type RowScope = Session | RowTx;

export interface TransactionOptions {
  /**
   * Attempts in all when the database rolls the transaction back as a deadlock victim (default 1:
   * no retry). Safe because the victim's work was rolled back; `work` must not have effects
   * outside the database.
   */
  deadlockAttempts?: number;
  /**
   * MySQL: run at READ COMMITTED instead of the server's REPEATABLE READ. For work that updates
   * rows found through an index other inserts write into (the event sequencer numbering
   * `seq IS NULL` rows): without gap locks, and reading past rows other transactions have not
   * committed, it neither blocks those inserts nor deadlocks with them. The embedded database runs
   * one writer at a time and ignores it.
   */
  readCommitted?: boolean;
}

export interface UnitOfWork {
  /** A fresh session for one request or one job; never shared between them. */
  session(): Session;
  /** Runs `work` in a transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(session: Session, work: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** As {@link transaction}, for work made only of row statements (the create and callback paths). */
  rowTransaction<T>(session: Session, work: (tx: RowTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
}

export interface UnitOfWorkOptions {
  /**
   * Spans for transactions and statements when enabled: `db.transaction` / `db.row_transaction`
   * per transaction (a child of the active span), and a CLIENT span per statement named by its
   * shape (`UPDATE payment`). Off (the default): the unit of work is the untraced one, unchanged.
   */
  tracing?: Tracing;
}

/**
 * The unit of work over an open database. A session forks its EntityManager only when a store
 * makes an ORM call or an ORM transaction is opened on it (store-access.ts, `SessionHandle`).
 */
export function createUnitOfWork(db: Pick<Database, "em" | "system">, options: UnitOfWorkOptions = {}): UnitOfWork {
  const rows = db.em();
  const fork = () => db.em();
  const plain: UnitOfWork = {
    session: () => new SessionHandle(fork, rows) as unknown as Session,
    transaction: (session, work, txOptions = {}) => ormTransaction(session, work, txOptions),
    rowTransaction: (session, work, txOptions = {}) => rowTransaction(session, work, txOptions),
  };
  const tracing = options.tracing;
  if (!tracing?.enabled) return plain;

  const system = db.system;
  traceRowStatements(rows, tracing, system);
  traceOrmStatements(rows, tracing, system);
  /**
   * One transaction (with its deadlock retries) as a span, the statements in it its children; only
   * inside a trace (the event loops' polling transactions alone would each be a trace).
   */
  const traced = async <T>(name: string, txOptions: TransactionOptions, run: (onRetry?: () => void) => Promise<T>): Promise<T> => {
    const span = tracing.startChild(name, { attributes: transactionAttributes(system, txOptions) });
    if (span === undefined) return run();
    let retries = 0;
    try {
      const result = await span.run(() => run(() => retries++));
      if (retries > 0) span.setAttributes({ "payments.db.deadlock_retries": retries });
      span.end();
      return result;
    } catch (error) {
      if (retries > 0) span.setAttributes({ "payments.db.deadlock_retries": retries });
      span.end(error);
      throw error;
    }
  };
  return {
    session: plain.session,
    transaction: (session, work, txOptions = {}) => traced("db.transaction", txOptions, (onRetry) => ormTransaction(session, work, txOptions, onRetry)),
    rowTransaction: (session, work, txOptions = {}) =>
      traced("db.row_transaction", txOptions, (onRetry) => rowTransaction(session, work, txOptions, onRetry)),
  };
}

function ormTransaction<T>(session: Session, work: (tx: Tx) => Promise<T>, options: TransactionOptions, onRetry?: () => void): Promise<T> {
  const em = entityManager(session);
  const isolationLevel = options.readCommitted && em.getPlatform() instanceof MySqlPlatform ? IsolationLevel.READ_COMMITTED : undefined;
  return retryDeadlocks(options, () => inOrmTransaction(em, (tx) => work(tx as unknown as Tx), isolationLevel), onRetry);
}

/**
 * An ORM transaction without `em.transactional`: a fork of `em` bound to a knex transaction (a
 * savepoint when `em` is in one already), committed when `work` resolves and rolled back when it
 * throws. `em.transactional` would also run `work` inside MikroORM's AsyncLocalStorage and flush
 * the fork inside another; the first `AsyncLocalStorage.run` turns on Node 20's promise hooks for
 * the rest of the process's life, and from then on every promise of every request pays for them
 * (the row layer's own JavaScript took 60% longer with them on; docs/performance.md). Neither is
 * needed here: stores write only with statements (nothing is persisted, so there is nothing to
 * flush), and they run every call on the handle they are given, never on a context.
 */
function inOrmTransaction<T>(em: SqlEntityManager, work: (tx: SqlEntityManager) => Promise<T>, isolationLevel: IsolationLevel | undefined): Promise<T> {
  const ctx = em.getTransactionContext();
  return em.getConnection("write").transactional(
    (trx) => {
      const tx = em.fork({ clear: false }) as SqlEntityManager;
      tx.setTransactionContext(trx);
      return work(tx);
    },
    { ctx, isolationLevel },
  );
}

function rowTransaction<T>(session: Session, work: (tx: RowTx) => Promise<T>, options: TransactionOptions, onRetry?: () => void): Promise<T> {
  // Only an ORM transaction (a Tx passed as the session) makes this a savepoint inside it.
  const em = session instanceof SessionHandle ? session.rows : entityManager(session);
  return retryDeadlocks(options, () => inRowTransaction(em, (tx) => work(tx as unknown as RowTx)), onRetry);
}

function transactionAttributes(system: string, options: TransactionOptions): Attributes {
  const attributes: Attributes = { "db.system.name": system };
  // The embedded database ignores the isolation asked for (one writer at a time).
  if (options.readCommitted && system !== "sqlite") attributes["payments.db.isolation"] = "READ COMMITTED";
  if (options.deadlockAttempts !== undefined) attributes["payments.db.deadlock_attempts"] = options.deadlockAttempts;
  return attributes;
}

/** Runs `run` (one whole transaction) again while it fails as a deadlock victim, up to `deadlockAttempts` in all. */
function retryDeadlocks<T>(options: TransactionOptions, run: () => Promise<T>, onRetry?: () => void): Promise<T> {
  const attempts = options.deadlockAttempts ?? 1;
  // No retry asked for (the create and callback paths): the transaction itself, without a layer around it.
  return attempts <= 1 ? run() : retrying(attempts, run, onRetry);
}

async function retrying<T>(attempts: number, run: () => Promise<T>, onRetry?: () => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof DeadlockException) || attempt >= attempts) throw error;
      onRetry?.();
    }
  }
}

/** A knex query event's object: the statement (its values written into the text by the ORM) and its id. */
interface KnexQuery {
  __knexQueryUid?: string;
  sql?: string;
}

/** The events of a knex client that statement spans are made from. */
export interface KnexQueryEvents {
  on(event: "query", listener: (query: KnexQuery) => void): unknown;
  on(event: "query-response", listener: (response: unknown, query: KnexQuery) => void): unknown;
  on(event: "query-error", listener: (error: unknown, query: KnexQuery) => void): unknown;
}

/** Statements whose span is open; beyond this many (answers that never came) new statements get none. */
export const MAX_OPEN_STATEMENT_SPANS = 1000;

/** The knex clients whose statements already get spans (a second unit of work on one database adds none). */
const tracedClients = new WeakSet<object>();

function traceOrmStatements(em: SqlEntityManager, tracing: Tracing, system: string): void {
  traceKnexStatements(em.getConnection().getKnex().client as unknown as KnexQueryEvents, tracing, system);
}

/**
 * Every statement the ORM runs through knex (its queries, `em.execute`, and on the embedded
 * database the row statements too) inside a trace becomes a CLIENT span, from knex's `query` event
 * (emitted in the caller's async context, so the active span is the parent) to its
 * `query-response` or `query-error`, matched by knex's per-statement id. Statements without an id
 * (a transaction's BEGIN, COMMIT, savepoints) are the transaction span's own work and get none.
 * Only the shape is kept ({@link statementSummary}): the ORM writes values into the SQL text.
 * At most {@link MAX_OPEN_STATEMENT_SPANS} are open at once, so answers that never come (a
 * failure knex reports on the query builder only) cannot grow the table without bound.
 */
export function traceKnexStatements(client: KnexQueryEvents, tracing: Tracing, system: string): void {
  if (tracedClients.has(client)) return;
  tracedClients.add(client);
  const open = new Map<string, ActiveSpan>();
  client.on("query", (query) => {
    const id = query.__knexQueryUid;
    // Outside a trace (the event loops' polling) a statement gets no span, and no summary is worked out.
    if (id === undefined || open.size >= MAX_OPEN_STATEMENT_SPANS || !tracing.inTrace()) return;
    const summary = statementSummary(query.sql ?? "");
    const span = tracing.startChild(summary, { kind: SpanKind.CLIENT, attributes: { "db.system.name": system, "db.query.summary": summary } });
    if (span !== undefined) open.set(id, span);
  });
  const finish = (query: KnexQuery | undefined, error?: unknown) => {
    const id = query?.__knexQueryUid;
    if (id === undefined) return;
    const span = open.get(id);
    if (span === undefined) return;
    open.delete(id);
    span.end(error === undefined ? undefined : statementFailure(error));
  };
  client.on("query-response", (_response, query) => finish(query));
  client.on("query-error", (error, query) => finish(query, error));
}

/**
 * Whether a store call failed on a unique key: the row (an order number, an idempotency key, a
 * notification id) exists already. Domain code decides what a duplicate means.
 */
export function isDuplicateKey(error: unknown): boolean {
  return error instanceof UniqueConstraintViolationException;
}
