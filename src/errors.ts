/**
 * Domain errors: each carries a stable machine-readable `reason`. The RPC edge maps the class to
 * a status code (src/rpc/errors.ts); domain code never knows about transports.
 */

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

/** The request is invalid; one violation per field. */
export class ValidationError extends DomainError {
  constructor(
    readonly violations: FieldViolation[],
    readonly reason: string = "INVALID_REQUEST",
  ) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "));
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

/** Collects field violations and throws them together. */
export class Violations {
  private readonly list: FieldViolation[] = [];
  add(field: string, reason: string, description: string): void {
    this.list.push({ field, reason, description });
  }
  get size(): number {
    return this.list.length;
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
  throwIfAny(reason?: string): void {
    if (this.list.length > 0) throw new ValidationError(this.list, reason);
  }
}
