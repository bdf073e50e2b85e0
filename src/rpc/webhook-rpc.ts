/**
 * Webhook deliveries and secrets: ListWebhookDeliveries and RedeliverWebhook (PaymentService, the
 * calling merchant's), RotateWebhookSecret, ListMerchantWebhookDeliveries and
 * RedeliverMerchantWebhook (MerchantService, admin).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { WebhooksConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { Violations } from "../errors.js";
import { checkLookupId, checkPageToken } from "../input-text.js";
import type { MerchantService as MerchantDomain } from "../merchants/merchant-service.js";
import type { WebhookDeliveryStatus as DomainDeliveryStatus } from "../webhooks/webhook-entities.js";
import { type DeliveryView, listWebhookDeliveries, redeliverWebhook } from "../webhooks/webhook-service.js";
import {
  type WebhookDelivery,
  WebhookAttemptSchema,
  WebhookDeliverySchema,
  WebhookDeliveryStatus,
} from "../../gen/payments/v1/event_pb.js";
import {
  ListMerchantWebhookDeliveriesResponseSchema,
  type MerchantService,
  RedeliverMerchantWebhookResponseSchema,
  RotateWebhookSecretResponseSchema,
} from "../../gen/payments/v1/merchant_service_pb.js";
import {
  ListWebhookDeliveriesResponseSchema,
  type PaymentService,
  RedeliverWebhookResponseSchema,
} from "../../gen/payments/v1/payment_service_pb.js";
import { merchantOf, sessionOf } from "./auth.js";
import { merchantToProto } from "./mappers.js";

/** The longest overlap RotateWebhookSecret accepts (7 days). */
const MAX_SECRET_OVERLAP_SECONDS = 604_800;

export interface WebhookRpc {
  merchant: Pick<ServiceImpl<typeof PaymentService>, "listWebhookDeliveries" | "redeliverWebhook">;
  admin: Pick<ServiceImpl<typeof MerchantService>, "rotateWebhookSecret" | "listMerchantWebhookDeliveries" | "redeliverMerchantWebhook">;
}

export interface WebhookRpcDeps {
  uow: UnitOfWork;
  merchants: MerchantDomain;
  config: WebhooksConfig;
}

const STATUS_TO_DOMAIN: ReadonlyMap<WebhookDeliveryStatus, DomainDeliveryStatus> = new Map([
  [WebhookDeliveryStatus.PENDING, "PENDING"],
  [WebhookDeliveryStatus.SUCCEEDED, "SUCCEEDED"],
  [WebhookDeliveryStatus.FAILED, "FAILED"],
]);

/** The listing filters shared by the merchant's and the admin's RPC, checked; violations added to `v`. */
function deliveryFilters(v: Violations, req: { eventId: string; objectId: string; status: WebhookDeliveryStatus; pageToken: string }) {
  if (req.eventId !== "") checkLookupId(v, "event_id", req.eventId);
  if (req.objectId !== "") checkLookupId(v, "object_id", req.objectId);
  let status: DomainDeliveryStatus | undefined;
  if (req.status !== WebhookDeliveryStatus.UNSPECIFIED) {
    status = STATUS_TO_DOMAIN.get(req.status);
    if (!status) v.add("status", "INVALID_ENUM", "must be PENDING, SUCCEEDED or FAILED");
  }
  checkPageToken(v, "page_token", req.pageToken);
  return { eventId: req.eventId || undefined, objectId: req.objectId || undefined, status };
}

function deliveryId(id: string): string {
  const v = new Violations();
  checkLookupId(v, "delivery_id", id);
  v.throwIfAny();
  return id;
}

/** A delivery and its recent attempts as the API returns them (also used by the admin console RPCs). */
export function deliveryToProto({ delivery, attempts }: DeliveryView): WebhookDelivery {
  return create(WebhookDeliverySchema, {
    id: delivery.id,
    eventId: delivery.eventId,
    eventType: delivery.eventType,
    merchantId: delivery.merchantId,
    objectId: delivery.objectId,
    url: delivery.url,
    status:
      delivery.status === "SUCCEEDED"
        ? WebhookDeliveryStatus.SUCCEEDED
        : delivery.status === "FAILED"
          ? WebhookDeliveryStatus.FAILED
          : WebhookDeliveryStatus.PENDING,
    attemptCount: delivery.attemptCount,
    nextAttemptAt: delivery.status === "PENDING" && delivery.nextAttemptAt ? timestampFromDate(delivery.nextAttemptAt) : undefined,
    createdAt: timestampFromDate(delivery.createdAt),
    deliveredAt: delivery.deliveredAt ? timestampFromDate(delivery.deliveredAt) : undefined,
    attempts: attempts.map((attempt) =>
      create(WebhookAttemptSchema, {
        number: attempt.number,
        startedAt: timestampFromDate(attempt.startedAt),
        httpStatus: attempt.httpStatus,
        latencyMs: attempt.latencyMs,
        responseExcerpt: attempt.responseExcerpt,
        error: attempt.error,
      }),
    ),
  });
}

export function createWebhookRpc(deps: WebhookRpcDeps): WebhookRpc {
  const { uow, merchants, config } = deps;
  return {
    merchant: {
      async listWebhookDeliveries(req, ctx) {
        const session = sessionOf(ctx, () => uow.session());
        const merchant = merchantOf(ctx);
        const v = new Violations();
        const filters = deliveryFilters(v, req);
        v.throwIfAny();
        const page = await listWebhookDeliveries(session, { ...filters, merchantId: merchant.id, pageSize: req.pageSize, pageToken: req.pageToken });
        return create(ListWebhookDeliveriesResponseSchema, {
          deliveries: page.deliveries.map(deliveryToProto),
          nextPageToken: page.nextPageToken,
        });
      },
      async redeliverWebhook(req, ctx) {
        const session = sessionOf(ctx, () => uow.session());
        const merchant = merchantOf(ctx);
        const view = await redeliverWebhook(session, deliveryId(req.deliveryId), merchant.id);
        return create(RedeliverWebhookResponseSchema, { delivery: deliveryToProto(view) });
      },
    },
    admin: {
      async rotateWebhookSecret(req) {
        const v = new Violations();
        checkLookupId(v, "merchant_id", req.merchantId);
        if (req.overlapSeconds < 0 || req.overlapSeconds > MAX_SECRET_OVERLAP_SECONDS) {
          v.add("overlap_seconds", "OUT_OF_RANGE", `must be 0 (the default, ${config.secretOverlapSeconds}) to ${MAX_SECRET_OVERLAP_SECONDS}`);
        }
        v.throwIfAny();
        const overlapSeconds = req.overlapSeconds === 0 ? config.secretOverlapSeconds : req.overlapSeconds;
        const rotated = await merchants.rotateWebhookSecret(uow.session(), req.merchantId, overlapSeconds);
        return create(RotateWebhookSecretResponseSchema, {
          merchant: merchantToProto(rotated.merchant),
          webhookSecret: rotated.webhookSecret,
          previousSecretExpiresAt: timestampFromDate(rotated.previousSecretExpiresAt),
        });
      },
      async listMerchantWebhookDeliveries(req) {
        const v = new Violations();
        if (req.merchantId !== "") checkLookupId(v, "merchant_id", req.merchantId);
        const filters = deliveryFilters(v, req);
        v.throwIfAny();
        const page = await listWebhookDeliveries(uow.session(), {
          ...filters,
          merchantId: req.merchantId || undefined,
          pageSize: req.pageSize,
          pageToken: req.pageToken,
        });
        return create(ListMerchantWebhookDeliveriesResponseSchema, {
          deliveries: page.deliveries.map(deliveryToProto),
          nextPageToken: page.nextPageToken,
        });
      },
      async redeliverMerchantWebhook(req) {
        const view = await redeliverWebhook(uow.session(), deliveryId(req.deliveryId));
        return create(RedeliverMerchantWebhookResponseSchema, { delivery: deliveryToProto(view) });
      },
    },
  };
}
