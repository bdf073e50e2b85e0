/**
 * The one page-token scheme for every listing (payments, refunds, discrepancies): keyset paging on
 * the ULID primary key, newest first. A token is base64url JSON of the last id on the page and a
 * key of the listing's filters, so a token is refused for another listing or other filters instead
 * of silently skipping rows. Stores take a {@link PageRequest}; services build it here and turn the
 * rows they got back into a page with {@link toPage}.
 */
import { Violations } from "./errors.js";

/** Page size when the request leaves it 0. */
export const DEFAULT_PAGE_SIZE = 20;
/** Largest page a listing returns. */
export const MAX_PAGE_SIZE = 100;

/** What a store is asked for: rows with an id below `afterId` (if set), newest first, at most `limit`. */
export interface PageRequest {
  afterId?: string;
  /** One more than the page size: the extra row says whether there is a next page. */
  limit: number;
  pageSize: number;
  filterKey: string;
}

const ID = /^[0-9A-Z]{26}$/;

/**
 * Reads `page_size` and `page_token` of a listing whose filters are `filters` (any JSON-able
 * values, in a fixed order). Problems are added to `violations` (page_size OUT_OF_RANGE,
 * page_token INVALID_PAGE_TOKEN); the caller throws them with its own.
 */
export function readPageRequest(
  violations: Violations,
  request: { pageSize: number; pageToken: string },
  filters: readonly unknown[] = [],
): PageRequest {
  const pageSize = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    violations.add("page_size", "OUT_OF_RANGE", `must be 0-${MAX_PAGE_SIZE}`);
  }
  const filterKey = JSON.stringify(filters);
  const page: PageRequest = { limit: Math.min(Math.max(pageSize, 1), MAX_PAGE_SIZE) + 1, pageSize, filterKey };
  if (request.pageToken === "") return page;
  const afterId = decodePageToken(request.pageToken, filterKey);
  if (afterId === undefined) {
    violations.add("page_token", "INVALID_PAGE_TOKEN", "is not a token from this listing with these filters");
    return page;
  }
  return { ...page, afterId };
}

/** As {@link readPageRequest}, throwing INVALID_ARGUMENT at once for a bad size or token. */
export function pageRequest(request: { pageSize: number; pageToken: string }, filters: readonly unknown[] = []): PageRequest {
  const violations = new Violations();
  const page = readPageRequest(violations, request, filters);
  violations.throwIfAny();
  return page;
}

/** The page of `rows` (fetched with `page.limit`) and the token of the next page, "" on the last one. */
export function toPage<T extends { id: string }>(rows: readonly T[], page: PageRequest): { items: T[]; nextPageToken: string } {
  const items = rows.slice(0, page.pageSize);
  const nextPageToken = rows.length > page.pageSize ? encodePageToken(items[items.length - 1]!.id, page.filterKey) : "";
  return { items, nextPageToken };
}

function encodePageToken(lastId: string, filterKey: string): string {
  return Buffer.from(JSON.stringify({ lastId, filterKey })).toString("base64url");
}

function decodePageToken(token: string, filterKey: string): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { lastId?: unknown; filterKey?: unknown };
    if (typeof parsed.lastId === "string" && ID.test(parsed.lastId) && parsed.filterKey === filterKey) return parsed.lastId;
  } catch {
    // not base64url JSON: refused below
  }
  return undefined;
}
