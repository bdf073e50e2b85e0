import { afterEach, describe, expect, it, vi } from "vitest";
import { keepLink } from "../../src/simulator/download-links.js";

describe("simulator download links", () => {
  afterEach(() => vi.useRealTimers());

  it("keeps at most max links, forgetting the oldest", () => {
    const links = new Map<string, { expiresAt: number }>();
    const expiresAt = Date.now() + 60_000;
    for (let i = 0; i < 10; i++) keepLink(links, `t${i}`, { expiresAt }, 3);
    expect([...links.keys()]).toEqual(["t7", "t8", "t9"]);
  });

  it("forgets expired links when a new one is kept", () => {
    vi.useFakeTimers();
    const links = new Map<string, { expiresAt: number }>();
    keepLink(links, "old", { expiresAt: Date.now() + 1_000 }, 100);
    keepLink(links, "live", { expiresAt: Date.now() + 5_000 }, 100);
    vi.advanceTimersByTime(2_000);
    keepLink(links, "new", { expiresAt: Date.now() + 1_000 }, 100);
    expect([...links.keys()]).toEqual(["live", "new"]);
  });
});
