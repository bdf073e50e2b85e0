/**
 * Domain errors: each carries a stable machine-readable `reason`. The RPC edge maps the class to
 * a status code (src/rpc/errors.ts); domain code never knows about transports.
 */
import { echoable } from "./input-text.js";

/** One invalid input field. */
export interface FieldViolation {
  field: string;
  description: string;
  reason: string;
}

export abstract class DomainError extends Error {
  abstract readonly reason: string;
  readonly metadata: Readonly<Record<string, string>> = {};
}

/** The thing does not exist, or belongs to someone else (existence is never leaked). */
export class NotFoundError extends DomainError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Bounds on what one invalid request can make the service say, so that an answer stays far below
 * the 8 KiB of metadata gRPC clients accept (the BadRequest travels base64-encoded in the
 * `grpc-status-details-bin` trailer, next to the message in `grpc-message`) whatever the input.
 */
export const VALIDATION_ERROR_LIMITS = Object.freeze({
  /** Violations listed in the BadRequest; later ones are only counted. */
  maxViolations: 20,
  /** UTF-8 bytes of field paths and descriptions listed in the BadRequest, all together. */
  maxListedBytes: 1536,
  /** UTF-8 bytes of violations written into the message, before the "and N more" note. */
  maxMessageBytes: 1024,
  /** Characters of one field path (it may quote a caller's map key). */
  maxFieldChars: 64,
  /** Characters of one description. */
  maxDescriptionChars: 100,
});

function violationText(violation: FieldViolation): string {
  return `${violation.field}: ${violation.description}`;
}

/** The request is invalid; one violation per field, at most {@link VALIDATION_ERROR_LIMITS} of them listed. */
export class ValidationError extends DomainError {
  /** The listed violations (the first ones found, within the limits). */
  readonly violations: FieldViolation[];
  /** Violations found but not listed. */
  readonly omitted: number;
  override readonly metadata: Readonly<Record<string, string>>;

  constructor(
    violations: FieldViolation[],
    readonly reason: string = "INVALID_REQUEST",
    omitted = 0,
  ) {
    const limits = VALIDATION_ERROR_LIMITS;
    const listed: FieldViolation[] = [];
    let listedBytes = 0;
    for (const violation of violations) {
      const bounded = {
        field: echoable(violation.field, limits.maxFieldChars),
        reason: echoable(violation.reason, limits.maxFieldChars),
        description: echoable(violation.description, limits.maxDescriptionChars),
      };
      const bytes = Buffer.byteLength(bounded.field) + Buffer.byteLength(bounded.description);
      if (listed.length >= limits.maxViolations || listedBytes + bytes > limits.maxListedBytes) break;
      listed.push(bounded);
      listedBytes += bytes;
    }
    const total = violations.length + omitted;

    const parts: string[] = [];
    let messageBytes = 0;
    for (const violation of listed) {
      const text = violationText(violation);
      messageBytes += Buffer.byteLength(text) + 2;
      if (messageBytes > limits.maxMessageBytes) break;
      parts.push(text);
    }
    let message = parts.join("; ");
    const unmentioned = total - parts.length;
    if (unmentioned > 0) message += ` ... and ${unmentioned} more violation${unmentioned === 1 ? "" : "s"}`;
    super(message);
    this.violations = listed;
    this.omitted = total - listed.length;
    this.metadata = this.omitted > 0 ? { violations: String(total), violations_listed: String(listed.length) } : {};
  }
}

/** The object is not in a state that allows the operation (e.g. `INVALID_TRANSITION`). */
export class PreconditionError extends DomainError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** A uniqueness rule was hit with a different request (e.g. `IDEMPOTENCY_KEY_REUSED`). */
export class ConflictError extends DomainError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Missing or wrong credentials. */
export class UnauthenticatedError extends DomainError {
  readonly reason = "UNAUTHENTICATED";
}

/** Valid credentials that may not make this call (a merchant key on an admin RPC). */
export class PermissionDeniedError extends DomainError {
  readonly reason = "PERMISSION_DENIED";
}

/** The caller made too many calls; it may try again after `retryAfterMs`. */
export class RateLimitedError extends DomainError {
  readonly reason = "RATE_LIMITED";
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/**
 * Collects field violations and throws them together. Only the first
 * {@link VALIDATION_ERROR_LIMITS}.maxViolations are kept; later ones are counted, so a request
 * with thousands of problems costs no more memory than one with twenty.
 */
export class Violations {
  private readonly list: FieldViolation[] = [];
  private omitted = 0;
  add(field: string, reason: string, description: string): void {
    if (this.list.length >= VALIDATION_ERROR_LIMITS.maxViolations) {
      this.omitted++;
      return;
    }
    // Bounded here already: a field path may quote a caller's megabyte-long map key.
    this.list.push({
      field: echoable(field, VALIDATION_ERROR_LIMITS.maxFieldChars),
      reason,
      description: echoable(description, VALIDATION_ERROR_LIMITS.maxDescriptionChars),
    });
  }
  /** Every violation added, listed or not. */
  get size(): number {
    return this.list.length + this.omitted;
  }
  get empty(): boolean {
    return this.size === 0;
  }
  throwIfAny(reason?: string): void {
    if (!this.empty) throw new ValidationError(this.list, reason, this.omitted);
  }
}
