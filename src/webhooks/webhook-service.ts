/** Webhook deliveries as the merchant and the admin see them: listing with their attempts, redelivery. */
import type { Session } from "../db/unit-of-work.js";
import { NotFoundError } from "../errors.js";
import { pageRequest, toPage } from "../pagination.js";
import type { WebhookAttemptRow, WebhookDeliveryRow } from "./webhook-entities.js";
import { type DeliveryFilter, findDelivery, listDeliveries, recentAttempts, restartDelivery } from "./webhook-store.js";

/** Attempts shown with a delivery, newest first. */
export const ATTEMPTS_SHOWN = 20;

/** A delivery with its most recent attempts, newest first. */
export interface DeliveryView {
  delivery: WebhookDeliveryRow;
  attempts: WebhookAttemptRow[];
}

export interface ListDeliveriesRequest extends DeliveryFilter {
  pageSize: number;
  pageToken: string;
}

/** A page of deliveries (newest first) with their attempts; `merchantId` unset lists every merchant's (admin). */
export async function listWebhookDeliveries(
  session: Session,
  request: ListDeliveriesRequest,
): Promise<{ deliveries: DeliveryView[]; nextPageToken: string }> {
  const filter: DeliveryFilter = {
    merchantId: request.merchantId,
    eventId: request.eventId,
    objectId: request.objectId,
    status: request.status,
  };
  const page = pageRequest(request, [filter.merchantId ?? "", filter.eventId ?? "", filter.objectId ?? "", filter.status ?? ""]);
  const { items, nextPageToken } = toPage(await listDeliveries(session, filter, page), page);
  const attempts = await recentAttempts(session, items, ATTEMPTS_SHOWN);
  return { deliveries: items.map((delivery) => ({ delivery, attempts: attempts.get(delivery.id) ?? [] })), nextPageToken };
}

/**
 * Sends the delivery again: PENDING, due now, a fresh retry round, the same event (and event id).
 * `merchantId` limits it to that merchant's deliveries (another's is NOT_FOUND, as a missing one).
 */
export async function redeliverWebhook(session: Session, deliveryId: string, merchantId?: string): Promise<DeliveryView> {
  const restarted = await restartDelivery(session, deliveryId, new Date(), merchantId);
  const delivery = restarted ? await findDelivery(session, deliveryId, merchantId) : undefined;
  if (!delivery) throw new NotFoundError("WEBHOOK_DELIVERY_NOT_FOUND", `webhook delivery ${deliveryId} not found`);
  const attempts = await recentAttempts(session, [delivery], ATTEMPTS_SHOWN);
  return { delivery, attempts: attempts.get(delivery.id) ?? [] };
}
