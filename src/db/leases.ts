/**
 * Work claimed through the database, so any number of processes can share it: a row is taken by
 * a conditional UPDATE of its lease, and only the process whose UPDATE changed the row works on it.
 * Used by the payment and refund sweepers.
 */
import type { EntityName, FilterQuery } from "@mikro-orm/core";
import type { SqlEntityManager } from "@mikro-orm/knex";

/** A row a sweeper works on: in `status` until done, due at `nextQueryAt`, held until `sweepLeaseUntil`. */
interface Sweepable {
  id: string;
  status: string;
  nextQueryAt?: Date | null;
  sweepLeaseUntil?: Date | null;
}

/**
 * The rows in `status` due by now (oldest first, at most `batchSize`), each yielded only after
 * this process claimed it for `leaseMs`; rows another process holds or took first are skipped.
 */
export async function* claimDue<T extends Sweepable>(
  em: SqlEntityManager,
  entity: EntityName<T>,
  status: string,
  options: { batchSize: number; leaseMs: number },
): AsyncGenerator<T> {
  const now = new Date();
  const due = await em.find(entity, { status, nextQueryAt: { $lte: now } } as FilterQuery<T>, {
    orderBy: { nextQueryAt: "asc" } as never,
    limit: options.batchSize,
    disableIdentityMap: true,
  });
  for (const row of due) {
    const claimed = await em.nativeUpdate(
      entity,
      {
        id: row.id,
        status,
        nextQueryAt: { $lte: now },
        $or: [{ sweepLeaseUntil: null }, { sweepLeaseUntil: { $lt: now } }],
      } as unknown as FilterQuery<T>,
      { sweepLeaseUntil: new Date(now.getTime() + options.leaseMs) } as never,
    );
    if (claimed === 1) yield row as T;
  }
}
