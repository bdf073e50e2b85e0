/** The settlement account store: every statement on `settlement_account`. */
import { LockMode } from "@mikro-orm/core";
import { runStatement } from "../db/rows.js";
import { entityManager, isMysql, rowExecutor } from "../db/store-access.js";
import type { Session, Tx } from "../db/unit-of-work.js";
import { SettlementAccount, type SettlementAccountRow } from "./payout-entities.js";

/**
 * Stores the merchant's account for `row.channel`: inserted, or replacing the one there (its id and
 * creation time kept). Either way its `updated_at` makes it the merchant's current payout account.
 */
export async function upsertSettlementAccount(session: Session, row: SettlementAccountRow): Promise<void> {
  const mysql = isMysql(session);
  const conflict = mysql
    ? "on duplicate key update account_type = values(account_type), payee_sealed = values(payee_sealed), account_hint = values(account_hint), updated_at = values(updated_at)"
    : "on conflict (merchant_id, channel) do update set account_type = excluded.account_type, payee_sealed = excluded.payee_sealed, account_hint = excluded.account_hint, updated_at = excluded.updated_at";
  await runStatement(
    rowExecutor(session),
    `insert into settlement_account (id, merchant_id, channel, account_type, payee_sealed, account_hint, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?) ${conflict}`,
    [row.id, row.merchantId, row.channel, row.accountType, row.payeeSealed, row.accountHint, row.createdAt, row.updatedAt],
  );
}

const CURRENT_FIRST = { updatedAt: "desc", id: "desc" } as const;

/**
 * The merchant's current payout account (the one set most recently), or undefined, with the row
 * locked (SELECT ... FOR UPDATE) until the transaction ends. The embedded database has one writer,
 * so it needs no row lock.
 */
export async function lockCurrentAccount(tx: Tx, merchantId: string): Promise<SettlementAccountRow | undefined> {
  const lock = isMysql(tx) ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {};
  return (
    (await entityManager(tx).findOne(SettlementAccount, { merchantId }, { orderBy: CURRENT_FIRST, disableIdentityMap: true, ...lock })) ??
    undefined
  );
}
