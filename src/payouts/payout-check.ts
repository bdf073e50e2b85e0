/**
 * The payouts' part of the ledger's invariants: per payout channel and currency, what the journal
 * holds in `payout_in_transit:{channel}` is exactly the payouts still in flight (created and neither
 * paid nor failed). A payout whose status moved without its entry, or an entry posted twice or for a
 * payout that does not exist, shows here.
 */
import type { Session } from "../db/unit-of-work.js";
import { accounts } from "../ledger/ledger.js";
import { sumPostingsOfEntryType } from "../ledger/ledger-store.js";
import { PAYOUT_IN_FLIGHT } from "./payout-status.js";
import { payoutTotalsByChannel } from "./payout-store.js";

/** The entries that post to `payout_in_transit`. */
const PAYOUT_ENTRY_TYPES = ["payout", "payout_paid", "payout_failed"] as const;

export interface PayoutLedgerViolation {
  check: "PAYOUT_IN_TRANSIT_MISMATCH";
  subject: string;
  detail: string;
}

export async function checkPayoutLedger(session: Session): Promise<{ violations: PayoutLedgerViolation[]; payoutsChecked: number }> {
  const violations: PayoutLedgerViolation[] = [];
  let payoutsChecked = 0;
  for (const totals of await payoutTotalsByChannel(session, PAYOUT_IN_FLIGHT)) {
    payoutsChecked += Number(totals.count);
    const account = accounts.payoutInTransit(totals.channel);
    let posted = 0n;
    for (const entryType of PAYOUT_ENTRY_TYPES) posted += await sumPostingsOfEntryType(session, account, totals.currency, entryType);
    // A liability: payouts in flight are credited (negative) to it.
    if (posted !== -totals.inFlight) {
      violations.push({
        check: "PAYOUT_IN_TRANSIT_MISMATCH",
        subject: `${account} ${totals.currency}`,
        detail: `ledger ${posted}, payouts in flight ${totals.inFlight}`,
      });
    }
  }
  return { violations, payoutsChecked };
}
