/**
 * The README's copies of code merchants paste must not drift from what the tests run: its ```js block
 * of the webhook verification is examples/verify-webhook.mjs byte for byte (the file the webhook tests
 * verify real deliveries with), and its known signature vector is what the service's signer produces.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { signatureHeader } from "../../src/webhooks/webhook-signature.js";

const ROOT = resolve(import.meta.dirname, "../..");
const readme = readFileSync(resolve(ROOT, "README.md"), "utf8");

/** The contents of every fenced block of that language, without the fences. */
function fencedBlocks(markdown: string, language: string): string[] {
  const fence = new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, "gm");
  return [...markdown.matchAll(fence)].map((match) => match[1]!);
}

describe("README.md snippets", () => {
  it("has examples/verify-webhook.mjs verbatim in a js block", () => {
    const snippet = readFileSync(resolve(ROOT, "examples/verify-webhook.mjs"), "utf8");
    const blocks = fencedBlocks(readme, "js");
    expect(blocks.length).toBeGreaterThan(0);
    expect(blocks).toContain(snippet.endsWith("\n") ? snippet : `${snippet}\n`);
  });

  it("gives a signature vector that the service's signer produces", () => {
    const vector = /A known vector: secret `([^`]+)`, `t=(\d+)`, body\n`([^`]+)`\n→ `Payments-Signature: ([^`]+)`/.exec(readme);
    expect(vector, "the known vector paragraph of the Webhooks section").not.toBeNull();
    const [, secret, t, body, header] = vector!;
    expect(signatureHeader(Buffer.from(body!), [secret!], Number(t))).toBe(header);
  });
});
