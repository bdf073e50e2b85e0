/**
 * ReconcileChannel, ImportStatement (client streaming) and ListReconciliationRuns: decode, call the
 * reconciliation service, encode. ImportStatement writes the uploaded chunks to a temporary file
 * (mode 0600, in its own mkdtemp directory, removed when the call ends) and reconciles that file.
 */
import { open, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { BILL_LIMITS } from "../channels/bill-file.js";
import type { ChannelName } from "../channels/channel.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { ValidationError, Violations } from "../errors.js";
import { checkPageToken, checkPrintable } from "../input-text.js";
import type { ReconciliationRunRow } from "../reconciliation/reconciliation-entities.js";
import type { ReconciliationService } from "../reconciliation/reconciliation-service.js";
import {
  type ImportStatementRequest,
  ImportStatementResponseSchema,
  ListReconciliationRunsResponseSchema,
  ReconcileChannelResponseSchema,
  type ReconciliationRun,
  ReconciliationRunSchema,
} from "../../gen/payments/v1/settlement_service_pb.js";
import { channelToProto, optionalChannelFromProto } from "./mappers.js";
import type { SettlementRpcParts } from "./settlement-rpc.js";

/** Largest `chunk` of one ImportStatement message: half of the default MAX_REQUEST_BYTES, so a whole message fits it. */
export const MAX_IMPORT_CHUNK_BYTES = 512 * 1024;
/** Largest file ImportStatement accepts, all chunks together (the bill readers' own limit). */
export const MAX_IMPORT_FILE_BYTES = BILL_LIMITS.maxFileBytes;
/** Longest bill_date / sha1 text scanned for control characters before the domain refuses it for its form. */
const MAX_SCAN_CHARS = 64;

export function reconciliationRunToProto(row: ReconciliationRunRow): ReconciliationRun {
  return create(ReconciliationRunSchema, {
    id: row.id,
    channel: channelToProto(row.channel),
    billDate: row.billDate,
    source: row.source,
    linesTotal: row.linesTotal,
    matched: row.matched,
    missingOnOurSide: row.missingOnOurSide,
    missingOnChannelSide: row.missingOnChannelSide,
    amountMismatch: row.amountMismatch,
    statusMismatch: row.statusMismatch,
    feeMismatch: row.feeMismatch,
    channelFee: row.channelFee,
    merchantFee: row.merchantFee,
    margin: row.merchantFee - row.channelFee,
    currency: row.currency,
    startedAt: timestampFromDate(row.startedAt),
    finishedAt: row.finishedAt ? timestampFromDate(row.finishedAt) : undefined,
    feeChecked: row.feeChecked,
    itemsCapped: row.itemsCapped,
  });
}

/** The channel a request names: required, known, and served by this process (else FAILED_PRECONDITION from the registry). */
function requiredChannel(v: Violations, field: string, value: number): ChannelName | undefined {
  const channel = optionalChannelFromProto(v, field, value);
  if (channel === undefined && value === 0) v.add(field, "REQUIRED", "is required");
  return channel;
}

function checkShortText(v: Violations, field: string, text: string): void {
  checkPrintable(v, field, text.slice(0, MAX_SCAN_CHARS));
  if (text.length > MAX_SCAN_CHARS) v.add(field, "TOO_LONG", `must be at most ${MAX_SCAN_CHARS} characters`);
}

export interface ImportLimits {
  /** Largest chunk of one message (default {@link MAX_IMPORT_CHUNK_BYTES}). */
  maxChunkBytes: number;
  /** Largest file, all chunks together (default {@link MAX_IMPORT_FILE_BYTES}). */
  maxFileBytes: number;
}

export function createReconciliationRpc(
  uow: UnitOfWork,
  reconciliation: Pick<ReconciliationService, "reconcileChannel" | "importStatement" | "listRuns">,
  limits: ImportLimits = { maxChunkBytes: MAX_IMPORT_CHUNK_BYTES, maxFileBytes: MAX_IMPORT_FILE_BYTES },
): SettlementRpcParts["reconciliation"] {
  return {
    async reconcileChannel(req) {
      const v = new Violations();
      const channel = requiredChannel(v, "channel", req.channel);
      checkShortText(v, "bill_date", req.billDate);
      v.throwIfAny();
      const run = await reconciliation.reconcileChannel(channel!, req.billDate);
      return create(ReconcileChannelResponseSchema, { run: reconciliationRunToProto(run) });
    },

    async importStatement(requests: AsyncIterable<ImportStatementRequest>) {
      const directory = await mkdtemp(join(tmpdir(), "import-statement-"));
      const path = join(directory, "bill");
      try {
        let header: { channel: ChannelName; billDate: string; sha1: string } | undefined;
        const file = await open(path, "wx", 0o600);
        let total = 0;
        let messages = 0;
        try {
          for await (const request of requests) {
            messages++;
            if (messages === 1) {
              if (request.part.case !== "header") {
                throw new ValidationError([{ field: "header", reason: "REQUIRED", description: "the first message must be the header" }]);
              }
              const v = new Violations();
              const channel = requiredChannel(v, "header.channel", request.part.value.channel);
              checkShortText(v, "header.bill_date", request.part.value.billDate);
              checkShortText(v, "header.sha1", request.part.value.sha1);
              v.throwIfAny();
              header = { channel: channel!, billDate: request.part.value.billDate, sha1: request.part.value.sha1 };
              continue;
            }
            if (request.part.case !== "chunk") {
              throw new ValidationError([{ field: "chunk", reason: "REQUIRED", description: "messages after the header carry chunk only" }]);
            }
            const chunk = request.part.value;
            if (chunk.byteLength > limits.maxChunkBytes) {
              throw new ValidationError([{ field: "chunk", reason: "TOO_LARGE", description: `at most ${limits.maxChunkBytes} bytes per message` }]);
            }
            total += chunk.byteLength;
            if (total > limits.maxFileBytes) {
              throw new ValidationError(
                [{ field: "chunk", reason: "FILE_TOO_LARGE", description: `the file exceeds the limit of ${limits.maxFileBytes} bytes` }],
                "FILE_TOO_LARGE",
              );
            }
            await file.write(chunk);
          }
        } finally {
          await file.close();
        }
        if (!header) throw new ValidationError([{ field: "header", reason: "REQUIRED", description: "the first message must be the header" }]);
        const run = await reconciliation.importStatement(header.channel, header.billDate, path, { sha1: header.sha1 || undefined });
        return create(ImportStatementResponseSchema, { run: reconciliationRunToProto(run) });
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },

    async listReconciliationRuns(req) {
      const v = new Violations();
      const channel = optionalChannelFromProto(v, "channel", req.channel);
      checkPageToken(v, "page_token", req.pageToken);
      v.throwIfAny();
      const page = await reconciliation.listRuns(uow.session(), { channel, pageSize: req.pageSize, pageToken: req.pageToken });
      return create(ListReconciliationRunsResponseSchema, {
        runs: page.runs.map(reconciliationRunToProto),
        nextPageToken: page.nextPageToken,
      });
    },
  };
}
