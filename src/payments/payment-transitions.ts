/**
 * Applies a status change with its effects, inside the caller's transaction: the guarded UPDATE
 * from the transition table, then the outbox event (and, for money movements, ledger postings).
 * Returns false when the payment was not in an allowed state (someone else applied it first).
 * Every statement is a prepared row statement, so it runs in either kind of transaction.
 */
import type { RowScope } from "../db/unit-of-work.js";
import { type PaymentEventFields, paymentObject } from "../events/event-objects.js";
import { appendEvent } from "../outbox/outbox-store.js";
import type { PaymentRow } from "./payment-entity.js";
import { allowedSources, type PaymentStatus } from "./payment-status.js";
import { type PaymentChanges, type PaymentForOutcome, transitionStatus } from "./payment-store.js";

export type { PaymentChanges } from "./payment-store.js";

/**
 * The event's `data` is the payment after the change (the row as read with the columns the
 * guarded UPDATE set: what the database now holds, without reading it back), the status it left
 * and what caused the change.
 */
export async function transitionPayment(
  tx: RowScope,
  payment: PaymentForOutcome,
  to: PaymentStatus,
  changes: PaymentChanges,
  cause: string,
): Promise<boolean> {
  const now = new Date();
  if (!(await transitionStatus(tx, payment.id, allowedSources(to), to, changes, now))) return false;
  const after: PaymentEventFields = withChanges(payment, changes, to);
  await recordPaymentEvent(tx, payment, `payment.${to.toLowerCase()}`, { payment: paymentObject(after), previous_status: payment.status, cause }, now);
  return true;
}

/** The payment with the changes set (keys left undefined are left alone, as the UPDATE leaves them) and its new status. */
function withChanges(payment: PaymentForOutcome, changes: PaymentChanges, status: PaymentStatus): PaymentEventFields {
  const after: Record<string, unknown> = { ...payment };
  for (const key in changes) {
    const value = changes[key as keyof PaymentChanges];
    if (value !== undefined) after[key] = value;
  }
  after.status = status;
  return after as unknown as PaymentEventFields;
}

/**
 * Writes an outbox event about a payment (or one of its refunds: their events are the payment's,
 * so a watch of the payment sees them) in the current transaction (either kind).
 */
export function recordPaymentEvent(
  tx: RowScope,
  payment: Pick<PaymentRow, "id" | "merchantId">,
  eventType: string,
  payload: Record<string, unknown>,
  now: Date = new Date(),
): Promise<void> {
  return appendEvent(tx, { merchantId: payment.merchantId, aggregateId: payment.id, eventType, payload }, now);
}
