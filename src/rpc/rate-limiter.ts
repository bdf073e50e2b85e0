/**
 * Token buckets in process memory, one per key (a merchant's credential): each holds up to
 * `burst` tokens and gains `perSecond` a second; a call takes one. The limit is per replica: N
 * replicas behind a load balancer let a merchant make about N times as many calls, which is the
 * point (the limit protects each process and the database it shares, without a round trip to a
 * shared store on every call).
 *
 * The map of buckets is bounded: a bucket idle long enough to be full again is the same as no
 * bucket and is dropped, and past `maxBuckets` the least recently used bucket goes first.
 */

export interface RateLimit {
  /** Tokens added per second. */
  perSecond: number;
  /** Bucket size: calls allowed at once after a quiet spell. */
  burst: number;
}

export interface TokenBucketLimiterOptions extends RateLimit {
  /** Most buckets kept; default 100,000. */
  maxBuckets?: number;
  /** Milliseconds from a monotonic clock; replaceable in tests. */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Buckets examined for idleness per call: enough to keep up with any rate of new keys. */
const IDLE_SWEEP_PER_CALL = 2;

/** Per-key token buckets; see the module comment. */
export class TokenBucketLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly maxBuckets: number;
  private readonly now: () => number;
  /** Least recently used first: Map keeps insertion order and each use re-inserts. */
  private readonly buckets = new Map<string, Bucket>();
  /** How long an empty bucket takes to fill: a bucket idle this long can be forgotten. */
  private readonly refillMs: number;

  constructor(options: TokenBucketLimiterOptions) {
    if (!(options.perSecond > 0) || !(options.burst >= 1)) {
      throw new RangeError(`rate limit needs perSecond > 0 and burst >= 1, got ${options.perSecond} and ${options.burst}`);
    }
    this.perSecond = options.perSecond;
    this.burst = options.burst;
    this.maxBuckets = Math.max(1, options.maxBuckets ?? 100_000);
    this.now = options.now ?? (() => performance.now());
    this.refillMs = (this.burst / this.perSecond) * 1000;
  }

  /** Buckets held now. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Milliseconds until `key` could take a token, without taking one: 0 when it can now (or has no
   * bucket yet). Lets a caller refuse an over-limit call before doing any work for it.
   */
  peek(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    return this.waitMs(this.refilled(bucket, this.now()));
  }

  /** Takes a token for `key`: 0 when taken, otherwise the milliseconds until one is available. */
  take(key: string): number {
    const now = this.now();
    this.dropIdle(now);
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      bucket.tokens = this.refilled(bucket, now);
      bucket.updatedAt = now;
    } else {
      while (this.buckets.size >= this.maxBuckets) {
        const oldest = this.buckets.keys().next().value as string;
        this.buckets.delete(oldest);
      }
      bucket = { tokens: this.burst, updatedAt: now };
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return this.waitMs(bucket.tokens);
  }

  private refilled(bucket: Bucket, now: number): number {
    return Math.min(this.burst, bucket.tokens + ((now - bucket.updatedAt) * this.perSecond) / 1000);
  }

  private waitMs(tokens: number): number {
    if (tokens >= 1) return 0;
    // At least 1 ms, so a refusal never says "retry in 0".
    return Math.max(1, Math.ceil(((1 - tokens) * 1000) / this.perSecond));
  }

  /** Drops up to a few of the least recently used buckets if they have been idle long enough to be full. */
  private dropIdle(now: number): void {
    let examined = 0;
    for (const [key, bucket] of this.buckets) {
      if (examined++ >= IDLE_SWEEP_PER_CALL || now - bucket.updatedAt < this.refillMs) return;
      this.buckets.delete(key);
    }
  }
}
