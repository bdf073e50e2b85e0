/**
 * The daily settlement run, started from the sweeper tick of every replica: when
 * `config.settlement.scheduled` is on and the current settlement date's period ended more than
 * SETTLEMENT_GRACE_MS ago, the
 * replica that takes the `settlement` job lease (a conditional UPDATE in job_lease) runs the dates
 * not completed yet, renewing the lease while it works, and records each date completed. A replica
 * that dies mid-run lets its lease expire; another takes it over and the rerun builds the missing
 * orders (settlement-service.ts: each order is whole or absent).
 */
import { randomUUID } from "node:crypto";
import type { SettlementSchedule } from "../config.js";
import type { Session, UnitOfWork } from "../db/unit-of-work.js";
import { completeLease, findLease, releaseLease, renewLease, takeLease } from "./job-lease-store.js";
import { addDays, currentSettlementDate } from "./settlement-period.js";
import { SETTLEMENT_GRACE_MS, type SettlementRunResult, type SettlementService } from "./settlement-service.js";

/** The job lease's name. */
export const SETTLEMENT_JOB = "settlement";
/** Dates a run catches up on after the service was down (older ones are run by hand: RunSettlement or `npm run settle`). */
export const MAX_CATCH_UP_DATES = 7;
/** `lease_until` of a lease nobody holds: before any now. */
const FREE = new Date(0);

export interface SettlementSchedulerOptions {
  uow: UnitOfWork;
  settlements: SettlementService;
  schedule: SettlementSchedule;
  log: (message: string) => void;
  /** How long a taken lease holds without renewal (default 60 s); renewed every third of it. */
  leaseMs?: number;
  /** Who this replica is in the lease row (default a random id). */
  holder?: string;
  /** The clock the current settlement date is read from (tests move it); leases always use the real time. */
  now?: () => Date;
}

export function createSettlementScheduler(options: SettlementSchedulerOptions) {
  const { uow, settlements, schedule, log } = options;
  const leaseMs = options.leaseMs ?? 60_000;
  const holder = options.holder ?? randomUUID();
  const clock = options.now ?? (() => new Date());
  let stopping = false;

  /** The dates to run, oldest first: after the last completed one up to the current one, at most {@link MAX_CATCH_UP_DATES}. */
  async function datesDue(session: Session, current: string): Promise<string[]> {
    const completed = (await findLease(session, SETTLEMENT_JOB))?.completedKey ?? undefined;
    if (completed !== undefined && completed >= current) return [];
    let first = completed === undefined ? current : addDays(completed, 1);
    if (first < addDays(current, 1 - MAX_CATCH_UP_DATES)) first = addDays(current, 1 - MAX_CATCH_UP_DATES);
    const dates: string[] = [];
    for (let date = first; date <= current; date = addDays(date, 1)) dates.push(date);
    return dates;
  }

  return {
    holder,
    /**
     * Runs the due settlement dates if this replica takes the lease; resolves with the runs it made
     * (empty when nothing was due, another replica holds the lease, or scheduling is off).
     */
    async runIfDue(): Promise<SettlementRunResult[]> {
      if (!schedule.scheduled || stopping) return [];
      const session = uow.session();
      // A date is due once its period ended more than the grace ago (late commits, settlement-service.ts).
      const current = currentSettlementDate(new Date(clock().getTime() - SETTLEMENT_GRACE_MS), schedule);
      const dates = await datesDue(session, current);
      if (dates.length === 0) return [];
      const now = new Date();
      if (!(await takeLease(session, SETTLEMENT_JOB, holder, current, now, new Date(now.getTime() + leaseMs)))) return [];
      const results: SettlementRunResult[] = [];
      let renewAt = now.getTime() + leaseMs / 3;
      let leaseLost = false;
      const keepLease = () => {
        if (stopping || leaseLost) return false;
        if (Date.now() < renewAt) return true;
        renewAt = Date.now() + leaseMs / 3;
        // Renewed in the background between orders; a lost lease stops the run at the next order.
        void renewLease(uow.session(), SETTLEMENT_JOB, holder, new Date(Date.now() + leaseMs)).then(
          (held) => {
            if (!held) leaseLost = true;
          },
          () => {
            leaseLost = true;
          },
        );
        return true;
      };
      try {
        for (const date of dates) {
          const result = await settlements.runSettlement(session, date, { shouldContinue: keepLease });
          if (!keepLease()) break;
          results.push(result);
          log(
            `settlement ${date}: ${result.ordersCreated} orders built, ${result.ordersExisting} existing, ` +
              `${result.linesSettled} lines, ${result.paymentsHeld} payments held`,
          );
          if (!(await completeLease(session, SETTLEMENT_JOB, holder, date, FREE))) return results;
          if (date !== dates[dates.length - 1] && !(await takeLease(session, SETTLEMENT_JOB, holder, current, new Date(), new Date(Date.now() + leaseMs)))) {
            return results;
          }
        }
      } finally {
        await releaseLease(session, SETTLEMENT_JOB, holder, FREE).catch(() => {});
      }
      return results;
    },
    /** Stops a run in progress at its next order (the replica is shutting down). */
    stop(): void {
      stopping = true;
    },
  };
}

export type SettlementScheduler = ReturnType<typeof createSettlementScheduler>;
