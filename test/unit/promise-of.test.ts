import { describe, expect, it } from "vitest";
import { promiseOf } from "../../src/promise-of.js";

describe("promiseOf", () => {
  it("turns a synchronous throw into a rejection", async () => {
    const thrown = new Error("before any promise");
    await expect(
      promiseOf(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
  });

  it("returns a promise as it is, and wraps a plain value", async () => {
    const promise = Promise.resolve(1);
    expect(promiseOf(() => promise)).toBe(promise);
    await expect(promiseOf(() => 2)).resolves.toBe(2);
  });
});
