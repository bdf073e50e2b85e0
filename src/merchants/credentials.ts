/**
 * Merchant credentials. API keys are 190 random bits, so a plain SHA-256 is a safe one-way
 * store (no salt or slow hash needed: there is nothing to brute-force) and lets us find the
 * merchant by an indexed lookup. Webhook secrets must be usable later to sign notifications, so
 * they are sealed with AES-256-GCM under the service's data key instead.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto";

const KEY_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function randomToken(length: number): string {
  // Rejection sampling keeps every character uniform (256 is not a multiple of 62).
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < 248 && out.length < length) out += KEY_ALPHABET[byte % 62];
    }
  }
  return out;
}

export function newApiKey(): string {
  return `sk_live_${randomToken(32)}`;
}

/**
 * Whether `token` has the shape of a merchant API key from {@link newApiKey}: a cheap test before
 * any lookup, and what tells a merchant credential from other tokens. Says nothing of validity.
 */
export function isApiKeyShaped(token: string): boolean {
  return /^sk_live_[0-9A-Za-z]{32}$/.test(token);
}

export function newWebhookSecret(): string {
  return `whsec_${randomToken(32)}`;
}

export function hashApiKey(apiKey: string): string {
  return createHash("sha256").update(apiKey).digest("hex");
}

/** Constant-time comparison of two secrets of any length (compares their SHA-256 digests). */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Seals and opens small secrets with AES-256-GCM; the key is derived from the data key text. */
export class SecretBox {
  private readonly key: Buffer;
  constructor(dataKey: string) {
    this.key = createHash("sha256").update(`payments-secret-box:${dataKey}`).digest();
  }
  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return `v1.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")}`;
  }
  open(sealed: string): string {
    if (!sealed.startsWith("v1.")) throw new Error("unknown sealed secret format");
    const raw = Buffer.from(sealed.slice(3), "base64");
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  }
}
