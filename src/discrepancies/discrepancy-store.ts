/** The discrepancy store: every statement on `discrepancy`. */
import { findRow, insertRow } from "../db/rows.js";
import { entityManager, rowExecutor } from "../db/store-access.js";
import type { RowScope, Session, Tx } from "../db/unit-of-work.js";
import type { PageRequest } from "../pagination.js";
import { Discrepancy, type DiscrepancyRow } from "./discrepancy-entity.js";

/** Whether a discrepancy of this kind about this subject was recorded already. */
export async function discrepancyExists(scope: RowScope, kind: string, subjectRef: string): Promise<boolean> {
  // A row read, not count(): the ORM's count() fails on the embedded driver, whose integers are bigint.
  return (await findRow<DiscrepancyRow>(rowExecutor(scope), Discrepancy, { kind, subjectRef })) !== undefined;
}

/** A discrepancy to record: the columns only reconciliation sets may be left out (NULL). */
export type NewDiscrepancy = Omit<DiscrepancyRow, "resolvedBy" | "reconciliationRunId" | "refundId"> &
  Partial<Pick<DiscrepancyRow, "resolvedBy" | "reconciliationRunId" | "refundId">>;

/** Records a discrepancy in the caller's transaction (either kind). */
export async function insertDiscrepancy(tx: RowScope, row: NewDiscrepancy): Promise<void> {
  await insertRow(rowExecutor(tx), Discrepancy, row);
}

/** Of these subjects, the ones that already have a discrepancy of `kind` (one query). */
export async function existingSubjects(scope: Session, kind: string, subjectRefs: readonly string[]): Promise<Set<string>> {
  if (subjectRefs.length === 0) return new Set();
  const rows = await entityManager(scope).find(
    Discrepancy,
    { kind, subjectRef: { $in: [...subjectRefs] } },
    { fields: ["subjectRef"], disableIdentityMap: true },
  );
  return new Set(rows.map((row) => row.subjectRef));
}

/** Records many discrepancies in one statement, in the caller's ORM transaction. A (kind, subject) already present fails the insert. */
export async function insertDiscrepancies(tx: Tx, rows: readonly DiscrepancyRow[]): Promise<void> {
  if (rows.length > 0) await entityManager(tx).insertMany(Discrepancy, [...rows]);
}

/** A page of discrepancies (of one status, when given), newest first. */
export function listDiscrepancyRows(session: Session, status: string | undefined, page: PageRequest): Promise<DiscrepancyRow[]> {
  const where: Record<string, unknown> = {};
  if (status) where.status = status;
  if (page.afterId) where.id = { $lt: page.afterId };
  return entityManager(session).find(Discrepancy, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

export async function findDiscrepancy(session: Session, id: string): Promise<DiscrepancyRow | undefined> {
  return (await entityManager(session).findOne(Discrepancy, { id }, { disableIdentityMap: true })) ?? undefined;
}

/** Sets the status, resolution and resolver only while the status is `from`; resolves with whether it was. */
export async function resolveIfInStatus(
  session: Session,
  id: string,
  from: string,
  to: string,
  resolution: { resolution: string; resolvedBy: string },
  now: Date,
): Promise<boolean> {
  return (
    (await entityManager(session).nativeUpdate(Discrepancy, { id, status: from }, { status: to, ...resolution, resolvedAt: now })) === 1
  );
}

/** How many discrepancies are in `status` (the metrics' open count): the status's range of `discrepancy_status_idx`. */
export async function countDiscrepancies(session: Session, status: string): Promise<number> {
  // Hand SQL, not the ORM's count(), which fails on the embedded driver (its integers are bigint).
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute("select count(*) as n from discrepancy where status = ?", [status]);
  return Number(rows[0]?.n ?? 0);
}
