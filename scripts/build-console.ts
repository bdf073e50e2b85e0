/**
 * Writes the admin console's browser bundle beside the compiled console handler, so a production
 * start (`node dist/src/main.js`) serves it without esbuild or the TypeScript sources. Run by
 * `npm run build` after tsc.
 *
 *   tsx scripts/build-console.ts [outDir]    (default dist)
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildConsoleBundle } from "../src/console/console-handler.js";

const outDir = process.argv[2] ?? "dist";
const target = join(outDir, "src", "console", "console.js");
const code = await buildConsoleBundle();
writeFileSync(target, code);
console.log(`console bundle: ${target} (${code.length} bytes)`);
