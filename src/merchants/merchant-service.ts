/** Merchant administration and API-key authentication. */
import type { Session } from "../db/unit-of-work.js";
import { NotFoundError, PreconditionError, UnauthenticatedError, Violations } from "../errors.js";
import { newId } from "../ids.js";
import { checkPrintable } from "../input-text.js";
import { type NotifyUrlPolicy, STRICT_NOTIFY_URL_POLICY, validateNotifyUrl } from "../notifications/notify-url.js";
import { CredentialCache } from "./credential-cache.js";
import { hashApiKey, newApiKey, newWebhookSecret, type SecretBox } from "./credentials.js";
import type { MerchantRow } from "./merchant-entity.js";
import { findByApiKeyHash, findMerchant, insertMerchant, replaceApiKey, replaceWebhookSecret } from "./merchant-store.js";

export interface CreatedMerchant {
  merchant: MerchantRow;
  apiKey: string;
  webhookSecret: string;
}

/** How API-key lookups are cached; see {@link CredentialCache}. */
export interface ApiKeyCacheOptions {
  /** `config.apiKeyCacheTtlMs`: how long a looked-up key is trusted; 0 (the default here) reads on every call. */
  apiKeyCacheTtlMs?: number;
}

/**
 * Merchant administration. `notifyUrls` is the policy for merchants' notify URLs (`config.notifyUrls`);
 * without one only public https URLs are accepted.
 */
export function createMerchantService(
  secretBox: SecretBox,
  notifyUrls: NotifyUrlPolicy = STRICT_NOTIFY_URL_POLICY,
  cacheOptions: ApiKeyCacheOptions = {},
) {
  const apiKeys = new CredentialCache<MerchantRow>({ ttlMs: cacheOptions.apiKeyCacheTtlMs ?? 0 });
  return {
    async createMerchant(session: Session, input: { name: string; notifyUrl: string }): Promise<CreatedMerchant> {
      const violations = new Violations();
      const name = input.name.trim();
      if (name.length === 0) violations.add("name", "REQUIRED", "is required");
      else if (name.length > 128) violations.add("name", "TOO_LONG", "must be at most 128 characters");
      else checkPrintable(violations, "name", name);
      validateNotifyUrl(violations, "notify_url", input.notifyUrl, notifyUrls);
      violations.throwIfAny();

      const apiKey = newApiKey();
      const webhookSecret = newWebhookSecret();
      const now = new Date();
      const merchant: MerchantRow = {
        id: newId(),
        name,
        notifyUrl: input.notifyUrl,
        apiKeyHash: hashApiKey(apiKey),
        apiKeyPrefix: apiKey.slice(0, 12),
        webhookSecretSealed: secretBox.seal(webhookSecret),
        previousWebhookSecretSealed: null,
        previousWebhookSecretExpiresAt: null,
        createdAt: now,
        updatedAt: now,
      };
      await insertMerchant(session, merchant);
      return { merchant, apiKey, webhookSecret };
    },

    async getMerchant(session: Session, merchantId: string): Promise<MerchantRow> {
      const merchant = await findMerchant(session, merchantId);
      if (!merchant) throw new NotFoundError("MERCHANT_NOT_FOUND", `merchant ${merchantId} not found`);
      return merchant;
    },

    async rotateApiKey(session: Session, merchantId: string): Promise<{ merchant: MerchantRow; apiKey: string }> {
      const apiKey = newApiKey();
      const changes = { apiKeyHash: hashApiKey(apiKey), apiKeyPrefix: apiKey.slice(0, 12), updatedAt: new Date() };
      let replaced: boolean;
      try {
        replaced = await replaceApiKey(session, merchantId, changes);
      } finally {
        // This replica stops accepting the old key at once; the others within their cache's TTL.
        apiKeys.forgetMerchant(merchantId);
      }
      if (!replaced) throw new NotFoundError("MERCHANT_NOT_FOUND", `merchant ${merchantId} not found`);
      return { merchant: await this.getMerchant(session, merchantId), apiKey };
    },

    /**
     * Gives the merchant a new webhook secret (returned only here). The current one becomes the
     * previous secret and keeps signing deliveries beside the new one for `overlapSeconds`; a
     * secret that was still overlapping from an earlier rotation stops signing now.
     */
    async rotateWebhookSecret(
      session: Session,
      merchantId: string,
      overlapSeconds: number,
    ): Promise<{ merchant: MerchantRow; webhookSecret: string; previousSecretExpiresAt: Date }> {
      const merchant = await this.getMerchant(session, merchantId);
      const webhookSecret = newWebhookSecret();
      const now = new Date();
      const previousSecretExpiresAt = new Date(now.getTime() + overlapSeconds * 1000);
      const replaced = await replaceWebhookSecret(session, merchantId, merchant.webhookSecretSealed, {
        webhookSecretSealed: secretBox.seal(webhookSecret),
        previousWebhookSecretSealed: merchant.webhookSecretSealed,
        previousWebhookSecretExpiresAt: previousSecretExpiresAt,
        updatedAt: now,
      });
      if (!replaced) {
        throw new PreconditionError("CONCURRENT_ROTATION", `the webhook secret of merchant ${merchantId} was rotated meanwhile; try again`);
      }
      return { merchant: await this.getMerchant(session, merchantId), webhookSecret, previousSecretExpiresAt };
    },

    /**
     * The merchant whose API key hashes to `apiKeyHash` ({@link hashApiKey}); UNAUTHENTICATED for an
     * unknown key. A key found is trusted for the cache's TTL without another read; an unknown key is
     * read again on every call.
     */
    async authenticateKeyHash(session: Session, apiKeyHash: string): Promise<MerchantRow> {
      const merchant = await apiKeys.get(apiKeyHash, async () => {
        const found = await findByApiKeyHash(session, apiKeyHash);
        // Frozen: one cached row is handed to many calls.
        return found && { value: Object.freeze(found), merchantId: found.id };
      });
      if (!merchant) throw new UnauthenticatedError("invalid API key");
      return merchant;
    },
  };
}

export type MerchantService = ReturnType<typeof createMerchantService>;
