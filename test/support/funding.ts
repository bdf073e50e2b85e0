/**
 * Money in a merchant's available balance without payments: a balanced entry of the settlement type
 * (what a settlement order posts), against a test account instead of the merchant's pending balance.
 * For tests of what comes after settlement (SubmitSettlement, payouts).
 */
import type { UnitOfWork } from "../../src/db/unit-of-work.js";
import { newId } from "../../src/ids.js";
import { accounts, postEntry } from "../../src/ledger/ledger.js";

export async function fundMerchant(uow: UnitOfWork, merchantId: string, amount: bigint, currency = "CNY"): Promise<void> {
  await uow.transaction(uow.session(), (tx) =>
    postEntry(tx, {
      ref: `test_settlement:${newId()}`,
      entryType: "settlement",
      merchantId,
      currency,
      postings: [
        { account: "test_funding", amount },
        { account: accounts.merchantAvailable(merchantId), amount: -amount },
      ],
    }),
  );
}
