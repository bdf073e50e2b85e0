/**
 * Read-only views across merchants for the admin console (AdminService): payment search, a payment's
 * timeline assembled from the tables that record what happened to it, and merchants with their
 * balances. Reads only, through the stores; nothing here changes state.
 */
import type { CallbackLogRow } from "../callbacks/callback-entities.js";
import { callbacksOfPayment } from "../callbacks/callback-store.js";
import type { ChannelCallRow } from "../channel-calls/channel-call-entity.js";
import { channelCallsOfPayment } from "../channel-calls/channel-call-store.js";
import type { Session } from "../db/unit-of-work.js";
import { Violations } from "../errors.js";
import { type MerchantBalance, merchantBalance } from "../ledger/ledger.js";
import { type EntryWithPostings, entriesOfPayment, merchantCurrencies } from "../ledger/ledger-store.js";
import type { MerchantRow } from "../merchants/merchant-entity.js";
import { listMerchants } from "../merchants/merchant-store.js";
import type { OutboxEventRow } from "../outbox/outbox-entity.js";
import { eventsAfter } from "../outbox/outbox-store.js";
import { readPageRequest, toPage } from "../pagination.js";
import { type PaymentSearchFilter, type PaymentView, reloadPayment, searchPayments, withItems, withItemsMany } from "../payments/payment-store.js";
import type { RefundRow } from "../refunds/refund-entity.js";
import { refundsOfPayment } from "../refunds/refund-store.js";
import { type DeliveryView, listWebhookDeliveries } from "../webhooks/webhook-service.js";

/**
 * Rows of each kind a timeline shows (events, callbacks, channel calls, ledger entries, refunds,
 * deliveries per object). A payment has a handful of each; the bound keeps a pathological one (a
 * channel that sent thousands of callbacks, a payment queried for days) from making one answer
 * unbounded.
 */
export const TIMELINE_ROWS_PER_KIND = 100;

/** One entry of a payment's timeline. */
export type TimelineItem =
  | { kind: "event"; at: Date; event: OutboxEventRow }
  | { kind: "callback"; at: Date; callback: CallbackLogRow }
  | { kind: "channelCall"; at: Date; call: ChannelCallRow }
  | { kind: "ledger"; at: Date; entry: EntryWithPostings }
  | { kind: "refund"; at: Date; refund: RefundRow }
  | { kind: "delivery"; at: Date; delivery: DeliveryView };

export interface PaymentTimeline {
  payment: PaymentView;
  /** Oldest first. */
  items: TimelineItem[];
  /** Some kind had more rows than {@link TIMELINE_ROWS_PER_KIND}. */
  truncated: boolean;
}

export interface PaymentSearch extends PaymentSearchFilter {
  pageSize: number;
  pageToken: string;
}

/** A page of payments of any merchant matching the search, newest first. */
export async function searchAllPayments(session: Session, search: PaymentSearch): Promise<{ payments: PaymentView[]; nextPageToken: string }> {
  const v = new Violations();
  const page = readPageRequest(v, search, [
    search.paymentId ?? "",
    search.paymentNo ?? "",
    search.merchantOrderNo ?? "",
    search.merchantId ?? "",
    search.status ?? "",
    search.channel ?? "",
    search.createdAfter?.getTime() ?? "",
    search.createdBefore?.getTime() ?? "",
  ]);
  v.throwIfAny();
  const { items, nextPageToken } = toPage(await searchPayments(session, search, page), page);
  return { payments: await withItemsMany(session, items), nextPageToken };
}

/**
 * The payment and what happened to it, oldest first: its events and its refunds' (the outbox feed,
 * sequenced events only), channel callbacks with their verdicts, ledger entries with postings,
 * refunds, webhook deliveries of the payment and its refunds with their attempts, and the calls
 * made to the channel about the payment and its refunds (those still within their retention).
 */
export async function paymentTimeline(session: Session, paymentId: string): Promise<PaymentTimeline> {
  const payment = await withItems(session, await reloadPayment(session, paymentId));
  const limit = TIMELINE_ROWS_PER_KIND;
  const [events, callbacks, entries, refunds, calls] = await Promise.all([
    eventsAfter(session, 0n, limit + 1, { aggregateId: paymentId }),
    callbacksOfPayment(session, paymentId, limit + 1),
    entriesOfPayment(session, paymentId, limit + 1),
    refundsOfPayment(session, paymentId, limit + 1),
    // Refund calls carry the payment's number too.
    channelCallsOfPayment(session, payment.payment.paymentNo, limit + 1),
  ]);
  const deliveryPages = await Promise.all(
    [paymentId, ...refunds.slice(0, limit).map((refund) => refund.id)].map((objectId) =>
      listWebhookDeliveries(session, { objectId, pageSize: limit, pageToken: "" }),
    ),
  );
  const truncated =
    [events, callbacks, entries, refunds, calls].some((rows) => rows.length > limit) || deliveryPages.some((page) => page.nextPageToken !== "");
  const items: TimelineItem[] = [
    ...events.slice(0, limit).map((event): TimelineItem => ({ kind: "event", at: event.createdAt, event })),
    ...callbacks.slice(0, limit).map((callback): TimelineItem => ({ kind: "callback", at: callback.receivedAt, callback })),
    ...calls.slice(0, limit).map((call): TimelineItem => ({ kind: "channelCall", at: call.startedAt, call })),
    ...entries.slice(0, limit).map((entry): TimelineItem => ({ kind: "ledger", at: entry.entry.createdAt, entry })),
    ...refunds.slice(0, limit).map((refund): TimelineItem => ({ kind: "refund", at: refund.createdAt, refund })),
    ...deliveryPages.flatMap((page) =>
      page.deliveries.map((delivery): TimelineItem => ({ kind: "delivery", at: delivery.delivery.createdAt, delivery })),
    ),
  ];
  // Stable: entries written at the same millisecond keep the order of the kinds above.
  items.sort((a, b) => a.at.getTime() - b.at.getTime());
  return { payment, items, truncated };
}

/** A merchant with its balance in each currency it has ledger accounts in. */
export interface MerchantWithBalances {
  merchant: MerchantRow;
  balances: Array<MerchantBalance & { currency: string }>;
}

/** A page of merchants, newest first, with their balances. */
export async function merchantsWithBalances(
  session: Session,
  request: { pageSize: number; pageToken: string },
): Promise<{ merchants: MerchantWithBalances[]; nextPageToken: string }> {
  const v = new Violations();
  const page = readPageRequest(v, request, ["merchants"]);
  v.throwIfAny();
  const { items, nextPageToken } = toPage(await listMerchants(session, page), page);
  const currencies = await merchantCurrencies(session, items.map((merchant) => merchant.id));
  const merchants = await Promise.all(
    items.map(async (merchant) => ({
      merchant,
      balances: await Promise.all(
        (currencies.get(merchant.id) ?? []).map(async (currency) => ({ currency, ...(await merchantBalance(session, merchant.id, currency)) })),
      ),
    })),
  );
  return { merchants, nextPageToken };
}
