/** The payout state machine, the outcome decision, and the payee rules (hint, bounds, sealed size): no database. */
import { describe, expect, it } from "vitest";
import { Violations } from "../../src/errors.js";
import { SecretBox } from "../../src/merchants/credentials.js";
import { accountHint, checkPayeeInput, MAX_ACCOUNT_CHARS, MAX_NAME_CHARS, openPayee, sealPayee } from "../../src/payouts/payee.js";
import {
  decidePayoutOutcome,
  MAX_CHANNEL_PAYOUT_NO_CHARS,
  MAX_FAILURE_REASON_CHARS,
  storableChannelPayoutNo,
  storedFailureReason,
} from "../../src/payouts/payout-outcome.js";
import { allowedPayoutSources, canTransitionPayout, isFinalPayout, type PayoutStatus } from "../../src/payouts/payout-status.js";

const STATUSES: PayoutStatus[] = ["PENDING", "PROCESSING", "PAID", "FAILED"];

describe("payout transitions", () => {
  it("allows PENDING → PROCESSING | PAID | FAILED and PROCESSING → PAID | FAILED, nothing out of a final status", () => {
    const allowed = STATUSES.flatMap((from) => STATUSES.filter((to) => canTransitionPayout(from, to)).map((to) => `${from}->${to}`));
    expect(allowed).toEqual(["PENDING->PROCESSING", "PENDING->PAID", "PENDING->FAILED", "PROCESSING->PAID", "PROCESSING->FAILED"]);
    expect(allowedPayoutSources("PAID")).toEqual(["PENDING", "PROCESSING"]);
    expect(allowedPayoutSources("PROCESSING")).toEqual(["PENDING"]);
    expect(STATUSES.filter(isFinalPayout)).toEqual(["PAID", "FAILED"]);
  });

  it("decides from the channel's word: processing, paid and failed move an open payout; not_found and a final payout change nothing", () => {
    expect(decidePayoutOutcome({ status: "PENDING", channelPayoutNo: null }, { state: "processing", channelPayoutNo: "x" })).toEqual({
      kind: "transition",
      from: "PENDING",
      to: "PROCESSING",
    });
    expect(decidePayoutOutcome({ status: "PENDING", channelPayoutNo: null }, { state: "paid" })).toMatchObject({ kind: "transition", to: "PAID" });
    expect(decidePayoutOutcome({ status: "PROCESSING", channelPayoutNo: "x" }, { state: "failed" })).toMatchObject({ kind: "transition", to: "FAILED" });
    expect(decidePayoutOutcome({ status: "PROCESSING", channelPayoutNo: null }, { state: "processing", channelPayoutNo: "x" })).toEqual({
      kind: "unchanged",
      recordChannelPayoutNo: true,
    });
    expect(decidePayoutOutcome({ status: "PENDING", channelPayoutNo: null }, { state: "not_found" })).toEqual({ kind: "unchanged", recordChannelPayoutNo: false });
    expect(decidePayoutOutcome({ status: "PAID", channelPayoutNo: null }, { state: "failed", channelPayoutNo: "x" })).toEqual({
      kind: "unchanged",
      recordChannelPayoutNo: false,
    });
    expect(decidePayoutOutcome({ status: "FAILED", channelPayoutNo: null }, { state: "paid" })).toEqual({ kind: "unchanged", recordChannelPayoutNo: false });
  });
});

describe("what is kept of the channel's answer", () => {
  it("keeps a failure reason as one line of at most 255 characters, never cutting a character in two", () => {
    expect(storedFailureReason("ACCOUNT_FROZEN: \u8d26\u6237\u51bb\u7ed3\r\n\u001b[31m")).toBe("ACCOUNT_FROZEN: \u8d26\u6237\u51bb\u7ed3 [31m");
    expect(storedFailureReason(undefined)).toBe("failed at the channel");
    const long = storedFailureReason("\u{1F4B8}".repeat(1_000));
    expect(Array.from(long)).toHaveLength(MAX_FAILURE_REASON_CHARS);
    expect(long).toBe("\u{1F4B8}".repeat(MAX_FAILURE_REASON_CHARS));
  });

  it("keeps a channel transfer id only when it fits its column", () => {
    expect(storableChannelPayoutNo("po_1QabcDEF")).toBe("po_1QabcDEF");
    expect(storableChannelPayoutNo("x".repeat(MAX_CHANNEL_PAYOUT_NO_CHARS))).toHaveLength(MAX_CHANNEL_PAYOUT_NO_CHARS);
    expect(storableChannelPayoutNo("x".repeat(MAX_CHANNEL_PAYOUT_NO_CHARS + 1))).toBeUndefined();
    expect(storableChannelPayoutNo(undefined)).toBeUndefined();
    expect(decidePayoutOutcome({ status: "PROCESSING", channelPayoutNo: null }, { state: "processing", channelPayoutNo: "x".repeat(65) })).toEqual({
      kind: "unchanged",
      recordChannelPayoutNo: false,
    });
  });
});

describe("payee rules", () => {
  it("shows only the last four characters of an account, and nothing of a short one", () => {
    expect(accountHint("2088123456789012")).toBe("************9012");
    expect(accountHint("ba_1QpayoutTestAcct42")).toBe(`${"*".repeat(16)}ct42`);
    expect(accountHint(`${"a".repeat(100)}WXYZ`)).toBe(`${"*".repeat(16)}WXYZ`);
    expect(accountHint("abc1234")).toBe("*******");
    expect(accountHint("ab")).toBe("**");
  });

  it("bounds the account and the name, and wants a name for an Alipay login id", () => {
    const check = (payee: Parameters<typeof checkPayeeInput>[2], channel: Parameters<typeof checkPayeeInput>[1] = "alipay") => {
      const v = new Violations();
      checkPayeeInput(v, channel, payee);
      try {
        v.throwIfAny();
        return [];
      } catch (error) {
        return (error as { violations: Array<{ field: string; reason: string }> }).violations.map((x) => `${x.field}:${x.reason}`);
      }
    };
    expect(check({ type: "ALIPAY_USER_ID", account: "2088123456789012" })).toEqual([]);
    expect(check({ type: "ALIPAY_USER_ID", account: "x".repeat(MAX_ACCOUNT_CHARS) })).toEqual([]);
    expect(check({ type: "ALIPAY_USER_ID", account: "x".repeat(MAX_ACCOUNT_CHARS + 1) })).toEqual(["account:TOO_LONG"]);
    expect(check({ type: "ALIPAY_USER_ID", account: "2088", name: "n".repeat(MAX_NAME_CHARS + 1) })).toEqual(["name:TOO_LONG"]);
    expect(check({ type: "ALIPAY_USER_ID", account: " 2088" })).toEqual(["account:INVALID_FORMAT"]);
    expect(check({ type: "ALIPAY_LOGON_ID", account: "shop@example.com" })).toEqual(["name:REQUIRED"]);
    expect(check({ type: "WECHAT_OPENID", account: "o123" }, "card")).toEqual(["account_type:ACCOUNT_TYPE_NOT_FOR_CHANNEL"]);
    expect(check({ type: "BANK_ACCOUNT", account: "ba_x\u0000" }, "card")).toEqual(["account:CONTROL_CHARACTERS"]);
  });

  it("seals the longest payee into its 1024-character column and opens it back", () => {
    const box = new SecretBox("unit-test-key");
    // Three UTF-8 bytes per UTF-16 unit (more than a JSON-escaped quote's two): the largest sealed form there is.
    const payee = { type: "ALIPAY_LOGON_ID" as const, account: "\u9f8d".repeat(MAX_ACCOUNT_CHARS), name: "\u9f8d".repeat(MAX_NAME_CHARS) };
    const sealed = sealPayee(box, payee);
    expect(sealed.length).toBeLessThanOrEqual(1024);
    expect(sealed).not.toContain("\u9f8d");
    expect(openPayee(box, sealed)).toEqual(payee);
    expect(openPayee(box, sealPayee(box, { type: "BANK_ACCOUNT", account: "ba_123456" }))).toEqual({ type: "BANK_ACCOUNT", account: "ba_123456" });
  });
});
