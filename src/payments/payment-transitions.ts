/**
 * Applies a status change with its effects, inside the caller's transaction: the guarded UPDATE
 * from the transition table, then the outbox event (and, for money movements, ledger postings).
 * Returns false when the payment was not in an allowed state (someone else applied it first).
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import { newId } from "../ids.js";
import { insertRow, type RowExecutor } from "../db/rows.js";
import { OutboxEvent, type OutboxEventRow } from "../outbox/outbox-entity.js";
import { Payment, type PaymentRow } from "./payment-entity.js";
import { allowedSources, type PaymentStatus } from "./payment-status.js";

export type PaymentChanges = Partial<
  Pick<
    PaymentRow,
    "statusReason" | "channelTradeNo" | "paidAt" | "closedAt" | "fee" | "nextQueryAt" | "sweepLeaseUntil"
  >
>;

export async function transitionPayment(
  tx: SqlEntityManager,
  payment: PaymentRow,
  to: PaymentStatus,
  changes: PaymentChanges,
  cause: string,
): Promise<boolean> {
  const now = new Date();
  const affected = await tx.nativeUpdate(
    Payment,
    { id: payment.id, status: { $in: allowedSources(to) } },
    { ...changes, status: to, updatedAt: now },
  );
  if (affected === 0) return false;
  await recordPaymentEvent(tx, payment, `payment.${to.toLowerCase()}`, { from: payment.status, to, cause }, now);
  return true;
}

/** Writes an outbox event about a payment in the current transaction (an ORM one or a row transaction). */
export async function recordPaymentEvent(
  tx: RowExecutor,
  payment: Pick<PaymentRow, "id" | "merchantId">,
  eventType: string,
  payload: Record<string, unknown>,
  now: Date = new Date(),
): Promise<void> {
  await insertRow<OutboxEventRow>(tx, OutboxEvent, {
    id: newId(now.getTime()),
    merchantId: payment.merchantId,
    aggregateId: payment.id,
    eventType,
    payload,
    createdAt: now,
    availableAt: now,
    leaseUntil: null,
    attempts: 0,
    deliveredAt: null,
    lastError: null,
  });
}
