/**
 * Channel callbacks: raw body → the adapter verifies the signature and account → cross-check
 * against the stored payment → inbox row unique per (channel, notification id) → transition and
 * effects in one transaction → the channel's exact acknowledgement. Anything invalid changes
 * nothing, is answered non-success and is kept in the callback log with the reason. What the log
 * keeps of each request is bounded (callback-record.ts): unverified ones an excerpt, verified ones
 * the body with secrets redacted.
 */
import {
  type CallbackAnswer,
  CallbackRejectedError,
  type CallbackRequest,
  type ChannelName,
  type PaymentChannel,
  type PaymentNotification,
  type PayoutNotification,
  type RefundNotification,
} from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { loggableMessage } from "../db/database-errors.js";
import { isDuplicateKey, type RowScope, type RowTx, type Session, type UnitOfWork } from "../db/unit-of-work.js";
import { newId } from "../ids.js";
import { applyChannelStatus } from "../payments/channel-outcome.js";
import { findByPaymentNo } from "../payments/payment-store.js";
import type { PayoutService } from "../payouts/payout-service.js";
import { PAYOUT_DEADLOCK_ATTEMPTS } from "../payouts/payout-outcome.js";
import { applyRefundStatus, REFUND_DEADLOCK_ATTEMPTS } from "../refunds/refund-outcome.js";
import { findByRefundNo } from "../refunds/refund-store.js";
import type { CallbackLogRow } from "./callback-entities.js";
import { insertInboxRow, insertLogRow } from "./callback-store.js";
import { storedBody, storedHeaders } from "./callback-record.js";

/** A stored reason: one line, no control characters, at most the column's 255 characters. */
function storedReason(reason: string | undefined): string | null {
  if (reason === undefined) return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  return reason.replace(/[\u0000-\u001f\u007f]+/g, " ").slice(0, 255);
}

export type CallbackVerdict =
  | "applied"
  | "duplicate"
  | "rejected"
  | "unknown_payment"
  | "mismatch"
  | "ignored"
  | "error";

interface LogDetails {
  /** The signature (and account) checked out: the body is the channel's, kept redacted; else an excerpt. */
  verified: boolean;
  reason?: string;
  notificationId?: string;
  paymentId?: string;
  effect?: string;
}

export interface CallbackResult {
  answer: CallbackAnswer;
  verdict: CallbackVerdict;
  reason?: string;
  /** For the log line and trace: what the callback was about and what it changed. */
  notificationId?: string;
  paymentId?: string;
  effect?: string;
}

export interface CallbackServiceOptions {
  uow: UnitOfWork;
  channels: ChannelRegistry;
  log?: (message: string) => void;
  /** Applies payout webhooks (card `payout.paid` / `payout.failed`). */
  payouts?: Pick<PayoutService, "applyNotification">;
}

export function createCallbackService(options: CallbackServiceOptions) {
  const log = options.log ?? (() => {});

  function logRow(
    channel: ChannelName,
    request: CallbackRequest,
    receivedAt: Date,
    verdict: CallbackVerdict,
    answer: CallbackAnswer,
    details: LogDetails,
  ): CallbackLogRow {
    const body = storedBody(channel, request.rawBody, details.verified);
    return {
      id: newId(receivedAt.getTime()),
      channel,
      receivedAt,
      headers: storedHeaders(request.headers, details.verified),
      rawBody: body.body,
      bodySha256: body.sha256,
      bodyBytes: body.bytes,
      bodyForm: body.form,
      verdict,
      reason: storedReason(details.reason),
      notificationId: details.notificationId ?? null,
      paymentId: details.paymentId ?? null,
      effect: details.effect ?? null,
      answerStatus: answer.status,
    };
  }

  /** Keeps a callback that changed nothing in the log (on its own, or in the open row transaction) and returns its answer. */
  async function record(
    scope: RowScope,
    channel: ChannelName,
    request: CallbackRequest,
    receivedAt: Date,
    verdict: CallbackVerdict,
    answer: CallbackAnswer,
    details: LogDetails,
  ): Promise<CallbackResult> {
    await insertLogRow(scope, logRow(channel, request, receivedAt, verdict, answer, details));
    return { answer, verdict, reason: details.reason, notificationId: details.notificationId, paymentId: details.paymentId, effect: details.effect };
  }

  /**
   * Inserts the inbox row and applies the change in one row transaction; a duplicate notification
   * id rolls it back and is answered as success (it was applied the first time).
   */
  async function applyOnce(
    deadlockAttempts: number,
    session: Session,
    channel: PaymentChannel,
    request: CallbackRequest,
    receivedAt: Date,
    notificationId: string,
    paymentId: string,
    apply: (tx: RowTx) => Promise<string>,
  ): Promise<CallbackResult> {
    const accept = channel.acceptAnswer();
    try {
      return await options.uow.rowTransaction(session, async (tx) => {
        await insertInboxRow(tx, {
          id: newId(receivedAt.getTime()),
          channel: channel.name,
          notificationId,
          paymentId,
          createdAt: receivedAt,
        });
        const effect = await apply(tx);
        await insertLogRow(
          tx,
          logRow(channel.name, request, receivedAt, "applied", accept, { verified: true, notificationId, paymentId, effect }),
        );
        return { answer: accept, verdict: "applied" as const, notificationId, paymentId, effect };
      }, { deadlockAttempts });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      return record(session, channel.name, request, receivedAt, "duplicate", accept, { verified: true, notificationId, paymentId });
    }
  }

  async function applyRefund(
    session: Session,
    channel: PaymentChannel,
    request: CallbackRequest,
    receivedAt: Date,
    notification: RefundNotification,
  ): Promise<CallbackResult> {
    const ids = { verified: true, notificationId: notification.notificationId };
    const finish = (verdict: CallbackVerdict, answer: CallbackAnswer, details: LogDetails) =>
      record(session, channel.name, request, receivedAt, verdict, answer, details);
    const refund = await findByRefundNo(session, channel.name, notification.refundNo);
    if (!refund) {
      const reason = `no refund ${notification.refundNo}`;
      return finish("unknown_payment", channel.rejectAnswer(reason), { ...ids, reason });
    }
    if (notification.amountMinor !== refund.amount) {
      const reason = `refund amount ${notification.amountMinor} != ${refund.amount}`;
      return finish("mismatch", channel.rejectAnswer("amount mismatch"), { ...ids, paymentId: refund.paymentId, reason });
    }
    // Every statement of a refund's outcome is a prepared row statement too. Unlike a payment's, it
    // also does atomic arithmetic on the payment row, which refunds of the same payment racing it
    // (callbacks, the refund call's answer, the sweeper, a new refund's reservation) can deadlock on.
    return applyOnce(REFUND_DEADLOCK_ATTEMPTS, session, channel, request, receivedAt, notification.notificationId, refund.paymentId, async (tx) => {
      const status = { state: notification.state, channelRefundNo: notification.channelRefundNo, detail: notification.channelStatus };
      const applied = await applyRefundStatus(tx, refund, status, `callback:${notification.channelStatus}`);
      return applied ? `refund ${refund.id} PROCESSING->${notification.state.toUpperCase()}` : "unchanged";
    });
  }

  async function applyPayment(
    session: Session,
    channel: PaymentChannel,
    request: CallbackRequest,
    receivedAt: Date,
    notification: PaymentNotification,
  ): Promise<CallbackResult> {
    const finish = (verdict: CallbackVerdict, answer: CallbackAnswer, details: LogDetails) =>
      record(session, channel.name, request, receivedAt, verdict, answer, details);
    const ids = { verified: true, notificationId: notification.notificationId };

    // The payment is read inside the row transaction, so one pooled connection serves the whole
    // callback. An unknown payment or a mismatch writes only its log row there (and commits it);
    // a duplicate notification id rolls everything back and is logged outside, as before.
    const accept = channel.acceptAnswer();
    try {
      return await options.uow.rowTransaction(session, async (tx) => {
        const payment = await findByPaymentNo(tx, channel.name, notification.paymentNo);
        const reject = (verdict: CallbackVerdict, answer: CallbackAnswer, details: LogDetails) =>
          record(tx, channel.name, request, receivedAt, verdict, answer, details);
        if (!payment) {
          // Maybe our create has not committed yet, or it is not ours: non-success, so it is re-sent.
          const reason = `no payment ${notification.paymentNo}`;
          return reject("unknown_payment", channel.rejectAnswer(reason), { ...ids, reason });
        }
        if (notification.amountMinor !== payment.amount || notification.currency !== payment.currency) {
          const reason = `amount ${notification.amountMinor} ${notification.currency} != ${payment.amount} ${payment.currency}`;
          log(`callback ${channel.name} ${notification.notificationId}: ${reason}`);
          return reject("mismatch", channel.rejectAnswer("amount mismatch"), { ...ids, paymentId: payment.id, reason });
        }
        await insertInboxRow(tx, {
          id: newId(receivedAt.getTime()),
          channel: channel.name,
          notificationId: notification.notificationId,
          paymentId: payment.id,
          createdAt: receivedAt,
        });
        const outcome = await applyChannelStatus(
          tx,
          payment,
          {
            state: notification.state,
            channelTradeNo: notification.channelTradeNo,
            amountMinor: notification.amountMinor,
            currency: notification.currency,
            paidAt: notification.paidAt,
            detail: notification.channelStatus,
          },
          `callback:${notification.channelStatus}`,
        );
        const effect = outcome.transition ?? outcome.effect;
        const details = { verified: true, notificationId: notification.notificationId, paymentId: payment.id, effect };
        await insertLogRow(tx, logRow(channel.name, request, receivedAt, "applied", accept, details));
        return { answer: accept, verdict: "applied" as const, notificationId: details.notificationId, paymentId: payment.id, effect };
      });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      // Only the inbox row can collide, so the payment exists; its id is read again for the log row.
      const payment = await findByPaymentNo(session, channel.name, notification.paymentNo);
      return finish("duplicate", accept, { ...ids, paymentId: payment?.id });
    }
  }

  /**
   * A payout webhook: the payout looked up and checked, then applied, with the inbox row that
   * de-duplicates it, in one row transaction. Unknown payout or a mismatch: only the log row, and a
   * non-success answer so the channel re-sends (or a person looks). A duplicate is answered as success.
   */
  async function applyPayout(
    session: Session,
    channel: PaymentChannel,
    request: CallbackRequest,
    receivedAt: Date,
    notification: PayoutNotification,
  ): Promise<CallbackResult> {
    const payouts = options.payouts;
    const ids = { verified: true, notificationId: notification.notificationId };
    if (!payouts) {
      const reason = "payouts are not handled here";
      return record(session, channel.name, request, receivedAt, "unknown_payment", channel.rejectAnswer(reason), { ...ids, reason });
    }
    const accept = channel.acceptAnswer();
    try {
      return await options.uow.rowTransaction(session, async (tx) => {
        const result = await payouts.applyNotification(tx, channel.name, notification);
        if (result.kind === "unknown_payout") {
          const reject = channel.rejectAnswer(result.reason);
          return record(tx, channel.name, request, receivedAt, "unknown_payment", reject, { ...ids, reason: result.reason });
        }
        if (result.kind === "mismatch") {
          log(`callback ${channel.name} ${notification.notificationId}: ${result.reason}`);
          const reject = channel.rejectAnswer("amount mismatch");
          return record(tx, channel.name, request, receivedAt, "mismatch", reject, { ...ids, reason: result.reason });
        }
        // After the transition, in the same transaction: a duplicate rolls back the whole of it.
        await insertInboxRow(tx, {
          id: newId(receivedAt.getTime()),
          channel: channel.name,
          notificationId: notification.notificationId,
          paymentId: null,
          createdAt: receivedAt,
        });
        const effect = `payout ${result.payoutId} ${result.effect}`;
        await insertLogRow(tx, logRow(channel.name, request, receivedAt, "applied", accept, { ...ids, effect }));
        return { answer: accept, verdict: "applied" as const, notificationId: ids.notificationId, effect };
      }, { deadlockAttempts: PAYOUT_DEADLOCK_ATTEMPTS });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      return record(session, channel.name, request, receivedAt, "duplicate", accept, ids);
    }
  }

  return {
    async handle(channelName: ChannelName, request: CallbackRequest): Promise<CallbackResult> {
      const channel = options.channels.get(channelName);
      const session = options.uow.session();
      const receivedAt = new Date();
      let verified = false;
      try {
        const notification = channel.parseCallback(request);
        verified = true;
        if (notification.kind === "payment") {
          return await applyPayment(session, channel, request, receivedAt, notification);
        }
        if (notification.kind === "refund") {
          return await applyRefund(session, channel, request, receivedAt, notification);
        }
        if (notification.kind === "payout") {
          return await applyPayout(session, channel, request, receivedAt, notification);
        }
        return await record(session, channelName, request, receivedAt, "ignored", channel.acceptAnswer(), {
          verified,
          notificationId: notification.notificationId,
          reason: `event not used here: ${notification.channelStatus}`,
        });
      } catch (error) {
        if (error instanceof CallbackRejectedError) {
          log(`callback ${channelName} rejected: ${error.reason}`);
          // Some rejections come after the signature checked out (an account mismatch); an excerpt is enough for those too.
          return record(session, channelName, request, receivedAt, "rejected", channel.rejectAnswer(error.reason), {
            verified: false,
            reason: error.reason,
          });
        }
        // A database error's message carries the statement's values: log and keep its shape only.
        const reason = loggableMessage(error);
        log(`callback ${channelName} failed: ${reason}`);
        const answer = { ...channel.rejectAnswer("internal error"), status: 500 };
        await insertLogRow(session, logRow(channelName, request, receivedAt, "error", answer, { verified, reason })).catch(() => {});
        return { answer, verdict: "error", reason };
      }
    },
  };
}

export type CallbackService = ReturnType<typeof createCallbackService>;
