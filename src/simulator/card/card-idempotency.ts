/**
 * Idempotent requests: a repeat of a key with the same path and parameters replays the stored
 * answer (`Idempotent-Replayed: true`), with other parameters it is 400 `idempotency_error`, and
 * while the first is still running 409 `idempotency_key_in_use`. Keys are kept 24 h or until
 * 100,000 newer ones were used.
 */
import { invalidRequest, StripeError } from "./card-errors.js";

const TTL_MS = 24 * 60 * 60 * 1000;
const MAX_KEYS = 100_000;
/** Stripe's limit on a key's length. */
const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/** A stored answer and the request id that first produced it. */
export interface StoredAnswer {
  status: number;
  body: string;
  requestId: string;
}

interface Entry {
  request: string;
  expiresAt: number;
  /** Undefined while the first request is still running. */
  answer?: StoredAnswer;
}

/** What {@link IdempotencyStore.begin} decided. */
export type IdempotencyDecision =
  | { kind: "replay"; answer: StoredAnswer }
  /** New request: run it, then {@link IdempotencyStore.finish} (or {@link IdempotencyStore.forget}). */
  | { kind: "run" };

/** The account's idempotency keys. */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  /** Checks `key` for `request` (path and canonical parameters); throws the Stripe error for a misuse. */
  begin(key: string, request: string): IdempotencyDecision {
    if (key.length > MAX_IDEMPOTENCY_KEY_CHARS) throw invalidRequest(`Idempotency-Key is too long: at most ${MAX_IDEMPOTENCY_KEY_CHARS} characters.`);
    const previous = this.entries.get(key);
    if (previous && previous.expiresAt > Date.now()) {
      if (previous.request !== request) {
        throw new StripeError(400, {
          type: "idempotency_error",
          message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
        });
      }
      if (!previous.answer) {
        throw new StripeError(409, {
          type: "invalid_request_error",
          code: "idempotency_key_in_use",
          message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${key}. Please try again later.`,
        });
      }
      return { kind: "replay", answer: previous.answer };
    }
    this.remember(key, { request, expiresAt: Date.now() + TTL_MS });
    return { kind: "run" };
  }

  /** Stores the answer a new request produced. */
  finish(key: string, answer: StoredAnswer): void {
    const entry = this.entries.get(key);
    if (entry) entry.answer = answer;
  }

  /** Forgets a key whose request left nothing to replay (a validation error, a crash). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  private remember(key: string, entry: Entry): void {
    // Re-inserted, not overwritten in place: the map's order is the order keys expire in.
    this.entries.delete(key);
    this.entries.set(key, entry);
    // Oldest first: evict what is expired or beyond the bound, a few per call.
    const now = Date.now();
    for (let i = 0; i < 2; i++) {
      const oldest = this.entries.entries().next().value as [string, Entry] | undefined;
      if (!oldest || (oldest[1].expiresAt > now && this.entries.size <= MAX_KEYS) || oldest[1].answer === undefined) break;
      this.entries.delete(oldest[0]);
    }
  }
}
