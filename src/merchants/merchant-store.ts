/** The merchant store: every statement on `merchant`. */
import { findRow } from "../db/rows.js";
import { entityManager, rowExecutor } from "../db/store-access.js";
import type { Session } from "../db/unit-of-work.js";
import type { PageRequest } from "../pagination.js";
import { Merchant, type MerchantRow } from "./merchant-entity.js";

export async function insertMerchant(session: Session, merchant: MerchantRow): Promise<void> {
  await entityManager(session).insert(Merchant, merchant);
}

export async function findMerchant(session: Session, merchantId: string): Promise<MerchantRow | undefined> {
  return (await entityManager(session).findOne(Merchant, { id: merchantId }, { disableIdentityMap: true })) ?? undefined;
}

/** The merchant whose API key hashes to this; a prepared row statement, since every merchant call makes it. */
export function findByApiKeyHash(session: Session, apiKeyHash: string): Promise<MerchantRow | undefined> {
  return findRow<MerchantRow>(rowExecutor(session), Merchant, { apiKeyHash });
}

/** Replaces the merchant's API key; resolves with whether the merchant exists. */
export async function replaceApiKey(
  session: Session,
  merchantId: string,
  key: Pick<MerchantRow, "apiKeyHash" | "apiKeyPrefix" | "updatedAt">,
): Promise<boolean> {
  return (await entityManager(session).nativeUpdate(Merchant, { id: merchantId }, key)) === 1;
}

/**
 * Replaces the merchant's webhook secret, only if the current one is still `currentSealed` (two
 * rotations at once cannot both keep the same previous secret); resolves with whether it did.
 */
export async function replaceWebhookSecret(
  session: Session,
  merchantId: string,
  currentSealed: string,
  secrets: Pick<MerchantRow, "webhookSecretSealed" | "previousWebhookSecretSealed" | "previousWebhookSecretExpiresAt" | "updatedAt">,
): Promise<boolean> {
  return (await entityManager(session).nativeUpdate(Merchant, { id: merchantId, webhookSecretSealed: currentSealed }, secrets)) === 1;
}

/** A page of merchants, newest first (the admin console). */
export function listMerchants(session: Session, page: PageRequest): Promise<MerchantRow[]> {
  const where = page.afterId ? { id: { $lt: page.afterId } } : {};
  return entityManager(session).find(Merchant, where, { orderBy: { id: "desc" }, limit: page.limit, disableIdentityMap: true });
}
