// Verifies a webhook from the payment service. Pass the raw request body (a Buffer or string,
// exactly as received, before any JSON parsing), the Payments-Signature header and your webhook
// secret; returns true when one v1 signature matches and the timestamp is at most 5 minutes old.
import { createHmac, timingSafeEqual } from "node:crypto";

export function verifyWebhook(rawBody, signatureHeader, secret, toleranceSeconds = 300, nowSeconds = Date.now() / 1000) {
  const parts = String(signatureHeader ?? "").split(",").map((part) => part.split("="));
  const t = parts.find(([key]) => key === "t")?.[1];
  if (!t || !/^\d+$/.test(t) || Math.abs(nowSeconds - Number(t)) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${t}.`).update(rawBody).digest();
  return parts.some(([key, value]) => {
    if (key !== "v1" || !/^[0-9a-f]{64}$/.test(value ?? "")) return false;
    return timingSafeEqual(Buffer.from(value, "hex"), expected);
  });
}
