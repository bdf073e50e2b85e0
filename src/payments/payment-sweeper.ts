/**
 * Finds pending payments whose callback is overdue, asks their channel, and closes expired ones
 * (asking the channel to close first). Each payment is claimed with a lease by a conditional
 * UPDATE, so any number of service processes can sweep the same database and each payment's
 * work is done once.
 */
import type { ChannelName } from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { loggableMessage } from "../db/database-errors.js";
import type { Session, UnitOfWork } from "../db/unit-of-work.js";
import { applyChannelStatus } from "./channel-outcome.js";
import type { PaymentRow } from "./payment-entity.js";
import { closeAtChannelThenHere, tradeRef } from "./payment-service.js";
import { AWAITING_CHANNEL } from "./payment-status.js";
import { claimDuePayments, rescheduleQuery } from "./payment-store.js";
import { nextQueryAt } from "./query-schedule.js";

export interface SweepResult {
  claimed: number;
  settled: number;
  closed: number;
  retried: number;
}

export interface PaymentSweeperOptions {
  uow: UnitOfWork;
  channels: ChannelRegistry;
  /** How many due payments one pass takes. */
  batchSize?: number;
  /** How long a claim holds; longer than a channel call's timeout. */
  leaseMs?: number;
  log?: (message: string) => void;
}

export function createPaymentSweeper(options: PaymentSweeperOptions) {
  const batchSize = options.batchSize ?? 50;
  const leaseMs = options.leaseMs ?? 60_000;
  const log = options.log ?? (() => {});


  async function sweepOne(session: Session, payment: PaymentRow, result: SweepResult): Promise<void> {
    const channel = options.channels.get(payment.channel as ChannelName);
    const now = new Date();
    const attempts = payment.queryAttempts + 1;
    try {
      const status = await channel.queryPayment(tradeRef(payment));
      const outcome = await options.uow.transaction(session, (tx) => applyChannelStatus(tx, payment, status, "sweeper_query"));
      if (outcome.effect === "applied") {
        result.settled++;
        return;
      }
      if (now.getTime() >= payment.expiresAt.getTime() && (status.state === "pending" || status.state === "not_found")) {
        await closeAtChannelThenHere(options.uow, session, channel, payment, "expired", "sweeper_expiry");
        result.closed++;
        return;
      }
    } catch (error) {
      // Unreachable or 5xx: leave it pending and ask again later; never decide on a guess.
      log(`sweeper: payment ${payment.id} on ${payment.channel}: ${loggableMessage(error)}`);
      result.retried++;
    }
    await rescheduleQuery(session, payment.id, AWAITING_CHANNEL, {
      nextQueryAt: nextQueryAt(now, attempts, payment.expiresAt),
      queryAttempts: attempts,
    });
  }

  return {
    /** One pass over the payments due now. */
    async runOnce(): Promise<SweepResult> {
      const session = options.uow.session();
      const result: SweepResult = { claimed: 0, settled: 0, closed: 0, retried: 0 };
      for await (const payment of claimDuePayments(session, AWAITING_CHANNEL, { batchSize, leaseMs })) {
        result.claimed++;
        await sweepOne(session, payment, result);
      }
      return result;
    },
  };
}

export type PaymentSweeper = ReturnType<typeof createPaymentSweeper>;
