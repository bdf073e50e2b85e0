/** The callback store: every statement on `callback_log` and `callback_inbox`. */
import { deleteOldestRows } from "../db/raw-sql.js";
import { insertRow } from "../db/rows.js";
import { entityManager, rowExecutor } from "../db/store-access.js";
import type { RowScope, Session } from "../db/unit-of-work.js";
import { CallbackInbox, type CallbackInboxRow, CallbackLog, type CallbackLogRow } from "./callback-entities.js";

/** Inserts the de-duplication row of a notification; a repeated `(channel, notification id)` fails on its unique key. */
export async function insertInboxRow(tx: RowScope, row: CallbackInboxRow): Promise<void> {
  await insertRow(rowExecutor(tx), CallbackInbox, row);
}

/** Keeps a callback in the log (in a transaction with its effects, or on its own). */
export async function insertLogRow(scope: RowScope, row: CallbackLogRow): Promise<void> {
  await insertRow(rowExecutor(scope), CallbackLog, row);
}

/** The oldest `limit` callbacks logged about the payment, oldest first (the admin timeline). */
export function callbacksOfPayment(session: Session, paymentId: string, limit: number): Promise<CallbackLogRow[]> {
  return entityManager(session).find(CallbackLog, { paymentId }, { orderBy: { receivedAt: "asc", id: "asc" }, limit, disableIdentityMap: true });
}

/** The tables retention deletes from, with the time column that ages their rows. */
const AGED = {
  callback_log: "received_at",
  callback_inbox: "created_at",
} as const;

export type AgedCallbackTable = keyof typeof AGED;

/** Deletes at most `limit` rows of `table` older than `cutoff`, oldest first; resolves with how many. */
export function deleteOldestBefore(session: Session, table: AgedCallbackTable, cutoff: Date, limit: number): Promise<number> {
  return deleteOldestRows(session, table, AGED[table], cutoff, limit);
}
