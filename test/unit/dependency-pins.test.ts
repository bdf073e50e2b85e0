/**
 * The gRPC adapter (src/rpc/grpc-server.ts) calls connect-es protocol internals that follow no
 * semantic versioning, so @connectrpc/connect and connect-node (and connect-web, the console's client) are pinned to one exact version,
 * the one installed; an upgrade is a deliberate edit that reruns the gRPC listener's tests.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const manifest = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  dependencies: Record<string, string>;
};

describe("connect-es dependencies", () => {
  for (const name of ["@connectrpc/connect", "@connectrpc/connect-node", "@connectrpc/connect-web"]) {
    it(`pins ${name} to the exact installed version`, () => {
      const installedManifest = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
      const installed = (JSON.parse(readFileSync(installedManifest, "utf8")) as { version: string }).version;
      expect(manifest.dependencies[name]).toMatch(/^\d+\.\d+\.\d+$/);
      expect(manifest.dependencies[name]).toBe(installed);
    });
  }
});
