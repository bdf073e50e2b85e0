/**
 * Verifies the ledger's invariants against the configured database (DATABASE_URL, or the
 * embedded one under DATA_DIR) and exits 1 listing the offending ids (2 for a bad setting). A
 * read-only check: it needs neither ADMIN_TOKEN nor DATA_ENCRYPTION_KEY nor any channel.
 *
 *   DATABASE_URL=mysql://user:pass@host:3306/payments npm run check-ledger
 */
import { ConfigError, type DatabaseConfig, loadDatabaseConfig } from "../src/config.js";
import { openDatabase } from "../src/db/database.js";
import { createUnitOfWork } from "../src/db/unit-of-work.js";
import { checkLedgerSnapshot } from "../src/ledger/ledger-check.js";

let config: Readonly<DatabaseConfig>;
try {
  config = loadDatabaseConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
try {
  const result = await checkLedgerSnapshot(createUnitOfWork(db));
  console.log(`checked ${result.entriesChecked} journal entries and ${result.paymentsChecked} payments`);
  for (const violation of result.violations) {
    console.log(`${violation.check} ${violation.subject}: ${violation.detail}`);
  }
  console.log(result.ok ? "ledger OK" : `ledger BROKEN: ${result.violations.length} violation(s)`);
  process.exitCode = result.ok ? 0 : 1;
} finally {
  await db.close();
}
