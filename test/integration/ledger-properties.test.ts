/**
 * Property: whatever happens to payments and refunds, in any order and concurrently, the ledger
 * invariants hold (checkLedger) and refunds never exceed payments. Runs the domain services on
 * real MySQL; the channel is a scripted in-process stand-in whose answers the test chooses, so
 * thousands of steps stay fast (the wire formats are covered by the channel tests).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  ChannelRefundRequest,
  ChannelRefundStatus,
  ChannelTradeStatus,
  PaymentChannel,
} from "../../src/channels/channel.js";
import { emptyBillFile } from "../../src/channels/bill-file.js";
import { ChannelRejectedError, ChannelUnavailableError } from "../../src/channels/channel.js";
import { ChannelRegistry } from "../../src/channels/registry.js";
import { type Database, openDatabase } from "../../src/db/database.js";
import { createUnitOfWork, type UnitOfWork } from "../../src/db/unit-of-work.js";
import { PreconditionError } from "../../src/errors.js";
import { setFeeRule } from "../../src/fees/fee-rules.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { merchantBalance } from "../../src/ledger/ledger.js";
import { SecretBox } from "../../src/merchants/credentials.js";
import { createMerchantService } from "../../src/merchants/merchant-service.js";
import { applyChannelStatus } from "../../src/payments/channel-outcome.js";
import type { PaymentRow } from "../../src/payments/payment-entity.js";
import { createPaymentService, type PaymentService } from "../../src/payments/payment-service.js";
import { reloadPayment } from "../../src/payments/payment-store.js";
import { Refund, type RefundRow } from "../../src/refunds/refund-entity.js";
import { applyRefundStatus, REFUND_DEADLOCK_ATTEMPTS } from "../../src/refunds/refund-outcome.js";
import { createRefundService, type RefundService } from "../../src/refunds/refund-service.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

type RefundAnswer = "succeeded" | "processing" | "failed" | "rejected" | "unavailable";

/** A card-like channel whose refund answers are scripted per refund number. */
function scriptedChannel(answers: Map<string, RefundAnswer>): PaymentChannel {
  let next: RefundAnswer = "succeeded";
  const channel: PaymentChannel & { nextRefund(answer: RefundAnswer): void } = {
    name: "card",
    nextRefund(answer) {
      next = answer;
    },
    async createPayment(request) {
      return { channelTradeNo: `pi_${request.paymentNo}`, action: { kind: "client_secret", value: "secret" } };
    },
    async queryPayment(): Promise<ChannelTradeStatus> {
      return { state: "pending" };
    },
    async closePayment() {},
    async refund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      const answer = answers.get(request.refundNo) ?? next;
      answers.set(request.refundNo, answer);
      if (answer === "rejected") throw new ChannelRejectedError("card", "insufficient_funds", "declined");
      if (answer === "unavailable") throw new ChannelUnavailableError("card", "503");
      return { state: answer === "failed" ? "failed" : answer, channelRefundNo: `re_${request.refundNo}` };
    },
    async queryRefund(request: ChannelRefundRequest): Promise<ChannelRefundStatus> {
      return { state: "processing", channelRefundNo: `re_${request.refundNo}` };
    },
    parseCallback() {
      throw new Error("not used");
    },
    acceptAnswer: () => ({ status: 200, contentType: "text/plain", body: "" }),
    rejectAnswer: () => ({ status: 400, contentType: "text/plain", body: "" }),
    async fetchBill(billDate) {
      return emptyBillFile("card", billDate);
    },
    async openBillFile(_path, billDate) {
      return emptyBillFile("card", billDate);
    },
    payouts: {
      validatePayee: () => undefined,
      sendPayout: () => Promise.reject(new Error("not used")),
      queryPayout: () => Promise.reject(new Error("not used")),
    },
  };
  return channel;
}

let testDb: TestDatabase;
let db: Database;
const answers = new Map<string, RefundAnswer>();
const channel = scriptedChannel(answers) as PaymentChannel & { nextRefund(answer: RefundAnswer): void };
const channels = new ChannelRegistry([channel]);
const merchants = createMerchantService(new SecretBox("property-test-key-0123456789abcdef"));
let uow: UnitOfWork;
let payments: PaymentService;
let refunds: RefundService;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url, dataDir: "./data" });
  uow = createUnitOfWork(db);
  payments = createPaymentService({ uow, channels, publicBaseUrl: "http://127.0.0.1:1" });
  refunds = createRefundService({ uow, channels, publicBaseUrl: "http://127.0.0.1:1" });
});
afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

const CURRENCIES = ["CNY", "JPY", "KWD"] as const;

const step = fc.oneof(
  fc.record({ kind: fc.constant("refund" as const), share: fc.integer({ min: 1, max: 100 }), answer: fc.constantFrom<RefundAnswer>("succeeded", "processing", "failed", "rejected", "unavailable") }),
  fc.record({ kind: fc.constant("burst" as const), count: fc.integer({ min: 2, max: 50 }), unit: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("finish" as const), outcome: fc.constantFrom("succeeded" as const, "failed" as const), twice: fc.boolean() }),
  fc.record({ kind: fc.constant("retry_same_number" as const) }),
);

const scenario = fc.record({
  currency: fc.constantFrom(...CURRENCIES),
  amount: fc.bigInt({ min: 1n, max: 200n }),
  rateBps: fc.integer({ min: 0, max: 10_000 }),
  fixedFee: fc.bigInt({ min: 0n, max: 30n }),
  minFee: fc.bigInt({ min: 0n, max: 50n }),
  policy: fc.constantFrom("RETAIN" as const, "PRORATE" as const),
  outcome: fc.constantFrom("succeeded" as const, "failed" as const, "closed" as const, "pending" as const),
  steps: fc.array(step, { maxLength: 8 }),
});

let seq = 0;

describe("ledger invariants", () => {
  it("hold for random payments, fees, refunds, failures and concurrent refund bursts", async () => {
    const em = uow.session();
    const merchant = (await merchants.createMerchant(em, { name: "Property Shop", notifyUrl: "" })).merchant;
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const em = uow.session();
        await setFeeRule(em, {
          merchantId: merchant.id,
          channel: "card",
          currency: s.currency,
          rateBps: s.rateBps,
          fixedFee: s.fixedFee,
          minFee: s.minFee,
          refundFeePolicy: s.policy,
        });
        const view = await payments.createPayment(em, merchant, {
          merchantOrderNo: `prop-${++seq}`,
          currency: s.currency,
          items: [],
          amount: s.amount,
          channel: "card",
          subject: "property",
          expireSeconds: 0,
          notifyUrl: "",
          metadata: {},
          paymentMethod: "pm_card_visa",
        });
        let payment: PaymentRow = view.payment;
        if (s.outcome !== "pending") {
          await uow.transaction(em, (tx) =>
            applyChannelStatus(tx, payment, { state: s.outcome, channelTradeNo: `pi_${payment.paymentNo}` }, "property"),
          );
          payment = await reloadPayment(em, payment.id);
        }
        const created: RefundRow[] = [];
        let refundSeq = 0;
        for (const action of s.steps) {
          if (action.kind === "refund") {
            channel.nextRefund(action.answer);
            const amount = (payment.amount * BigInt(action.share) + 99n) / 100n;
            try {
              created.push(
                await refunds.refundPayment(em, merchant.id, {
                  paymentId: payment.id,
                  merchantRefundNo: `r${++refundSeq}`,
                  amount,
                  reason: "",
                }),
              );
            } catch (error) {
              if (!(error instanceof PreconditionError)) throw error;
            }
          } else if (action.kind === "burst") {
            channel.nextRefund("succeeded");
            const results = await Promise.allSettled(
              Array.from({ length: action.count }, (_, i) =>
                refunds.refundPayment(uow.session(), merchant.id, {
                  paymentId: payment.id,
                  merchantRefundNo: `b${refundSeq}-${i}`,
                  amount: BigInt(action.unit),
                  reason: "",
                }),
              ),
            );
            refundSeq++;
            for (const result of results) {
              if (result.status === "fulfilled") created.push(result.value);
              else if (!(result.reason instanceof PreconditionError)) throw result.reason;
            }
          } else if (action.kind === "finish") {
            // A late callback or query for a refund, possibly delivered twice.
            const processing = await db.em().find(Refund, { paymentId: payment.id, status: "PROCESSING" });
            for (const refund of processing) {
              const times = action.twice ? 2 : 1;
              for (let i = 0; i < times; i++) {
                await uow.rowTransaction(em, (tx) => applyRefundStatus(tx, refund, { state: action.outcome }, "property"), {
                  deadlockAttempts: REFUND_DEADLOCK_ATTEMPTS,
                });
              }
            }
          } else if (created.length > 0) {
            // Same merchant refund number and amount again: must return the same refund.
            const first = created[0]!;
            const again = await refunds.refundPayment(em, merchant.id, {
              paymentId: payment.id,
              merchantRefundNo: first.merchantRefundNo,
              amount: first.amount,
              reason: "",
            });
            expect(again.id).toBe(first.id);
          }
        }
        const after = await reloadPayment(em, payment.id);
        expect(after.refundedAmount + after.refundPendingAmount).toBeLessThanOrEqual(after.amount);
        if (after.refundedAmount === after.amount && after.amount > 0n && s.outcome === "succeeded") {
          expect(after.status).toBe("REFUNDED");
        }
        const check = await checkLedger(em);
        expect(check.violations).toEqual([]);
      }),
      { numRuns: 60 },
    );
    const balance = await merchantBalance(uow.session(), merchant.id, "CNY");
    expect(typeof balance.pending).toBe("bigint");
  }, 180_000);

  it("keep 50 concurrent refunds of one payment within the paid amount", async () => {
    const em = uow.session();
    const merchant = (await merchants.createMerchant(em, { name: "Burst Shop", notifyUrl: "" })).merchant;
    channel.nextRefund("succeeded");
    const view = await payments.createPayment(em, merchant, {
      merchantOrderNo: `burst-${++seq}`,
      currency: "CNY",
      items: [],
      amount: 30n,
      channel: "card",
      subject: "burst",
      expireSeconds: 0,
      notifyUrl: "",
      metadata: {},
      paymentMethod: "pm_card_visa",
    });
    await uow.transaction(em, (tx) => applyChannelStatus(tx, view.payment, { state: "succeeded" }, "test"));
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        refunds.refundPayment(uow.session(), merchant.id, {
          paymentId: view.payment.id,
          merchantRefundNo: `c${i}`,
          amount: 1n,
          reason: "",
        }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) => r.status === "rejected");
    expect(ok).toHaveLength(30);
    for (const r of refused) expect((r as PromiseRejectedResult).reason.reason).toBe("REFUND_EXCEEDS_PAYMENT");
    const after = await reloadPayment(em, view.payment.id);
    expect(after.refundedAmount).toBe(30n);
    expect(after.status).toBe("REFUNDED");
    expect((await checkLedger(em)).ok).toBe(true);
  });

  it("gives the refundable amount back when the channel rejects a refund", async () => {
    const em = uow.session();
    const merchant = (await merchants.createMerchant(em, { name: "Reject Shop", notifyUrl: "" })).merchant;
    const view = await payments.createPayment(em, merchant, {
      merchantOrderNo: `reject-${++seq}`,
      currency: "JPY",
      items: [],
      amount: 1000n,
      channel: "card",
      subject: "reject",
      expireSeconds: 0,
      notifyUrl: "",
      metadata: {},
      paymentMethod: "pm_card_visa",
    });
    await uow.transaction(em, (tx) => applyChannelStatus(tx, view.payment, { state: "succeeded" }, "test"));
    channel.nextRefund("rejected");
    const rejected = await refunds.refundPayment(em, merchant.id, {
      paymentId: view.payment.id,
      merchantRefundNo: "all",
      amount: 1000n,
      reason: "",
    });
    expect(rejected.status).toBe("FAILED");
    channel.nextRefund("succeeded");
    const retried = await refunds.refundPayment(em, merchant.id, {
      paymentId: view.payment.id,
      merchantRefundNo: "all-again",
      amount: 1000n,
      reason: "",
    });
    expect(retried.status).toBe("SUCCEEDED");
    expect((await reloadPayment(em, view.payment.id)).status).toBe("REFUNDED");
    expect((await checkLedger(em)).ok).toBe(true);
  });
});
