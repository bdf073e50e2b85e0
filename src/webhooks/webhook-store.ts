/**
 * The webhook store: every statement on `webhook_delivery` and `webhook_attempt`, and the reads of
 * the notify URLs deliveries are made for (`payment.notify_url`, `merchant.notify_url`).
 */
import type { FilterQuery } from "@mikro-orm/core";
import { rawDate } from "../db/raw-sql.js";
import { insertRow, queryRows, runStatement, updateRows } from "../db/rows.js";
import { entityManager, rowExecutor } from "../db/store-access.js";
import type { RowTx, Session, Tx } from "../db/unit-of-work.js";
import { Merchant, type MerchantRow } from "../merchants/merchant-entity.js";
import { OutboxEvent, type OutboxEventRow } from "../outbox/outbox-entity.js";
import type { PageRequest } from "../pagination.js";
import {
  WebhookAttempt,
  type WebhookAttemptRow,
  WebhookDelivery,
  type WebhookDeliveryRow,
  type WebhookDeliveryStatus,
} from "./webhook-entities.js";

/** Attempts kept per delivery: older ones are deleted as new ones are recorded. */
export const MAX_ATTEMPTS_KEPT = 50;

/** Each id's notify URL (ids without one, or not found, are absent), for the payments `ids`. */
export function paymentNotifyUrls(session: Session, ids: readonly string[]): Promise<Map<string, string>> {
  return notifyUrls(session, "payment", ids);
}

/** Each id's notify URL (ids without one, or not found, are absent), for the merchants `ids`. */
export function merchantNotifyUrls(session: Session, ids: readonly string[]): Promise<Map<string, string>> {
  return notifyUrls(session, "merchant", ids);
}

/**
 * A plain read rather than the ORM's `find`: the fan-out asks for every batch of events, and
 * entities (even of two fields) cost about 10 µs of CPU each to make, mostly for rows without a URL.
 */
async function notifyUrls(session: Session, table: "payment" | "merchant", ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await queryRows<{ id: string; notify_url: string }>(
    rowExecutor(session),
    `select id, notify_url from ${table} where notify_url <> '' and id in (${ids.map(() => "?").join(", ")})`,
    ids,
  );
  return new Map(rows.map((row) => [row.id, row.notify_url]));
}

/** The events `ids` (those still there), by id: what the claimed deliveries send. */
export async function eventsByIds(session: Session, ids: readonly string[]): Promise<Map<string, OutboxEventRow>> {
  if (ids.length === 0) return new Map();
  const rows = await entityManager(session).find(OutboxEvent, { id: { $in: [...ids] } }, { disableIdentityMap: true });
  return new Map(rows.map((row) => [row.id, row]));
}

/** The merchants `ids` (those still there), by id: whose secrets sign the claimed deliveries. */
export async function merchantsByIds(session: Session, ids: readonly string[]): Promise<Map<string, MerchantRow>> {
  if (ids.length === 0) return new Map();
  const rows = await entityManager(session).find(Merchant, { id: { $in: [...ids] } }, { disableIdentityMap: true });
  return new Map(rows.map((row) => [row.id, row]));
}

/** Inserts the deliveries, skipping any whose event already has one; resolves with how many were new. */
export async function insertDeliveries(tx: Tx, deliveries: readonly WebhookDeliveryRow[]): Promise<number> {
  if (deliveries.length === 0) return 0;
  const result = await entityManager(tx)
    .createQueryBuilder(WebhookDelivery)
    .insert([...deliveries])
    .onConflict(["eventId"])
    .ignore()
    .execute("run");
  return Number((result as { affectedRows?: number }).affectedRows ?? deliveries.length);
}

/** A due delivery not held by anyone, as the claim sees it first. */
export interface DueDelivery {
  id: string;
  endpoint: string;
}

/**
 * Up to `limit` PENDING deliveries due at `now` that nobody holds, longest due first, leaving out
 * the endpoints in `skipEndpoints` (those this replica has at their cap).
 */
export async function dueDeliveries(session: Session, now: Date, skipEndpoints: readonly string[], limit: number): Promise<DueDelivery[]> {
  const where: FilterQuery<WebhookDeliveryRow> = {
    status: "PENDING",
    nextAttemptAt: { $lte: now },
    $or: [{ leaseUntil: null }, { leaseUntil: { $lt: now } }],
  };
  if (skipEndpoints.length > 0) where.endpoint = { $nin: [...skipEndpoints] };
  return entityManager(session).find(WebhookDelivery, where, {
    fields: ["id", "endpoint"],
    orderBy: { nextAttemptAt: "asc" },
    limit: Math.floor(limit),
    disableIdentityMap: true,
  });
}

/**
 * Takes the lease of each of `ids` still due and free at `now` for `holder` until `until`, then
 * resolves with the deliveries this holder got (another replica may have taken some first).
 */
export async function claimDeliveries(tx: Tx, ids: readonly string[], holder: string, now: Date, until: Date): Promise<WebhookDeliveryRow[]> {
  if (ids.length === 0) return [];
  const em = entityManager(tx);
  const claimed = await em.nativeUpdate(
    WebhookDelivery,
    {
      id: { $in: [...ids] },
      status: "PENDING",
      nextAttemptAt: { $lte: now },
      $or: [{ leaseUntil: null }, { leaseUntil: { $lt: now } }],
    },
    { leaseHolder: holder, leaseUntil: until },
  );
  if (claimed === 0) return [];
  return em.find(WebhookDelivery, { id: { $in: [...ids] }, leaseHolder: holder }, { disableIdentityMap: true });
}

/** What an attempt changed on its delivery. */
export type DeliveryOutcome = Pick<
  WebhookDeliveryRow,
  "status" | "attemptCount" | "roundAttempts" | "nextAttemptAt" | "deliveredAt" | "lastHttpStatus"
>;

/**
 * Records an attempt and its outcome, only while `holder` still holds the delivery (a replica whose
 * lease expired and was taken over changes nothing); drops attempts beyond the last
 * {@link MAX_ATTEMPTS_KEPT}. Resolves with whether it was recorded.
 */
export async function recordAttempt(tx: RowTx, holder: string, attempt: WebhookAttemptRow, outcome: DeliveryOutcome): Promise<boolean> {
  // Prepared row statements: one of these per attempt is the dispatcher's main database cost.
  const rows = rowExecutor(tx);
  const updated = await updateRows(
    rows,
    WebhookDelivery,
    { id: attempt.deliveryId, leaseHolder: holder, status: "PENDING" },
    { ...outcome, leaseHolder: null, leaseUntil: null },
  );
  if (updated !== 1) return false;
  await insertRow(rows, WebhookAttempt, attempt);
  if (attempt.number > MAX_ATTEMPTS_KEPT) {
    await runStatement(rows, "delete from webhook_attempt where delivery_id = ? and number <= ?", [
      attempt.deliveryId,
      attempt.number - MAX_ATTEMPTS_KEPT,
    ]);
  }
  return true;
}

/** The delivery `id` (of `merchantId` when given). */
export async function findDelivery(session: Session, id: string, merchantId?: string): Promise<WebhookDeliveryRow | undefined> {
  const where: FilterQuery<WebhookDeliveryRow> = { id };
  if (merchantId !== undefined) where.merchantId = merchantId;
  return (await entityManager(session).findOne(WebhookDelivery, where, { disableIdentityMap: true })) ?? undefined;
}

/** Which deliveries a listing wants; unset fields do not filter. */
export interface DeliveryFilter {
  merchantId?: string;
  eventId?: string;
  objectId?: string;
  status?: WebhookDeliveryStatus;
}

/** A page of deliveries, newest first. */
export async function listDeliveries(session: Session, filter: DeliveryFilter, page: PageRequest): Promise<WebhookDeliveryRow[]> {
  const where: FilterQuery<WebhookDeliveryRow> = {};
  if (filter.merchantId !== undefined) where.merchantId = filter.merchantId;
  if (filter.eventId !== undefined) where.eventId = filter.eventId;
  if (filter.objectId !== undefined) where.objectId = filter.objectId;
  if (filter.status !== undefined) where.status = filter.status;
  if (page.afterId !== undefined) where.id = { $lt: page.afterId };
  return entityManager(session).find(WebhookDelivery, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}

/** The last `perDelivery` attempts of each delivery, newest first, by delivery id. */
export async function recentAttempts(
  session: Session,
  deliveries: ReadonlyArray<Pick<WebhookDeliveryRow, "id" | "attemptCount">>,
  perDelivery: number,
): Promise<Map<string, WebhookAttemptRow[]>> {
  const byDelivery = new Map<string, WebhookAttemptRow[]>(deliveries.map((delivery) => [delivery.id, []]));
  const tried = deliveries.filter((delivery) => delivery.attemptCount > 0);
  if (tried.length === 0) return byDelivery;
  const rows = await entityManager(session).find(
    WebhookAttempt,
    { $or: tried.map((delivery) => ({ deliveryId: delivery.id, number: { $gt: delivery.attemptCount - perDelivery } })) },
    { orderBy: { deliveryId: "asc", number: "desc" }, disableIdentityMap: true },
  );
  for (const row of rows) byDelivery.get(row.deliveryId)?.push(row);
  return byDelivery;
}

/**
 * Makes the delivery PENDING and due at `now` with a fresh retry round, dropping any lease (an
 * attempt in flight then records nothing); of `merchantId` only when given. Resolves with whether
 * the delivery exists.
 */
export async function restartDelivery(session: Session, id: string, now: Date, merchantId?: string): Promise<boolean> {
  const where: FilterQuery<WebhookDeliveryRow> = { id };
  if (merchantId !== undefined) where.merchantId = merchantId;
  const updated = await entityManager(session).nativeUpdate(WebhookDelivery, where, {
    status: "PENDING",
    nextAttemptAt: now,
    roundAttempts: 0,
    deliveredAt: null,
    leaseHolder: null,
    leaseUntil: null,
  });
  return updated === 1;
}

/**
 * Deletes up to `limit` finished (SUCCEEDED or FAILED) deliveries created before `before`, with
 * their attempts; resolves with how many deliveries went.
 */
export async function deleteFinishedBefore(session: Session, before: Date, limit: number): Promise<number> {
  const em = entityManager(session);
  const rows = await em.find(
    WebhookDelivery,
    { status: { $in: ["SUCCEEDED", "FAILED"] }, createdAt: { $lt: before } },
    { fields: ["id"], orderBy: { createdAt: "asc" }, limit: Math.floor(limit), disableIdentityMap: true },
  );
  if (rows.length === 0) return 0;
  const ids = rows.map((row) => row.id);
  await em.nativeDelete(WebhookAttempt, { deliveryId: { $in: ids } });
  return em.nativeDelete(WebhookDelivery, { id: { $in: ids }, status: { $in: ["SUCCEEDED", "FAILED"] } });
}

/**
 * The deliveries waiting for an attempt (PENDING: new or retrying) with when the oldest of them was
 * made, and how many were given up on (FAILED). For the backlog metrics: one statement over the two
 * status ranges of `webhook_delivery_due_idx` (MySQL: the index holds the primary key, so counting
 * and the first id read the index alone); delivery ids are time-ordered and made with `created_at`,
 * so the first PENDING id is the oldest delivery, whose time is then one primary-key read.
 */
export async function deliveryBacklog(session: Session): Promise<{ pending: number; oldestPendingCreatedAt: Date | undefined; failed: number }> {
  const em = entityManager(session);
  const rows: Array<Record<string, unknown>> = await em.execute(
    "select status, count(*) as n, min(id) as first from webhook_delivery where status in (?, ?) group by status",
    ["PENDING", "FAILED"] satisfies WebhookDeliveryStatus[],
  );
  let pending = 0;
  let failed = 0;
  let first: string | undefined;
  for (const row of rows) {
    if (row.status === "PENDING") {
      pending = Number(row.n ?? 0);
      if (row.first !== null && row.first !== undefined) first = String(row.first);
    } else if (row.status === "FAILED") {
      failed = Number(row.n ?? 0);
    }
  }
  if (first === undefined) return { pending, oldestPendingCreatedAt: undefined, failed };
  const oldest: Array<Record<string, unknown>> = await em.execute("select created_at from webhook_delivery where id = ?", [first]);
  const createdAt = oldest[0]?.created_at;
  return { pending, oldestPendingCreatedAt: createdAt === null || createdAt === undefined ? undefined : rawDate(createdAt), failed };
}
