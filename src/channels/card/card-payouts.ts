/**
 * Card acquirer payouts, in Stripe's Payouts API: `POST /v1/payouts` to the merchant's external
 * bank account (`destination: ba_...`) with our payout number as `metadata[payout_no]` and in the
 * `Idempotency-Key`, `GET /v1/payouts/{id}`, `GET /v1/payouts?destination=` to find a payout whose
 * id we never learnt, and the `payout.paid` / `payout.failed` webhooks. It runs on the card
 * adapter's call pipeline and request helpers ({@link CardCallHelpers}), handed over by
 * `createCardChannel`.
 *
 * A payout is `pending` or `in_transit` until the bank has it (`processing`), then `paid`, or
 * `failed` / `canceled` (`failed`; the acquirer returns the money to the balance). A 400/402 or a
 * 404 `resource_missing` answer to the create means the acquirer made no payout (bad destination,
 * insufficient balance, amount out of bounds): that is a `failed` status, money did not move. Any
 * other refusal throws (see {@link createCardPayouts}).
 */
import {
  CallbackRejectedError,
  type ChannelPayoutRequest,
  type ChannelPayoutState,
  type ChannelPayoutStatus,
  type PayeeAccount,
  type PayoutNotification,
  type PayoutOperations,
} from "../channel.js";
import type { ChannelCall, ChannelCaller, ChannelCallName } from "../channel-call.js";
import { isWireObject, safeIntegerOf, textOf, WireFieldError, type WireObject, type WireReader } from "../wire-fields.js";
import { type CardFailure, clean, isMissing, readListPage } from "./card-wire.js";

/** The acquirer's external bank account ids, the only payee a card payout goes to. */
const CARD_BANK_ACCOUNT_ID = /^ba_[A-Za-z0-9]{6,64}$/;
/** The longest payee name accepted (the acquirer ignores it: the bank account already names its holder). */
export const CARD_PAYEE_NAME_MAX_CHARS = 128;
/** The payout's `description` (our remark) is cut to this many characters. */
export const CARD_PAYOUT_DESCRIPTION_MAX_CHARS = 500;
/**
 * A payout whose id we never learnt (the create's answer was lost) is looked for among the payouts
 * to the same bank account, newest first, 100 a page, at most this many pages (1,000 payouts, years
 * of daily settlements to one account). Only a list read to its end answers `not_found`; past the
 * bound the outcome stays unknown (ChannelUnavailableError), since `not_found` invites a re-send.
 */
export const CARD_PAYOUT_SEARCH_MAX_PAGES = 10;
const LIST_PAGE_SIZE = "100";

/** Form parameters in wire order, nested ones already flattened (`metadata[payout_no]`). */
export type CardFormParams = Array<[string, string]>;

/** The request of one wire call, as the pipeline takes it. */
export type CardRequest = ChannelCall<unknown>["request"];

/** What the card adapter lends its payouts: the pipeline and its request builder. */
export interface CardCallHelpers {
  api: ChannelCaller<CardFailure>;
  /** A form request with the secret key; POSTs carry the Idempotency-Key. */
  request(method: "GET" | "POST", path: string, params: CardFormParams, idempotencyKey?: string): CardRequest;
}

/** The acquirer's payout API methods, named as in its API reference. */
const WIRE = Object.freeze({
  createPayout: "payouts.create",
  retrievePayout: "payouts.retrieve",
  listPayouts: "payouts.list",
});

/** A Payout status → our payout state; undefined for a status we do not know. */
export function mapCardPayoutStatus(status: string): Exclude<ChannelPayoutState, "not_found"> | undefined {
  switch (status) {
    case "pending":
    case "in_transit":
      return "processing";
    case "paid":
      return "paid";
    case "failed":
    case "canceled":
      return "failed";
    default:
      return undefined;
  }
}

/** A Payout, as far as we read it. */
export interface CardPayout {
  id: string;
  status: string;
  state: Exclude<ChannelPayoutState, "not_found">;
  amountMinor: bigint;
  /** Upper case. */
  currency: string;
  /** `metadata.payout_no`: our payout number, set on create. */
  payoutNo?: string;
  failureCode?: string;
  failureMessage?: string;
}

/** Decodes a Payout object. */
function readPayout(answer: WireReader): CardPayout {
  const object = answer.text("object");
  if (object !== undefined && object !== "payout") throw new WireFieldError(answer.pathOf("object"), `is ${JSON.stringify(object)}, not "payout"`);
  const { text: status, value: state } = answer.oneOf("status", mapCardPayoutStatus);
  const amountMinor = answer.amount("amount");
  if (amountMinor === undefined) throw new WireFieldError(answer.pathOf("amount"), "is missing");
  const payout: CardPayout = { id: answer.requiredText("id"), status, state, amountMinor, currency: answer.requiredText("currency").toUpperCase() };
  const payoutNo = answer.object("metadata")?.text("payout_no");
  if (payoutNo) payout.payoutNo = payoutNo;
  const failureCode = answer.text("failure_code");
  if (failureCode) payout.failureCode = failureCode;
  const failureMessage = answer.text("failure_message");
  if (failureMessage) payout.failureMessage = failureMessage;
  return payout;
}

/** `failure_code: failure_message` of a failed payout, cleaned; the status name otherwise. */
function payoutDetail(payout: { status: string; state: string; failureCode?: string | undefined; failureMessage?: string | undefined }): string {
  if (payout.state !== "failed") return payout.status;
  const failure = [payout.failureCode, payout.failureMessage].filter((part): part is string => part !== undefined);
  return failure.length === 0 ? payout.status : clean(failure.join(": "));
}

/** The card payouts' `validatePayee`: what is wrong with the payee, or undefined. Nothing is sent. */
function validateCardPayee(payee: PayeeAccount): string | undefined {
  if (payee.type !== "BANK_ACCOUNT") return `card payouts go to a bank account (BANK_ACCOUNT), not ${payee.type}`;
  // The value is not echoed: a wrong "account" may be a real bank account number.
  if (!CARD_BANK_ACCOUNT_ID.test(payee.account)) return "account must be the acquirer's external bank account id (ba_ and 6 to 64 letters or digits)";
  if (payee.name !== undefined && payee.name.length > CARD_PAYEE_NAME_MAX_CHARS) return `name must be at most ${CARD_PAYEE_NAME_MAX_CHARS} characters`;
  return undefined;
}

/**
 * A create refusal that means the acquirer made no payout: 400/402 (invalid amount, currency or
 * destination, insufficient balance, payouts not allowed) or 404 `resource_missing` (no such bank
 * account). Not an idempotency misuse (400 `idempotency_error`: a payout under this number may
 * exist with other parameters), nor 401/403 (our key: failing every payout would bounce them all).
 */
function madeNoPayout(failure: CardFailure): boolean {
  if (failure.code === "idempotency_error") return false;
  return failure.status === 400 || failure.status === 402 || isMissing(failure);
}

/**
 * Creates the card {@link PayoutOperations}. `sendPayout` answers the payout's state (a refusal
 * that made no payout is `failed`, detail `code: message`) and throws `ChannelRejectedError` when
 * nothing was sent because the request is invalid here (payee, amount, currency) or the acquirer
 * refused in a way that says nothing about the payout (authentication, idempotency misuse), and
 * `ChannelUnavailableError` when the outcome is unknown. Re-sending under the same `payoutNo` is
 * safe: the Idempotency-Key `payout-<payoutNo>` replays the first answer for 24 hours.
 */
export function createCardPayouts({ api, request }: CardCallHelpers): PayoutOperations {
  const payoutPath = (id: string) => `/v1/payouts/${encodeURIComponent(id)}`;

  /** The payout's status, after checking it is the one we asked about. */
  function statusOf(name: ChannelCallName, payout: CardPayout, wanted: ChannelPayoutRequest): ChannelPayoutStatus {
    if (payout.payoutNo !== undefined && payout.payoutNo !== wanted.payoutNo) {
      throw api.rejected(name, { code: "PAYOUT_MISMATCH", message: `payout ${payout.id} belongs to payout ${payout.payoutNo}, not ${wanted.payoutNo}` });
    }
    if (payout.amountMinor !== wanted.amountMinor || payout.currency !== wanted.currency.toUpperCase()) {
      throw api.rejected(name, {
        code: "PAYOUT_MISMATCH",
        message: `payout ${payout.id} is ${payout.amountMinor} ${payout.currency}, not ${wanted.amountMinor} ${wanted.currency.toUpperCase()}`,
      });
    }
    return { state: payout.state, channelPayoutNo: payout.id, detail: payoutDetail(payout) };
  }

  return {
    validatePayee: validateCardPayee,

    async sendPayout(payout: ChannelPayoutRequest): Promise<ChannelPayoutStatus> {
      const name = { operation: "sendPayout", wireMethod: WIRE.createPayout } as const;
      const payeeProblem = validateCardPayee(payout.payee);
      if (payeeProblem) throw api.rejected(name, { code: "INVALID_PAYEE", message: payeeProblem });
      if (payout.amountMinor <= 0n) {
        throw api.rejected(name, { code: "INVALID_AMOUNT", message: `amount must be positive, got ${payout.amountMinor}` });
      }
      if (!/^[A-Za-z]{3}$/.test(payout.currency)) {
        throw api.rejected(name, { code: "INVALID_CURRENCY", message: `not an ISO 4217 code: ${JSON.stringify(payout.currency.slice(0, 8))}` });
      }
      const params: CardFormParams = [
        ["amount", payout.amountMinor.toString()],
        ["currency", payout.currency.toLowerCase()],
        ["destination", payout.payee.account],
        ["description", Array.from(payout.remark).slice(0, CARD_PAYOUT_DESCRIPTION_MAX_CHARS).join("")],
        ["metadata[payout_no]", payout.payoutNo],
      ];
      const outcome = await api.call({ ...name, request: request("POST", "/v1/payouts", params, `payout-${payout.payoutNo}`), decode: readPayout });
      if (outcome.ok) return statusOf(name, outcome.value, payout);
      if (madeNoPayout(outcome.failure)) return { state: "failed", detail: outcome.failure.message };
      throw api.rejected(name, outcome.failure);
    },

    async queryPayout(payout: ChannelPayoutRequest): Promise<ChannelPayoutStatus> {
      if (payout.channelPayoutNo) {
        const name = { operation: "queryPayout", wireMethod: WIRE.retrievePayout } as const;
        const outcome = await api.call({ ...name, request: request("GET", payoutPath(payout.channelPayoutNo), []), decode: readPayout });
        if (outcome.ok) return statusOf(name, outcome.value, payout);
        if (isMissing(outcome.failure)) return { state: "not_found", detail: outcome.failure.message };
        throw api.rejected(name, outcome.failure);
      }
      // The acquirer has no search by metadata for payouts: list the ones to the same account.
      const name = { operation: "queryPayout", wireMethod: WIRE.listPayouts } as const;
      const params: CardFormParams = [
        ["destination", payout.payee.account],
        ["limit", LIST_PAGE_SIZE],
      ];
      let startingAfter: string | undefined;
      for (let pages = 1; ; pages++) {
        const pageParams: CardFormParams = startingAfter ? [...params, ["starting_after", startingAfter]] : params;
        const page = await api.callOrReject({ ...name, request: request("GET", "/v1/payouts", pageParams), decode: readListPage });
        for (const item of page.items) {
          const candidate = api.decode(name, item, readPayout);
          if (candidate.payoutNo === payout.payoutNo) return statusOf(name, candidate, payout);
        }
        if (!page.nextAfter) return { state: "not_found", detail: "no payout with this payout_no to this bank account at the acquirer" };
        if (pages === CARD_PAYOUT_SEARCH_MAX_PAGES) {
          throw api.unavailable(name, `payout ${payout.payoutNo} is not among the newest ${pages * Number(LIST_PAGE_SIZE)} payouts to its bank account; its outcome is unknown`);
        }
        startingAfter = page.nextAfter;
      }
    },
  };
}

/**
 * A verified `payout.paid` / `payout.failed` event's payout (`data.object`) → the notification;
 * undefined when the payout is not ours (no `metadata.payout_no`: the acquirer's automatic payouts,
 * or one made in its dashboard). Throws {@link CallbackRejectedError} when the payout is malformed.
 */
export function payoutNotificationOf(event: { id: string; type: "payout.paid" | "payout.failed" }, payout: WireObject): PayoutNotification | undefined {
  const metadata = isWireObject(payout.metadata) ? payout.metadata : {};
  const payoutNo = textOf(metadata.payout_no);
  if (!payoutNo) return undefined;
  const amountMinor = safeIntegerOf(payout.amount);
  if (amountMinor === undefined || amountMinor < 0n) throw new CallbackRejectedError("card", "bad_amount");
  const currency = textOf(payout.currency);
  if (!currency) throw new CallbackRejectedError("card", "missing_currency");
  const state = event.type === "payout.paid" ? "paid" : "failed";
  const failureCode = textOf(payout.failure_code);
  const failureMessage = textOf(payout.failure_message);
  const notification: PayoutNotification = {
    kind: "payout",
    notificationId: event.id,
    payoutNo,
    state,
    amountMinor,
    currency: currency.toUpperCase(),
    channelStatus:
      state === "failed" && (failureCode || failureMessage) ? `${event.type}: ${payoutDetail({ status: "failed", state, failureCode, failureMessage })}` : event.type,
  };
  const id = textOf(payout.id);
  if (id) notification.channelPayoutNo = id;
  return notification;
}
