/**
 * Download links the channel sides hand out (bill files), kept until they expire. Every link lives
 * equally long, so the map's insertion order is its expiry order: new links evict from the front
 * what has expired, and the oldest beyond `max` links, so a flood of bill calls cannot grow it.
 */
export interface ExpiringLink {
  expiresAt: number;
}

/** Keeps `link` under `token`, evicting expired links and the oldest beyond `max`. */
export function keepLink<T extends ExpiringLink>(links: Map<string, T>, token: string, link: T, max: number): void {
  const now = Date.now();
  for (const [old, kept] of links) {
    if (kept.expiresAt >= now && links.size < max) break;
    links.delete(old);
  }
  links.set(token, link);
}
