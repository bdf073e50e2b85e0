/** The console's browser bundle: built from the sources with esbuild, within its size bound, and refused past it. */
import { describe, expect, it } from "vitest";
import { buildConsoleBundle, MAX_BUNDLE_BYTES } from "../../src/console/console-handler.js";

describe("console bundle", () => {
  it("builds the browser code into one script within MAX_BUNDLE_BYTES", async () => {
    const bundle = await buildConsoleBundle();
    expect(bundle.length).toBeGreaterThan(10_000);
    expect(bundle.length).toBeLessThanOrEqual(MAX_BUNDLE_BYTES);
    // The console's calls and the QR encoder are inside: nothing is fetched from elsewhere at run time.
    // (Booleans, not toContain: a failure would print the whole 180 KB bundle.)
    const text = bundle.toString("utf8");
    expect(text.includes("getPaymentTimeline")).toBe(true);
    expect(text.includes("toCanvas")).toBe(true);
    expect(/https?:\/\/(cdn|unpkg|jsdelivr)/.test(text)).toBe(false);
  });

  it("refuses a bundle over the bound", async () => {
    await expect(buildConsoleBundle(1_000)).rejects.toThrow(/over 1000/);
  });
});
