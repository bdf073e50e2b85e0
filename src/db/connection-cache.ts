/**
 * Connections the row helpers (rows.ts) keep between their statements on MySQL, in front of the
 * ORM's knex (tarn) pool.
 *
 * Why: every acquisition from tarn makes two pending operations, each with a timer and a handful of
 * promises, and knex's `acquireConnection` adds its own async layer and redefines the connection's
 * password property; a CreatePayment acquires twice, a callback more often. Here a statement takes
 * an idle connection with a pop and the validity check tarn would run, and under load (when all of
 * the pool's connections are busy) it waits in a plain queue for the next connection a row
 * statement releases, instead of in tarn's.
 *
 * The pool stays the owner of connections and of their number (`poolSize`): a connection here is
 * one tarn counts as lent out, and the row helpers never hold more than the pool's size. So that
 * nothing else waits on a connection the row helpers hold:
 * - a released connection goes back to tarn while anyone else waits there (the ORM comes first);
 * - anyone else asking tarn for a connection is first handed one idle here;
 * - a row statement waits here only while another row statement holds a connection that will come
 *   back; whenever the row helpers hold fewer than the pool's size, waiters go to tarn;
 * - when the idle list had no taker for a whole {@link IDLE_RETURN_MS}, all of it goes back to
 *   tarn, whose idle timeout then closes what stays unused;
 * - when the pool is being destroyed (`orm.close()`), the idle ones go back at once, and whatever
 *   is released afterwards goes straight to tarn.
 * A statement waits here no longer than knex's `acquireConnectionTimeout` (60 s), as at tarn.
 */

/** The part of a mysql2 (callback API) connection the row helpers use. */
export interface MysqlConnection {
  query(sql: string, values: unknown[], callback: (error: Error | null, result: unknown) => void): void;
  execute(sql: string, values: unknown[], callback: (error: Error | null, result: unknown) => void): void;
  destroy(): void;
}

/** The part of knex's tarn pool used here and by the pool gauges (database.ts). */
export interface TarnPool {
  max: number;
  numUsed(): number;
  numFree(): number;
  release(resource: unknown): boolean;
  numPendingAcquires(): number;
  on(event: "acquireRequest" | "poolDestroyRequest", listener: () => void): void;
}

/** The part of a knex client used here: its pool, acquisition and tarn's validity check. */
export interface KnexClient {
  pool?: TarnPool | null;
  config?: { acquireConnectionTimeout?: number };
  acquireConnection(): Promise<MysqlConnection>;
  releaseConnection(connection: MysqlConnection): Promise<void> | void;
  validateConnection?(connection: MysqlConnection): boolean;
}

/** How long the idle list may go untouched before its connections go back to the pool; also how often waiters are checked for their timeout. */
export const IDLE_RETURN_MS = 1000;
/** knex's default `acquireConnectionTimeout`: how long a statement waits for a connection. */
const DEFAULT_ACQUIRE_TIMEOUT_MS = 60_000;

interface Waiter {
  resolve(connection: MysqlConnection): void;
  reject(error: Error): void;
  since: number;
}

export class ConnectionCache {
  private readonly idle: MysqlConnection[] = [];
  /** Row statements waiting for a connection another one is using, first come first served. */
  private readonly waiters: Waiter[] = [];
  /** Connections tarn has lent to the row helpers: in use by a statement or idle here. */
  private owned = 0;
  /** The row helpers' own acquisitions waiting at tarn. */
  private borrowing = 0;
  /** Connections taken from the idle list since the last idle check. */
  private taken = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly acquireTimeoutMs: number;

  constructor(
    private readonly client: KnexClient,
    private readonly pool: TarnPool,
    idleReturnMs = IDLE_RETURN_MS,
  ) {
    this.acquireTimeoutMs = client.config?.acquireConnectionTimeout ?? DEFAULT_ACQUIRE_TIMEOUT_MS;
    // Someone else (the ORM) asks tarn for a connection: it gets one of ours that is idle.
    pool.on("acquireRequest", () => {
      const connection = this.idle.pop();
      if (connection) this.giveBack(connection);
    });
    pool.on("poolDestroyRequest", () => {
      this.closed = true;
      clearInterval(this.timer);
      this.returnIdle();
      this.unblock();
    });
    this.timer = setInterval(() => {
      if (this.taken === 0) this.returnIdle();
      this.taken = 0;
      this.expireWaiters();
    }, idleReturnMs);
    // The cache alone must not keep the process alive.
    this.timer.unref();
  }

  /** An idle connection kept here, if there is a valid one; never waits. */
  take(): MysqlConnection | undefined {
    for (;;) {
      const connection = this.idle.pop();
      if (!connection) return undefined;
      if (this.valid(connection)) {
        this.taken++;
        return connection;
      }
      // Tarn validates it on its next acquisition and destroys it.
      this.giveBack(connection);
    }
  }

  /**
   * A connection for a statement when {@link take} had none: from tarn while the row helpers hold
   * fewer than the pool's size, else the next one a row statement releases.
   */
  acquire(): Promise<MysqlConnection> {
    if (this.closed || this.owned + this.borrowing < this.pool.max) return this.borrow();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject, since: Date.now() }));
  }

  /** After a statement: to whoever waits at tarn (the ORM comes first), else to a waiting row statement, else kept idle. */
  release(connection: MysqlConnection): void {
    if (this.closed || !this.valid(connection) || this.pool.numPendingAcquires() > this.borrowing) {
      this.giveBack(connection);
      this.unblock();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(connection);
    else this.idle.push(connection);
  }

  /** Gives a connection straight back to the pool (one that was destroyed, or may be in a bad state). */
  discard(connection: MysqlConnection): void {
    this.giveBack(connection);
    this.unblock();
  }

  /** Connections idle here (the pool counts them as lent out). */
  get idleCount(): number {
    return this.idle.length;
  }

  /** Row statements waiting here for a connection. */
  get waiting(): number {
    return this.waiters.length;
  }

  private borrow(): Promise<MysqlConnection> {
    this.borrowing++;
    // Through knex, which also hides the connection's password from logging.
    return this.client.acquireConnection().then(
      (connection) => {
        this.borrowing--;
        this.owned++;
        return connection;
      },
      (error: unknown) => {
        this.borrowing--;
        throw error;
      },
    );
  }

  private giveBack(connection: MysqlConnection): void {
    this.owned--;
    this.pool.release(connection);
  }

  /** Waiters no connection of ours will come back for (we now hold fewer than the pool's size) go to tarn. */
  private unblock(): void {
    while (this.waiters.length > 0 && (this.closed || this.owned + this.borrowing < this.pool.max)) {
      const waiter = this.waiters.shift()!;
      this.borrow().then(waiter.resolve, waiter.reject);
    }
  }

  private expireWaiters(): void {
    const now = Date.now();
    while (this.waiters.length > 0 && now - this.waiters[0]!.since >= this.acquireTimeoutMs) {
      this.waiters.shift()!.reject(
        new Error(`timed out after ${this.acquireTimeoutMs} ms waiting for a database connection (all ${this.pool.max} in use)`),
      );
    }
  }

  private valid(connection: MysqlConnection): boolean {
    return this.client.validateConnection ? this.client.validateConnection(connection) : true;
  }

  private returnIdle(): void {
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) this.giveBack(connection);
  }
}

const caches = new WeakMap<TarnPool, ConnectionCache>();

/** The cache in front of this client's current pool, made on first use; undefined while it has no pool. */
export function connectionCache(client: KnexClient): ConnectionCache | undefined {
  const pool = client.pool;
  if (!pool) return undefined;
  let cache = caches.get(pool);
  if (!cache) {
    cache = new ConnectionCache(client, pool);
    caches.set(pool, cache);
  }
  return cache;
}

/** Connections the row helpers hold idle in front of this pool (0 when none), for the pool metrics. */
export function idleInCache(pool: TarnPool): number {
  return caches.get(pool)?.idleCount ?? 0;
}
