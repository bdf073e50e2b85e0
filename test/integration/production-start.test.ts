/**
 * The production start: `npm run build` compiles src/, gen/ and scripts/ to JavaScript and bundles
 * the admin console's browser code, and the
 * service runs as `node dist/src/main.js` with no TypeScript compiler or loader at run time (only
 * plain `node`, no `--import`), from any working directory. The compiled check-ledger script runs
 * the same way. Built here into a scratch directory under node_modules/.cache (inside the
 * repository, so the compiled files resolve the installed packages as dist/ would).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { freePort, SIMULATOR_CONTROL_TOKEN, testKeys } from "../support/test-app.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const ADMIN = "production-start-admin-token-0123";

let outDir: string;
let database: TestDatabase;
let simulator: Simulator;
let service: ChildProcess | undefined;
let output = "";

beforeAll(async () => {
  outDir = join(ROOT, "node_modules", ".cache", `production-start-${process.pid}`);
  // The build script's own configuration, only the output directory moved.
  await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json"), "--outDir", outDir], {
    cwd: ROOT,
  });
  // The second half of `npm run build`: the console's browser bundle beside the compiled handler.
  await run(process.execPath, ["--import", "tsx", join(ROOT, "scripts/build-console.ts"), outDir], { cwd: ROOT });
  database = await createTestDatabase();
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: SIMULATOR_CONTROL_TOKEN });
}, 240_000);

afterAll(async () => {
  if (service && service.exitCode === null) {
    service.kill("SIGKILL");
  }
  await database?.drop();
  await simulator?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

async function waitForHealth(httpPort: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (service?.exitCode !== null) throw new Error(`the compiled service exited:\n${output}`);
    if (await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the compiled service was not healthy in 30 s:\n${output}`);
}

describe("node dist/src/main.js", () => {
  it("builds JavaScript for the service and the scripts", () => {
    for (const file of ["src/console/console.js", "src/main.js", "src/simulator/main.js", "scripts/check-ledger.js", "scripts/settle.js", "scripts/reconcile.js"]) {
      expect(existsSync(join(outDir, file)), file).toBe(true);
    }
  });

  it("serves RPCs from compiled JavaScript alone, started from another directory", async () => {
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    service = spawn(process.execPath, [join(outDir, "src/main.js")], {
      cwd: mkdtempSync(join(tmpdir(), "payments-prod-cwd-")),
      env: {
        PATH: process.env.PATH ?? "",
        DATABASE_URL: database.url,
        ADMIN_TOKEN: ADMIN,
        DATA_ENCRYPTION_KEY: "production-start-data-key-0123456789abcdef",
        DATA_DIR: mkdtempSync(join(tmpdir(), "payments-prod-data-")),
        GRPC_PORT: String(grpcPort),
        HTTP_PORT: String(httpPort),
        // One real channel configuration (pointed at the simulator as an acquirer would be).
        CARD_BASE_URL: `${simulator.url}/card`,
        CARD_SECRET_KEY: testKeys().card.secretKey,
        CARD_WEBHOOK_SECRET: testKeys().card.webhookSecret,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    service.stdout!.on("data", (chunk) => (output += chunk));
    service.stderr!.on("data", (chunk) => (output += chunk));
    await waitForHealth(httpPort);

    const call = (method: string, body: unknown) =>
      fetch(`http://127.0.0.1:${httpPort}/payments.v1.MerchantService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify(body),
      });
    const created = await call("CreateMerchant", { name: "Compiled Shop", notifyUrl: "https://shop.example/notify" });
    expect(created.status, await created.clone().text()).toBe(200);
    const { merchant } = (await created.json()) as { merchant: { id: string } };
    const read = await call("GetMerchant", { merchantId: merchant.id });
    expect(((await read.json()) as { merchant: { name: string } }).merchant.name).toBe("Compiled Shop");
    // Migrations ran from the compiled files: the schema is complete.
    expect(output).toContain("ready");
    // The console's script is the prebuilt bundle, served as it was written.
    const script = await fetch(`http://127.0.0.1:${httpPort}/console/console.js`);
    expect(script.status).toBe(200);
    expect(Buffer.from(await script.arrayBuffer()).equals(readFileSync(join(outDir, "src/console/console.js")))).toBe(true);

    service.kill("SIGTERM");
    const code = await new Promise<number | null>((resolveExit) => service!.once("exit", (exitCode) => resolveExit(exitCode)));
    expect(code, output).toBe(0);
  });

  it("runs the compiled check-ledger script", async () => {
    const { stdout } = await run(process.execPath, [join(outDir, "scripts/check-ledger.js")], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: database.url },
    });
    expect(stdout).toContain("ledger OK");
  });
});
