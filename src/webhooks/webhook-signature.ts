/**
 * The `Payments-Signature` header of a webhook delivery: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">`, with one `v1` per secret that signs (the new one first and, during a rotation's
 * overlap, the previous one after it). The receiver checks any `v1` against its secret over the raw
 * bytes it received (examples/verify-webhook.mjs) and refuses old `t` values (replays).
 */
import { createHmac } from "node:crypto";

/** The header's value for `body` signed at `timestampSeconds` with each of `secrets`, in order. */
export function signatureHeader(body: Buffer, secrets: readonly string[], timestampSeconds: number): string {
  const t = String(Math.floor(timestampSeconds));
  const signatures = secrets.map((secret) => `v1=${createHmac("sha256", secret).update(`${t}.`).update(body).digest("hex")}`);
  return [`t=${t}`, ...signatures].join(",");
}
