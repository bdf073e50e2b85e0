/**
 * Refunds for merchants. Accepting a refund reserves its amount on the payment with one guarded
 * UPDATE (`refunded + pending + amount <= paid`), so concurrent refunds can never exceed what
 * was paid, and books it in the ledger in the same transaction; then the channel is asked. The
 * refund finishes now, or later by callback or query (refund-outcome.ts).
 */
import { DeadlockException, type QueryResult, UniqueConstraintViolationException } from "@mikro-orm/core";
import type { SqlEntityManager } from "@mikro-orm/knex";
import { type ChannelName, type ChannelRefundRequest, ChannelRejectedError } from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { ConflictError, NotFoundError, PreconditionError, ValidationError, Violations } from "../errors.js";
import { refundedFee } from "../fees/fee-calculator.js";
import { checkLookupId, checkPrintable } from "../input-text.js";
import { findFeeRule } from "../fees/fee-rules.js";
import { newId, newTradeNo } from "../ids.js";
import { accounts, postEntry } from "../ledger/ledger.js";
import type { PaymentRow } from "../payments/payment-entity.js";
import { findMerchantPayment, reloadPayment } from "../payments/payment-repository.js";
import { callbackUrl, tradeRef } from "../payments/payment-service.js";
import { firstQueryAt } from "../payments/query-schedule.js";
import { Refund, type RefundRow } from "./refund-entity.js";
import { applyRefundStatus } from "./refund-outcome.js";

export interface RefundInput {
  paymentId: string;
  merchantRefundNo: string;
  amount: bigint;
  reason: string;
}

export type RefundLookup = { refundId: string } | { paymentId: string; merchantRefundNo: string };

export interface ListRefundsFilter {
  paymentId?: string;
  pageSize: number;
  pageToken: string;
}

const REFUND_NO_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Attempts per transaction when the database rolls it back as a deadlock victim. */
const DEADLOCK_ATTEMPTS = 3;

/**
 * Runs `work` in a transaction, and again when the database chose it as a deadlock victim: refunds
 * of one payment lock its row and its status index entry, and MySQL may take the two in either
 * order (it reads by the status index when the table is small). The victim's work was rolled back.
 */
async function transactionalRetryingDeadlocks<T>(em: SqlEntityManager, work: (tx: SqlEntityManager) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await em.transactional(work);
    } catch (error) {
      if (!(error instanceof DeadlockException) || attempt >= DEADLOCK_ATTEMPTS) throw error;
    }
  }
}

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

export function createRefundService(deps: { channels: ChannelRegistry; publicBaseUrl: string }) {
  /** Reserves the amount, inserts the refund and books it, all or nothing. */
  async function accept(em: SqlEntityManager, payment: PaymentRow, input: RefundInput): Promise<RefundRow> {
    const rule = await findFeeRule(em, payment.merchantId, payment.channel, payment.currency);
    return transactionalRetryingDeadlocks(em, async (tx) => {
      const now = new Date();
      const reserved: QueryResult = await tx.execute(
        `update payment set refund_pending_amount = refund_pending_amount + ?, updated_at = ?
         where id = ? and status = 'SUCCEEDED' and refunded_amount + refund_pending_amount + ? <= amount`,
        [input.amount, now, payment.id, input.amount],
        "run",
      );
      if (reserved.affectedRows !== 1) {
        const current = await reloadPayment(tx, payment.id);
        // A fully refunded payment has nothing left to refund: the same answer however the race went.
        if (current.status !== "SUCCEEDED" && current.status !== "REFUNDED") {
          throw new PreconditionError("INVALID_TRANSITION", `a ${current.status} payment cannot be refunded`);
        }
        const refundable = current.amount - current.refundedAmount - current.refundPendingAmount;
        throw new PreconditionError(
          "REFUND_EXCEEDS_PAYMENT",
          `refund of ${input.amount} exceeds the refundable ${refundable} ${current.currency}`,
        );
      }
      // Fee already returned by earlier refunds that have not failed.
      const earlier = await tx.find(
        Refund,
        { paymentId: payment.id, status: { $ne: "FAILED" } },
        { disableIdentityMap: true, fields: ["feeReturned", "amount"] },
      );
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
      await tx.insert(Refund, refund);
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
    });
  }

  async function findRefund(em: SqlEntityManager, merchantId: string, lookup: RefundLookup): Promise<RefundRow> {
    const where =
      "refundId" in lookup
        ? { id: lookup.refundId, merchantId }
        : { paymentId: lookup.paymentId, merchantRefundNo: lookup.merchantRefundNo, merchantId };
    const refund = await em.findOne(Refund, where, { disableIdentityMap: true });
    if (!refund) throw new NotFoundError("REFUND_NOT_FOUND", "refund not found");
    return refund;
  }

  /** Sends the refund to the channel and applies an immediate answer. */
  async function sendToChannel(em: SqlEntityManager, payment: PaymentRow, refund: RefundRow): Promise<RefundRow> {
    const channel = deps.channels.get(refund.channel as ChannelName);
    try {
      const status = await channel.refund(channelRefundRequest(payment, refund, deps.publicBaseUrl));
      await transactionalRetryingDeadlocks(em, (tx) => applyRefundStatus(tx, refund, status, "refund_call"));
    } catch (error) {
      if (error instanceof ChannelRejectedError) {
        await transactionalRetryingDeadlocks(em, (tx) =>
          applyRefundStatus(tx, refund, { state: "failed", detail: `${error.code}: ${error.message}` }, "refund_rejected"),
        );
      } else {
        // Unreachable, unknown or unverifiable: stays PROCESSING; the sweeper asks again (refunds are idempotent
        // at every channel by our refund number).
        return refund;
      }
    }
    return (await em.findOne(Refund, { id: refund.id }, { disableIdentityMap: true }))!;
  }

  return {
    async refundPayment(em: SqlEntityManager, merchantId: string, input: RefundInput): Promise<RefundRow> {
      validate(input);
      const payment = await findMerchantPayment(em, merchantId, { paymentId: input.paymentId });
      const previous = await em.findOne(
        Refund,
        { paymentId: payment.id, merchantRefundNo: input.merchantRefundNo },
        { disableIdentityMap: true },
      );
      if (previous) return sameOrConflict(previous, input);
      let refund: RefundRow;
      try {
        refund = await accept(em, payment, input);
      } catch (error) {
        if (!(error instanceof UniqueConstraintViolationException)) throw error;
        // A concurrent request with the same refund number won; answer as its retry.
        const winner = await findRefund(em, merchantId, { paymentId: payment.id, merchantRefundNo: input.merchantRefundNo });
        return sameOrConflict(winner, input);
      }
      // What the channel needs of the payment (numbers, amount) does not change once it succeeded.
      return sendToChannel(em, payment, refund);
    },

    getRefund: findRefund,

    async listRefunds(em: SqlEntityManager, merchantId: string, filter: ListRefundsFilter) {
      const pageSize = filter.pageSize === 0 ? 20 : filter.pageSize;
      if (pageSize < 1 || pageSize > 100) {
        throw new ValidationError([{ field: "page_size", reason: "OUT_OF_RANGE", description: "must be 0-100" }]);
      }
      const where: Record<string, unknown> = { merchantId };
      if (filter.paymentId) where.paymentId = filter.paymentId;
      if (filter.pageToken !== "") {
        if (!/^[0-9A-Z]{26}$/.test(filter.pageToken)) {
          throw new ValidationError([{ field: "page_token", reason: "INVALID_PAGE_TOKEN", description: "is not a token from this listing" }]);
        }
        where.id = { $lt: filter.pageToken };
      }
      const rows = await em.find(Refund, where, { orderBy: { id: "desc" }, limit: pageSize + 1, disableIdentityMap: true });
      const page = rows.slice(0, pageSize);
      return { refunds: page, nextPageToken: rows.length > pageSize ? page[page.length - 1]!.id : "" };
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
