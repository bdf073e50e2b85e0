/**
 * The persistence boundary (docs/architecture.md, "Persistence"): only the persistence layer —
 * `src/db/**`, the stores (`*-store.ts`) and the entity definitions (`*-entity.ts`,
 * `*-entities.ts`) — touches the ORM or the row layer. Every other module under src/ is checked:
 *  - no import of `@mikro-orm/*` (so no EntityManager type, no ORM exception class);
 *  - from src/db only the unit of work and the log-safe error helpers; the database itself only
 *    where the service is wired (app.ts, main.ts);
 *  - entity modules only with `import type` (row types, never the entity schemas queries need);
 *  - stores only from domain modules: the transport (src/rpc), the channel adapters and the
 *    simulator may import their types at most (the simulator's own in-memory trade-store.ts is
 *    not a database store).
 * Set PERSISTENCE_BOUNDARY_SRC to scan another checkout's src/ (how this test was shown to fail on
 * the code before the stores existed).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

interface ImportRef {
  specifier: string;
  typeOnly: boolean;
}

/** The imports and re-exports of a module's source text (static and dynamic). */
function importsOf(source: string): ImportRef[] {
  const refs: ImportRef[] = [];
  const text = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
  for (const match of text.matchAll(/\b(import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']([^"']+)["']/g)) {
    const clause = match[3]!.trim();
    const named = /^\{([\s\S]*)\}$/.exec(clause);
    const allTypes =
      named !== null &&
      named[1]!
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part !== "")
        .every((part) => part.startsWith("type "));
    refs.push({ specifier: match[4]!, typeOnly: match[2] !== undefined || allTypes });
  }
  for (const match of text.matchAll(/\bimport\s*["']([^"']+)["']/g)) refs.push({ specifier: match[1]!, typeOnly: false });
  for (const match of text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) refs.push({ specifier: match[1]!, typeOnly: false });
  return refs;
}

/** Paths relative to src/, with forward slashes. */
function isPersistenceLayer(path: string): boolean {
  return path.startsWith("db/") || isStore(path) || /-entit(y|ies)\.ts$/.test(path);
}

/** A store of the service (the simulator's in-memory `trade-store.ts` is not about the database). */
function isStore(path: string): boolean {
  return /-store\.ts$/.test(path) && !path.startsWith("simulator/");
}

const DB_MODULES_FOR_EVERYONE = new Set(["db/unit-of-work.ts", "db/database-errors.ts"]);
const WIRING = new Set(["app.ts", "main.ts"]);
const NOT_DOMAIN = /^(rpc|channels|simulator)\//;

/** What `path` (relative to src/) may not import, as messages; empty when it keeps to the boundary. */
function boundaryViolations(path: string, source: string): string[] {
  if (isPersistenceLayer(path)) return [];
  const problems: string[] = [];
  for (const ref of importsOf(source)) {
    if (ref.specifier.startsWith("@mikro-orm/")) {
      problems.push(`${path} imports ${ref.specifier}: only stores and src/db may use the ORM`);
      continue;
    }
    if (!ref.specifier.startsWith(".")) continue;
    const target = join(dirname(path), ref.specifier).replace(/\\/g, "/").replace(/\.js$/, ".ts");
    if (target.startsWith("db/") && !DB_MODULES_FOR_EVERYONE.has(target)) {
      if (target === "db/database.ts" && WIRING.has(path)) continue;
      problems.push(`${path} imports ${target}: outside the persistence layer use db/unit-of-work.ts`);
    } else if (/-entit(y|ies)\.ts$/.test(target) && !ref.typeOnly) {
      problems.push(`${path} imports the entity schemas of ${target}: only their row types (import type) may be used here`);
    } else if (isStore(target) && !ref.typeOnly && NOT_DOMAIN.test(path)) {
      problems.push(`${path} calls the store ${target}: the transport and the adapters go through domain services`);
    }
  }
  return problems;
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

describe("persistence boundary", () => {
  it("keeps every module outside the stores and src/db away from the ORM and the row layer", () => {
    const root = resolve(process.env.PERSISTENCE_BOUNDARY_SRC ?? "src");
    const files = sourceFiles(root);
    expect(files.length).toBeGreaterThan(50);
    const problems = files.flatMap((file) =>
      boundaryViolations(relative(root, file).replace(/\\/g, "/"), readFileSync(file, "utf8")),
    );
    expect(problems).toEqual([]);
  });

  it("catches each kind of crossing", () => {
    expect(boundaryViolations("payments/payment-service.ts", 'import type { SqlEntityManager } from "@mikro-orm/knex";')).toHaveLength(1);
    expect(boundaryViolations("refunds/refund-service.ts", 'import { UniqueConstraintViolationException } from "@mikro-orm/core";')).toHaveLength(1);
    expect(boundaryViolations("payments/payment-service.ts", 'import { insertRow } from "../db/rows.js";')).toHaveLength(1);
    expect(boundaryViolations("payments/payment-service.ts", 'import { entityManager } from "../db/store-access.js";')).toHaveLength(1);
    expect(boundaryViolations("rpc/payment-rpc.ts", 'import type { Database } from "../db/database.js";')).toHaveLength(1);
    expect(boundaryViolations("callbacks/callback-service.ts", 'import { Payment } from "../payments/payment-entity.js";')).toHaveLength(1);
    expect(
      boundaryViolations("callbacks/callback-service.ts", 'import { type PaymentRow, Payment } from "../payments/payment-entity.js";'),
    ).toHaveLength(1);
    expect(boundaryViolations("rpc/payment-rpc.ts", 'import { findMerchantPayment } from "../payments/payment-store.js";')).toHaveLength(1);
    expect(boundaryViolations("payments/x.ts", 'const m = await import("@mikro-orm/core");')).toHaveLength(1);
  });

  it("lets through what the layers allow", () => {
    expect(boundaryViolations("payments/payment-store.ts", 'import { Payment } from "./payment-entity.js";')).toEqual([]);
    expect(boundaryViolations("db/unit-of-work.ts", 'import { DeadlockException } from "@mikro-orm/core";')).toEqual([]);
    expect(boundaryViolations("payments/payment-service.ts", 'import type { PaymentRow } from "./payment-entity.js";')).toEqual([]);
    expect(
      boundaryViolations("rpc/mappers.ts", 'import { type MerchantRow, type MerchantId } from "../merchants/merchant-entity.js";'),
    ).toEqual([]);
    expect(boundaryViolations("payments/payment-service.ts", 'import { isDuplicateKey } from "../db/unit-of-work.js";')).toEqual([]);
    expect(boundaryViolations("refunds/refund-service.ts", 'import { reloadPayment } from "../payments/payment-store.js";')).toEqual([]);
    expect(boundaryViolations("app.ts", 'import { openDatabase } from "./db/database.js";')).toEqual([]);
    // A mention in a comment is not an import.
    expect(boundaryViolations("payments/x.ts", '// was: import { insertRow } from "../db/rows.js";')).toEqual([]);
  });
});
