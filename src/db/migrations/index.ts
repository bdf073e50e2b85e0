/** Versioned MySQL migrations, oldest first. New files are made with `npm run migration:create -- <name>`. */
import type { MigrationObject } from "@mikro-orm/core";
import { Migration20261122011910 } from "./migration-20261122011910-initial.js";
import { Migration20261122023729 } from "./migration-20261122023729-balance-slots.js";
import { Migration20261202031500 } from "./migration-20261202031500-final-channel-queries.js";
import { Migration20261202040000 } from "./migration-20261202040000-binary-keys-callback-log.js";
import { Migration20261202060000 } from "./migration-20261202060000-reconciliation.js";
import { Migration20261202060100 } from "./migration-20261202060100-settlement.js";
import { Migration20261202060200 } from "./migration-20261202060200-payouts.js";
import { Migration20261202070000 } from "./migration-20261202070000-payment-succeeded-at.js";
import { Migration20261202081713 } from "./migration-20261202081713-events.js";
import { Migration20261202090000 } from "./migration-20261202090000-webhooks.js";
import { Migration20261202114644 } from "./migration-20261202114644-channel-calls.js";
import { Migration20261203080000 } from "./migration-20261203080000-event-trace-parent.js";

export const MIGRATIONS: MigrationObject[] = [
  { name: "Migration20261122011910", class: Migration20261122011910 },
  { name: "Migration20261122023729", class: Migration20261122023729 },
  { name: "Migration20261202031500", class: Migration20261202031500 },
  { name: "Migration20261202040000", class: Migration20261202040000 },
  { name: "Migration20261202060000", class: Migration20261202060000 },
  { name: "Migration20261202060100", class: Migration20261202060100 },
  { name: "Migration20261202060200", class: Migration20261202060200 },
  { name: "Migration20261202070000", class: Migration20261202070000 },
  { name: "Migration20261202081713", class: Migration20261202081713 },
  { name: "Migration20261202090000", class: Migration20261202090000 },
  { name: "Migration20261202114644", class: Migration20261202114644 },
  { name: "Migration20261203080000", class: Migration20261203080000 },
];
