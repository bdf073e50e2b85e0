import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { newId } from "../../src/ids.js";
import { pageRequest, toPage } from "../../src/pagination.js";

const rows = Array.from({ length: 5 }, () => ({ id: newId() })).reverse();

function violationsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return error.violations.map((v) => `${v.field} ${v.reason}`);
    throw error;
  }
  return [];
}

describe("pagination", () => {
  it("asks for one row more than the page and hands out a token only when there is more", () => {
    const page = pageRequest({ pageSize: 2, pageToken: "" }, ["SUCCEEDED"]);
    expect(page).toMatchObject({ limit: 3, pageSize: 2 });
    const first = toPage(rows.slice(0, 3), page);
    expect(first.items).toEqual(rows.slice(0, 2));
    const next = pageRequest({ pageSize: 2, pageToken: first.nextPageToken }, ["SUCCEEDED"]);
    expect(next.afterId).toBe(rows[1]!.id);
    expect(toPage(rows.slice(4), next).nextPageToken).toBe("");
  });

  it("defaults to 20 and refuses sizes outside 0-100", () => {
    expect(pageRequest({ pageSize: 0, pageToken: "" }).pageSize).toBe(20);
    expect(violationsOf(() => pageRequest({ pageSize: 101, pageToken: "" }))).toEqual(["page_size OUT_OF_RANGE"]);
    expect(violationsOf(() => pageRequest({ pageSize: -1, pageToken: "" }))).toEqual(["page_size OUT_OF_RANGE"]);
  });

  it("refuses a token from other filters, a bare id and garbage", () => {
    const token = toPage(rows, pageRequest({ pageSize: 2, pageToken: "" }, ["a"])).nextPageToken;
    expect(violationsOf(() => pageRequest({ pageSize: 2, pageToken: token }, ["b"]))).toEqual(["page_token INVALID_PAGE_TOKEN"]);
    expect(violationsOf(() => pageRequest({ pageSize: 2, pageToken: rows[0]!.id }, ["a"]))).toEqual(["page_token INVALID_PAGE_TOKEN"]);
    expect(violationsOf(() => pageRequest({ pageSize: 2, pageToken: "not-a-token" }))).toEqual(["page_token INVALID_PAGE_TOKEN"]);
    const forged = Buffer.from(JSON.stringify({ lastId: "x' or 1=1", filterKey: "[]" })).toString("base64url");
    expect(violationsOf(() => pageRequest({ pageSize: 2, pageToken: forged }))).toEqual(["page_token INVALID_PAGE_TOKEN"]);
  });
});
