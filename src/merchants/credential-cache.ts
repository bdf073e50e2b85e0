/**
 * A bounded, short-lived cache of successful API-key lookups (key hash → merchant), so a merchant
 * call does not read `merchant` every time. What it costs: a key rotated on another replica keeps
 * working here for at most the TTL (`API_KEY_CACHE_TTL_MS`); the replica that rotates forgets the
 * merchant's entries at once. Unknown keys are never cached, so a key that starts to work (a new
 * merchant, a rotation elsewhere) works at once, and guessing keys cannot fill the cache.
 */

/** What {@link CredentialCache} holds per key hash. */
interface Entry<T> {
  value: T;
  merchantId: string;
  expiresAt: number;
}

export interface CredentialCacheOptions {
  /** How long an entry is trusted, in milliseconds; 0 disables the cache (every lookup reads). */
  ttlMs: number;
  /** Most entries kept; the oldest goes first when it is full. Default 10,000. */
  maxEntries?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/** Successful lookups by key hash, each trusted for `ttlMs`, at most `maxEntries` of them. */
export class CredentialCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Bumped by {@link forgetMerchant}: a lookup that started before it must not store what it read. */
  private generation = 0;

  constructor(options: CredentialCacheOptions) {
    if (!Number.isSafeInteger(options.ttlMs) || options.ttlMs < 0) throw new Error(`ttlMs must be a whole number >= 0, got ${options.ttlMs}`);
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new Error(`maxEntries must be a whole number >= 1, got ${maxEntries}`);
    this.ttlMs = options.ttlMs;
    this.maxEntries = maxEntries;
    this.now = options.now ?? Date.now;
  }

  /** Entries held now (expired ones included until they are next looked at or pushed out). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The cached value for `keyHash` if it is still fresh; otherwise `load` runs, and what it finds
   * (not `undefined`: a failure) is kept for the TTL.
   */
  async get(keyHash: string, load: () => Promise<{ value: T; merchantId: string } | undefined>): Promise<T | undefined> {
    if (this.ttlMs === 0) return (await load())?.value;
    const cached = this.entries.get(keyHash);
    if (cached) {
      if (cached.expiresAt > this.now()) return cached.value;
      this.entries.delete(keyHash);
    }
    const generation = this.generation;
    const found = await load();
    if (found === undefined) return undefined;
    if (generation === this.generation) this.store(keyHash, found.value, found.merchantId);
    return found.value;
  }

  /** Drops every entry of the merchant (its key was rotated on this replica). */
  forgetMerchant(merchantId: string): void {
    this.generation++;
    for (const [keyHash, entry] of this.entries) if (entry.merchantId === merchantId) this.entries.delete(keyHash);
  }

  private store(keyHash: string, value: T, merchantId: string): void {
    this.entries.delete(keyHash);
    while (this.entries.size >= this.maxEntries) {
      // A Map iterates in insertion order: the first key is the oldest entry.
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(keyHash, { value, merchantId, expiresAt: this.now() + this.ttlMs });
  }
}
