import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/** A merchant. Its API key is stored as a SHA-256 hash, its webhook secret encrypted. */
export const Merchant = defineEntity({
  name: "Merchant",
  tableName: "merchant",
  properties: {
    id: p.string().length(26).primary(),
    name: p.string().length(128),
    notifyUrl: p.string().length(512),
    apiKeyHash: p.string().length(64).unique(),
    apiKeyPrefix: p.string().length(16),
    webhookSecretSealed: p.string().length(255),
    /** The secret before the last rotation, still signing deliveries (a second `v1`) until `previousWebhookSecretExpiresAt`. */
    previousWebhookSecretSealed: p.string().length(255).nullable(),
    previousWebhookSecretExpiresAt: p.datetime(3).nullable(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
});
export type MerchantRow = InferEntity<typeof Merchant>;
