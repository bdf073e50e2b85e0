/**
 * The bill: `GET /v1/balance_transactions?created[gte]=&created[lt]=&expand[]=data.source`. Each
 * transaction carries the intent's (or refund's) metadata as `metadata`, which the adapter reads
 * first. The fee is 2.9 % + 30 minor units in every currency; refunds are booked when they succeed
 * (Stripe books them when created and reverses failures).
 */
import type { CardBook } from "./card-book.js";
import { invalidRequest, type Json } from "./card-errors.js";
import { balanceTransactionJson } from "./card-json.js";
import { integerParam, listPage, onlyParams, type Params } from "./card-params.js";

/** `GET /v1/balance_transactions`, newest first, filtered by `created` and `type`. */
export function listBalanceTransactions(book: CardBook, params: Params): Json {
  onlyParams(params, new Set(["created", "limit", "starting_after", "type", "expand"]));
  const range = params.hashes.get("created");
  const bound = (name: string) => {
    const text = range?.get(name);
    if (text === undefined) return undefined;
    if (!/^\d{1,12}$/.test(text)) throw invalidRequest(`Invalid integer: ${text}`, { code: "parameter_invalid_integer", param: `created[${name}]` });
    return Number(text);
  };
  const exact = integerParam(params, "created");
  const [gte, gt, lte, lt] = [bound("gte"), bound("gt"), bound("lte"), bound("lt")];
  const type = params.values.get("type");
  const expandSource = (params.lists.get("expand") ?? []).includes("data.source");
  const matching = book.balanceTransactions
    .filter(
      (txn) =>
        (exact === undefined || txn.created === Number(exact)) &&
        (gte === undefined || txn.created >= gte) &&
        (gt === undefined || txn.created > gt) &&
        (lte === undefined || txn.created <= lte) &&
        (lt === undefined || txn.created < lt) &&
        (type === undefined || txn.type === type),
    )
    .reverse();
  return listPage(params, "/v1/balance_transactions", matching, (txn) => txn.id, (txn) => balanceTransactionJson(book, txn, expandSource));
}
