/**
 * The card acquirer's webhook signature (Stripe's scheme): `Stripe-Signature: t=<unix>,v1=<hex>`,
 * where v1 = hex(HMAC-SHA256(endpoint secret, `${t}.${raw body}`)). During a secret rotation the
 * acquirer sends one `v1` per active secret; other schemes (`v0`) are ignored. Verification never
 * throws on malformed input: it answers with a reason.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** How far `t` may be from our clock, either way, before a correctly signed event is refused. */
export const CARD_WEBHOOK_TOLERANCE_SECONDS = 300;

/** Why a signature was refused; also the {@link CallbackRejectedError} reason. */
export type CardSignatureFailure = "missing_signature" | "bad_signature" | "stale_timestamp";

export type CardSignatureVerdict = { ok: true; timestamp: number } | { ok: false; reason: CardSignatureFailure };

export interface CardSignatureOptions {
  /** Milliseconds since the epoch, like `Date.now` (the default); injected by tests. */
  now?: () => number;
  toleranceSeconds?: number;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const UNIX_SECONDS = /^\d{1,12}$/;

/** hex(HMAC-SHA256(secret, `${t}.` + rawBody)), over the body's exact bytes. */
export function computeCardWebhookSignature(secret: string, rawBody: Buffer | string, t: number | string): string {
  return createHmac("sha256", secret).update(`${t}.`, "utf8").update(rawBody).digest("hex");
}

/** The `Stripe-Signature` header value for `rawBody` signed at unix time `t` (seconds). */
export function signCardWebhook(secret: string, rawBody: Buffer | string, t: number): string {
  return `t=${t},v1=${computeCardWebhookSignature(secret, rawBody, t)}`;
}

/**
 * Checks a `Stripe-Signature` header against the raw body: some `v1` must match in constant time,
 * then `t` must be within the tolerance. The signature is checked first so that `stale_timestamp`
 * only ever describes a genuine event (a clock or replay problem), never a forgery.
 */
export function verifyCardWebhookSignature(
  secret: string,
  rawBody: Buffer,
  header: string | undefined,
  options: CardSignatureOptions = {},
): CardSignatureVerdict {
  if (header === undefined || header.trim() === "") return { ok: false, reason: "missing_signature" };

  let timestampText: string | undefined;
  const candidates: Buffer[] = [];
  for (const element of header.split(",")) {
    const separator = element.indexOf("=");
    if (separator < 0) continue;
    const scheme = element.slice(0, separator).trim();
    const value = element.slice(separator + 1).trim();
    if (scheme === "t") {
      // Two different timestamps would leave it ambiguous which one was signed.
      if (timestampText !== undefined && timestampText !== value) return { ok: false, reason: "bad_signature" };
      timestampText = value;
    } else if (scheme === "v1" && SHA256_HEX.test(value)) {
      candidates.push(Buffer.from(value, "hex"));
    }
  }
  if (timestampText === undefined || !UNIX_SECONDS.test(timestampText) || candidates.length === 0) {
    return { ok: false, reason: "bad_signature" };
  }

  // The signed text is the header's own `t`, exactly as sent.
  const expected = Buffer.from(computeCardWebhookSignature(secret, rawBody, timestampText), "hex");
  let matched = false;
  for (const candidate of candidates) {
    // Every candidate is compared, so the time taken does not say which one matched.
    if (timingSafeEqual(candidate, expected)) matched = true;
  }
  if (!matched) return { ok: false, reason: "bad_signature" };

  const timestamp = Number(timestampText);
  const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000);
  const tolerance = options.toleranceSeconds ?? CARD_WEBHOOK_TOLERANCE_SECONDS;
  if (Math.abs(nowSeconds - timestamp) > tolerance) return { ok: false, reason: "stale_timestamp" };
  return { ok: true, timestamp };
}
