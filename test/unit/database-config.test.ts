/**
 * The configuration of read-only scripts (`loadDatabaseConfig`, used by `npm run check-ledger`):
 * the database settings alone, while the service's `loadConfig` still requires its secrets.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadDatabaseConfig } from "../../src/config.js";

const DATABASE_URL = "mysql://checker:pw@db.internal:3306/payments";

describe("loadDatabaseConfig", () => {
  it("needs only DATABASE_URL: no ADMIN_TOKEN, DATA_ENCRYPTION_KEY, channel or TLS settings", () => {
    expect(loadDatabaseConfig({ DATABASE_URL, HOST: "0.0.0.0" })).toEqual({ databaseUrl: DATABASE_URL, dataDir: "./data" });
    expect(loadDatabaseConfig({ DATA_DIR: "/var/lib/payments" })).toEqual({ databaseUrl: undefined, dataDir: "/var/lib/payments" });
  });

  it("refuses a DATABASE_URL that is not MySQL, naming the variable", () => {
    expect(() => loadDatabaseConfig({ DATABASE_URL: "postgres://localhost/payments" })).toThrow(
      new ConfigError("DATABASE_URL", "must start with mysql: or mariadb://"),
    );
  });

  it("leaves the service's configuration as strict as before", () => {
    expect(() => loadConfig({ DATABASE_URL, SIMULATED_CHANNELS: "all" })).toThrow("ADMIN_TOKEN: is required when DATABASE_URL is set");
    expect(() => loadConfig({ DATABASE_URL, SIMULATED_CHANNELS: "all", ADMIN_TOKEN: "a".repeat(16) })).toThrow(
      "DATA_ENCRYPTION_KEY: is required when DATABASE_URL is set",
    );
  });
});
