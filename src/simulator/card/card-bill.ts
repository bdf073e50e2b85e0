/**
 * The bill: `GET /v1/balance_transactions?created[gte]=&created[lt]=&expand[]=data.source`. Each
 * transaction carries the intent's (or refund's) metadata as `metadata`, which the adapter reads
 * first. The fee is 2.9 % + 30 minor units in every currency; refunds are booked when they succeed
 * (Stripe books them when created and reverses failures). Any day's list can be asked for (the
 * adapter asks for whole UTC days), from the transactions still kept.
 *
 * Bill faults: `billOmitLine` (the trade's transactions are left out), `billAlterAmount` /
 * `billAlterFee` (its charge states one minor unit more amount / fee) per trade; per channel
 * `billExtraLine` (a charge for an intent that never existed, at the start of the range) and
 * `billTruncated` (the list's last transaction is cut in half: only its first fields are sent).
 * `billWrongHash` does not apply: the acquirer states no hash.
 */
import type { CardBook } from "./card-book.js";
import { invalidRequest, type Json } from "./card-errors.js";
import { balanceTransactionJson } from "./card-json.js";
import { integerParam, listPage, onlyParams, type Params } from "./card-params.js";

const CHANNEL = "card";
const EXTRA_AMOUNT_MINOR = 1_000;
const EXTRA_FEE_MINOR = 59;

/** One listed transaction: its id (for paging) and its JSON as the list renders it. */
interface Listed {
  id: string;
  render(expandSource: boolean): Json;
}

/** The billExtraLine charge, the same on every call for the same `created`. */
function extraTransaction(book: CardBook, created: number): Listed {
  const id = `txn_3${book.stem}extra${created.toString(36)}`;
  const metadata = { payment_no: `SIMX${created}${book.stem}` };
  const intent = `pi_3${book.stem}extra${created.toString(36)}`;
  return {
    id,
    render: (expandSource) => ({
      id,
      object: "balance_transaction",
      amount: EXTRA_AMOUNT_MINOR,
      available_on: created + 2 * 86_400,
      created,
      currency: "usd",
      description: "never ordered",
      exchange_rate: null,
      fee: EXTRA_FEE_MINOR,
      fee_details: [],
      metadata,
      net: EXTRA_AMOUNT_MINOR - EXTRA_FEE_MINOR,
      reporting_category: "charge",
      source: expandSource ? { id: `ch_3${book.stem}extra${created.toString(36)}`, object: "charge", payment_intent: intent, metadata } : intent,
      status: "available",
      type: "charge",
    }),
  };
}

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
  const faults = book.context.faults;
  const listed: Listed[] = [];
  for (const txn of book.balanceTransactions) {
    if (exact !== undefined && txn.created !== Number(exact)) continue;
    if ((gte !== undefined && txn.created < gte) || (gt !== undefined && txn.created <= gt)) continue;
    if ((lte !== undefined && txn.created > lte) || (lt !== undefined && txn.created >= lt)) continue;
    if (type !== undefined && txn.type !== type) continue;
    const tradeFaults = faults.resolve(CHANNEL, txn.trade.outTradeNo);
    if (tradeFaults.billOmitLine) continue;
    const altered = txn.type === "charge" && (tradeFaults.billAlterAmount || tradeFaults.billAlterFee);
    listed.push({
      id: txn.id,
      render: (expand) => {
        const json = balanceTransactionJson(book, txn, expand);
        if (!altered) return json;
        const amount = (json.amount as number) + (tradeFaults.billAlterAmount ? 1 : 0);
        const fee = (json.fee as number) + (tradeFaults.billAlterFee ? 1 : 0);
        return { ...json, amount, fee, net: amount - fee };
      },
    });
  }
  const channelFaults = faults.resolve(CHANNEL);
  const extraAt = gte ?? (gt === undefined ? undefined : gt + 1) ?? exact;
  if (channelFaults.billExtraLine && extraAt !== undefined && (type === undefined || type === "charge")) {
    listed.push(extraTransaction(book, Number(extraAt)));
  }
  listed.reverse();
  const cutLast = channelFaults.billTruncated === true;
  const last = listed.at(-1)?.id;
  return listPage(params, "/v1/balance_transactions", listed, (item) => item.id, (item) => {
    const json = item.render(expandSource);
    return cutLast && item.id === last ? cutInHalf(json) : json;
  });
}

/** The first half of an object's fields: a transaction cut off mid-way. */
function cutInHalf(json: Json): Json {
  const entries = Object.entries(json);
  return Object.fromEntries(entries.slice(0, Math.ceil(entries.length / 2)));
}
