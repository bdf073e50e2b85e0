/**
 * The card side's route table: Stripe's paths under `/v1`, each with its operation name (the
 * `method` of `apiError`/`apiTimeout` faults), who may call it, the trade it is about (for
 * trade-scoped faults) and its handler. Paths match after the mount prefix (`/card` on the shared
 * listener, nothing on the card's own listener).
 */
import type { CardCaller } from "./card-auth.js";
import type { CardBook } from "./card-book.js";
import { listBalanceTransactions } from "./card-bill.js";
import type { Json } from "./card-errors.js";
import { cancelIntent, confirmIntent, createIntent, retrieveIntent, searchedPaymentNo, searchIntents } from "./card-intents.js";
import type { Params } from "./card-params.js";
import { createdPayoutNo, createPayout, listPayouts, payoutNoOf, retrievePayout } from "./card-payouts.js";
import { createRefund, listRefunds, retrieveRefund } from "./card-refunds.js";
import { createWebhookEndpoint, deleteWebhookEndpoint, listWebhookEndpoints } from "./card-webhooks.js";

/** What a handler gets: the book, the form body (POST) or query (GET, DELETE), the path's `{id}`, the caller. */
export interface CardCall {
  book: CardBook;
  params: Params;
  id: string;
  caller: CardCaller;
}

/** One endpoint. */
export interface CardRoute {
  method: "GET" | "POST" | "DELETE";
  /** Matched against the whole path; one capture group at most, the object's id. */
  path: RegExp;
  operation: string;
  /** True where the shopper's browser may call with the publishable key (and the intent's client secret). */
  publishable?: boolean;
  run(call: CardCall): Json | Promise<Json>;
  /** The payment number the call is about, for trade-scoped faults. */
  outTradeNo?(call: Omit<CardCall, "caller">): string | undefined;
}

const ID = "([^/]+)";
const intentOfId = ({ book, id }: Omit<CardCall, "caller">) => book.tradeOfIntent(id);
const intentOfParam = ({ book, params }: Omit<CardCall, "caller">) => book.tradeOfIntent(params.values.get("payment_intent"));

/** Every endpoint, first match wins (`/search` before `/{id}`). */
const CARD_ROUTES: readonly CardRoute[] = [
  {
    method: "POST",
    path: /^\/v1\/payment_intents$/,
    operation: "payment_intents.create",
    run: ({ book, params }) => createIntent(book, params),
    outTradeNo: ({ params }) => params.hashes.get("metadata")?.get("payment_no"),
  },
  {
    method: "GET",
    path: /^\/v1\/payment_intents\/search$/,
    operation: "payment_intents.search",
    run: ({ book, params }) => searchIntents(book, params),
    outTradeNo: ({ params }) => searchedPaymentNo(params),
  },
  {
    method: "GET",
    path: new RegExp(`^/v1/payment_intents/${ID}$`),
    operation: "payment_intents.retrieve",
    publishable: true,
    run: ({ book, id, params, caller }) => retrieveIntent(book, id, params, caller),
    outTradeNo: intentOfId,
  },
  {
    method: "POST",
    path: new RegExp(`^/v1/payment_intents/${ID}/confirm$`),
    operation: "payment_intents.confirm",
    publishable: true,
    run: ({ book, id, params, caller }) => confirmIntent(book, id, params, caller),
    outTradeNo: intentOfId,
  },
  {
    method: "POST",
    path: new RegExp(`^/v1/payment_intents/${ID}/cancel$`),
    operation: "payment_intents.cancel",
    run: ({ book, id, params }) => cancelIntent(book, id, params),
    outTradeNo: intentOfId,
  },
  {
    method: "POST",
    path: /^\/v1\/refunds$/,
    operation: "refunds.create",
    run: ({ book, params }) => createRefund(book, params),
    outTradeNo: intentOfParam,
  },
  {
    method: "GET",
    path: /^\/v1\/refunds$/,
    operation: "refunds.list",
    run: ({ book, params }) => listRefunds(book, params),
    outTradeNo: intentOfParam,
  },
  {
    method: "GET",
    path: new RegExp(`^/v1/refunds/${ID}$`),
    operation: "refunds.retrieve",
    run: ({ book, id }) => retrieveRefund(book, id),
    outTradeNo: ({ book, id }) => book.refundsById.get(id)?.trade.outTradeNo,
  },
  {
    method: "POST",
    path: /^\/v1\/payouts$/,
    operation: "payouts.create",
    run: ({ book, params }) => createPayout(book, params),
    // Payout faults are scoped by our payout number, in the place of a payment's.
    outTradeNo: ({ params }) => createdPayoutNo(params),
  },
  {
    method: "GET",
    path: /^\/v1\/payouts$/,
    operation: "payouts.list",
    run: ({ book, params }) => listPayouts(book, params),
  },
  {
    method: "GET",
    path: new RegExp(`^/v1/payouts/${ID}$`),
    operation: "payouts.retrieve",
    run: ({ book, id }) => retrievePayout(book, id),
    outTradeNo: ({ book, id }) => payoutNoOf(book, id),
  },
  {
    method: "GET",
    path: /^\/v1\/balance_transactions$/,
    operation: "balance_transactions.list",
    run: ({ book, params }) => listBalanceTransactions(book, params),
  },
  {
    method: "POST",
    path: /^\/v1\/webhook_endpoints$/,
    operation: "webhook_endpoints.create",
    run: ({ book, params }) => createWebhookEndpoint(book, params),
  },
  {
    method: "GET",
    path: /^\/v1\/webhook_endpoints$/,
    operation: "webhook_endpoints.list",
    run: ({ book, params }) => listWebhookEndpoints(book, params),
  },
  {
    method: "DELETE",
    path: new RegExp(`^/v1/webhook_endpoints/${ID}$`),
    operation: "webhook_endpoints.delete",
    run: ({ book, id }) => deleteWebhookEndpoint(book, id),
  },
];

/** The route for `method path` and its decoded `{id}` (empty when the path has none), or undefined. */
export function matchCardRoute(method: string, path: string): { route: CardRoute; id: string } | undefined {
  for (const route of CARD_ROUTES) {
    if (route.method !== method) continue;
    const match = route.path.exec(path);
    if (!match) continue;
    const raw = match[1] ?? "";
    let id = raw;
    try {
      id = decodeURIComponent(raw);
    } catch {
      // Kept encoded: it then names no object, and the handler answers resource_missing.
    }
    return { route, id };
  }
  return undefined;
}
