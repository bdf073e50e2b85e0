/**
 * The row layer's text statements (`queryRows`, `queryChanges` in src/db/rows.ts), on both drivers:
 * inside a row transaction they run on its connection (they see its uncommitted rows, and a
 * rollback takes back what they changed); outside one, on a pooled connection; a list of any length
 * expands into its placeholders.
 */
import { afterAll, describe, expect, it } from "vitest";
import { inRowTransaction, insertRow, queryChanges, queryRows } from "../../src/db/rows.js";
import { Merchant } from "../../src/merchants/merchant-entity.js";
import { DRIVERS, driverDatabases } from "../support/driver-databases.js";
import { newMerchantRow } from "../support/merchant-rows.js";

describe("row text statements", () => {
  const databases = driverDatabases("payments-row-text-");
  afterAll(() => databases.close());

  for (const driver of DRIVERS) {
    it(`run on the row transaction's connection, and on a pooled one outside it (${driver})`, async () => {
      const db = await databases.open(driver);
      const em = db.em();
      const kept = newMerchantRow("kept");
      const dropped = newMerchantRow("dropped");

      await inRowTransaction(em, async (tx) => {
        await insertRow(tx, Merchant, kept);
        expect(await queryRows(tx, "select name from merchant where id = ?", [kept.id])).toEqual([{ name: "kept" }]);
        expect(await queryChanges(tx, "update merchant set notify_url = ? where id = ?", ["https://shop.example/a", kept.id])).toBe(1);
      });
      expect(await queryRows(em, "select notify_url from merchant where id = ?", [kept.id])).toEqual([{ notify_url: "https://shop.example/a" }]);

      await expect(
        inRowTransaction(em, async (tx) => {
          await insertRow(tx, Merchant, dropped);
          await queryChanges(tx, "update merchant set notify_url = ? where id = ?", ["https://shop.example/b", kept.id]);
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await queryRows(em, "select id from merchant where id = ?", [dropped.id])).toEqual([]);
      expect(await queryRows(em, "select notify_url from merchant where id = ?", [kept.id])).toEqual([{ notify_url: "https://shop.example/a" }]);
    });

    it(`expand a list of any length into its placeholders (${driver})`, async () => {
      const db = await databases.open(driver);
      const em = db.em();
      const rows = Array.from({ length: 7 }, (_, index) => newMerchantRow(`shop ${index}`));
      for (const row of rows) await insertRow(em, Merchant, row);
      for (const size of [1, 3, 7]) {
        const ids = rows.slice(0, size).map((row) => row.id);
        const found = await queryRows<{ id: string }>(em, `select id from merchant where id in (${ids.map(() => "?").join(", ")}) order by id`, ids);
        expect(found.map((row) => row.id)).toEqual([...ids].sort());
      }
      expect(await queryChanges(em, "update merchant set name = ? where id = ?", ["renamed", "no such id"])).toBe(0);
    });
  }
});
