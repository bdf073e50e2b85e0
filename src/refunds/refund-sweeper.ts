/**
 * Finishes refunds that stay PROCESSING: asks the channel on the back-off schedule (1, 2, 5, 10,
 * 30 minutes, then every 30), claimed with a lease like the payment sweeper, so several
 * processes share the work and each refund is asked about once per turn. A refund the channel has
 * never received is sent again (up to three sweeps) before it is failed.
 */
import { type ChannelName, ChannelRejectedError } from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { loggableMessage } from "../db/database-errors.js";
import type { Session, UnitOfWork } from "../db/unit-of-work.js";
import { reloadPayment } from "../payments/payment-store.js";
import { nextQueryAt } from "../payments/query-schedule.js";
import type { RefundRow } from "./refund-entity.js";
import { applyRefundStatus, REFUND_DEADLOCK_ATTEMPTS } from "./refund-outcome.js";
import { channelRefundRequest } from "./refund-service.js";
import { REFUND_IN_FLIGHT } from "./refund-status.js";
import { claimDueRefunds, rescheduleRefundQuery } from "./refund-store.js";

/** Sweeps that may send again a refund the channel does not know before it is failed. */
const MAX_RESENDS = 3;

/** Refunds are asked about for as long as they are processing; the schedule never "expires". */
const NO_EXPIRY = new Date(8.64e15);

export function createRefundSweeper(options: {
  uow: UnitOfWork;
  channels: ChannelRegistry;
  publicBaseUrl: string;
  batchSize?: number;
  leaseMs?: number;
  log?: (message: string) => void;
}) {
  const batchSize = options.batchSize ?? 50;
  const leaseMs = options.leaseMs ?? 60_000;
  const log = options.log ?? (() => {});


  async function sweepOne(session: Session, refund: RefundRow): Promise<boolean> {
    const channel = options.channels.get(refund.channel as ChannelName);
    const request = channelRefundRequest(await reloadPayment(session, refund.paymentId), refund, options.publicBaseUrl);
    const now = new Date();
    try {
      let status = await channel.queryRefund(request);
      let cause = "sweeper_query";
      if (status.state === "not_found" && refund.queryAttempts < MAX_RESENDS) {
        // Accepted here but never received there (a crash or a lost request between the two): send it
        // again under the same refund number, which every channel treats as the same refund.
        log(`sweeper: refund ${refund.id} is unknown to ${refund.channel}; sending it again`);
        status = await channel.refund(request);
        cause = "sweeper_resend";
      } else if (status.state === "not_found") {
        // Still unknown after the re-sends (e.g. Alipay abandoned it): its amount becomes refundable again.
        status = { state: "failed", detail: status.detail };
      }
      const finished = await options.uow.rowTransaction(session, (tx) => applyRefundStatus(tx, refund, status, cause), {
        deadlockAttempts: REFUND_DEADLOCK_ATTEMPTS,
      });
      if (finished) return true;
    } catch (error) {
      if (error instanceof ChannelRejectedError) {
        await options.uow.rowTransaction(
          session,
          (tx) => applyRefundStatus(tx, refund, { state: "failed", detail: `${error.code}: ${error.message}` }, "sweeper_query"),
          { deadlockAttempts: REFUND_DEADLOCK_ATTEMPTS },
        );
        return true;
      }
      log(`sweeper: refund ${refund.id} on ${refund.channel}: ${loggableMessage(error)}`);
    }
    const attempts = refund.queryAttempts + 1;
    await rescheduleRefundQuery(session, refund.id, REFUND_IN_FLIGHT, {
      nextQueryAt: nextQueryAt(now, attempts, NO_EXPIRY),
      queryAttempts: attempts,
    });
    return false;
  }

  return {
    async runOnce(): Promise<{ claimed: number; finished: number }> {
      const session = options.uow.session();
      let claimed = 0;
      let finished = 0;
      for await (const refund of claimDueRefunds(session, REFUND_IN_FLIGHT, { batchSize, leaseMs })) {
        claimed++;
        if (await sweepOne(session, refund)) finished++;
      }
      return { claimed, finished };
    },
  };
}

export type RefundSweeper = ReturnType<typeof createRefundSweeper>;
