/**
 * Payouts to the account's external bank accounts: `POST /v1/payouts`, `GET /v1/payouts/{id}`,
 * `GET /v1/payouts` (newest first; `destination`, `status`, `limit`, `starting_after`).
 *
 * The model. A payout is created `pending` (and `payout.created` is sent); after `payoutDelayMs`
 * real milliseconds (0 when unset: right after the create has answered) it becomes `paid`, or
 * `failed` with `failure_code: account_closed` under `payoutFails` (read when it finishes), and
 * `payout.paid` / `payout.failed` is sent. Each payout event goes out `duplicatePayoutWebhooks`
 * times. Faults are looked up by our payout number (`metadata[payout_no]`; the payout's id when it
 * has none), so `{channel: "card", outTradeNo: <payout no>}` scopes one payout.
 *
 * Destinations: any `ba_...` id is an existing bank account of the account, except ids starting
 * with `ba_missing`, which (like anything not `ba_...`) are 404 `resource_missing`, so that tests
 * can exercise the refusal. Stripe's default destination is not modelled: `destination` is required.
 *
 * Approximations: there is no balance (no `balance_insufficient`), no `in_transit` step, no
 * balance transaction for a payout (the daily bill lists payments and refunds only), and webhook
 * deliveries of a payout are recorded on a trade-shaped record of its own that is never added to
 * the trade store (the control API does not list payouts). The book keeps the newest 100,000.
 */
import { isKnownCurrency } from "../../money/currency.js";
import type { SimTrade } from "../trade-store.js";
import { type CardBook, MAX_AMOUNT_MINOR } from "./card-book.js";
import { invalidRequest, type Json, missingParam, noSuch } from "./card-errors.js";
import { jsonAmount } from "./card-json.js";
import { enumParam, integerParam, listPage, metadataParam, onlyParams, type Params } from "./card-params.js";
import { emitEvent } from "./card-webhooks.js";

/** The payouts an account keeps; beyond it the oldest are forgotten. */
export const MAX_PAYOUTS = 100_000;
/** The longest `description` accepted. */
export const MAX_PAYOUT_DESCRIPTION_CHARS = 1_000;
/** Stripe's limit on a payout's statement descriptor. */
const MAX_STATEMENT_DESCRIPTOR_CHARS = 22;
const FAILURE = { code: "account_closed", message: "The bank account has been closed." } as const;
const CREATE_PARAMS = new Set(["amount", "currency", "destination", "description", "metadata", "method", "source_type", "statement_descriptor", "expand"]);
const LIST_PARAMS = new Set(["destination", "status", "limit", "starting_after", "expand"]);
const STATUSES = ["pending", "in_transit", "paid", "failed", "canceled"] as const;

type PayoutStatus = (typeof STATUSES)[number];

/** A payout as the simulated acquirer keeps it. */
interface SimPayout {
  id: string;
  /** Our payout number (`metadata.payout_no`), or the id: the key of the payout's faults. */
  payoutNo: string;
  amountMinor: bigint;
  /** Upper case. */
  currency: string;
  destination: string;
  description: string | null;
  statementDescriptor: string | null;
  method: string;
  sourceType: string;
  metadata: Record<string, string>;
  /** Unix seconds. */
  created: number;
  status: PayoutStatus;
  failureCode: string | null;
  failureMessage: string | null;
  /** What the notifier addresses the payout's webhooks by and records them on. */
  deliveries: SimTrade;
}

/** The payouts of one card side, oldest first. */
class PayoutBook {
  readonly byId = new Map<string, SimPayout>();

  add(payout: SimPayout): void {
    this.byId.set(payout.id, payout);
    if (this.byId.size > MAX_PAYOUTS) this.byId.delete(this.byId.keys().next().value as string);
  }
}

// Kept beside the card book rather than in it: payouts are the card side's only transfers out.
const payoutBooks = new WeakMap<CardBook, PayoutBook>();

function payoutsOf(book: CardBook): PayoutBook {
  let payouts = payoutBooks.get(book);
  if (!payouts) {
    payouts = new PayoutBook();
    payoutBooks.set(book, payouts);
  }
  return payouts;
}

/** The payout number a create names, for payout-scoped faults. */
export function createdPayoutNo(params: Params): string | undefined {
  return params.hashes.get("metadata")?.get("payout_no");
}

/** The payout number of payout `id`, for payout-scoped faults. */
export function payoutNoOf(book: CardBook, id: string): string | undefined {
  return payoutsOf(book).byId.get(id)?.payoutNo;
}

function payoutJson(payout: SimPayout): Json {
  return {
    id: payout.id,
    object: "payout",
    amount: jsonAmount(payout.amountMinor),
    application_fee: null,
    application_fee_amount: null,
    // Two days after creation, at 00:00 UTC, as a standard payout's estimate.
    arrival_date: Math.floor(payout.created / 86_400) * 86_400 + 2 * 86_400,
    automatic: false,
    balance_transaction: null,
    created: payout.created,
    currency: payout.currency.toLowerCase(),
    description: payout.description,
    destination: payout.destination,
    failure_balance_transaction: null,
    failure_code: payout.failureCode,
    failure_message: payout.failureMessage,
    livemode: false,
    metadata: payout.metadata,
    method: payout.method,
    original_payout: null,
    reconciliation_status: "not_applicable",
    reversed_by: null,
    source_type: payout.sourceType,
    statement_descriptor: payout.statementDescriptor,
    status: payout.status,
    type: "bank_account",
  };
}

/** `POST /v1/payouts`. */
export function createPayout(book: CardBook, params: Params): Json {
  onlyParams(params, CREATE_PARAMS);
  const amountMinor = integerParam(params, "amount");
  if (amountMinor === undefined) throw missingParam("amount");
  if (amountMinor < 1n) throw invalidRequest("Payout amount must be at least 1 minor unit.", { code: "amount_too_small", param: "amount" });
  if (amountMinor > MAX_AMOUNT_MINOR) {
    throw invalidRequest(`Amount must be no more than ${MAX_AMOUNT_MINOR}.`, { code: "amount_too_large", param: "amount" });
  }
  const currencyParam = params.values.get("currency");
  if (!currencyParam) throw missingParam("currency");
  const currency = currencyParam.toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency) || !isKnownCurrency(currency)) {
    throw invalidRequest(`Invalid currency: ${currencyParam.toLowerCase().slice(0, 8)}.`, { param: "currency" });
  }
  const destination = params.values.get("destination");
  if (!destination) throw missingParam("destination");
  if (!destination.startsWith("ba_") || destination.startsWith("ba_missing")) {
    throw noSuch("external account", destination.slice(0, 80), "destination");
  }
  const description = params.values.get("description") || null;
  if (description !== null && description.length > MAX_PAYOUT_DESCRIPTION_CHARS) {
    throw invalidRequest(`description can have up to ${MAX_PAYOUT_DESCRIPTION_CHARS} characters.`, { param: "description" });
  }
  const statementDescriptor = params.values.get("statement_descriptor") || null;
  if (statementDescriptor !== null && statementDescriptor.length > MAX_STATEMENT_DESCRIPTOR_CHARS) {
    throw invalidRequest(`statement_descriptor can have up to ${MAX_STATEMENT_DESCRIPTOR_CHARS} characters.`, { param: "statement_descriptor" });
  }
  const method = enumParam(params, "method", ["standard", "instant"]) ?? "standard";
  const sourceType = enumParam(params, "source_type", ["bank_account", "card", "fpx"]) ?? "card";
  const metadata = metadataParam(params);

  const id = book.newId("po");
  const payoutNo = metadata.payout_no ?? id;
  const now = new Date();
  const payout: SimPayout = {
    id,
    payoutNo,
    amountMinor,
    currency,
    destination,
    description,
    statementDescriptor,
    method,
    sourceType,
    metadata,
    created: Math.floor(now.getTime() / 1000),
    status: "pending",
    failureCode: null,
    failureMessage: null,
    deliveries: {
      channel: "card",
      outTradeNo: payoutNo,
      channelTradeNo: id,
      amountMinor,
      currency,
      subject: description ?? "",
      state: "pending",
      createdAt: now,
      refunds: [],
      notifications: [],
      attributes: { object: "payout" },
    },
  };
  payoutsOf(book).add(payout);
  announce(book, payout, "payout.created");
  book.context.timers.schedule(book.context.faults.resolve("card", payoutNo).payoutDelayMs ?? 0, () => finish(book, payout));
  return payoutJson(payout);
}

function finish(book: CardBook, payout: SimPayout): void {
  if (payout.status !== "pending") return;
  if (book.context.faults.resolve("card", payout.payoutNo).payoutFails) {
    payout.status = "failed";
    payout.failureCode = FAILURE.code;
    payout.failureMessage = FAILURE.message;
    payout.deliveries.state = "failed";
    announce(book, payout, "payout.failed");
  } else {
    payout.status = "paid";
    payout.deliveries.state = "paid";
    announce(book, payout, "payout.paid");
  }
}

function announce(book: CardBook, payout: SimPayout, type: "payout.created" | "payout.paid" | "payout.failed"): void {
  const copies = book.context.faults.resolve("card", payout.payoutNo).duplicatePayoutWebhooks ?? 1;
  void emitEvent(book, payout.deliveries, type, payoutJson(payout), undefined, copies);
}

/** `GET /v1/payouts/{id}`. */
export function retrievePayout(book: CardBook, id: string): Json {
  const payout = payoutsOf(book).byId.get(id);
  if (!payout) throw noSuch("payout", id.slice(0, 80), "id");
  return payoutJson(payout);
}

/** `GET /v1/payouts`, newest first, of one destination or status when asked. */
export function listPayouts(book: CardBook, params: Params): Json {
  onlyParams(params, LIST_PARAMS);
  const destination = params.values.get("destination") || undefined;
  const status = enumParam(params, "status", STATUSES);
  const payouts = [...payoutsOf(book).byId.values()]
    .filter((payout) => (destination === undefined || payout.destination === destination) && (status === null || payout.status === status))
    .reverse();
  return listPage(params, "/v1/payouts", payouts, (payout) => payout.id, payoutJson);
}
