/**
 * For stores only: the guarded UPDATE every status transition makes (payment, refund, payout), as
 * a prepared row statement, so it runs in a row transaction as well as in an ORM one.
 */
import type { EntitySchema } from "@mikro-orm/core";
import { updateRows } from "./rows.js";
import { rowExecutor } from "./store-access.js";
import type { RowScope } from "./unit-of-work.js";

/**
 * `status = to` (with `changes` and `updatedAt = now`) on the row `id` of `entity` only while its
 * status is one of `from`. Resolves with whether it applied; false means another change won. A
 * change given as undefined is not a change (as with nativeUpdate), never a NULL.
 */
export function transitionRowStatus(
  scope: RowScope,
  // biome-ignore lint/suspicious/noExplicitAny: any entity schema with `id`, `status` and `updatedAt`
  entity: EntitySchema<any, any>,
  id: string,
  from: readonly string[],
  to: string,
  changes: Readonly<Record<string, unknown>>,
  now: Date,
): Promise<boolean> {
  const set: Record<string, unknown> = {};
  for (const name in changes) {
    const value = changes[name];
    if (value !== undefined) set[name] = value;
  }
  set.status = to;
  set.updatedAt = now;
  return updateRows(rowExecutor(scope), entity, { id, status: from }, set).then(isOneRow);
}

function isOneRow(changed: number): boolean {
  return changed === 1;
}
