/**
 * scripts/check-proto-compat.sh, which CI runs against the previous commit: a change to proto/ that
 * would break generated clients fails it, an additive change passes, and a breaking change that
 * comes with a new package version directory is allowed. Run on a throwaway clone of this repository.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
let clone: string;

async function git(...args: string[]): Promise<void> {
  await exec("git", ["-c", "user.name=test", "-c", "user.email=test@example.com", ...args], { cwd: clone });
}

/** The script's exit code and output in the clone, against its previous commit. */
async function check(): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await exec("bash", ["scripts/check-proto-compat.sh"], { cwd: clone });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

function edit(path: string, change: (text: string) => string): void {
  const file = join(clone, path);
  writeFileSync(file, change(readFileSync(file, "utf8")));
}

beforeAll(async () => {
  clone = mkdtempSync(join(tmpdir(), "proto-compat-"));
  await exec("git", ["clone", "--quiet", ROOT, clone]);
  // The working tree's script (it may not be committed yet when this runs during development).
  cpSync(join(ROOT, "scripts/check-proto-compat.sh"), join(clone, "scripts/check-proto-compat.sh"));
  symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"));
  await git("commit", "--quiet", "--allow-empty", "-am", "base");
}, 60_000);
afterAll(() => rmSync(clone, { recursive: true, force: true }));

describe("check-proto-compat.sh", () => {
  it("passes an additive change", async () => {
    edit("proto/payments/v1/event.proto", (text) => text.replace("  google.protobuf.Struct data = 6;\n}", "  google.protobuf.Struct data = 6;\n  // Added.\n  string note = 7;\n}"));
    await git("commit", "--quiet", "-am", "add a field");
    const result = await check();
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain("no breaking change");
  }, 60_000);

  it("fails a removed field", async () => {
    edit("proto/payments/v1/event.proto", (text) => text.replace("  // Added.\n  string note = 7;\n", ""));
    await git("commit", "--quiet", "-am", "remove a field");
    const result = await check();
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/Previously present field "7" with name "note" on message "Event" was deleted/);
  }, 60_000);

  it("allows a breaking change that comes with a new package version", async () => {
    cpSync(join(clone, "proto/payments/v1"), join(clone, "proto/payments/v2"), { recursive: true });
    edit("proto/payments/v1/event.proto", (text) => text.replace("  string object_id = 4;\n", ""));
    await git("add", "proto");
    await git("commit", "--quiet", "-am", "v2");
    const result = await check();
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain("new package version(s) v2");
  }, 60_000);
});
