/** Bearer-token checks for admin and merchant calls, from the request headers, and the merchants' rate limit. */
import type { HandlerContext } from "@connectrpc/connect";
import type { SqlEntityManager } from "@mikro-orm/knex";
import { PermissionDeniedError, RateLimitedError, UnauthenticatedError } from "../errors.js";
import { hashApiKey, isApiKeyShaped, secretsEqual } from "../merchants/credentials.js";
import type { MerchantRow } from "../merchants/merchant-entity.js";
import type { MerchantService } from "../merchants/merchant-service.js";
import { type RateLimit, TokenBucketLimiter } from "./rate-limiter.js";

function bearerToken(ctx: HandlerContext): string {
  const header = ctx.requestHeader.get("authorization");
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  if (!match) throw new UnauthenticatedError("missing authorization: Bearer <token>");
  return match[1]!;
}

/**
 * Admin RPCs: the admin token passes. A merchant API key (a token of its `sk_live_` shape) is
 * PERMISSION_DENIED: a credential of the wrong kind for this RPC. That is decided by the shape
 * alone, without looking the key up: the answer would be the same for a current or a rotated key
 * (use the admin token), and a failed admin call then costs no database read. Anything else,
 * or no token, is UNAUTHENTICATED. Synchronous on purpose, so no handler can forget to await it.
 */
export function requireAdmin(ctx: HandlerContext, adminToken: string): void {
  const token = bearerToken(ctx);
  if (secretsEqual(token, adminToken)) return;
  if (isApiKeyShaped(token)) {
    throw new PermissionDeniedError("merchant API keys may not call admin RPCs; use the admin token");
  }
  throw new UnauthenticatedError("invalid admin token");
}

/**
 * Identifies the merchant behind an API key and applies its rate limit (a token bucket per key,
 * `config.rateLimit`, per replica). Every merchant RPC goes through {@link authenticateMerchant},
 * which needs one of these, so no merchant RPC can skip the limit.
 *
 * Cheap refusals first: a token that is not shaped like an API key is refused without a database
 * read, and so is a call whose key's bucket is empty. The bucket is keyed by the key's hash and
 * made only after the key authenticated once, so unknown keys cannot fill the map; a merchant has
 * one key at a time, so per key is per merchant.
 */
export class MerchantAuthenticator {
  private readonly limiter: TokenBucketLimiter;

  constructor(
    private readonly merchants: MerchantService,
    limit: RateLimit,
    options: { maxBuckets?: number; now?: () => number } = {},
  ) {
    this.limiter = new TokenBucketLimiter({ ...limit, ...options });
  }

  /** The merchant owning `apiKey`; UNAUTHENTICATED for an unknown key, RESOURCE_EXHAUSTED over the limit. */
  async authenticate(em: SqlEntityManager, apiKey: string): Promise<MerchantRow> {
    if (!isApiKeyShaped(apiKey)) throw new UnauthenticatedError("invalid API key");
    // Half the SHA-256 is plenty to tell keys apart and halves the memory per bucket.
    const bucketKey = hashApiKey(apiKey).slice(0, 32);
    this.refuseIfWaiting(this.limiter.peek(bucketKey));
    const merchant = await this.merchants.authenticate(em, apiKey);
    this.refuseIfWaiting(this.limiter.take(bucketKey));
    return merchant;
  }

  private refuseIfWaiting(waitMs: number): void {
    if (waitMs === 0) return;
    const { perSecond, burst } = this.limiter;
    throw new RateLimitedError(
      `rate limit exceeded: ${perSecond} calls a second per merchant (bursts of ${burst}); retry in ${waitMs} ms`,
      waitMs,
    );
  }
}

/** The calling merchant, from the `authorization: Bearer <api_key>` header, within its rate limit. */
export function authenticateMerchant(
  ctx: HandlerContext,
  em: SqlEntityManager,
  merchants: MerchantAuthenticator,
): Promise<MerchantRow> {
  return merchants.authenticate(em, bearerToken(ctx));
}
