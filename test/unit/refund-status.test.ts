import { describe, expect, it } from "vitest";
import { allowedRefundSources, canTransitionRefund, holdsAmount, type RefundStatus } from "../../src/refunds/refund-status.js";
import { isPaid, isRefundable } from "../../src/payments/payment-status.js";

const ALL: RefundStatus[] = ["PROCESSING", "SUCCEEDED", "FAILED"];

describe("refund transition table", () => {
  it("finishes a processing refund as succeeded or failed, and nothing else moves", () => {
    expect(ALL.filter((to) => canTransitionRefund("PROCESSING", to))).toEqual(["SUCCEEDED", "FAILED"]);
    for (const to of ALL) {
      expect(canTransitionRefund("SUCCEEDED", to)).toBe(false);
      expect(canTransitionRefund("FAILED", to)).toBe(false);
    }
  });

  it("derives the guarded UPDATE's allowed sources from the same table", () => {
    expect(allowedRefundSources("SUCCEEDED")).toEqual(["PROCESSING"]);
    expect(allowedRefundSources("FAILED")).toEqual(["PROCESSING"]);
    expect(allowedRefundSources("PROCESSING")).toEqual([]);
  });

  it("counts the amount of every refund that has not failed against the payment", () => {
    expect(ALL.filter(holdsAmount)).toEqual(["PROCESSING", "SUCCEEDED"]);
  });
});

describe("payment refund rules", () => {
  it("accepts refunds of succeeded payments only, and counts refunded ones as paid", () => {
    expect(["PENDING", "SUCCEEDED", "FAILED", "CLOSED", "REFUNDED"].filter(isRefundable)).toEqual(["SUCCEEDED"]);
    expect(["PENDING", "SUCCEEDED", "FAILED", "CLOSED", "REFUNDED"].filter(isPaid)).toEqual(["SUCCEEDED", "REFUNDED"]);
  });
});
