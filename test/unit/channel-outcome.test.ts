/**
 * The payment outcome decision as a pure function: what a channel's word (callback, query, close)
 * means for a payment as we read it, before anything is written.
 */
import { describe, expect, it } from "vitest";
import type { ChannelTradeState } from "../../src/channels/channel.js";
import { decideChannelOutcome } from "../../src/payments/channel-outcome.js";
import { canTransition, type PaymentStatus } from "../../src/payments/payment-status.js";

const STATUSES: PaymentStatus[] = ["PENDING", "SUCCEEDED", "FAILED", "CLOSED", "REFUNDED"];
const STATES: ChannelTradeState[] = ["pending", "succeeded", "failed", "closed", "not_found"];

function payment(status: PaymentStatus, amount = 8888n, currency = "CNY") {
  return { status, amount, currency };
}

describe("decideChannelOutcome", () => {
  it("turns a pending payment's success, failure and close at the channel into that transition", () => {
    expect(decideChannelOutcome(payment("PENDING"), { state: "succeeded", amountMinor: 8888n, currency: "CNY" })).toEqual({
      kind: "transition",
      from: "PENDING",
      to: "SUCCEEDED",
    });
    expect(decideChannelOutcome(payment("PENDING"), { state: "failed" })).toEqual({ kind: "transition", from: "PENDING", to: "FAILED" });
    expect(decideChannelOutcome(payment("PENDING"), { state: "closed" })).toEqual({ kind: "transition", from: "PENDING", to: "CLOSED" });
  });

  it("changes nothing while the channel says pending or does not know the trade", () => {
    for (const status of STATUSES) {
      expect(decideChannelOutcome(payment(status), { state: "pending" })).toEqual({ kind: "unchanged" });
      expect(decideChannelOutcome(payment(status), { state: "not_found" })).toEqual({ kind: "unchanged" });
    }
  });

  it("records money for a CLOSED payment as paid after close, never as a transition", () => {
    expect(decideChannelOutcome(payment("CLOSED"), { state: "succeeded", amountMinor: 8888n })).toEqual({ kind: "paid_after_close" });
    expect(decideChannelOutcome(payment("CLOSED"), { state: "succeeded" })).toEqual({ kind: "paid_after_close" });
    expect(decideChannelOutcome(payment("CLOSED"), { state: "failed" })).toEqual({ kind: "unchanged" });
    expect(decideChannelOutcome(payment("CLOSED"), { state: "closed" })).toEqual({ kind: "unchanged" });
  });

  it("lets a card success follow a decline (FAILED → SUCCEEDED), and nothing re-open a final payment", () => {
    expect(decideChannelOutcome(payment("FAILED"), { state: "succeeded" })).toEqual({ kind: "transition", from: "FAILED", to: "SUCCEEDED" });
    expect(decideChannelOutcome(payment("FAILED"), { state: "closed" })).toEqual({ kind: "unchanged" });
    for (const state of STATES) {
      expect(decideChannelOutcome(payment("REFUNDED"), { state })).toEqual({ kind: "unchanged" });
    }
    expect(decideChannelOutcome(payment("SUCCEEDED"), { state: "failed" })).toEqual({ kind: "unchanged" });
    expect(decideChannelOutcome(payment("SUCCEEDED"), { state: "closed" })).toEqual({ kind: "unchanged" });
  });

  it("answers a repeated report of the state the payment is already in with unchanged: callbacks and queries apply once", () => {
    expect(decideChannelOutcome(payment("SUCCEEDED"), { state: "succeeded", amountMinor: 8888n })).toEqual({ kind: "unchanged" });
    expect(decideChannelOutcome(payment("FAILED"), { state: "failed" })).toEqual({ kind: "unchanged" });
  });

  it("refuses a differing amount or currency before looking at the state, whatever the payment's status", () => {
    for (const status of STATUSES) {
      for (const state of STATES) {
        expect(decideChannelOutcome(payment(status), { state, amountMinor: 8889n })).toEqual({ kind: "amount_mismatch" });
        expect(decideChannelOutcome(payment(status), { state, amountMinor: 8888n, currency: "USD" })).toEqual({ kind: "amount_mismatch" });
      }
    }
    // A channel that states no amount (a close answer, say) is not a mismatch; one without a currency is judged by amount.
    expect(decideChannelOutcome(payment("PENDING"), { state: "succeeded", amountMinor: 8888n })).toMatchObject({ kind: "transition" });
    expect(decideChannelOutcome(payment("PENDING"), { state: "closed" })).toMatchObject({ kind: "transition" });
  });

  it("compares amounts above 2^53 exactly", () => {
    const big = 2n ** 53n + 1n;
    expect(decideChannelOutcome(payment("PENDING", big, "JPY"), { state: "succeeded", amountMinor: big, currency: "JPY" })).toMatchObject({
      kind: "transition",
    });
    expect(decideChannelOutcome(payment("PENDING", big, "JPY"), { state: "succeeded", amountMinor: big - 1n, currency: "JPY" })).toEqual({
      kind: "amount_mismatch",
    });
  });

  it("only ever decides transitions the payment transition table allows", () => {
    for (const status of STATUSES) {
      for (const state of STATES) {
        const decision = decideChannelOutcome(payment(status), { state });
        if (decision.kind === "transition") expect(canTransition(decision.from, decision.to)).toBe(true);
      }
    }
  });
});
