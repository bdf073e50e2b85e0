/**
 * Payouts by transfer: the merchants' settlement accounts (where their money goes, per payout
 * channel), the payout of each settlement order and its lifecycle (payout-status.ts), the sweeper
 * that sends and follows payouts, and the payout webhooks. The money side:
 *
 *   created  `payout`        debit merchant_available:{m}, credit payout_in_transit:{ch}
 *   paid     `payout_paid`   debit payout_in_transit:{ch}, credit channel_clearing:{ch}
 *   failed   `payout_failed` debit payout_in_transit:{ch}, credit merchant_available:{m}
 *
 * Accounts are sealed at rest (SecretBox) and never logged or echoed: only a masked hint leaves here.
 */
import { randomBytes } from "node:crypto";
import type { ChannelName, PayeeAccount, PayoutNotification } from "../channels/channel.js";
import { ChannelRegistry } from "../channels/registry.js";
import type { RowScope, Session, Tx, UnitOfWork } from "../db/unit-of-work.js";
import { NotFoundError, PreconditionError, Violations } from "../errors.js";
import { newId, newTradeNo } from "../ids.js";
import { checkLookupId } from "../input-text.js";
import { SecretBox } from "../merchants/credentials.js";
import { findMerchant } from "../merchants/merchant-store.js";
import { isKnownCurrency } from "../money/currency.js";
import { accountHint, checkPayeeInput, type PayeeAccountType, sealPayee } from "./payee.js";
import type { PayoutRow, SettlementAccountRow } from "./payout-entities.js";
import { applyPayoutStatus, postPayoutEntry } from "./payout-outcome.js";
import type { PayoutStatus } from "./payout-status.js";
import { recordPayoutEvent } from "./payout-outcome.js";
import { findPayoutByNo, insertPayout, payoutsOfSettlementIds } from "./payout-store.js";
import { createPayoutSweeper, type PayoutSweeperOptions, type PayoutSweepResult } from "./payout-sweeper.js";
import { lockCurrentAccount, upsertSettlementAccount } from "./settlement-account-store.js";

/** A payout as the rest of the service sees it (never its payee). */
export interface PayoutView {
  id: string;
  payoutNo: string;
  settlementId: string;
  merchantId: string;
  channel: ChannelName;
  amount: bigint;
  currency: string;
  status: PayoutStatus;
  channelPayoutNo: string | null;
  failureReason: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

/** A merchant's current payout account as locked by {@link PayoutService.lockPayoutAccount}; its payee stays sealed. */
export interface PayoutAccountRef {
  merchantId: string;
  channel: ChannelName;
  accountType: PayeeAccountType;
  accountHint: string;
  /** The payee, sealed; copied onto each payout as its snapshot. */
  readonly payeeSealed: string;
}

export interface SetSettlementAccountInput {
  merchantId: string;
  channel: ChannelName;
  accountType: PayeeAccount["type"];
  account: string;
  name?: string;
}

/** A settlement order's payout to create. */
export interface PayoutOrder {
  settlementId: string;
  settlementNo: string;
  merchantId: string;
  currency: string;
  amount: bigint;
}

/** What a verified payout webhook did. */
export type PayoutNotificationResult =
  /** No payout of this channel has the number: answered non-success, so the channel re-sends later. */
  | { kind: "unknown_payout"; reason: string }
  /** The amount or currency differs from the payout's: nothing applied. */
  | { kind: "mismatch"; payoutId: string; reason: string }
  /** Applied (`effect` is the transition, or `unchanged` when it was final already). */
  | { kind: "applied"; payoutId: string; effect: string };

/** Most settlement orders whose payouts one call of payoutsOfSettlements looks up. */
export const MAX_SETTLEMENTS_PER_LOOKUP = 1000;

/** What the service needs: its sweeper's options (the sweeper's batch size left at its default). */
export type PayoutServiceDeps = Omit<PayoutSweeperOptions, "batchSize">;

function toPayoutView(row: PayoutRow): PayoutView {
  return {
    id: row.id,
    payoutNo: row.payoutNo,
    settlementId: row.settlementId,
    merchantId: row.merchantId,
    channel: row.channel as ChannelName,
    amount: row.amount,
    currency: row.currency,
    status: row.status as PayoutStatus,
    channelPayoutNo: row.channelPayoutNo ?? null,
    failureReason: row.failureReason ?? null,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt ?? null,
  };
}

function accountRef(row: SettlementAccountRow): PayoutAccountRef {
  return {
    merchantId: row.merchantId,
    channel: row.channel as ChannelName,
    accountType: row.accountType as PayeeAccountType,
    accountHint: row.accountHint,
    payeeSealed: row.payeeSealed,
  };
}

export function createPayoutService(deps: PayoutServiceDeps) {
  const sweeper = createPayoutSweeper(deps);

  return {
    /**
     * Stores the merchant's payout account for one channel, which becomes its current payout account.
     * Refused (INVALID_ARGUMENT naming the field, nothing stored or sent) when the channel is not
     * served here, the account type is not the channel's, or the account's shape is wrong for it;
     * NOT_FOUND for an unknown merchant.
     */
    async setSettlementAccount(
      session: Session,
      input: SetSettlementAccountInput,
    ): Promise<{ merchantId: string; channel: ChannelName; accountHint: string }> {
      const v = new Violations();
      checkLookupId(v, "merchant_id", input.merchantId);
      const served = deps.channels.has(input.channel);
      if (!served) v.add("channel", "CHANNEL_NOT_CONFIGURED", `${input.channel} is not configured on this service`);
      const payee: PayeeAccount = { type: input.accountType, account: input.account, name: input.name || undefined };
      if (checkPayeeInput(v, served ? input.channel : undefined, payee) && served) {
        const problem = deps.channels.get(input.channel).payouts.validatePayee(payee);
        if (problem !== undefined) v.add("account", "INVALID_PAYEE", problem);
      }
      v.throwIfAny();
      if (!(await findMerchant(session, input.merchantId))) {
        throw new NotFoundError("MERCHANT_NOT_FOUND", `merchant ${input.merchantId} not found`);
      }
      const now = new Date();
      const hint = accountHint(payee.account);
      await upsertSettlementAccount(session, {
        id: newId(now.getTime()),
        merchantId: input.merchantId,
        channel: input.channel,
        accountType: payee.type,
        payeeSealed: sealPayee(deps.secrets, payee),
        accountHint: hint,
        createdAt: now,
        updatedAt: now,
      });
      deps.log(`settlement account of merchant ${input.merchantId} set: ${input.channel} ${payee.type} ${hint}`);
      return { merchantId: input.merchantId, channel: input.channel, accountHint: hint };
    },

    /** Locks the merchant's current payout account row (SELECT ... FOR UPDATE) for the transaction; undefined when none. */
    async lockPayoutAccount(tx: Tx, merchantId: string): Promise<PayoutAccountRef | undefined> {
      const row = await lockCurrentAccount(tx, merchantId);
      return row && accountRef(row);
    },

    /**
     * In the caller's transaction: inserts the payout (PENDING, due for the sweeper at once) for a
     * settlement order and posts entry `payout` (ref `payout:<id>`): debit merchant_available:{m},
     * credit payout_in_transit:{channel}. A second payout for the same order fails on its unique key.
     */
    async createPayout(tx: Tx, account: PayoutAccountRef, order: PayoutOrder): Promise<PayoutView> {
      if (order.amount <= 0n) throw new PreconditionError("INVALID_PAYOUT_AMOUNT", `a payout must be positive, got ${order.amount}`);
      if (account.merchantId !== order.merchantId) {
        throw new PreconditionError("PAYOUT_ACCOUNT_MISMATCH", "the payout account belongs to another merchant");
      }
      if (!isKnownCurrency(order.currency)) throw new PreconditionError("UNKNOWN_CURRENCY", `unknown currency ${order.currency}`);
      const now = new Date();
      const row: PayoutRow = {
        id: newId(now.getTime()),
        payoutNo: newTradeNo("T", now),
        settlementId: order.settlementId,
        settlementNo: order.settlementNo,
        merchantId: order.merchantId,
        channel: account.channel,
        amount: order.amount,
        currency: order.currency,
        payeeSealed: account.payeeSealed,
        status: "PENDING",
        channelPayoutNo: null,
        failureReason: null,
        attempts: 0,
        nextAttemptAt: now,
        leaseUntil: null,
        createdAt: now,
        updatedAt: now,
        finishedAt: null,
      };
      await insertPayout(tx, row);
      await postPayoutEntry(tx, "payout", row);
      await recordPayoutEvent(tx, "payout.created", row, now);
      return toPayoutView(row);
    },

    /** The payouts of these settlement orders (at most {@link MAX_SETTLEMENTS_PER_LOOKUP}), by settlement id. */
    async payoutsOfSettlements(session: Session, settlementIds: readonly string[]): Promise<Map<string, PayoutView>> {
      if (settlementIds.length > MAX_SETTLEMENTS_PER_LOOKUP) {
        throw new RangeError(`at most ${MAX_SETTLEMENTS_PER_LOOKUP} settlement orders per lookup, got ${settlementIds.length}`);
      }
      const rows = await payoutsOfSettlementIds(session, settlementIds);
      return new Map(rows.map((row) => [row.settlementId, toPayoutView(row)]));
    },

    /** One sweeper pass: send due PENDING payouts, query due PROCESSING ones; rows claimed by lease (multi-replica safe). */
    runOnce(): Promise<PayoutSweepResult> {
      return sweeper.runOnce();
    },

    /**
     * Applies a verified payout webhook of `channel` in the caller's transaction (either kind; the
     * callback service runs it with the inbox row that de-duplicates it). The payout must be that
     * channel's and the amount and currency must be the payout's.
     */
    async applyNotification(tx: RowScope, channel: ChannelName, notification: PayoutNotification): Promise<PayoutNotificationResult> {
      const payout = await findPayoutByNo(tx, notification.payoutNo);
      if (!payout || payout.channel !== channel) return { kind: "unknown_payout", reason: `no payout ${notification.payoutNo}` };
      if (notification.amountMinor !== payout.amount || notification.currency !== payout.currency) {
        const reason = `payout amount ${notification.amountMinor} ${notification.currency} != ${payout.amount} ${payout.currency}`;
        return { kind: "mismatch", payoutId: payout.id, reason };
      }
      const outcome = await applyPayoutStatus(tx, payout, {
        state: notification.state,
        channelPayoutNo: notification.channelPayoutNo,
        detail: notification.channelStatus,
      });
      if (outcome.effect !== "unchanged") deps.log(`payout ${payout.id}: ${outcome.effect} (webhook)`);
      return { kind: "applied", payoutId: payout.id, effect: outcome.effect };
    },
  };
}

export type PayoutService = ReturnType<typeof createPayoutService>;

/**
 * A payout service for offline settlement runs (npm run settle, the scale bench): only locking
 * accounts and creating payouts are used, payees stay sealed and nothing is sent, so it has no
 * channel and a throwaway data key that never opens anything.
 */
export function createOfflinePayoutService(uow: UnitOfWork): PayoutService {
  return createPayoutService({
    uow,
    channels: new ChannelRegistry([]),
    secrets: new SecretBox(randomBytes(32).toString("hex")),
    log: () => {},
    leaseMs: 30_000,
  });
}
