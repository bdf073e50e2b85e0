/** Database errors are logged with the statement's shape, never its values. */
import { describe, expect, it } from "vitest";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import { loggableError, loggableMessage, redactSqlLiterals } from "../../src/db/database-errors.js";

describe("redactSqlLiterals", () => {
  it("replaces string, hex and number literals; keeps keywords and identifiers", () => {
    expect(
      redactSqlLiterals(
        "insert into `payment` (`id`, `subject`, `amount`, `raw_body`) values ('01J', 'it\\'s \\\\ \"tea\" 🍵', 1999, X'00ff') - Duplicate entry 'm-ORDER'X' for key 'payment_merchant_order_uq'",
      ),
    ).toBe("insert into `payment` (`id`, `subject`, `amount`, `raw_body`) values (?, ?, ?, X?) - Duplicate entry ? for key ?");
  });

  it("understands doubled quotes and hides everything after an unterminated one", () => {
    expect(redactSqlLiterals("select 'a''b' as x2, col_1 from t where v = 'never closed secret")).toBe(
      "select ? as x2, col_1 from t where v = ?",
    );
  });

  it("hides MySQL's unescaped values in conversion messages", () => {
    expect(redactSqlLiterals("Incorrect string value: '\\xF0\\x9F' sec'ret' for column `db`.`payment`.`subject` at row 1")).toBe(
      "Incorrect string value: ? for column `db`.`payment`.`subject` at row ?",
    );
  });
});

describe("loggableError", () => {
  const driverError = Object.assign(new Error("insert into `t` values ('secret-value') - Duplicate entry 'secret-value' for key 'uq'"), {
    code: "ER_DUP_ENTRY",
    errno: 1062,
    sqlState: "23000",
    sqlMessage: "Duplicate entry 'secret-value' for key 'uq'",
    sql: "insert into `t` values ('secret-value')",
  });

  it("keeps class, codes and stack frames, drops every value", () => {
    const logged = loggableError(new UniqueConstraintViolationException(driverError));
    const text = JSON.stringify(logged);
    expect(text).not.toContain("secret-value");
    expect(logged).toMatchObject({
      name: "UniqueConstraintViolationException",
      code: "ER_DUP_ENTRY",
      errno: 1062,
      sqlState: "23000",
      message: "insert into `t` values (?) - Duplicate entry ? for key ?",
    });
    expect(loggableMessage(driverError)).not.toContain("secret-value");
  });

  it("redacts a database error that is the cause of another", () => {
    const wrapped = new Error("could not apply", { cause: driverError });
    expect(JSON.stringify(loggableError(wrapped))).not.toContain("secret-value");
  });

  it("leaves other errors alone", () => {
    const plain = new Error("channel said no: 'x'");
    expect(loggableError(plain)).toBe(plain);
  });
});
