import { type Connection, createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

describe("test database support", () => {
  let database: TestDatabase;
  let connection: Connection;

  beforeAll(async () => {
    database = await createTestDatabase();
    connection = await createConnection({ uri: database.url, supportBigNumbers: true, bigNumberStrings: true });
  });

  afterAll(async () => {
    await connection?.end();
    await database?.drop();
  });

  it("gives each file its own empty utf8mb4 database", async () => {
    const [rows] = await connection.query(
      "SELECT DATABASE() AS name, @@character_set_database AS charset, COUNT(*) AS tables FROM information_schema.tables WHERE table_schema = DATABASE()",
    );
    expect(rows).toEqual([{ name: database.name, charset: "utf8mb4", tables: "0" }]);
  });

  it("stores and reads back a BIGINT above 2^53 exactly", async () => {
    const amountMinor = 12345678901234567n;
    expect(amountMinor > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    await connection.query("CREATE TABLE amounts (id VARCHAR(26) PRIMARY KEY, amount_minor BIGINT NOT NULL)");
    await connection.execute("INSERT INTO amounts (id, amount_minor) VALUES (?, ?)", ["a", amountMinor.toString()]);

    const [rows] = await connection.query("SELECT amount_minor, amount_minor + 1 AS next FROM amounts WHERE id = 'a'");
    expect(rows).toEqual([{ amount_minor: "12345678901234567", next: "12345678901234568" }]);
  });

  it("drops the database", async () => {
    const other = await createTestDatabase();
    await other.drop();
    const [rows] = await connection.query("SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = ?", [
      other.name,
    ]);
    expect(rows).toEqual([{ n: "0" }]);
  });
});
