/** Listing and resolving discrepancies (admin). */
import type { SqlEntityManager } from "@mikro-orm/knex";
import { NotFoundError, PreconditionError, Violations } from "../errors.js";
import { Discrepancy, type DiscrepancyRow } from "./discrepancy-entity.js";

export async function listDiscrepancies(
  em: SqlEntityManager,
  filter: { status: string; pageSize: number; pageToken: string },
): Promise<{ discrepancies: DiscrepancyRow[]; nextPageToken: string }> {
  const v = new Violations();
  const pageSize = filter.pageSize === 0 ? 20 : filter.pageSize;
  if (pageSize < 1 || pageSize > 100) v.add("page_size", "OUT_OF_RANGE", "must be 0-100");
  if (!["", "OPEN", "RESOLVED"].includes(filter.status)) v.add("status", "INVALID_VALUE", "must be OPEN, RESOLVED or empty");
  if (filter.pageToken !== "" && !/^[0-9A-Z]{26}$/.test(filter.pageToken)) {
    v.add("page_token", "INVALID_PAGE_TOKEN", "is not a token from this listing");
  }
  v.throwIfAny();
  const where: Record<string, unknown> = {};
  if (filter.status) where.status = filter.status;
  if (filter.pageToken) where.id = { $lt: filter.pageToken };
  const rows = await em.find(Discrepancy, where, { orderBy: { id: "desc" }, limit: pageSize + 1, disableIdentityMap: true });
  const page = rows.slice(0, pageSize);
  return { discrepancies: page, nextPageToken: rows.length > pageSize ? page[page.length - 1]!.id : "" };
}

export async function resolveDiscrepancy(em: SqlEntityManager, id: string, resolution: string): Promise<DiscrepancyRow> {
  const text = resolution.trim();
  const v = new Violations();
  if (id === "") v.add("discrepancy_id", "REQUIRED", "is required");
  if (text === "") v.add("resolution", "REQUIRED", "say what was done");
  if (text.length > 512) v.add("resolution", "TOO_LONG", "must be at most 512 characters");
  v.throwIfAny();
  const updated = await em.nativeUpdate(
    Discrepancy,
    { id, status: "OPEN" },
    { status: "RESOLVED", resolution: text, resolvedAt: new Date() },
  );
  const row = await em.findOne(Discrepancy, { id }, { disableIdentityMap: true });
  if (!row) throw new NotFoundError("DISCREPANCY_NOT_FOUND", `discrepancy ${id} not found`);
  if (updated === 0 && row.resolution !== text) {
    throw new PreconditionError("INVALID_TRANSITION", "the discrepancy is already resolved");
  }
  return row;
}
