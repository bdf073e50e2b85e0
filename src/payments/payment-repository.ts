/**
 * Reads of payments, always scoped to one merchant. The single-row reads are on every call's path
 * and use the row-level helpers of db/database.ts (same rows, a fraction of the CPU).
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import { findRow, findRows } from "../db/rows.js";
import { NotFoundError } from "../errors.js";
import { Payment, PaymentItem, type PaymentItemRow, type PaymentRow } from "./payment-entity.js";

/** A payment with its order lines, as the API shows it. */
export interface PaymentView {
  payment: PaymentRow;
  items: PaymentItemRow[];
}

export type PaymentLookup = { paymentId: string } | { merchantOrderNo: string };

/** The merchant's payment, or PAYMENT_NOT_FOUND (also for another merchant's payment). */
export async function findMerchantPayment(
  em: SqlEntityManager,
  merchantId: string,
  lookup: PaymentLookup,
): Promise<PaymentRow> {
  const where =
    "paymentId" in lookup
      ? { id: lookup.paymentId, merchantId }
      : { merchantOrderNo: lookup.merchantOrderNo, merchantId };
  const payment = await findRow<PaymentRow>(em, Payment, where);
  if (!payment) {
    const key = "paymentId" in lookup ? lookup.paymentId : `order ${lookup.merchantOrderNo}`;
    throw new NotFoundError("PAYMENT_NOT_FOUND", `payment ${key} not found`);
  }
  return payment;
}

export async function reloadPayment(em: SqlEntityManager, paymentId: string): Promise<PaymentRow> {
  const payment = await findRow<PaymentRow>(em, Payment, { id: paymentId });
  if (!payment) throw new NotFoundError("PAYMENT_NOT_FOUND", `payment ${paymentId} not found`);
  return payment;
}

export async function withItems(em: SqlEntityManager, payment: PaymentRow): Promise<PaymentView> {
  const items = await findRows<PaymentItemRow>(em, PaymentItem, { paymentId: payment.id }, { orderBy: [["position", "asc"]] });
  return { payment, items };
}

export async function withItemsMany(em: SqlEntityManager, payments: PaymentRow[]): Promise<PaymentView[]> {
  if (payments.length === 0) return [];
  const items = await em.find(
    PaymentItem,
    { paymentId: { $in: payments.map((p) => p.id) } },
    { orderBy: { paymentId: "asc", position: "asc" }, disableIdentityMap: true },
  );
  const byPayment = new Map<string, PaymentItemRow[]>();
  for (const item of items) byPayment.set(item.paymentId, [...(byPayment.get(item.paymentId) ?? []), item]);
  return payments.map((payment) => ({ payment, items: byPayment.get(payment.id) ?? [] }));
}
