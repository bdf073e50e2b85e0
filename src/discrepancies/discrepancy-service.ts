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

export async function resolveDiscrepancy(session: Session, id: string, resolution: string): Promise<DiscrepancyRow> {
  const text = resolution.trim();
  const v = new Violations();
  if (id === "") v.add("discrepancy_id", "REQUIRED", "is required");
  if (text === "") v.add("resolution", "REQUIRED", "say what was done");
  if (text.length > 512) v.add("resolution", "TOO_LONG", "must be at most 512 characters");
  v.throwIfAny();
  const updated = await resolveIfInStatus(session, id, "OPEN", "RESOLVED", text, new Date());
  const row = await findDiscrepancy(session, id);
  if (!row) throw new NotFoundError("DISCREPANCY_NOT_FOUND", `discrepancy ${id} not found`);
  if (!updated && row.resolution !== text) {
    throw new PreconditionError("INVALID_TRANSITION", "the discrepancy is already resolved");
  }
  return row;
}
