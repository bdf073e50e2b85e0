/**
 * What the StreamEvents and WatchPayment streams send, without the transport: a merchant's events
 * in feed order (resumable after any of them), and one payment's state followed by its changes.
 *
 * Both subscribe to the feed BEFORE reading anything: every event numbered after the subscription's
 * place then arrives live, and what is read first (the backfill, the payment's current state)
 * covers everything up to that place. Nothing falls between the two; a live event at or before
 * the last one sent (possible when this replica's feed is behind another's) is skipped, so nothing
 * is sent twice.
 */
import type { UnitOfWork } from "../db/unit-of-work.js";
import { NotFoundError, ValidationError } from "../errors.js";
import { eventIdsOf, eventsAfter, findEvent, type SequencedEvent } from "../outbox/outbox-store.js";
import { findMerchantPayment, reloadPayment, withItems, type PaymentView } from "../payments/payment-store.js";
import { canTransition, type PaymentStatus } from "../payments/payment-status.js";
import type { EventFeed } from "./event-feed.js";

/** Events read per query while a stream catches up from `after_event_id`. */
export const BACKFILL_PAGE = 200;

/** Events of one payment a watch skips at most as already shown in its first message (a payment has a few). */
const MAX_EVENTS_SHOWN = 1000;

const STATUSES: readonly PaymentStatus[] = ["PENDING", "SUCCEEDED", "FAILED", "CLOSED", "REFUNDED"];

/** Whether `event` is a payment event whose snapshot shows a payment that can change no more. */
export function isFinalPaymentEvent(event: Pick<SequencedEvent, "eventType" | "payload">): boolean {
  if (!event.eventType.startsWith("payment.")) return false;
  const status = (event.payload.payment as { status?: unknown } | undefined)?.status;
  return typeof status === "string" && !canStillChange(status);
}

/** Whether the transition table lets a payment in `status` change again (CLOSED and REFUNDED cannot). */
export function canStillChange(status: string): boolean {
  return STATUSES.some((to) => canTransition(status as PaymentStatus, to));
}

/** One message of a payment watch: its state when the watch began (`event` undefined), or after one of its events. */
export interface PaymentUpdate {
  /** The payment (with its order lines) as stored when the message was made. */
  view: PaymentView;
  /** The event, or undefined for the first message (`payment.current`). */
  event?: SequencedEvent;
  /** When the state was read. */
  readAt: Date;
}

export interface EventStreamsDeps {
  uow: UnitOfWork;
  feed: EventFeed;
}

export function createEventStreams({ uow, feed }: EventStreamsDeps) {
  /** The place of the merchant's event `eventId` in the feed; NOT_FOUND for an unknown or another merchant's id. */
  async function placeOf(merchantId: string, eventId: string): Promise<bigint> {
    const event = await findEvent(uow.session(), eventId);
    if (!event || event.merchantId !== merchantId) throw new NotFoundError("EVENT_NOT_FOUND", `event ${eventId} not found`);
    if (event.seq === null || event.seq === undefined) {
      throw new ValidationError([
        { field: "after_event_id", reason: "EVENT_NOT_SEQUENCED", description: "has no place in the feed yet; try again in a moment" },
      ]);
    }
    return event.seq;
  }

  return {
    /**
     * The merchant's events in feed order: after `afterEventId` when given (read from the database
     * in pages), then each new one, until `signal` aborts (the iteration then just ends).
     */
    async *merchantEvents(merchantId: string, afterEventId: string | undefined, signal: AbortSignal): AsyncGenerator<SequencedEvent> {
      const after = afterEventId === undefined ? undefined : await placeOf(merchantId, afterEventId);
      const subscription = await feed.subscribe({ merchantId }, { signal });
      try {
        let last = after ?? subscription.position;
        while (after !== undefined && !signal.aborted) {
          const page = await eventsAfter(uow.session(), last, BACKFILL_PAGE, { merchantId, throughSeq: subscription.position });
          for (const event of page) {
            yield event;
            last = event.seq;
          }
          if (page.length < BACKFILL_PAGE) break;
        }
        for await (const event of subscription) {
          if (event.seq <= last) continue;
          yield event;
          last = event.seq;
        }
      } finally {
        subscription.close();
      }
    },

    /**
     * The merchant's payment as it is now, then the payment as stored after each of its events
     * (payment and refund events), until it can change no more or `signal` aborts.
     * PAYMENT_NOT_FOUND for another merchant's payment.
     */
    async *watchPayment(merchantId: string, paymentId: string, signal: AbortSignal): AsyncGenerator<PaymentUpdate> {
      const subscription = await feed.subscribe({ merchantId, aggregateId: paymentId }, { signal });
      try {
        // Read before the payment: the events committed by then are in the state read, and are not
        // sent again when they arrive live; one committed between the two reads is (harmless).
        const shown = new Set(await eventIdsOf(uow.session(), paymentId, MAX_EVENTS_SHOWN));
        const current = await withItems(uow.session(), await findMerchantPayment(uow.session(), merchantId, { paymentId }));
        yield { view: current, readAt: new Date() };
        if (!canStillChange(current.payment.status)) return;
        for await (const event of subscription) {
          if (shown.has(event.id)) continue;
          const payment = await reloadPayment(uow.session(), paymentId);
          yield { view: { payment, items: current.items }, event, readAt: new Date() };
          // End after the payment event that made it final (`payment.refunded`, `payment.closed`), judged
          // by the event's own snapshot: the stored payment may already be final while events of the
          // change that made it so (a refund's, then the payment's) are still to be numbered and sent.
          if (isFinalPaymentEvent(event)) return;
        }
      } finally {
        subscription.close();
      }
    },
  };
}

export type EventStreams = ReturnType<typeof createEventStreams>;
