/** Merchant administration and API-key authentication. */
import type { Session } from "../db/unit-of-work.js";
import { NotFoundError, UnauthenticatedError, Violations } from "../errors.js";
import { newId } from "../ids.js";
import { checkPrintable } from "../input-text.js";
import { type NotifyUrlPolicy, STRICT_NOTIFY_URL_POLICY, validateNotifyUrl } from "../notifications/notify-url.js";
import { hashApiKey, newApiKey, newWebhookSecret, type SecretBox } from "./credentials.js";
import type { MerchantRow } from "./merchant-entity.js";
import { findByApiKeyHash, findMerchant, insertMerchant, replaceApiKey } from "./merchant-store.js";

export interface CreatedMerchant {
  merchant: MerchantRow;
  apiKey: string;
  webhookSecret: string;
}

/**
 * Merchant administration. `notifyUrls` is the policy for merchants' notify URLs (`config.notifyUrls`);
 * without one only public https URLs are accepted.
 */
export function createMerchantService(secretBox: SecretBox, notifyUrls: NotifyUrlPolicy = STRICT_NOTIFY_URL_POLICY) {
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
      if (!(await replaceApiKey(session, merchantId, changes))) throw new NotFoundError("MERCHANT_NOT_FOUND", `merchant ${merchantId} not found`);
      return { merchant: await this.getMerchant(session, merchantId), apiKey };
    },

    /** The merchant owning `apiKey`; UNAUTHENTICATED for an unknown key. */
    async authenticate(session: Session, apiKey: string): Promise<MerchantRow> {
      // Every call reads the database (no cache), so a rotated key stops working at once on every replica.
      const merchant = await findByApiKeyHash(session, hashApiKey(apiKey));
      if (!merchant) throw new UnauthenticatedError("invalid API key");
      return merchant;
    },
  };
}

export type MerchantService = ReturnType<typeof createMerchantService>;
