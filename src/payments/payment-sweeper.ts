/**
 * Finds pending payments whose callback is overdue, asks their channel, and closes expired ones
 * (asking the channel to close first). Each payment is claimed with a lease by a conditional
 * UPDATE, so any number of service processes can sweep the same database and each payment's
 * work is done once.
 */
import type { SqlEntityManager } from "@mikro-orm/knex";
import type { ChannelName } from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import type { Database } from "../db/database.js";
import { loggableMessage } from "../db/database-errors.js";
import { claimDue } from "../db/leases.js";
import { applyChannelStatus } from "./channel-outcome.js";
import { Payment, type PaymentRow } from "./payment-entity.js";
import { closeAtChannelThenHere, tradeRef } from "./payment-service.js";
import { nextQueryAt } from "./query-schedule.js";

export interface SweepResult {
  claimed: number;
  settled: number;
  closed: number;
  retried: number;
}

export interface PaymentSweeperOptions {
  db: Database;
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


  async function sweepOne(em: SqlEntityManager, payment: PaymentRow, result: SweepResult): Promise<void> {
    const channel = options.channels.get(payment.channel as ChannelName);
    const now = new Date();
    const attempts = payment.queryAttempts + 1;
    try {
      const status = await channel.queryPayment(tradeRef(payment));
      const outcome = await em.transactional((tx) => applyChannelStatus(tx, payment, status, "sweeper_query"));
      if (outcome.effect === "applied") {
        result.settled++;
        return;
      }
      if (now.getTime() >= payment.expiresAt.getTime() && (status.state === "pending" || status.state === "not_found")) {
        await closeAtChannelThenHere(em, channel, payment, "expired", "sweeper_expiry");
        result.closed++;
        return;
      }
    } catch (error) {
      // Unreachable or 5xx: leave it pending and ask again later; never decide on a guess.
      log(`sweeper: payment ${payment.id} on ${payment.channel}: ${loggableMessage(error)}`);
      result.retried++;
    }
    await em.nativeUpdate(
      Payment,
      { id: payment.id, status: "PENDING" },
      { nextQueryAt: nextQueryAt(now, attempts, payment.expiresAt), queryAttempts: attempts, sweepLeaseUntil: null },
    );
  }

  return {
    /** One pass over the payments due now. */
    async runOnce(): Promise<SweepResult> {
      const em = options.db.em();
      const result: SweepResult = { claimed: 0, settled: 0, closed: 0, retried: 0 };
      for await (const payment of claimDue<PaymentRow>(em, Payment, "PENDING", { batchSize, leaseMs })) {
        result.claimed++;
        await sweepOne(em, payment, result);
      }
      return result;
    },
  };
}

export type PaymentSweeper = ReturnType<typeof createPaymentSweeper>;
