/**
 * Moves payouts along with their channel: a due PENDING payout is sent (under the same payout number
 * every time), a due PROCESSING one is asked about, and the answer applied (payout-outcome.ts). Rows
 * are claimed with a lease by a conditional UPDATE, so any number of replicas sweep together and each
 * payout is worked on by one of them at a time. An unknown answer (timeout, 5xx, an untrusted answer)
 * never moves money: the payout stays as it is and is tried again on the back-off schedule, and a
 * PENDING payout already attempted is asked about before it is sent again. A refusal the adapter
 * cannot call a failure (ChannelRejectedError) moves nothing either: it is logged and tried again.
 */
import type { ChannelName, ChannelPayoutRequest, ChannelPayoutStatus } from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { loggableMessage } from "../db/database-errors.js";
import type { Session, UnitOfWork } from "../db/unit-of-work.js";
import type { SecretBox } from "../merchants/credentials.js";
import { nextQueryAt } from "../payments/query-schedule.js";
import { openPayee } from "./payee.js";
import type { PayoutRow } from "./payout-entities.js";
import { applyPayoutStatus, PAYOUT_DEADLOCK_ATTEMPTS } from "./payout-outcome.js";
import { isFinalPayout, PAYOUT_IN_FLIGHT, type PayoutStatus } from "./payout-status.js";
import { claimDuePayouts, reschedulePayout } from "./payout-store.js";

/** Payouts are asked about for as long as they are in flight; the back-off never "expires". */
const NO_EXPIRY = new Date(8.64e15);

export interface PayoutSweepResult {
  claimed: number;
  /** Payouts this pass brought to PAID or FAILED. */
  finished: number;
}

export interface PayoutSweeperOptions {
  uow: UnitOfWork;
  channels: ChannelRegistry;
  secrets: SecretBox;
  log: (message: string) => void;
  /** How long a claim holds: longer than a send and a query together. */
  leaseMs: number;
  /** Payouts one pass takes at most. */
  batchSize?: number;
}

/** What a payout's channel call carries; the payee is opened from the payout's own sealed snapshot. */
function channelPayoutRequest(secrets: SecretBox, payout: PayoutRow): ChannelPayoutRequest {
  return {
    payoutNo: payout.payoutNo,
    channelPayoutNo: payout.channelPayoutNo,
    amountMinor: payout.amount,
    currency: payout.currency,
    payee: openPayee(secrets, payout.payeeSealed),
    remark: `Settlement ${payout.settlementNo}`,
  };
}

export function createPayoutSweeper(options: PayoutSweeperOptions) {
  const batchSize = options.batchSize ?? 50;
  const { log } = options;

  /** The channel's word on a claimed payout: send (asking first if it was attempted before) or ask. */
  async function askChannel(payout: PayoutRow): Promise<ChannelPayoutStatus> {
    const channel = options.channels.get(payout.channel as ChannelName);
    const request = channelPayoutRequest(options.secrets, payout);
    if (payout.status !== "PENDING") return channel.payouts.queryPayout(request);
    if (payout.attempts > 0) {
      // An earlier send may have reached the channel (its answer lost): its word wins over a new send.
      const known = await channel.payouts.queryPayout(request);
      if (known.state !== "not_found") return known;
    }
    // A refusal that made no transfer comes back as `failed` from the adapter. What it throws as
    // ChannelRejectedError may be ambiguous (an idempotency conflict, an answer about another
    // transfer), so it moves nothing: the payout waits, logged, for the next attempt or a person.
    return channel.payouts.sendPayout(request);
  }

  async function sweepOne(session: Session, payout: PayoutRow): Promise<boolean> {
    const now = new Date();
    let status: PayoutStatus = payout.status as PayoutStatus;
    try {
      const answer = await askChannel(payout);
      const outcome = await options.uow.rowTransaction(session, (tx) => applyPayoutStatus(tx, payout, answer), {
        deadlockAttempts: PAYOUT_DEADLOCK_ATTEMPTS,
      });
      if (outcome.effect !== "unchanged") log(`payout ${payout.id}: ${outcome.effect}`);
      if (isFinalPayout(outcome.status)) return outcome.effect !== "unchanged";
      status = outcome.status;
    } catch (error) {
      // Unreachable, timed out, untrusted or refused: no outcome is known, so nothing moves.
      log(`payout ${payout.id} on ${payout.channel}: ${loggableMessage(error)}`);
    }
    await reschedulePayout(session, payout.id, status, nextQueryAt(now, payout.attempts + 1, NO_EXPIRY));
    return false;
  }

  return {
    /** One pass over the payouts due now. */
    async runOnce(): Promise<PayoutSweepResult> {
      const session = options.uow.session();
      const result: PayoutSweepResult = { claimed: 0, finished: 0 };
      for await (const payout of claimDuePayouts(session, PAYOUT_IN_FLIGHT, { batchSize, leaseMs: options.leaseMs })) {
        result.claimed++;
        if (await sweepOne(session, payout)) result.finished++;
      }
      return result;
    },
  };
}

export type PayoutSweeper = ReturnType<typeof createPayoutSweeper>;
