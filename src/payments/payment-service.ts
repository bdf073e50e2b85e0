/**
 * Payment operations for merchants: create, read, query, list, close. Every call is scoped to
 * one merchant; each status change goes through the transition table in a transaction.
 */
import {
  type ChannelName,
  ChannelRejectedError,
  type ChannelTradeRef,
  ChannelTradePaidError,
  type PaymentChannel,
} from "../channels/channel.js";
import type { ChannelRegistry } from "../channels/registry.js";
import { ConflictError, PreconditionError, ValidationError, Violations } from "../errors.js";
import { isDuplicateKey, type Session, type UnitOfWork } from "../db/unit-of-work.js";
import { paymentObject } from "../events/event-objects.js";
import { newId, newTradeNo } from "../ids.js";
import type { MerchantRow } from "../merchants/merchant-entity.js";
import type { NotifyUrlPolicy } from "../notifications/notify-url.js";
import { applyChannelStatus } from "./channel-outcome.js";
import type { PaymentItemRow, PaymentRow } from "./payment-entity.js";
import {
  type CreatePaymentInput,
  DEFAULT_EXPIRE_SECONDS,
  hashCreatePayment,
  validateCreatePayment,
} from "./payment-input.js";
import { readPageRequest, toPage } from "../pagination.js";
import { AWAITING_CHANNEL, CHANNEL_MAY_CONTRADICT, type PaymentStatus } from "./payment-status.js";
import {
  findByMerchantOrderNo,
  findIdempotencyRecord,
  findMerchantPayment,
  insertPayment as insertPaymentRows,
  listPayments as listPaymentRows,
  type PaymentLookup,
  type PaymentView,
  reloadPayment,
  takeFinalChannelQuery,
  updatePayment,
  updateWhileInStatus,
  withItems,
  withItemsMany,
} from "./payment-store.js";

export type { PaymentLookup, PaymentView } from "./payment-store.js";
import { recordPaymentEvent, transitionPayment } from "./payment-transitions.js";
import { firstQueryAt } from "./query-schedule.js";

export interface PaymentServiceDeps {
  uow: UnitOfWork;
  channels: ChannelRegistry;
  /** `PUBLIC_BASE_URL`: channels post callbacks to `${publicBaseUrl}/callbacks/{channel}`. */
  publicBaseUrl: string;
  /** `config.notifyUrls`: which notify URLs CreatePayment accepts; public https only when unset. */
  notifyUrls?: NotifyUrlPolicy;
  /**
   * `config.finalPaymentChannelQueries`: how many times in its life QueryPayment may ask the channel
   * about a payment that is already final; default 3.
   */
  finalPaymentChannelQueries?: number;
}

export interface ListPaymentsFilter {
  status?: PaymentStatus;
  channel?: ChannelName;
  createdAfter?: Date;
  createdBefore?: Date;
  pageSize: number;
  pageToken: string;
}

const CREATE_OPERATION = "CreatePayment";

export function tradeRef(payment: PaymentRow): ChannelTradeRef {
  return {
    paymentNo: payment.paymentNo,
    channelTradeNo: payment.channelTradeNo,
    amountMinor: payment.amount,
    currency: payment.currency,
  };
}

export function callbackUrl(publicBaseUrl: string, channel: ChannelName): string {
  return `${publicBaseUrl}/callbacks/${channel}`;
}

export function createPaymentService(deps: PaymentServiceDeps) {
  const channelOf = (payment: PaymentRow): PaymentChannel => deps.channels.get(payment.channel as ChannelName);

  /**
   * Inserts the payment with its items and idempotency record, PENDING and without an action yet.
   * A unique-key violation means an earlier create with the same order number or idempotency key.
   */
  async function insertPayment(
    session: Session,
    merchant: MerchantRow,
    input: CreatePaymentInput,
    requestHash: string,
    idempotencyKey: string | undefined,
  ): Promise<PaymentView> {
    const now = new Date();
    const expireSeconds = input.expireSeconds || DEFAULT_EXPIRE_SECONDS;
    const expiresAt = new Date(now.getTime() + expireSeconds * 1000);
    const payment: PaymentRow = {
      id: newId(now.getTime()),
      paymentNo: newTradeNo("P", now),
      merchantId: merchant.id,
      merchantOrderNo: input.merchantOrderNo,
      amount: input.amount,
      currency: input.currency,
      channel: input.channel!,
      status: "PENDING",
      statusReason: null,
      subject: input.subject,
      channelTradeNo: null,
      actionKind: null,
      actionValue: null,
      refundedAmount: 0n,
      refundPendingAmount: 0n,
      fee: 0n,
      notifyUrl: input.notifyUrl || merchant.notifyUrl,
      metadata: input.metadata,
      paymentMethodToken: input.paymentMethod || null,
      requestHash,
      createdAt: now,
      updatedAt: now,
      paidAt: null,
      succeededAt: null,
      closedAt: null,
      expiresAt,
      nextQueryAt: firstQueryAt(now, expiresAt),
      queryAttempts: 0,
      finalChannelQueries: 0,
      sweepLeaseUntil: null,
    };
    const items: PaymentItemRow[] = input.items.map((item, position) => ({
      id: newId(now.getTime()),
      paymentId: payment.id,
      merchantId: merchant.id,
      position,
      sku: item.sku,
      name: item.name,
      quantity: item.quantity,
      unitAmount: item.unitAmount,
    }));
    const idempotency =
      idempotencyKey === undefined
        ? undefined
        : {
            id: newId(now.getTime()),
            merchantId: merchant.id,
            operation: CREATE_OPERATION,
            idempotencyKey,
            requestHash,
            resourceId: payment.id,
            createdAt: now,
          };
    // One BEGIN ... COMMIT of prepared statements: the create hot path (docs/performance.md).
    await deps.uow.rowTransaction(session, (tx) =>
      insertPaymentRows(tx, payment, items, idempotency).then(() =>
        recordPaymentEvent(tx, payment, "payment.created", { payment: paymentObject(payment) }, now),
      ),
    );
    return { payment, items };
  }

  /**
   * An earlier create with the same idempotency key or order number: the same request gets that
   * payment back, a different one a conflict. Undefined when there is none.
   */
  async function findPrevious(
    session: Session,
    merchant: MerchantRow,
    input: CreatePaymentInput,
    requestHash: string,
    idempotencyKey: string | undefined,
  ): Promise<PaymentRow | undefined> {
    if (idempotencyKey !== undefined) {
      const record = await findIdempotencyRecord(session, merchant.id, CREATE_OPERATION, idempotencyKey);
      if (record) {
        if (record.requestHash !== requestHash) {
          throw new ConflictError(
            "IDEMPOTENCY_KEY_REUSED",
            "this idempotency-key was used with a different request",
          );
        }
        return reloadPayment(session, record.resourceId);
      }
    }
    const existing = await findByMerchantOrderNo(session, merchant.id, input.merchantOrderNo);
    if (!existing) return undefined;
    if (existing.requestHash !== requestHash) {
      throw new ConflictError(
        "MERCHANT_ORDER_NO_REUSED",
        `merchant_order_no ${input.merchantOrderNo} already has a payment with different details`,
      );
    }
    return existing;
  }

  /** Opens the trade at the channel and stores the action; a rejection fails the payment. */
  async function openAtChannel(session: Session, payment: PaymentRow): Promise<PaymentRow> {
    const channel = channelOf(payment);
    try {
      const created = await channel.createPayment({
        paymentNo: payment.paymentNo,
        amountMinor: payment.amount,
        currency: payment.currency,
        subject: payment.subject,
        expiresAt: payment.expiresAt,
        notifyUrl: callbackUrl(deps.publicBaseUrl, channel.name),
        idempotencyKey: `create-${payment.id}`,
        paymentMethodToken: payment.paymentMethodToken ?? undefined,
      });
      const changes = {
        actionKind: created.action.kind,
        actionValue: created.action.value,
        ...(created.channelTradeNo && !payment.channelTradeNo ? { channelTradeNo: created.channelTradeNo } : {}),
        updatedAt: new Date(),
      };
      // Not a status change. While the payment is PENDING nothing but the sweeper's bookkeeping
      // changes its row (every other change is a transition out of PENDING), so our copy plus these
      // changes is what a re-read would show. If a callback won the race (the payment may even be
      // SUCCEEDED already), store the action all the same and read the payment as it now is.
      if (await updateWhileInStatus(session, payment.id, "PENDING", changes)) {
        return { ...payment, ...changes };
      }
      await updatePayment(session, payment.id, changes);
      return reloadPayment(session, payment.id);
    } catch (error) {
      if (error instanceof ChannelRejectedError) {
        await deps.uow.transaction(session, (tx) =>
          transitionPayment(
            tx,
            payment,
            "FAILED",
            { statusReason: `${error.code}: ${error.message}`.slice(0, 255), nextQueryAt: null },
            "channel_rejected_create",
          ),
        );
        throw new PreconditionError("CHANNEL_REJECTED", error.message);
      }
      // Unavailable, unknown or unverifiable: the payment stays PENDING and the sweeper asks the channel later;
      // the merchant may retry the same request, which reopens it idempotently.
      throw error;
    }
  }

  const finalQueryLimit = deps.finalPaymentChannelQueries ?? 3;

  /**
   * Takes one of the payment's channel queries after final, if any is left: a conditional UPDATE
   * of the counter, so concurrent queries on any number of replicas never take more than the limit.
   */
  async function claimFinalQuery(session: Session, payment: PaymentRow): Promise<boolean> {
    if (payment.finalChannelQueries >= finalQueryLimit) return false;
    return takeFinalChannelQuery(session, payment.id, payment.status as PaymentStatus, finalQueryLimit);
  }

  return {
    async createPayment(
      session: Session,
      merchant: MerchantRow,
      input: CreatePaymentInput,
      idempotencyKey?: string,
    ): Promise<PaymentView> {
      validateCreatePayment(input, deps.notifyUrls);
      if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
        throw new ValidationError([
          { field: "idempotency-key", reason: "INVALID_LENGTH", description: "must be 1-255 characters" },
        ]);
      }
      deps.channels.get(input.channel!);
      const requestHash = hashCreatePayment(input);

      // Insert first: the unique keys on (merchant, order number) and (merchant, idempotency key)
      // catch a retry, so a new payment costs no lookups and a retry one failed insert.
      let payment: PaymentRow | undefined;
      let items: PaymentItemRow[] | undefined;
      try {
        ({ payment, items } = await insertPayment(session, merchant, input, requestHash, idempotencyKey));
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        // A retry, or a concurrent identical request that won the insert: answer as its retry.
        payment = await findPrevious(session, merchant, input, requestHash, idempotencyKey);
        if (!payment) throw error;
      }
      if (payment.status === "PENDING" && payment.actionKind === null) {
        payment = await openAtChannel(session, payment);
      }
      // Order lines never change: the ones just inserted are the stored ones.
      return items ? { payment, items } : withItems(session, payment);
    },

    async getPayment(session: Session, merchantId: string, lookup: PaymentLookup): Promise<PaymentView> {
      return withItems(session, await findMerchantPayment(session, merchantId, lookup));
    },

    /**
     * Asks the channel, applies the answer, returns the payment as it now stands. A PENDING payment
     * is always asked about. A FAILED or CLOSED one only `finalPaymentChannelQueries` times in its
     * life (a card decline can still turn into a success, a closed trade can turn out paid after
     * close, and those few asks are how that is found); after that the stored state is the answer,
     * so repeated queries of a settled payment never reach the channel account all merchants share.
     * SUCCEEDED and REFUNDED payments are not asked about: nothing the channel says changes them here.
     */
    async queryPayment(session: Session, merchantId: string, lookup: PaymentLookup): Promise<PaymentView> {
      const payment = await findMerchantPayment(session, merchantId, lookup);
      const ask =
        payment.status === AWAITING_CHANNEL ||
        (CHANNEL_MAY_CONTRADICT.includes(payment.status as PaymentStatus) && (await claimFinalQuery(session, payment)));
      if (ask) {
        const status = await channelOf(payment).queryPayment(tradeRef(payment));
        await deps.uow.transaction(session, (tx) => applyChannelStatus(tx, payment, status, "query"));
        return withItems(session, await reloadPayment(session, payment.id));
      }
      // Not asked: the row read at the start of this call is the answer, as GetPayment would give it.
      return withItems(session, payment);
    },

    async listPayments(session: Session, merchantId: string, filter: ListPaymentsFilter) {
      const v = new Violations();
      const page = readPageRequest(v, filter, [
        filter.status ?? "",
        filter.channel ?? "",
        filter.createdAfter?.getTime() ?? "",
        filter.createdBefore?.getTime() ?? "",
      ]);
      v.throwIfAny();
      const { items, nextPageToken } = toPage(await listPaymentRows(session, merchantId, filter, page), page);
      return { payments: await withItemsMany(session, items), nextPageToken };
    },

    /**
     * Closes an unpaid payment: first at the channel, then here. If the channel says it was paid,
     * the payment becomes SUCCEEDED (after a query for the details) and the close fails.
     */
    async closePayment(session: Session, merchantId: string, paymentId: string): Promise<PaymentView> {
      const payment = await findMerchantPayment(session, merchantId, { paymentId });
      if (payment.status === "CLOSED") return withItems(session, payment);
      if (payment.status !== "PENDING") {
        throw new PreconditionError("INVALID_TRANSITION", `a ${payment.status} payment cannot be closed`);
      }
      await closeAtChannelThenHere(deps.uow, session, channelOf(payment), payment, "closed by merchant", "merchant_close");
      const after = await reloadPayment(session, payment.id);
      if (after.status !== "CLOSED") {
        throw new PreconditionError("INVALID_TRANSITION", `the payment is ${after.status} and cannot be closed`);
      }
      return withItems(session, after);
    },
  };
}

/**
 * Closes at the channel, then applies CLOSED here. A channel that reports the trade paid gets
 * the payment queried and marked SUCCEEDED instead. Shared by ClosePayment and the sweeper.
 */
export async function closeAtChannelThenHere(
  uow: UnitOfWork,
  session: Session,
  channel: PaymentChannel,
  payment: PaymentRow,
  reason: string,
  cause: string,
): Promise<void> {
  try {
    await channel.closePayment(tradeRef(payment));
  } catch (error) {
    if (!(error instanceof ChannelTradePaidError)) throw error;
    const status = await channel.queryPayment(tradeRef(payment));
    await uow.transaction(session, (tx) => applyChannelStatus(tx, payment, status, cause));
    return;
  }
  await uow.transaction(session, (tx) =>
    applyChannelStatus(tx, payment, { state: "closed", detail: reason }, cause),
  );
}

export type PaymentService = ReturnType<typeof createPaymentService>;
