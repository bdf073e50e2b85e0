/**
 * Applies a status change with its effects, inside the caller's transaction: the guarded UPDATE
 * from the transition table, then the outbox event (and, for money movements, ledger postings).
 * Returns false when the payment was not in an allowed state (someone else applied it first).
 * Every statement is a prepared row statement, so it runs in either kind of transaction.
 */
import type { RowScope } from "../db/unit-of-work.js";
import { appendEvent } from "../outbox/outbox-store.js";
import type { PaymentRow } from "./payment-entity.js";
import { allowedSources, type PaymentStatus } from "./payment-status.js";
import { type PaymentChanges, transitionStatus } from "./payment-store.js";

export type { PaymentChanges } from "./payment-store.js";

export async function transitionPayment(
  tx: RowScope,
  payment: PaymentRow,
  to: PaymentStatus,
  changes: PaymentChanges,
  cause: string,
): Promise<boolean> {
  const now = new Date();
  if (!(await transitionStatus(tx, payment.id, allowedSources(to), to, changes, now))) return false;
  await recordPaymentEvent(tx, payment, `payment.${to.toLowerCase()}`, { from: payment.status, to, cause }, now);
  return true;
}

/** Writes an outbox event about a payment in the current transaction (either kind). */
export async function recordPaymentEvent(
  tx: RowScope,
  payment: Pick<PaymentRow, "id" | "merchantId">,
  eventType: string,
  payload: Record<string, unknown>,
  now: Date = new Date(),
): Promise<void> {
  await appendEvent(tx, { merchantId: payment.merchantId, aggregateId: payment.id, eventType, payload }, now);
}
