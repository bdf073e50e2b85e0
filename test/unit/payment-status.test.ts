import { describe, expect, it } from "vitest";
import { allowedSources, canTransition, type PaymentStatus } from "../../src/payments/payment-status.js";

const ALL: PaymentStatus[] = ["PENDING", "SUCCEEDED", "FAILED", "CLOSED", "REFUNDED"];

describe("payment transition table", () => {
  it("lets a pending payment succeed, fail or close", () => {
    expect(canTransition("PENDING", "SUCCEEDED")).toBe(true);
    expect(canTransition("PENDING", "FAILED")).toBe(true);
    expect(canTransition("PENDING", "CLOSED")).toBe(true);
  });

  it("never re-opens a closed payment, even when money arrives later", () => {
    for (const to of ALL) expect(canTransition("CLOSED", to)).toBe(false);
  });

  it("only lets a succeeded payment become fully refunded", () => {
    expect(ALL.filter((to) => canTransition("SUCCEEDED", to))).toEqual(["REFUNDED"]);
    for (const to of ALL) expect(canTransition("REFUNDED", to)).toBe(false);
  });

  it("lets a failed card attempt be followed by a success reported by the channel", () => {
    expect(canTransition("FAILED", "SUCCEEDED")).toBe(true);
    expect(canTransition("FAILED", "CLOSED")).toBe(false);
  });

  it("derives the guarded UPDATE's allowed sources from the same table", () => {
    expect(allowedSources("SUCCEEDED").sort()).toEqual(["FAILED", "PENDING"]);
    expect(allowedSources("CLOSED")).toEqual(["PENDING"]);
    expect(allowedSources("PENDING")).toEqual([]);
    for (const to of ALL) for (const from of allowedSources(to)) expect(canTransition(from, to)).toBe(true);
  });
});
