/**
 * Applies what the payout channel said about a payout, in the caller's transaction: the guarded
 * UPDATE from the transition table (payout-status.ts) and, for a final answer, its ledger entry
 * (postPayoutEntry, which also posts the `payout` entry of a new payout) and its event
 * (`payout.paid`, `payout.failed`):
 *
 *   paid    `payout_paid`   debit payout_in_transit:{ch}, credit channel_clearing:{ch}
 *   failed  `payout_failed` debit payout_in_transit:{ch}, credit merchant_available:{m} (the money is back)
 *
 * Each entry's ref names the payout, so it posts once however many webhooks, queries and racing
 * sweepers report the outcome. Every statement is a prepared row statement, so this runs in a row
 * transaction (webhooks) as well as in an ORM one (the sweeper).
 */
import type { ChannelPayoutStatus } from "../channels/channel.js";
import type { RowScope } from "../db/unit-of-work.js";
import { type PayoutEventFields, payoutObject } from "../events/event-objects.js";
import { accounts, postEntry } from "../ledger/ledger.js";
import { appendEvent } from "../outbox/outbox-store.js";
import type { PayoutRow } from "./payout-entities.js";
import { allowedPayoutSources, canTransitionPayout, type PayoutStatus } from "./payout-status.js";
import { setChannelPayoutNo, transitionPayoutStatus } from "./payout-store.js";

/** What the channel's word means for a payout as read, decided before anything is written. */
export type PayoutOutcomeDecision =
  | { kind: "transition"; from: PayoutStatus; to: "PROCESSING" | "PAID" | "FAILED" }
  /** Unknown to the channel, still under way, or already final: at most the channel's id is kept. */
  | { kind: "unchanged"; recordChannelPayoutNo: boolean };

/** The decision of {@link applyPayoutStatus}, without the database. A stale read is caught by the guarded UPDATE. */
export function decidePayoutOutcome(
  payout: Pick<PayoutRow, "status" | "channelPayoutNo">,
  status: Pick<ChannelPayoutStatus, "state" | "channelPayoutNo">,
): PayoutOutcomeDecision {
  const recordChannelPayoutNo = storableChannelPayoutNo(status.channelPayoutNo) !== undefined && !payout.channelPayoutNo;
  if (status.state === "not_found") return { kind: "unchanged", recordChannelPayoutNo: false };
  const from = payout.status as PayoutStatus;
  const to = status.state === "processing" ? "PROCESSING" : status.state === "paid" ? "PAID" : "FAILED";
  if (canTransitionPayout(from, to)) return { kind: "transition", from, to };
  return { kind: "unchanged", recordChannelPayoutNo: recordChannelPayoutNo && !(from === "PAID" || from === "FAILED") };
}

export interface PayoutOutcome {
  /** The status after this call, as far as this call knows (another report may finish it right after). */
  status: PayoutStatus;
  /** `PENDING->PAID` and the like when this call changed it, else `unchanged`. */
  effect: string;
}

/**
 * Attempts per transaction that writes a payout's outcome when the database picks it as a deadlock
 * victim (the merchant's balance slots are shared with its other entries); the victim's work was
 * rolled back, so running it again is safe.
 */
export const PAYOUT_DEADLOCK_ATTEMPTS = 3;

/** Longest failure reason kept (the column's size). */
export const MAX_FAILURE_REASON_CHARS = 255;
/** Longest channel transfer id kept (the column's size); the channels' ids are 20 to 40 characters. */
export const MAX_CHANNEL_PAYOUT_NO_CHARS = 64;

/**
 * The channel's transfer id if it fits its column, else undefined: a cut id would name another
 * transfer, and without one the payout is still found by its payout number.
 */
export function storableChannelPayoutNo(channelPayoutNo: string | undefined | null): string | undefined {
  return channelPayoutNo && channelPayoutNo.length <= MAX_CHANNEL_PAYOUT_NO_CHARS ? channelPayoutNo : undefined;
}

/** The channel's failure text as stored and shown: one line, no control characters, within its column. */
export function storedFailureReason(detail: string | undefined): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const line = (detail || "failed at the channel").replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");
  return Array.from(line).slice(0, MAX_FAILURE_REASON_CHARS).join("");
}

/**
 * Applies the channel's word about `payout` (as read) in the caller's transaction (either kind).
 * `status.detail` is the channel's failure text, kept for a failed payout.
 */
export async function applyPayoutStatus(tx: RowScope, payout: PayoutRow, status: ChannelPayoutStatus): Promise<PayoutOutcome> {
  const decision = decidePayoutOutcome(payout, status);
  const now = new Date();
  if (decision.kind === "unchanged") {
    const channelPayoutNo = storableChannelPayoutNo(status.channelPayoutNo);
    if (decision.recordChannelPayoutNo && channelPayoutNo) await setChannelPayoutNo(tx, payout.id, channelPayoutNo, now);
    return { status: payout.status as PayoutStatus, effect: "unchanged" };
  }
  const { to } = decision;
  const final = to !== "PROCESSING";
  const changes = {
    channelPayoutNo: storableChannelPayoutNo(status.channelPayoutNo) ?? payout.channelPayoutNo,
    failureReason: to === "FAILED" ? storedFailureReason(status.detail) : null,
    finishedAt: final ? now : null,
    // A final payout is never swept again; a PROCESSING one keeps the schedule the sweeper sets.
    nextAttemptAt: final ? null : undefined,
  };
  const changed = await transitionPayoutStatus(tx, payout.id, allowedPayoutSources(to), to, changes, now);
  if (!changed) return { status: payout.status as PayoutStatus, effect: "unchanged" };
  const after = { ...payout, ...changes, status: to };
  if (to === "PAID") {
    await postPayoutEntry(tx, "payout_paid", payout);
    await recordPayoutEvent(tx, "payout.paid", after, now);
  } else if (to === "FAILED") {
    await postPayoutEntry(tx, "payout_failed", payout);
    await recordPayoutEvent(tx, "payout.failed", after, now);
  }
  return { status: to, effect: `${decision.from}->${to}` };
}

/** A payout's event (`payout.created`, `payout.paid`, `payout.failed`), with the payout as it is after the change. */
export async function recordPayoutEvent(
  tx: RowScope,
  eventType: "payout.created" | "payout.paid" | "payout.failed",
  payout: PayoutEventFields & Pick<PayoutRow, "merchantId">,
  now: Date,
): Promise<void> {
  await appendEvent(tx, { merchantId: payout.merchantId, aggregateId: payout.id, eventType, payload: { payout: payoutObject(payout) } }, now);
}

/**
 * Posts one of a payout's ledger entries, ref `<entryType>:<payout id>` (so each posts once): `payout`
 * moves its amount from merchant_available:{m} into payout_in_transit:{ch}; `payout_paid` moves it
 * out of transit to channel_clearing:{ch}; `payout_failed` moves it back to merchant_available:{m}.
 */
export async function postPayoutEntry(
  tx: RowScope,
  entryType: "payout" | "payout_paid" | "payout_failed",
  payout: Pick<PayoutRow, "id" | "merchantId" | "channel" | "amount" | "currency">,
): Promise<void> {
  const inTransit = accounts.payoutInTransit(payout.channel);
  const postings =
    entryType === "payout"
      ? [
          { account: accounts.merchantAvailable(payout.merchantId), amount: payout.amount },
          { account: inTransit, amount: -payout.amount },
        ]
      : [
          { account: inTransit, amount: payout.amount },
          {
            account: entryType === "payout_paid" ? accounts.channelClearing(payout.channel) : accounts.merchantAvailable(payout.merchantId),
            amount: -payout.amount,
          },
        ];
  await postEntry(tx, { ref: `${entryType}:${payout.id}`, entryType, merchantId: payout.merchantId, currency: payout.currency, postings });
}
