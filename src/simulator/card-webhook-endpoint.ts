/**
 * The acquirer sends events to the webhook endpoints registered on the account (there is no
 * per-payment notify URL). In development the simulator plays the acquirer, so whoever points the
 * service at it registers the shim's card route once, as an operator would in the dashboard.
 */
import { randomUUID } from "node:crypto";

export async function registerCardWebhookEndpoint(simulatorUrl: string, secretKey: string, callbackUrl: string): Promise<void> {
  const response = await fetch(`${simulatorUrl}/card/v1/webhook_endpoints`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${secretKey}`,
      "content-type": "application/x-www-form-urlencoded",
      "idempotency-key": `endpoint-${randomUUID()}`,
    },
    body: new URLSearchParams({ url: callbackUrl, "enabled_events[]": "*" }).toString(),
  });
  if (!response.ok) throw new Error(`registering the card webhook endpoint failed: HTTP ${response.status}`);
}
