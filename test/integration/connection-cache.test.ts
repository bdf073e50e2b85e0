/**
 * The connections the row helpers keep between statements (src/db/connection-cache.ts), on MySQL
 * with the smallest pool that shows each rule: one statement after another reuses the kept
 * connection without asking the pool; the ORM, and a row transaction, get it even when the pool has
 * no other; a connection the server ended is never handed out again; the pool metrics count kept connections
 * as idle; the kept ones go back to the pool when unused; and the ORM closes without waiting on them.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import { createConnection } from "mysql2/promise";
import { afterAll, describe, expect, it } from "vitest";
import { connectionCache, type KnexClient, ConnectionCache } from "../../src/db/connection-cache.js";
import { type Database, poolUse } from "../../src/db/database.js";
import { findRows, inRowTransaction, insertRow } from "../../src/db/rows.js";
import { Merchant } from "../../src/merchants/merchant-entity.js";
import { driverDatabases } from "../support/driver-databases.js";
import { newMerchantRow } from "../support/merchant-rows.js";
import { eventually } from "../support/waiting.js";

interface Pool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  acquire(): { promise: Promise<unknown> };
  release(resource: unknown): boolean;
}

function clientOf(db: Database): KnexClient & { pool: Pool } {
  return (db.orm.em as SqlEntityManager).getConnection().getKnex().client as unknown as KnexClient & { pool: Pool };
}

describe("connections kept between row statements", () => {
  const databases = driverDatabases("payments-connection-cache-");
  afterAll(() => databases.close());

  function open(poolSize: number): Promise<Database> {
    return databases.open("mysql", { poolSize });
  }

  /** A database with one merchant row written through the row helpers: their connection is now kept. */
  async function openWithKeptConnection(poolSize: number) {
    const db = await open(poolSize);
    const em = db.em();
    const row = newMerchantRow();
    await insertRow(em, Merchant, row);
    const client = clientOf(db);
    return { db, em, row, client, cache: connectionCache(client)! };
  }

  it("runs one statement after another on the kept connection without asking the pool", async () => {
    const { em, row, client } = await openWithKeptConnection(2);
    let acquisitions = 0;
    const acquire = client.acquireConnection.bind(client);
    client.acquireConnection = () => {
      acquisitions++;
      return acquire();
    };
    try {
      for (let i = 0; i < 5; i++) expect(await findRows(em, Merchant, { id: row.id })).toHaveLength(1);
      await inRowTransaction(em, (tx) => findRows(tx, Merchant, { id: row.id }));
    } finally {
      client.acquireConnection = acquire;
    }
    expect(acquisitions).toBe(0);
    expect(connectionCache(client)!.idleCount).toBe(1);
  });

  it("hands a kept connection to the ORM and to a row transaction when the pool has no other", async () => {
    const { em, row, client } = await openWithKeptConnection(1);
    expect(connectionCache(client)!.idleCount).toBe(1);
    expect(client.pool.numUsed()).toBe(1);

    // An ORM query needs the one connection the pool has: it is handed back to the pool for it.
    const found = await em.fork().findOne(Merchant, { id: row.id });
    expect(found?.id).toBe(row.id);
    expect(connectionCache(client)!.idleCount).toBe(0);

    // Row statements and a row transaction in a pool of one, interleaved with ORM reads, never wait on each other.
    await Promise.all([
      findRows(em, Merchant, { id: row.id }),
      em.fork().findOne(Merchant, { id: row.id }),
      inRowTransaction(em, (tx) => findRows(tx, Merchant, { id: row.id })),
      em.fork().find(Merchant, {}),
      findRows(em, Merchant, { id: row.id }),
    ]);
  });

  it("queues a row statement behind the one holding the only connection, without asking the pool", async () => {
    const { em, row, client, cache } = await openWithKeptConnection(1);
    const held = cache.take()!;
    const queued = findRows(em, Merchant, { id: row.id });
    expect(cache.waiting).toBe(1);
    expect(client.pool.numPendingAcquires()).toBe(0);
    cache.release(held);
    expect(await queued).toHaveLength(1);
    expect(cache.waiting).toBe(0);
    expect(cache.idleCount).toBe(1);
  });

  it("fails a row statement that waited longer than knex's acquireConnectionTimeout", async () => {
    const db = await open(1);
    const client = clientOf(db) as ReturnType<typeof clientOf> & { config: { acquireConnectionTimeout?: number } };
    client.config.acquireConnectionTimeout = 100;
    const cache = connectionCache(client)!;
    const held = await cache.acquire();
    const started = Date.now();
    await expect(findRows(db.em(), Merchant, { id: "none" })).rejects.toThrow(
      "timed out after 100 ms waiting for a database connection (all 1 in use)",
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(cache.waiting).toBe(0);
    cache.release(held);
  });

  it("counts kept connections as idle in the pool metrics", async () => {
    const db = await open(3);
    await insertRow(db.em(), Merchant, newMerchantRow());
    const use = poolUse(db);
    expect(connectionCache(clientOf(db))!.idleCount).toBe(1);
    expect(use).toMatchObject({ used: 0, free: 1, pending: 0, max: 3 });
  });

  it("gives a connection back to the pool while someone waits for one there", async () => {
    const { client, cache } = await openWithKeptConnection(1);
    const kept = cache.take()!;
    // Someone queues at the pool while the only connection is out.
    const waiting = client.pool.acquire().promise;
    expect(client.pool.numPendingAcquires()).toBe(1);
    cache.release(kept as never);
    expect(cache.idleCount).toBe(0);
    const handed = await waiting;
    expect(handed).toBe(kept);
    client.pool.release(handed);
  });

  it("never hands out a connection that broke; the pool replaces it", async () => {
    const { db, em, row, client, cache } = await openWithKeptConnection(1);
    const kept = cache.take()! as unknown as { threadId: number };
    cache.release(kept as never);
    // The server ends the connection (as a restart or wait_timeout would) while it is kept.
    const admin = await createConnection({ uri: db.orm.config.get("clientUrl") });
    await admin.query("KILL ?", [kept.threadId]);
    await admin.end();
    expect(await eventually(() => client.validateConnection!(kept as never), (valid) => !valid)).toBe(false);
    expect(cache.take()).toBeUndefined();
    expect(await findRows(em, Merchant, { id: row.id })).toHaveLength(1);
    expect(cache.idleCount).toBe(1);
    const replacement = cache.take()!;
    expect(replacement).not.toBe(kept);
    cache.release(replacement);
  });

  it("gives kept connections back to the pool when they go unused", async () => {
    const db = await open(2);
    const client = clientOf(db);
    // A cache of its own with a short idle time, in front of the same pool.
    const cache = new ConnectionCache(client, client.pool as never, 50);
    const connection = await cache.acquire();
    cache.release(connection);
    expect(cache.idleCount).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(cache.idleCount).toBe(0);
    expect(client.pool.numFree()).toBeGreaterThanOrEqual(1);
  });

  it("lets the ORM close while connections are kept", async () => {
    const db = await open(2);
    await insertRow(db.em(), Merchant, newMerchantRow());
    expect(connectionCache(clientOf(db))!.idleCount).toBe(1);
    await db.close();
  });
});
