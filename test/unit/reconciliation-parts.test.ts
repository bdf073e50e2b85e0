/**
 * The parts of reconciliation that need no database: the compact set of matched ids, the channels'
 * bill days, and ImportStatement's bounds on what a client may upload (a lowered file limit stands
 * in for the 1 GiB one).
 */
import { stat } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { UnitOfWork } from "../../src/db/unit-of-work.js";
import { ValidationError } from "../../src/errors.js";
import { billDateOf, billDayWindow, isCalendarDate } from "../../src/reconciliation/bill-days.js";
import { MatchedIds } from "../../src/reconciliation/matched-ids.js";
import type { ReconciliationRunRow } from "../../src/reconciliation/reconciliation-entities.js";
import { createReconciliationRpc, MAX_IMPORT_CHUNK_BYTES, MAX_IMPORT_FILE_BYTES } from "../../src/rpc/reconciliation-rpc.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { type ImportStatementRequest, ImportStatementRequestSchema } from "../../gen/payments/v1/settlement_service_pb.js";

describe("MatchedIds", () => {
  it("answers membership for every id added and none other, in 8 bytes per id once sealed (52-bit hashes in doubles)", () => {
    const ids = new MatchedIds();
    const added = Array.from({ length: 5000 }, (_, i) => `01JPAYMENT${String(i).padStart(16, "0")}`);
    for (const id of added) ids.add(id);
    ids.seal();
    expect(added.every((id) => ids.has(id))).toBe(true);
    expect(Array.from({ length: 5000 }, (_, i) => `01JOTHER${String(i).padStart(18, "0")}`).some((id) => ids.has(id))).toBe(false);
    expect(ids.size).toBe(5000);
    expect(ids.bytes).toBe(5000 * 8);
  });

  it("refuses adds after seal and lookups before", () => {
    const ids = new MatchedIds();
    expect(() => ids.has("x")).toThrow();
    ids.seal();
    expect(() => ids.add("x")).toThrow();
    expect(ids.has("x")).toBe(false);
  });
});

describe("bill days", () => {
  it("cuts Alipay and WeChat Pay days at China midnight and card days at UTC midnight", () => {
    expect(billDayWindow("alipay", "2026-12-01")).toEqual({ from: new Date("2026-11-30T16:00:00Z"), to: new Date("2026-12-01T16:00:00Z") });
    expect(billDayWindow("wechatpay", "2026-12-01").from).toEqual(new Date("2026-11-30T16:00:00Z"));
    expect(billDayWindow("card", "2026-12-01")).toEqual({ from: new Date("2026-12-01T00:00:00Z"), to: new Date("2026-12-02T00:00:00Z") });
    expect(billDateOf("alipay", new Date("2026-12-01T15:59:59.999Z"))).toBe("2026-12-01");
    expect(billDateOf("alipay", new Date("2026-12-01T16:00:00Z"))).toBe("2026-12-02");
    expect(billDateOf("card", new Date("2026-12-01T16:00:00Z"))).toBe("2026-12-01");
  });

  it("accepts only real calendar dates written YYYY-MM-DD", () => {
    expect(isCalendarDate("2024-02-29")).toBe(true);
    for (const text of ["2026-02-29", "2026-13-01", "2026-1-01", "20261201", "2026-12-01T00:00", ""]) expect(isCalendarDate(text)).toBe(false);
  });
});

describe("ImportStatement bounds", () => {
  const run = { id: "01RUN" } as ReconciliationRunRow;
  const seen: { path?: string; mode?: number; bytes?: number } = {};
  const service = {
    reconcileChannel: async () => run,
    listRuns: async () => ({ runs: [], nextPageToken: "" }),
    async importStatement(_channel: string, _billDate: string, path: string) {
      const info = await stat(path);
      Object.assign(seen, { path, mode: info.mode & 0o777, bytes: info.size });
      return { ...run, linesTotal: 0n, matched: 0n, missingOnOurSide: 0n, missingOnChannelSide: 0n, amountMismatch: 0n, statusMismatch: 0n, feeMismatch: 0n, channelFee: 0n, merchantFee: 0n, channel: "card", billDate: "2026-11-01", source: "IMPORT", currency: "", startedAt: new Date(), finishedAt: new Date() } as ReconciliationRunRow;
    },
  };
  const uow = {} as UnitOfWork;
  const ctx = {} as HandlerContext;

  async function* messages(chunks: Buffer[], header = true): AsyncIterable<ImportStatementRequest> {
    if (header) yield create(ImportStatementRequestSchema, { part: { case: "header", value: { channel: Channel.CARD, billDate: "2026-11-01" } } });
    for (const chunk of chunks) yield create(ImportStatementRequestSchema, { part: { case: "chunk", value: chunk } });
  }

  async function failure(promise: Promise<unknown>): Promise<ValidationError> {
    try {
      await promise;
    } catch (error) {
      if (error instanceof ValidationError) return error;
      throw error;
    }
    throw new Error("expected a ValidationError");
  }

  it("defaults to 512 KiB chunks (a whole message fits the default 1 MiB request limit) and a 1 GiB file", () => {
    expect(MAX_IMPORT_CHUNK_BYTES).toBe(512 * 1024);
    expect(MAX_IMPORT_FILE_BYTES).toBe(1024 * 1024 * 1024);
  });

  it("writes the chunks to a private temporary file and removes it after the call", async () => {
    const rpc = createReconciliationRpc(uow, service);
    await rpc.importStatement(messages([Buffer.from("abc"), Buffer.from("defg")]), ctx);
    expect(seen).toMatchObject({ mode: 0o600, bytes: 7 });
    await expect(stat(seen.path!)).rejects.toThrow();
  });

  it("refuses a chunk over the chunk limit and a file over the file limit, naming the limit", async () => {
    const rpc = createReconciliationRpc(uow, service, { maxChunkBytes: 8, maxFileBytes: 12 });
    const chunk = await failure(rpc.importStatement(messages([Buffer.alloc(9)]), ctx));
    expect(chunk.violations).toEqual([{ field: "chunk", reason: "TOO_LARGE", description: "at most 8 bytes per message" }]);
    const file = await failure(rpc.importStatement(messages([Buffer.alloc(8), Buffer.alloc(5)]), ctx));
    expect(file.reason).toBe("FILE_TOO_LARGE");
    expect(file.violations[0]!.description).toMatch(/12 bytes/);
  });

  it("refuses a stream without its header first, and an over-long bill date", async () => {
    const rpc = createReconciliationRpc(uow, service);
    expect((await failure(rpc.importStatement(messages([Buffer.from("x")], false), ctx))).violations[0]!.field).toBe("header");
    async function* longDate(): AsyncIterable<ImportStatementRequest> {
      yield create(ImportStatementRequestSchema, { part: { case: "header", value: { channel: Channel.CARD, billDate: "2".repeat(100) } } });
    }
    expect((await failure(rpc.importStatement(longDate(), ctx))).violations.map((v) => v.field)).toEqual(["header.bill_date"]);
  });
});
