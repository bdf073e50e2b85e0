/** The fee-rule store: every statement on `fee_rule`. */
import { findRow } from "../db/rows.js";
import { entityManager, rowExecutor } from "../db/store-access.js";
import type { RowScope, Session } from "../db/unit-of-work.js";
import { newId } from "../ids.js";
import { FeeRule, type FeeRuleRow } from "./fee-rule-entity.js";

export type FeeRuleKey = Pick<FeeRuleRow, "merchantId" | "channel" | "currency">;
export type FeeRuleValues = Pick<FeeRuleRow, "rateBps" | "fixedFee" | "minFee" | "refundFeePolicy">;

/** The rule for a merchant, channel and currency, or undefined (a prepared row statement: it runs in either kind of transaction). */
export function findFeeRuleRow(scope: RowScope, key: FeeRuleKey): Promise<FeeRuleRow | undefined> {
  return findRow<FeeRuleRow>(rowExecutor(scope), FeeRule, key);
}

/** Replaces the rule's values, or inserts the rule; resolves with the stored row. */
export async function upsertFeeRule(session: Session, key: FeeRuleKey, values: FeeRuleValues, now: Date): Promise<FeeRuleRow> {
  const em = entityManager(session);
  const updated = await em.nativeUpdate(FeeRule, key, { ...values, updatedAt: now });
  if (updated === 0) await em.insert(FeeRule, { id: newId(now.getTime()), ...key, ...values, updatedAt: now });
  return (await em.findOne(FeeRule, key, { disableIdentityMap: true }))!;
}
