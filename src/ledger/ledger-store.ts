/**
 * The ledger store: every statement on `journal_entry`, `journal_posting` and `account_balance`,
 * including the aggregate queries of the ledger check. The rules (balanced entries, which accounts
 * are cached, what a payment's postings must be) are in ledger.ts and ledger-check.ts.
 */
import { randomInt } from "node:crypto";
import { insertRow, insertRows, isMysqlExecutor, runStatement } from "../db/rows.js";
import { entityManager, rowExecutor, toBigInt } from "../db/store-access.js";
import type { RowScope, Session } from "../db/unit-of-work.js";
import { newId } from "../ids.js";
import { AccountBalance, JournalEntry, type JournalEntryRow, JournalPosting, type JournalPostingRow } from "./ledger-entities.js";

/** Slots per cached account: enough that concurrent payments of one merchant rarely wait on each other. */
export const BALANCE_SLOTS = 16;

export interface EntryToInsert {
  ref: string;
  entryType: string;
  merchantId: string;
  paymentId: string | null;
  refundId: string | null;
  currency: string;
  postings: ReadonlyArray<{ account: string; amount: bigint }>;
}

/**
 * Inserts a journal entry with its postings in one multi-row INSERT (the caller checked they
 * balance), as prepared row statements in the caller's transaction (either kind). A repeated `ref`
 * fails on its unique key.
 */
export async function insertEntry(tx: RowScope, entry: EntryToInsert, now: Date): Promise<void> {
  const rows = rowExecutor(tx);
  const entryId = newId(now.getTime());
  await insertRow(rows, JournalEntry, {
    id: entryId,
    ref: entry.ref,
    entryType: entry.entryType,
    merchantId: entry.merchantId,
    paymentId: entry.paymentId,
    refundId: entry.refundId,
    currency: entry.currency,
    createdAt: now,
  });
  await insertRows(
    rows,
    JournalPosting,
    entry.postings.map((posting) => ({
      id: newId(now.getTime()),
      entryId,
      merchantId: entry.merchantId,
      account: posting.account,
      currency: entry.currency,
      amount: posting.amount,
    })),
  );
}

/** An atomic increment of a random slot of the account's cached balance (inserted on first use), so concurrent entries never lose an update. */
export async function addToBalance(
  tx: RowScope,
  merchantId: string,
  account: string,
  currency: string,
  amount: bigint,
  now: Date,
): Promise<void> {
  // The two dialects spell an upsert differently; the increment itself is the same.
  const rows = rowExecutor(tx);
  const conflict = isMysqlExecutor(rows)
    ? "on duplicate key update balance = balance + values(balance), updated_at = values(updated_at)"
    : "on conflict (account, currency, slot) do update set balance = balance + excluded.balance, updated_at = excluded.updated_at";
  await runStatement(
    rows,
    `insert into account_balance (id, merchant_id, account, currency, slot, balance, updated_at) values (?, ?, ?, ?, ?, ?, ?) ${conflict}`,
    [newId(now.getTime()), merchantId, account, currency, randomInt(BALANCE_SLOTS), amount, now],
  );
}

/** The cached balance of each account (its slots summed), in one currency; accounts without a row are absent. */
export async function cachedBalances(session: Session, accounts: readonly string[], currency: string): Promise<Map<string, bigint>> {
  const rows = await entityManager(session).find(
    AccountBalance,
    { account: { $in: [...accounts] }, currency },
    { disableIdentityMap: true },
  );
  const balances = new Map<string, bigint>();
  for (const row of rows) balances.set(row.account, (balances.get(row.account) ?? 0n) + row.balance);
  return balances;
}

/** A journal entry with its postings, as the admin timeline shows it. */
export interface EntryWithPostings {
  entry: JournalEntryRow;
  postings: JournalPostingRow[];
}

/** The payment's first `limit` journal entries (its refunds' included), oldest first, with their postings. */
export async function entriesOfPayment(session: Session, paymentId: string, limit: number): Promise<EntryWithPostings[]> {
  const em = entityManager(session);
  const entries = await em.find(JournalEntry, { paymentId }, { orderBy: { createdAt: "asc", id: "asc" }, limit, disableIdentityMap: true });
  if (entries.length === 0) return [];
  const postings = await em.find(
    JournalPosting,
    { entryId: { $in: entries.map((entry) => entry.id) } },
    { orderBy: { entryId: "asc", id: "asc" }, disableIdentityMap: true },
  );
  const byEntry = new Map<string, JournalPostingRow[]>(entries.map((entry) => [entry.id, []]));
  for (const posting of postings) byEntry.get(posting.entryId)?.push(posting);
  return entries.map((entry) => ({ entry, postings: byEntry.get(entry.id) ?? [] }));
}

/** The currencies each merchant has cached balances in, sorted, by merchant id (merchants without any are absent). */
export async function merchantCurrencies(session: Session, merchantIds: readonly string[]): Promise<Map<string, string[]>> {
  const byMerchant = new Map<string, string[]>();
  if (merchantIds.length === 0) return byMerchant;
  const rows = await entityManager(session)
    .createQueryBuilder(AccountBalance)
    .select(["merchantId", "currency"], true)
    .where({ merchantId: { $in: [...merchantIds] } })
    .orderBy({ merchantId: "asc", currency: "asc" })
    .execute<Array<{ merchantId: string; currency: string }>>("all");
  for (const row of rows) {
    const currencies = byMerchant.get(row.merchantId);
    if (currencies) currencies.push(row.currency);
    else byMerchant.set(row.merchantId, [row.currency]);
  }
  return byMerchant;
}

/** The sum of an account's postings in entries of one type, in one currency. */
export async function sumPostingsOfEntryType(session: Session, account: string, currency: string, entryType: string): Promise<bigint> {
  const rows = await entityManager(session).execute(
    `select sum(p.amount) as total from journal_posting p join journal_entry e on e.id = p.entry_id
     where p.account = ? and p.currency = ? and e.entry_type = ?`,
    [account, currency, entryType],
  );
  return toBigInt(rows[0]?.total);
}

/** Entries whose postings (in the entry's currency) are missing or do not sum to zero. */
export async function unbalancedEntries(session: Session): Promise<Array<{ id: string; total: bigint; postings: bigint }>> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select e.id as id, sum(p.amount) as total, count(p.id) as postings
     from journal_entry e left join journal_posting p on p.entry_id = e.id and p.currency = e.currency
     group by e.id having count(p.id) = 0 or sum(p.amount) <> 0`,
  );
  return rows.map((row) => ({ id: String(row.id), total: toBigInt(row.total), postings: toBigInt(row.postings) }));
}

/** Postings in another currency than their entry's. */
export async function foreignCurrencyPostings(session: Session): Promise<Array<{ entryId: string; currency: string }>> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select p.entry_id as id, p.currency as currency from journal_posting p join journal_entry e on e.id = p.entry_id
     where p.currency <> e.currency`,
  );
  return rows.map((row) => ({ entryId: String(row.id), currency: String(row.currency) }));
}

/** Currencies whose postings do not sum to zero. */
export async function currenciesNotZero(session: Session): Promise<Array<{ currency: string; total: bigint }>> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    "select currency, sum(amount) as total from journal_posting group by currency having sum(amount) <> 0",
  );
  return rows.map((row) => ({ currency: String(row.currency), total: toBigInt(row.total) }));
}

/** Every cached balance (slots summed) next to the sum of its account's postings. */
export async function cachedBalancesWithPostings(
  session: Session,
): Promise<Array<{ account: string; currency: string; cached: bigint; postings: bigint }>> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select b.account as account, b.currency as currency, sum(b.balance) as balance,
       (select coalesce(sum(p.amount), 0) from journal_posting p where p.account = b.account and p.currency = b.currency) as actual
     from account_balance b group by b.account, b.currency`,
  );
  return rows.map((row) => ({
    account: String(row.account),
    currency: String(row.currency),
    cached: toBigInt(row.balance),
    postings: toBigInt(row.actual),
  }));
}

/** Merchant accounts (`merchant_...`) with postings but no cached balance row. */
export async function uncachedMerchantAccounts(session: Session): Promise<Array<{ account: string; currency: string; total: bigint }>> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select p.account as account, p.currency as currency, sum(p.amount) as total from journal_posting p
     where substr(p.account, 1, 9) = 'merchant_' and not exists
       (select 1 from account_balance b where b.account = p.account and b.currency = p.currency)
     group by p.account, p.currency`,
  );
  return rows.map((row) => ({ account: String(row.account), currency: String(row.currency), total: toBigInt(row.total) }));
}

/** Postings summed per payment and account, for entries about a payment except those of the given types. */
export async function paymentPostingTotals(
  session: Session,
  exceptEntryTypes: readonly string[],
): Promise<Array<{ paymentId: string; account: string; total: bigint }>> {
  const excluded = exceptEntryTypes.length === 0 ? "" : ` and e.entry_type not in (${exceptEntryTypes.map(() => "?").join(", ")})`;
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select e.payment_id as payment_id, p.account as account, sum(p.amount) as total
     from journal_posting p join journal_entry e on e.id = p.entry_id
     where e.payment_id is not null${excluded}
     group by e.payment_id, p.account`,
    [...exceptEntryTypes],
  );
  return rows.map((row) => ({ paymentId: String(row.payment_id), account: String(row.account), total: toBigInt(row.total) }));
}

/**
 * Postings on merchant available-balance accounts summed per account, currency and entry type, for
 * entries of the given types (the ledger check compares what settlements moved in with what payouts
 * moved out).
 */
export async function availablePostingTotals(
  session: Session,
  entryTypes: readonly string[],
): Promise<Array<{ account: string; currency: string; entryType: string; total: bigint }>> {
  if (entryTypes.length === 0) return [];
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute(
    `select p.account as account, p.currency as currency, e.entry_type as entry_type, sum(p.amount) as total
     from journal_posting p join journal_entry e on e.id = p.entry_id
     where substr(p.account, 1, 19) = 'merchant_available:' and e.entry_type in (${entryTypes.map(() => "?").join(", ")})
     group by p.account, p.currency, e.entry_type`,
    [...entryTypes],
  );
  return rows.map((row) => ({
    account: String(row.account),
    currency: String(row.currency),
    entryType: String(row.entry_type),
    total: toBigInt(row.total),
  }));
}

/** How many journal entries there are. */
export async function countEntries(session: Session): Promise<number> {
  const rows: Array<Record<string, unknown>> = await entityManager(session).execute("select count(*) as n from journal_entry");
  return Number(toBigInt(rows[0]?.n));
}
