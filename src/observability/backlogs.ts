/**
 * The backlog gauges' reads (metrics.ts `Backlogs`), each through the store that owns the table.
 *
 * Every read is a COUNT (and a MIN) over one index range: the sweep ranges are the sweepers' own
 * due conditions (`status`, `next_query_at` / `next_attempt_at` <= now), the outbox the
 * `seq IS NULL` range, webhooks the PENDING and FAILED ranges, discrepancies the OPEN range. So a
 * scrape costs what the backlogs hold, never what the tables hold, and metrics.ts reads at most once
 * per `BACKLOG_CACHE_MS`. The reads run one after another on one session: six small statements are
 * quick, and a scrape then holds at most one pooled connection at a time, also when the pool is
 * what is short.
 */
import type { UnitOfWork } from "../db/unit-of-work.js";
import { countDiscrepancies } from "../discrepancies/discrepancy-store.js";
import { unsequencedBacklog } from "../outbox/outbox-store.js";
import { AWAITING_CHANNEL } from "../payments/payment-status.js";
import { overdueForQuery } from "../payments/payment-store.js";
import { PAYOUT_IN_FLIGHT } from "../payouts/payout-status.js";
import { overduePayouts } from "../payouts/payout-store.js";
import { REFUND_IN_FLIGHT } from "../refunds/refund-status.js";
import { overdueRefunds } from "../refunds/refund-store.js";
import { deliveryBacklog } from "../webhooks/webhook-store.js";
import type { Backlog, Backlogs } from "./metrics.js";

/** The status a discrepancy has until a person resolves it. */
const OPEN_DISCREPANCY = "OPEN";

/** Seconds from `since` to `now`; 0 when nothing waits (or a clock between replicas runs ahead). */
function ageSeconds(now: Date, since: Date | undefined): number {
  if (since === undefined) return 0;
  return Math.max(0, (now.getTime() - since.getTime()) / 1000);
}

function backlog(count: number, now: Date, since: Date | undefined): Backlog {
  return { count, oldestAgeSeconds: count === 0 ? 0 : ageSeconds(now, since) };
}

/**
 * Reads every backlog now. A sweep item's age is how long it has been due (now − its due time), so
 * an item the sweeper takes on time stays near 0 however old it is; outbox and webhook ages are from
 * when the event or delivery was written. Rejects when the database does (the scrape then shows no
 * backlog gauges and the next scrape reads again).
 */
export async function readBacklogs(uow: UnitOfWork): Promise<Backlogs> {
  const session = uow.session();
  const now = new Date();
  const payment = await overdueForQuery(session, AWAITING_CHANNEL, now);
  const refund = await overdueRefunds(session, REFUND_IN_FLIGHT, now);
  const payout = await overduePayouts(session, PAYOUT_IN_FLIGHT, now);
  const outbox = await unsequencedBacklog(session);
  const webhooks = await deliveryBacklog(session);
  const openDiscrepancies = await countDiscrepancies(session, OPEN_DISCREPANCY);
  return {
    sweep: {
      payment: backlog(payment.count, now, payment.oldestDueAt),
      refund: backlog(refund.count, now, refund.oldestDueAt),
      payout: backlog(payout.count, now, payout.oldestDueAt),
    },
    outbox: backlog(outbox.count, now, outbox.oldestCreatedAt),
    webhooks: { ...backlog(webhooks.pending, now, webhooks.oldestPendingCreatedAt), failed: webhooks.failed },
    openDiscrepancies,
  };
}
