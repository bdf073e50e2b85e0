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
import { MySqlPlatform } from "@mikro-orm/mysql";
import type { Tracing } from "../observability/tracing.js";
import type { Database } from "./database.js";
import { inRowTransaction } from "./rows.js";
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

/**
 * The unit of work over an open database. A session forks its EntityManager only when a store
 * makes an ORM call or an ORM transaction is opened on it (store-access.ts, `SessionHandle`).
 */
export interface UnitOfWorkOptions {
  /** Spans for transactions (and their statements). IN PROGRESS: tracing helper. */
  tracing?: Tracing;
}

export function createUnitOfWork(db: Pick<Database, "em">, _options: UnitOfWorkOptions = {}): UnitOfWork {
  const rows = db.em();
  const fork = () => db.em();
  return {
    session: () => new SessionHandle(fork, rows) as unknown as Session,
    transaction<T>(session: Session, work: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
      const em = entityManager(session);
      const isolationLevel = options.readCommitted && em.getPlatform() instanceof MySqlPlatform ? IsolationLevel.READ_COMMITTED : undefined;
      return retryDeadlocks(options, () => em.transactional((tx) => work(tx as unknown as Tx), { isolationLevel }));
    },
    rowTransaction<T>(session: Session, work: (tx: RowTx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
      // Only an ORM transaction (a Tx passed as the session) makes this a savepoint inside it.
      const em = session instanceof SessionHandle ? session.rows : entityManager(session);
      return retryDeadlocks(options, () => inRowTransaction(em, (tx) => work(tx as unknown as RowTx)));
    },
  };
}

/** Runs `run` (one whole transaction) again while it fails as a deadlock victim, up to `deadlockAttempts` in all. */
async function retryDeadlocks<T>(options: TransactionOptions, run: () => Promise<T>): Promise<T> {
  const attempts = options.deadlockAttempts ?? 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof DeadlockException) || attempt >= attempts) throw error;
    }
  }
}

/**
 * Whether a store call failed on a unique key: the row (an order number, an idempotency key, a
 * notification id) exists already. Domain code decides what a duplicate means.
 */
export function isDuplicateKey(error: unknown): boolean {
  return error instanceof UniqueConstraintViolationException;
}
