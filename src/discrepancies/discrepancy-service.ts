/** Listing and resolving discrepancies (admin). */
import type { Session } from "../db/unit-of-work.js";
import { NotFoundError, PreconditionError, Violations } from "../errors.js";
import { readPageRequest, toPage } from "../pagination.js";
import type { DiscrepancyRow } from "./discrepancy-entity.js";
import { findDiscrepancy, listDiscrepancyRows, resolveIfInStatus } from "./discrepancy-store.js";

export async function listDiscrepancies(
  session: Session,
  filter: { status: string; pageSize: number; pageToken: string },
): Promise<{ discrepancies: DiscrepancyRow[]; nextPageToken: string }> {
  const v = new Violations();
  const page = readPageRequest(v, filter, [filter.status]);
  if (!["", "OPEN", "RESOLVED"].includes(filter.status)) v.add("status", "INVALID_VALUE", "must be OPEN, RESOLVED or empty");
  v.throwIfAny();
  const { items, nextPageToken } = toPage(await listDiscrepancyRows(session, filter.status || undefined, page), page);
  return { discrepancies: items, nextPageToken };
}

/** Longest resolution text stored. */
export const MAX_RESOLUTION_CHARS = 512;
/** Longest `resolved_by` stored. */
export const MAX_RESOLVED_BY_CHARS = 128;

/**
 * Resolves an OPEN discrepancy: what was done and who did it are both required. A discrepancy
 * already resolved is FAILED_PRECONDITION (INVALID_TRANSITION), also when the same text is sent
 * again: its resolution is a record, not something to overwrite.
 */
export async function resolveDiscrepancy(
  session: Session,
  id: string,
  input: { resolution: string; resolvedBy: string },
): Promise<DiscrepancyRow> {
  const text = input.resolution.trim();
  const resolvedBy = input.resolvedBy.trim();
  const v = new Violations();
  if (id === "") v.add("discrepancy_id", "REQUIRED", "is required");
  if (text === "") v.add("resolution", "REQUIRED", "say what was done");
  if (text.length > MAX_RESOLUTION_CHARS) v.add("resolution", "TOO_LONG", `must be at most ${MAX_RESOLUTION_CHARS} characters`);
  if (resolvedBy === "") v.add("resolved_by", "REQUIRED", "say who resolved it");
  if (resolvedBy.length > MAX_RESOLVED_BY_CHARS) v.add("resolved_by", "TOO_LONG", `must be at most ${MAX_RESOLVED_BY_CHARS} characters`);
  v.throwIfAny();
  const updated = await resolveIfInStatus(session, id, "OPEN", "RESOLVED", { resolution: text, resolvedBy }, new Date());
  const row = await findDiscrepancy(session, id);
  if (!row) throw new NotFoundError("DISCREPANCY_NOT_FOUND", `discrepancy ${id} not found`);
  if (!updated) throw new PreconditionError("INVALID_TRANSITION", "the discrepancy is already resolved");
  return row;
}
