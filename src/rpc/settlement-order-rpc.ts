/**
 * RunSettlement (admin), GetSettlement, ListSettlements and SubmitSettlement (merchant): decode,
 * call the settlement domain (src/settlement/settlement-service.ts), encode.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { Violations } from "../errors.js";
import { checkPageToken, checkPrintable } from "../input-text.js";
import type { SettlementLineRow } from "../settlement/settlement-entity.js";
import type { SettlementService as SettlementDomain, SettlementStatus as DomainStatus, SettlementView } from "../settlement/settlement-service.js";
import {
  GetSettlementResponseSchema,
  ListSettlementsResponseSchema,
  RunSettlementResponseSchema,
  type Settlement,
  SettlementKind,
  type SettlementLine,
  SettlementLineKind,
  SettlementLineSchema,
  SettlementSchema,
  SettlementStatus,
  SubmitSettlementResponseSchema,
} from "../../gen/payments/v1/settlement_service_pb.js";
import { merchantOf, sessionOf } from "./auth.js";
import { payoutToProto } from "./payout-rpc.js";
import type { SettlementRpcParts } from "./settlement-rpc.js";

const STATUS_TO_PROTO: Readonly<Record<DomainStatus, SettlementStatus>> = {
  SETTLED: SettlementStatus.SETTLED,
  CARRIED_FORWARD: SettlementStatus.CARRIED_FORWARD,
  PAYING_OUT: SettlementStatus.PAYING_OUT,
  PAID_OUT: SettlementStatus.PAID_OUT,
  PAYOUT_FAILED: SettlementStatus.PAYOUT_FAILED,
};

const LINE_KIND_TO_PROTO: Readonly<Record<string, SettlementLineKind>> = {
  PAYMENT: SettlementLineKind.PAYMENT,
  REFUND: SettlementLineKind.REFUND,
  CARRIED: SettlementLineKind.CARRIED,
  WITHDRAWAL: SettlementLineKind.WITHDRAWAL,
};

/** Longest settlement_date read: a date is 10 characters; anything longer is refused by its length. */
const MAX_DATE_CHARS = 10;

function lineToProto(line: SettlementLineRow): SettlementLine {
  return create(SettlementLineSchema, {
    kind: LINE_KIND_TO_PROTO[line.kind] ?? SettlementLineKind.UNSPECIFIED,
    paymentId: line.paymentId ?? "",
    refundId: line.refundId ?? "",
    carriedFromSettlementId: line.kind === "CARRIED" ? line.id : "",
    gross: line.gross,
    fee: line.fee,
    net: line.net,
    occurredAt: timestampFromDate(line.occurredAt),
  });
}

export function settlementToProto(view: SettlementView): Settlement {
  const { order } = view;
  return create(SettlementSchema, {
    id: order.id,
    settlementNo: order.settlementNo,
    merchantId: order.merchantId,
    currency: order.currency,
    kind: order.kind === "ON_REQUEST" ? SettlementKind.ON_REQUEST : SettlementKind.SCHEDULED,
    settlementDate: order.settlementDate ?? "",
    periodStart: timestampFromDate(order.periodStart),
    periodEnd: timestampFromDate(order.periodEnd),
    paymentsAmount: order.paymentsAmount,
    refundsAmount: order.refundsAmount,
    feeAmount: order.feeAmount,
    carriedAmount: order.carriedAmount,
    grossAmount: order.grossAmount,
    netAmount: order.netAmount,
    lineCount: order.lineCount,
    status: STATUS_TO_PROTO[view.status],
    payout: view.payout ? payoutToProto(view.payout) : undefined,
    createdAt: timestampFromDate(order.createdAt),
    lines: view.lines.map(lineToProto),
    nextLinesPageToken: view.nextLinesPageToken,
  });
}

/** A date field cut to what a date can be, so a megabyte of text is refused for its length, not scanned. */
function dateField(text: string): string {
  return text.length > MAX_DATE_CHARS ? text.slice(0, MAX_DATE_CHARS + 1) : text;
}

export function createSettlementOrderRpc(uow: UnitOfWork, settlements: SettlementDomain): SettlementRpcParts["orders"] {
  return {
    async runSettlement(req) {
      const result = await settlements.runSettlement(uow.session(), dateField(req.settlementDate), {
        merchantId: req.merchantId === "" ? undefined : req.merchantId,
      });
      return create(RunSettlementResponseSchema, {
        settlementDate: result.settlementDate,
        periodStart: timestampFromDate(result.periodStart),
        periodEnd: timestampFromDate(result.periodEnd),
        ordersCreated: BigInt(result.ordersCreated),
        ordersExisting: BigInt(result.ordersExisting),
        linesSettled: BigInt(result.linesSettled),
        paymentsHeld: BigInt(result.paymentsHeld),
      });
    },
    async getSettlement(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const v = new Violations();
      checkPageToken(v, "lines_page_token", req.linesPageToken);
      v.throwIfAny();
      const view = await settlements.getSettlement(session, merchant.id, {
        settlementId: req.settlementId,
        linesPageSize: req.linesPageSize,
        linesPageToken: req.linesPageToken,
      });
      return create(GetSettlementResponseSchema, { settlement: settlementToProto(view) });
    },
    async listSettlements(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const v = new Violations();
      checkPageToken(v, "page_token", req.pageToken);
      v.throwIfAny();
      const page = await settlements.listSettlements(session, merchant.id, {
        currency: req.currency,
        settlementDate: dateField(req.settlementDate),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        includeLines: req.includeLines,
      });
      return create(ListSettlementsResponseSchema, { settlements: page.settlements.map(settlementToProto), nextPageToken: page.nextPageToken });
    },
    async submitSettlement(req, ctx) {
      const session = sessionOf(ctx, () => uow.session());
      const merchant = merchantOf(ctx);
      const idempotencyKey = ctx.requestHeader.get("idempotency-key") ?? undefined;
      if (idempotencyKey !== undefined) {
        const v = new Violations();
        checkPrintable(v, "idempotency-key", idempotencyKey.slice(0, 256));
        v.throwIfAny();
      }
      const view = await settlements.submitSettlement(session, merchant.id, { currency: req.currency, amount: req.amount }, idempotencyKey);
      return create(SubmitSettlementResponseSchema, { settlement: settlementToProto(view) });
    },
  };
}
