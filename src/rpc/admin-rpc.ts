/**
 * AdminService: read-only views across merchants for the admin console. Every RPC takes the admin
 * token (the auth interceptor checks it); handlers decode, validate, call admin-views.ts and map back.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { merchantsWithBalances, paymentTimeline, searchAllPayments, type TimelineItem } from "../admin/admin-views.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { Violations } from "../errors.js";
import { checkLookupId, checkPageToken } from "../input-text.js";
import type { SettlementService as SettlementDomain } from "../settlement/settlement-service.js";
import {
  type AdminService,
  GetPaymentTimelineResponseSchema,
  ListMerchantSettlementsResponseSchema,
  ListMerchantsResponseSchema,
  MerchantBalanceSchema,
  MerchantSummarySchema,
  SearchPaymentsResponseSchema,
  type TimelineEntry,
  TimelineEntrySchema,
} from "../../gen/payments/v1/admin_service_pb.js";
import {
  channelToProto,
  merchantToProto,
  paymentListFilterFromProto,
  paymentToProto,
  refundToProto,
} from "./mappers.js";
import { settlementToProto } from "./settlement-order-rpc.js";
import { deliveryToProto } from "./webhook-rpc.js";

/** An optional identifier filter: empty means unset, anything else must look like an id. */
function optionalId(v: Violations, field: string, value: string): string | undefined {
  if (value === "") return undefined;
  return checkLookupId(v, field, value) ? value : undefined;
}

function timelineEntryToProto(item: TimelineItem): TimelineEntry {
  const at = timestampFromDate(item.at);
  switch (item.kind) {
    case "event":
      return create(TimelineEntrySchema, {
        at,
        entry: {
          case: "event",
          value: { eventId: item.event.id, eventType: item.event.eventType, payloadJson: JSON.stringify(item.event.payload) },
        },
      });
    case "callback": {
      const { callback } = item;
      return create(TimelineEntrySchema, {
        at,
        entry: {
          case: "callback",
          value: {
            id: callback.id,
            channel: channelToProto(callback.channel),
            verdict: callback.verdict,
            reason: callback.reason ?? "",
            notificationId: callback.notificationId ?? "",
            effect: callback.effect ?? "",
            answerStatus: callback.answerStatus,
          },
        },
      });
    }
    case "channelCall": {
      const { call } = item;
      return create(TimelineEntrySchema, {
        at,
        entry: {
          case: "channelCall",
          value: {
            id: call.id,
            channel: channelToProto(call.channel),
            operation: call.operation,
            outcome: call.outcome,
            code: call.code ?? "",
            detail: call.detail,
            latencyMs: call.latencyMs,
            refundNo: call.refundNo ?? "",
            traceId: call.traceId ?? "",
          },
        },
      });
    }
    case "ledger": {
      const { entry, postings } = item.entry;
      return create(TimelineEntrySchema, {
        at,
        entry: {
          case: "ledgerEntry",
          value: {
            id: entry.id,
            entryType: entry.entryType,
            ref: entry.ref,
            currency: entry.currency,
            refundId: entry.refundId ?? "",
            postings: postings.map((posting) => ({ account: posting.account, amount: posting.amount })),
          },
        },
      });
    }
    case "refund":
      return create(TimelineEntrySchema, { at, entry: { case: "refund", value: refundToProto(item.refund) } });
    case "delivery":
      return create(TimelineEntrySchema, { at, entry: { case: "webhookDelivery", value: deliveryToProto(item.delivery) } });
  }
}

export function createAdminRpc(uow: UnitOfWork, settlements: SettlementDomain): ServiceImpl<typeof AdminService> {
  return {
    async searchPayments(req) {
      const v = new Violations();
      const search = {
        paymentId: optionalId(v, "payment_id", req.paymentId),
        paymentNo: optionalId(v, "payment_no", req.paymentNo),
        merchantOrderNo: optionalId(v, "merchant_order_no", req.merchantOrderNo),
        merchantId: optionalId(v, "merchant_id", req.merchantId),
        ...paymentListFilterFromProto(v, req),
      };
      checkPageToken(v, "page_token", req.pageToken);
      v.throwIfAny();
      const page = await searchAllPayments(uow.session(), search);
      return create(SearchPaymentsResponseSchema, { payments: page.payments.map(paymentToProto), nextPageToken: page.nextPageToken });
    },
    async getPaymentTimeline(req) {
      const v = new Violations();
      checkLookupId(v, "payment_id", req.paymentId);
      v.throwIfAny();
      const timeline = await paymentTimeline(uow.session(), req.paymentId);
      return create(GetPaymentTimelineResponseSchema, {
        payment: paymentToProto(timeline.payment),
        entries: timeline.items.map(timelineEntryToProto),
        truncated: timeline.truncated,
      });
    },
    async listMerchants(req) {
      const v = new Violations();
      checkPageToken(v, "page_token", req.pageToken);
      v.throwIfAny();
      const page = await merchantsWithBalances(uow.session(), { pageSize: req.pageSize, pageToken: req.pageToken });
      return create(ListMerchantsResponseSchema, {
        merchants: page.merchants.map(({ merchant, balances }) =>
          create(MerchantSummarySchema, {
            merchant: merchantToProto(merchant),
            balances: balances.map((balance) => create(MerchantBalanceSchema, balance)),
          }),
        ),
        nextPageToken: page.nextPageToken,
      });
    },
    async listMerchantSettlements(req) {
      const v = new Violations();
      checkLookupId(v, "merchant_id", req.merchantId);
      checkPageToken(v, "page_token", req.pageToken);
      v.throwIfAny();
      const page = await settlements.listSettlements(uow.session(), req.merchantId, {
        currency: "",
        settlementDate: "",
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        includeLines: false,
      });
      return create(ListMerchantSettlementsResponseSchema, {
        settlements: page.settlements.map(settlementToProto),
        nextPageToken: page.nextPageToken,
      });
    },
  };
}
