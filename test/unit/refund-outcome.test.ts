/**
 * The refund outcome decision as a pure function: what a channel's word about a refund (refund
 * answer, refund query, refund callback) means for the refund as we read it, before anything is
 * written; and when the refunds make the payment REFUNDED.
 */
import { describe, expect, it } from "vitest";
import type { ChannelRefundState } from "../../src/channels/channel.js";
import { decideRefundOutcome, isFullyRefunded } from "../../src/refunds/refund-outcome.js";
import { canTransitionRefund, type RefundStatus } from "../../src/refunds/refund-status.js";

const STATUSES: RefundStatus[] = ["PROCESSING", "SUCCEEDED", "FAILED"];
const STATES: ChannelRefundState[] = ["processing", "succeeded", "failed", "not_found"];

function refund(status: RefundStatus, channelRefundNo: string | null = null) {
  return { status, channelRefundNo };
}

describe("decideRefundOutcome", () => {
  it("finishes a PROCESSING refund as the channel says: succeeded or failed", () => {
    expect(decideRefundOutcome(refund("PROCESSING"), { state: "succeeded" })).toEqual({ kind: "transition", from: "PROCESSING", to: "SUCCEEDED" });
    expect(decideRefundOutcome(refund("PROCESSING"), { state: "failed" })).toEqual({ kind: "transition", from: "PROCESSING", to: "FAILED" });
  });

  it("leaves a refund the channel is still working on, or does not know, as it is", () => {
    for (const status of STATUSES) {
      expect(decideRefundOutcome(refund(status, "re_1"), { state: "processing" })).toEqual({ kind: "unchanged", recordChannelRefundNo: false });
      expect(decideRefundOutcome(refund(status, "re_1"), { state: "not_found" })).toEqual({ kind: "unchanged", recordChannelRefundNo: false });
    }
  });

  it("keeps the channel's refund number from a processing answer when we had none, and never overwrites one", () => {
    expect(decideRefundOutcome(refund("PROCESSING"), { state: "processing", channelRefundNo: "re_1" })).toEqual({
      kind: "unchanged",
      recordChannelRefundNo: true,
    });
    expect(decideRefundOutcome(refund("PROCESSING", "re_1"), { state: "processing", channelRefundNo: "re_2" })).toEqual({
      kind: "unchanged",
      recordChannelRefundNo: false,
    });
    expect(decideRefundOutcome(refund("PROCESSING"), { state: "processing" })).toEqual({ kind: "unchanged", recordChannelRefundNo: false });
  });

  it("never changes a final refund: a late or repeated report is applied once, and a failed refund is not revived", () => {
    for (const status of ["SUCCEEDED", "FAILED"] as const) {
      for (const state of STATES) {
        expect(decideRefundOutcome(refund(status, "re_1"), { state, channelRefundNo: "re_9" })).toEqual({ kind: "unchanged", recordChannelRefundNo: false });
      }
    }
  });

  it("only ever decides transitions the refund transition table allows", () => {
    for (const status of STATUSES) {
      for (const state of STATES) {
        const decision = decideRefundOutcome(refund(status), { state });
        if (decision.kind === "transition") expect(canTransitionRefund(decision.from, decision.to)).toBe(true);
      }
    }
  });
});

describe("isFullyRefunded", () => {
  it("is true only when the refunds add up to the whole payment", () => {
    expect(isFullyRefunded({ amount: 8888n, refundedAmount: 8888n })).toBe(true);
    expect(isFullyRefunded({ amount: 8888n, refundedAmount: 8887n })).toBe(false);
    expect(isFullyRefunded({ amount: 8888n, refundedAmount: 0n })).toBe(false);
    expect(isFullyRefunded({ amount: 2n ** 53n + 1n, refundedAmount: 2n ** 53n })).toBe(false);
  });
});
