/**
 * When to ask a channel about a pending payment whose callback has not come: 1, 2, 5, 10 and 30
 * minutes apart, never later than the payment's expiry, when the sweeper asks once more and
 * closes it. A channel that was unreachable at expiry is asked again a minute later, for as long
 * as it takes: a payment is never closed or failed on a guess.
 */
const GAPS_MS = [1, 2, 5, 10, 30].map((minutes) => minutes * 60_000);
const RETRY_AFTER_EXPIRY_MS = 60_000;

export function firstQueryAt(now: Date, expiresAt: Date): Date {
  return new Date(Math.min(now.getTime() + GAPS_MS[0]!, expiresAt.getTime()));
}

/** The next query time after `attempts` queries (counting the one just made). */
export function nextQueryAt(now: Date, attempts: number, expiresAt: Date): Date {
  if (now.getTime() >= expiresAt.getTime()) return new Date(now.getTime() + RETRY_AFTER_EXPIRY_MS);
  const gap = GAPS_MS[Math.min(attempts, GAPS_MS.length - 1)]!;
  return new Date(Math.min(now.getTime() + gap, expiresAt.getTime()));
}
