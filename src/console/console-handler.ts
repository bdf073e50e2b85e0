/**
 * Serves the admin console: `GET /console` (the page) and its two assets under `/console/`. The
 * browser code (web/) is bundled with esbuild: by `npm run build` into console.js next to the
 * compiled handler (a production start then needs neither esbuild nor the TypeScript sources), or,
 * running from source, once on the first request. The repository keeps no built bundle and no
 * internet or CDN is involved.
 *
 * Only the fixed set of names in {@link ASSETS} is served: a request for anything else under
 * /console/ (including `..`, encoded slashes or dots, backslashes) is 404 without touching the file
 * system. Every answer carries a strict Content-Security-Policy (scripts and styles from this origin
 * only, no inline script, no framing), `X-Content-Type-Options: nosniff` and `no-store`.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CONSOLE_CSS, CONSOLE_HTML } from "./console-page.js";

/** The bundle is about 250 KiB; a build far past this means something unintended was pulled in. */
export const MAX_BUNDLE_BYTES = 2 * 1024 * 1024;

/** The console's URL path prefix. */
export const CONSOLE_PATH = "/console";

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "cross-origin-opener-policy": "same-origin",
});

type Asset = { contentType: string; body: () => Promise<Buffer> };

let bundle: Promise<Buffer> | undefined;

/**
 * The browser entry point's TypeScript source: next to this module when it runs from source, or in
 * the repository's src/ when it runs compiled from dist/src/console/ (the browser code has its own
 * tsconfig and is not compiled by `npm run build`; esbuild reads the source either way).
 */
function entryPoint(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "web", "console-app.ts"), join(here, "..", "..", "..", "src", "console", "web", "console-app.ts")];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`console sources not found (looked for ${candidates.join(", ")})`);
  return found;
}

/** Bundles the browser code; refused when the result is over `maxBytes`. */
export async function buildConsoleBundle(maxBytes: number = MAX_BUNDLE_BYTES): Promise<Buffer> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [entryPoint()],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  const code = Buffer.from(result.outputFiles[0]!.contents);
  if (code.length > maxBytes) throw new Error(`console bundle is ${code.length} bytes, over ${maxBytes}`);
  return code;
}

/** Where `npm run build` writes the bundle: beside the compiled handler (dist/src/console/console.js). */
const PREBUILT_BUNDLE = join(dirname(fileURLToPath(import.meta.url)), "console.js");

/**
 * The console's script: the prebuilt bundle when there is one, else built once per process; a
 * failed build is tried again on the next request.
 */
function consoleBundle(): Promise<Buffer> {
  bundle ??= (existsSync(PREBUILT_BUNDLE) ? readFile(PREBUILT_BUNDLE) : buildConsoleBundle()).catch((error) => {
    bundle = undefined;
    throw error;
  });
  return bundle;
}

const ASSETS: ReadonlyMap<string, Asset> = new Map([
  [CONSOLE_PATH, { contentType: "text/html; charset=utf-8", body: async () => Buffer.from(CONSOLE_HTML) }],
  [`${CONSOLE_PATH}/`, { contentType: "text/html; charset=utf-8", body: async () => Buffer.from(CONSOLE_HTML) }],
  [`${CONSOLE_PATH}/console.css`, { contentType: "text/css; charset=utf-8", body: async () => Buffer.from(CONSOLE_CSS) }],
  [`${CONSOLE_PATH}/console.js`, { contentType: "text/javascript; charset=utf-8", body: consoleBundle }],
]);

function answer(res: ServerResponse, status: number, contentType: string, body: Buffer | string, head: boolean): void {
  res.writeHead(status, { ...CONSOLE_HEADERS, "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

/**
 * Answers `req` when `path` (the URL without its query) is the console or under it, and resolves
 * with true; resolves with false for any other path, leaving `res` untouched.
 */
export async function serveConsole(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  if (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`)) return false;
  const head = req.method === "HEAD";
  if (req.method !== "GET" && !head) {
    res.setHeader("allow", "GET, HEAD");
    answer(res, 405, "text/plain; charset=utf-8", "method not allowed", head);
    return true;
  }
  const asset = ASSETS.get(path);
  if (!asset) {
    answer(res, 404, "text/plain; charset=utf-8", "not found", head);
    return true;
  }
  answer(res, 200, asset.contentType, await asset.body(), head);
  return true;
}
