/**
 * SettlementService: balances (merchant), ledger checks and discrepancies (admin) here; settlement
 * orders, payouts and reconciliation in their own handler modules, joined into one service. Callers
 * are checked by the auth interceptor.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { UnitOfWork } from "../db/unit-of-work.js";
import type { DiscrepancyRow } from "../discrepancies/discrepancy-entity.js";
import { listDiscrepancies, resolveDiscrepancy } from "../discrepancies/discrepancy-service.js";
import { Violations } from "../errors.js";
import { checkLedgerSnapshot } from "../ledger/ledger-check.js";
import { merchantBalance } from "../ledger/ledger.js";
import { isKnownCurrency } from "../money/currency.js";
import { checkLookupId, checkPrintable } from "../input-text.js";
import {
  CheckLedgerResponseSchema,
  type Discrepancy,
  DiscrepancySchema,
  GetBalanceResponseSchema,
  ListDiscrepanciesResponseSchema,
  ResolveDiscrepancyResponseSchema,
  type SettlementService,
} from "../../gen/payments/v1/settlement_service_pb.js";
import { merchantOf, sessionOf } from "./auth.js";
import { channelToProto } from "./mappers.js";

/** Longer resolutions (and resolvers) are refused by the domain for their length; no need to scan past that. */
const MAX_RESOLUTION_SCAN_CHARS = 1024;

function discrepancyToProto(row: DiscrepancyRow): Discrepancy {
  return create(DiscrepancySchema, {
    id: row.id,
    kind: row.kind,
    channel: channelToProto(row.channel),
    merchantId: row.merchantId ?? "",
    paymentId: row.paymentId ?? "",
    channelTradeNo: row.channelTradeNo ?? "",
    amount: row.amount ?? 0n,
    currency: row.currency ?? "",
    detail: row.detail,
    status: row.status,
    resolution: row.resolution ?? "",
    createdAt: timestampFromDate(row.createdAt),
    resolvedBy: row.resolvedBy ?? "",
    resolvedAt: row.resolvedAt ? timestampFromDate(row.resolvedAt) : undefined,
    reconciliationRunId: row.reconciliationRunId ?? "",
    refundId: row.refundId ?? "",
  });
}

type Impl = ServiceImpl<typeof SettlementService>;

/** The handlers of the other SettlementService modules. */
export interface SettlementRpcParts {
  /** RunSettlement, GetSettlement, ListSettlements, SubmitSettlement (settlement-order-rpc.ts). */
  orders: Pick<Impl, "runSettlement" | "getSettlement" | "listSettlements" | "submitSettlement">;
  /** SetSettlementAccount (payout-rpc.ts). */
  payouts: Pick<Impl, "setSettlementAccount">;
  /** ReconcileChannel, ImportStatement, ListReconciliationRuns (reconciliation-rpc.ts). */
  reconciliation: Pick<Impl, "reconcileChannel" | "importStatement" | "listReconciliationRuns">;
}

export function createSettlementRpc(uow: UnitOfWork, parts: SettlementRpcParts): Impl {
  return {
    ...parts.orders,
    ...parts.payouts,
    ...parts.reconciliation,
    async getBalance(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      if (!isKnownCurrency(req.currency)) {
        const v = new Violations();
        v.add("currency", "UNKNOWN_CURRENCY", "must be a supported ISO 4217 code, e.g. CNY");
        v.throwIfAny();
      }
      const balance = await merchantBalance(session, merchant.id, req.currency);
      return create(GetBalanceResponseSchema, { currency: req.currency, ...balance });
    },
    async checkLedger() {
      const result = await checkLedgerSnapshot(uow);
      return create(CheckLedgerResponseSchema, {
        ok: result.ok,
        violations: result.violations,
        entriesChecked: BigInt(result.entriesChecked),
        paymentsChecked: BigInt(result.paymentsChecked),
      });
    },
    async listDiscrepancies(req) {
      const page = await listDiscrepancies(uow.session(), {
        status: req.status,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return create(ListDiscrepanciesResponseSchema, {
        discrepancies: page.discrepancies.map(discrepancyToProto),
        nextPageToken: page.nextPageToken,
      });
    },
    async resolveDiscrepancy(req) {
      const v = new Violations();
      checkLookupId(v, "discrepancy_id", req.discrepancyId);
      checkPrintable(v, "resolution", req.resolution.slice(0, MAX_RESOLUTION_SCAN_CHARS));
      checkPrintable(v, "resolved_by", req.resolvedBy.slice(0, MAX_RESOLUTION_SCAN_CHARS));
      v.throwIfAny();
      const row = await resolveDiscrepancy(uow.session(), req.discrepancyId, { resolution: req.resolution, resolvedBy: req.resolvedBy });
      return create(ResolveDiscrepancyResponseSchema, { discrepancy: discrepancyToProto(row) });
    },
  };
}
