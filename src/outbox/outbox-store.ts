/** The outbox store: every statement on `outbox_event`. Events are appended in the transaction of the change they describe. */
import { insertRow } from "../db/rows.js";
import { rowExecutor } from "../db/store-access.js";
import type { RowScope } from "../db/unit-of-work.js";
import { newId } from "../ids.js";
import { OutboxEvent, type OutboxEventRow } from "./outbox-entity.js";

/** What an event is about and says; the store adds id, times and delivery state. */
export interface NewOutboxEvent {
  merchantId: string;
  aggregateId: string;
  eventType: string;
  payload: Record<string, unknown>;
}

/** Appends an event, undelivered and available at `now`, in the caller's transaction (either kind). */
export async function appendEvent(tx: RowScope, event: NewOutboxEvent, now: Date = new Date()): Promise<void> {
  await insertRow<OutboxEventRow>(rowExecutor(tx), OutboxEvent, {
    id: newId(now.getTime()),
    merchantId: event.merchantId,
    aggregateId: event.aggregateId,
    eventType: event.eventType,
    payload: event.payload,
    createdAt: now,
    availableAt: now,
    leaseUntil: null,
    attempts: 0,
    deliveredAt: null,
    lastError: null,
  });
}
