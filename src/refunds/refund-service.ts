/**
 * Refunds for merchants. Accepting a refund reserves its amount on the payment with one guarded
 * UPDATE (`refunded + pending + amount <= paid`), so concurrent refunds can never exceed what
 * was paid, and books it in the ledger in the same transaction; then the channel is asked. The
 * refund finishes now, or later by callback or query (refund-outcome.ts).
 */
import { type ChannelName, type ChannelRefundRequest, ChannelRejectedError } from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { isDuplicateKey, type Session, type UnitOfWork } from "../db/unit-of-work.js";
import { ConflictError, NotFoundError, PreconditionError, Violations } from "../errors.js";
import { refundObject } from "../events/event-objects.js";
import { refundedFee } from "../fees/fee-calculator.js";
import { checkLookupId, checkPrintable } from "../input-text.js";
import { findFeeRule } from "../fees/fee-rules.js";
import { newId, newTradeNo } from "../ids.js";
import { accounts, postEntry } from "../ledger/ledger.js";
import type { PaymentRow } from "../payments/payment-entity.js";
import { pageRequest, toPage } from "../pagination.js";
import { callbackUrl, tradeRef } from "../payments/payment-service.js";
import { isPaid, REFUNDABLE } from "../payments/payment-status.js";
import { findMerchantPayment, reloadPayment, reserveRefundAmount } from "../payments/payment-store.js";
import { recordPaymentEvent } from "../payments/payment-transitions.js";
import { firstQueryAt } from "../payments/query-schedule.js";
import type { RefundRow } from "./refund-entity.js";
import { applyRefundStatus, REFUND_DEADLOCK_ATTEMPTS } from "./refund-outcome.js";
import { REFUND_HOLDS_AMOUNT } from "./refund-status.js";
import {
  findByMerchantRefundNo,
  findMerchantRefund,
  insertRefund,
  listRefundRows,
  type RefundLookup,
  refundAmountsInStatus,
  reloadRefund,
} from "./refund-store.js";

export type { RefundLookup } from "./refund-store.js";

export interface RefundInput {
  paymentId: string;
  merchantRefundNo: string;
  amount: bigint;
  reason: string;
}

export interface ListRefundsFilter {
  paymentId?: string;
  pageSize: number;
  pageToken: string;
}

const REFUND_NO_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The reason is stored and sent to the channel: bounded, and free of control characters. */
const MAX_REFUND_REASON_CHARS = 256;

function validate(input: RefundInput): void {
  const v = new Violations();
  checkLookupId(v, "payment_id", input.paymentId);
  if (!REFUND_NO_PATTERN.test(input.merchantRefundNo) && checkPrintable(v, "merchant_refund_no", input.merchantRefundNo)) {
    v.add("merchant_refund_no", "INVALID_FORMAT", "must be 1-64 characters of A-Z a-z 0-9 _ -");
  }
  if (input.amount <= 0n) v.add("amount", "NOT_POSITIVE", "must be at least 1 minor unit");
  if (input.reason.length > MAX_REFUND_REASON_CHARS) {
    v.add("reason", "TOO_LONG", `must be at most ${MAX_REFUND_REASON_CHARS} characters`);
  } else checkPrintable(v, "reason", input.reason);
  v.throwIfAny();
}

export function channelRefundRequest(payment: PaymentRow, refund: RefundRow, publicBaseUrl: string): ChannelRefundRequest {
  return {
    trade: tradeRef(payment),
    refundNo: refund.refundNo,
    channelRefundNo: refund.channelRefundNo,
    amountMinor: refund.amount,
    reason: refund.reason || undefined,
    notifyUrl: callbackUrl(publicBaseUrl, refund.channel as ChannelName),
  };
}

export function createRefundService(deps: { uow: UnitOfWork; channels: ChannelRegistry; publicBaseUrl: string }) {
  const { uow } = deps;
  /** Reserves the amount, inserts the refund and books it, all or nothing. */
  async function accept(session: Session, payment: PaymentRow, input: RefundInput): Promise<RefundRow> {
    const rule = await findFeeRule(session, payment.merchantId, payment.channel, payment.currency);
    return uow.transaction(session, async (tx) => {
      const now = new Date();
      if (!(await reserveRefundAmount(tx, payment.id, input.amount, REFUNDABLE, now))) {
        const current = await reloadPayment(tx, payment.id);
        // A fully refunded payment has nothing left to refund: the same answer however the race went.
        if (!isPaid(current.status)) {
          throw new PreconditionError("INVALID_TRANSITION", `a ${current.status} payment cannot be refunded`);
        }
        const refundable = current.amount - current.refundedAmount - current.refundPendingAmount;
        throw new PreconditionError(
          "REFUND_EXCEEDS_PAYMENT",
          `refund of ${input.amount} exceeds the refundable ${refundable} ${current.currency}`,
        );
      }
      // Fee already returned by earlier refunds that have not failed.
      const earlier = await refundAmountsInStatus(tx, payment.id, REFUND_HOLDS_AMOUNT);
      const feeReturned = refundedFee({
        policy: rule.refundFeePolicy,
        amount: payment.amount,
        fee: payment.fee,
        refundAmount: input.amount,
        refundedBefore: earlier.reduce((sum, r) => sum + r.amount, 0n),
        feeReturnedBefore: earlier.reduce((sum, r) => sum + r.feeReturned, 0n),
      });
      const refund: RefundRow = {
        id: newId(now.getTime()),
        refundNo: newTradeNo("R", now),
        paymentId: payment.id,
        merchantId: payment.merchantId,
        merchantRefundNo: input.merchantRefundNo,
        channel: payment.channel,
        amount: input.amount,
        currency: payment.currency,
        status: "PROCESSING",
        reason: input.reason,
        channelRefundNo: null,
        feeReturned,
        failureReason: null,
        createdAt: now,
        updatedAt: now,
        succeededAt: null,
        nextQueryAt: firstQueryAt(now, new Date(now.getTime() + 24 * 3600_000)),
        queryAttempts: 0,
        sweepLeaseUntil: null,
      };
      await insertRefund(tx, refund);
      await recordPaymentEvent(tx, payment, "refund.created", { refund: refundObject(refund) }, now);
      await postEntry(tx, {
        ref: `refund_accepted:${refund.id}`,
        entryType: "refund_accepted",
        merchantId: payment.merchantId,
        paymentId: payment.id,
        refundId: refund.id,
        currency: payment.currency,
        postings: [
          { account: accounts.merchantPending(payment.merchantId), amount: input.amount - feeReturned },
          { account: accounts.feeRevenue, amount: feeReturned },
          { account: accounts.refundClearing(payment.channel), amount: -input.amount },
        ],
      });
      return refund;
    }, { deadlockAttempts: REFUND_DEADLOCK_ATTEMPTS });
  }

  async function findRefund(session: Session, merchantId: string, lookup: RefundLookup): Promise<RefundRow> {
    const refund = await findMerchantRefund(session, merchantId, lookup);
    if (!refund) throw new NotFoundError("REFUND_NOT_FOUND", "refund not found");
    return refund;
  }

  /** Sends the refund to the channel and applies an immediate answer. */
  async function sendToChannel(session: Session, payment: PaymentRow, refund: RefundRow): Promise<RefundRow> {
    const channel = deps.channels.get(refund.channel as ChannelName);
    try {
      const status = await channel.refund(channelRefundRequest(payment, refund, deps.publicBaseUrl));
      // The outcome's statements are all row statements: a bare row transaction, as callbacks.
      await uow.rowTransaction(session, (tx) => applyRefundStatus(tx, refund, status, "refund_call"), {
        deadlockAttempts: REFUND_DEADLOCK_ATTEMPTS,
      });
    } catch (error) {
      if (error instanceof ChannelRejectedError) {
        await uow.rowTransaction(
          session,
          (tx) => applyRefundStatus(tx, refund, { state: "failed", detail: `${error.code}: ${error.message}` }, "refund_rejected"),
          { deadlockAttempts: REFUND_DEADLOCK_ATTEMPTS },
        );
      } else {
        // Unreachable, unknown or unverifiable: stays PROCESSING; the sweeper asks again (refunds are idempotent
        // at every channel by our refund number).
        return refund;
      }
    }
    return (await reloadRefund(session, refund.id))!;
  }

  return {
    async refundPayment(session: Session, merchantId: string, input: RefundInput): Promise<RefundRow> {
      validate(input);
      const payment = await findMerchantPayment(session, merchantId, { paymentId: input.paymentId });
      const previous = await findByMerchantRefundNo(session, payment.id, input.merchantRefundNo);
      if (previous) return sameOrConflict(previous, input);
      let refund: RefundRow;
      try {
        refund = await accept(session, payment, input);
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        // A concurrent request with the same refund number won; answer as its retry.
        const winner = await findRefund(session, merchantId, { paymentId: payment.id, merchantRefundNo: input.merchantRefundNo });
        return sameOrConflict(winner, input);
      }
      // What the channel needs of the payment (numbers, amount) does not change once it succeeded.
      return sendToChannel(session, payment, refund);
    },

    getRefund: findRefund,

    async listRefunds(session: Session, merchantId: string, filter: ListRefundsFilter) {
      const page = pageRequest(filter, [filter.paymentId ?? ""]);
      const { items, nextPageToken } = toPage(await listRefundRows(session, merchantId, filter.paymentId, page), page);
      return { refunds: items, nextPageToken };
    },

    sendToChannel,
  };
}

function sameOrConflict(previous: RefundRow, input: RefundInput): RefundRow {
  if (previous.amount !== input.amount) {
    throw new ConflictError(
      "IDEMPOTENCY_KEY_REUSED",
      `merchant_refund_no ${input.merchantRefundNo} was used for a refund of ${previous.amount}, not ${input.amount}`,
    );
  }
  return previous;
}

export type RefundService = ReturnType<typeof createRefundService>;
