/**
 * The ids of our payments and refunds a run's bill lines named, kept compactly: one 64-bit hash
 * per line (8 bytes; the array grows by doubling, so at most 16 bytes per line while it grows),
 * sorted once the bill is read and searched by bisection. A million lines take 8-16 MB instead of
 * the ~100 MB a Set of id strings would. Two different ids share a hash with a probability of about
 * n²/2⁶⁵ (3·10⁻⁸ for a million lines against a million of ours); the cost of a collision is one
 * payment not reported missing on the channel's side.
 */
import { createHash } from "node:crypto";

function hashOf(id: string): bigint {
  return createHash("sha1").update(id).digest().readBigUInt64BE(0);
}

export class MatchedIds {
  private hashes = new BigUint64Array(1024);
  private count = 0;
  private sealed = false;

  /** Remembers `id` (before {@link seal}). */
  add(id: string): void {
    if (this.sealed) throw new Error("MatchedIds: add after seal");
    if (this.count === this.hashes.length) {
      const grown = new BigUint64Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[this.count++] = hashOf(id);
  }

  /** Sorts what was added; afterwards only {@link has} is allowed. */
  seal(): void {
    this.hashes = this.hashes.slice(0, this.count).sort();
    this.sealed = true;
  }

  /** Whether `id` was added (see the class comment for the collision odds). */
  has(id: string): boolean {
    if (!this.sealed) throw new Error("MatchedIds: has before seal");
    const hash = hashOf(id);
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.hashes[middle]!;
      if (value === hash) return true;
      if (value < hash) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the hash array. */
  get bytes(): number {
    return this.hashes.byteLength;
  }
}
