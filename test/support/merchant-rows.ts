/** A merchant row to insert directly, for tests of the row layer that need some real table to write. */
import { newId } from "../../src/ids.js";
import type { MerchantRow } from "../../src/merchants/merchant-entity.js";

export function newMerchantRow(name = "Test Shop"): MerchantRow {
  const id = newId();
  return {
    id,
    name,
    notifyUrl: "",
    apiKeyHash: id.padEnd(64, "0").toLowerCase(),
    apiKeyPrefix: "sk_live_test",
    webhookSecretSealed: "sealed",
    previousWebhookSecretSealed: null,
    previousWebhookSecretExpiresAt: null,
    createdAt: new Date(),
    updatedAt: new Date(),
  };
}
