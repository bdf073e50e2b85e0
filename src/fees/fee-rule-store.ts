/** The fee-rule store: every statement on `fee_rule`. */
import { findRow } from "../db/rows.js";
import { entityManager, rowExecutor } from "../db/store-access.js";
import type { RowScope, Session } from "../db/unit-of-work.js";
import { newId } from "../ids.js";
import { FeeRule, type FeeRuleRow } from "./fee-rule-entity.js";

export type FeeRuleKey = Pick<FeeRuleRow, "merchantId" | "channel" | "currency">;
export type FeeRuleValues = Pick<FeeRuleRow, "rateBps" | "fixedFee" | "minFee" | "refundFeePolicy">;

const VALUE_COLUMNS: ReadonlyArray<keyof FeeRuleValues> = ["rateBps", "fixedFee", "minFee", "refundFeePolicy"];

/**
 * The values of the rule for a merchant, channel and currency, or undefined (a prepared row
 * statement: it runs in either kind of transaction). Only the values: this is read on every
 * successful payment.
 */
export function findFeeRuleValues(scope: RowScope, key: FeeRuleKey): Promise<FeeRuleValues | undefined> {
  return findRow<FeeRuleValues>(rowExecutor(scope), FeeRule, key, VALUE_COLUMNS);
}

/** Replaces the rule's values, or inserts the rule; resolves with the stored row. */
export async function upsertFeeRule(session: Session, key: FeeRuleKey, values: FeeRuleValues, now: Date): Promise<FeeRuleRow> {
  const em = entityManager(session);
  const updated = await em.nativeUpdate(FeeRule, key, { ...values, updatedAt: now });
  if (updated === 0) await em.insert(FeeRule, { id: newId(now.getTime()), ...key, ...values, updatedAt: now });
  return (await em.findOne(FeeRule, key, { disableIdentityMap: true }))!;
}
