/**
 * What the callback log keeps of a request, bounded per row. Anyone can post to the callback
 * routes, so an unverified request keeps only what identifies it: the SHA-256 and length of its
 * body, a 512-byte excerpt and a few known headers, capped. A verified one keeps the body as the
 * channel sent it (audit: "what did the channel tell us?") with secrets replaced, e.g. the card
 * acquirer's `client_secret`, which would let anyone holding it confirm the payment.
 *
 * WeChat Pay bodies are kept as received: the resource stays encrypted under the APIv3 key (which is
 * never stored here), and the signed bytes with the `wechatpay-*` headers can be verified again later.
 */
import { createHash } from "node:crypto";
import type { ChannelName } from "../channels/channel.js";

/** Bytes of an unverified body kept, cut back to a UTF-8 character boundary. */
export const UNVERIFIED_EXCERPT_BYTES = 512;
/** At most this much of a verified body is kept (real notifications are 1-4 KiB; the column holds 64 KiB). */
export const MAX_STORED_BODY_BYTES = 32 * 1024;
/** Headers kept, when present. Signatures and timestamps are evidence, not secrets. */
export const STORED_HEADER_NAMES: readonly string[] = [
  "content-type",
  "content-length",
  "user-agent",
  "x-request-id",
  "stripe-signature",
  "wechatpay-serial",
  "wechatpay-signature",
  "wechatpay-signature-type",
  "wechatpay-timestamp",
  "wechatpay-nonce",
];
/** Longest header value kept: verified / unverified. */
export const VERIFIED_HEADER_VALUE_CHARS = 1024;
export const UNVERIFIED_HEADER_VALUE_CHARS = 256;
/** The whole header map of an unverified row, as JSON, stays under this. */
export const UNVERIFIED_HEADERS_JSON_CHARS = 1024;

export const REDACTED = "[redacted]";

/** `excerpt`: the first bytes of the body; `redacted`: the whole verified body, secrets replaced. */
export type BodyForm = "excerpt" | "redacted";

export interface StoredBody {
  body: Buffer;
  form: BodyForm;
  sha256: string;
  bytes: number;
}

/** The first `limit` bytes of `bytes`, without splitting a UTF-8 character. */
export function utf8Prefix(bytes: Buffer, limit: number): Buffer {
  if (bytes.length <= limit) return Buffer.from(bytes);
  let end = limit;
  // A continuation byte (10xxxxxx) at the cut means a character starts before it: leave it out.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return Buffer.from(bytes.subarray(0, end));
}

/** A field name whose value is a credential. */
export function isSecretName(name: string): boolean {
  return /secret|password|passwd|private_?key|api_?v3_?key|api_?key|access_?token|authorization|cookie/i.test(name);
}

/** A value that is a credential whatever its field: card client secrets look like `pi_..._secret_...`. */
function isSecretValue(value: string): boolean {
  return /_secret_/i.test(value);
}

const BACKSLASH = 0x5c;
/** `{`, `[` and `,`: after any of them a string is not the value of the key before. */
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const COMMA = 0x2c;

/** Where the string token opening at `start` (a quote) ends: its closing quote, or the text's end. */
function stringTokenEnd(text: string, start: number): number {
  let j = start + 1;
  for (;;) {
    const close = text.indexOf('"', j);
    if (close === -1) return text.length;
    // Escaped when an odd run of backslashes comes right before it.
    let backslashes = 0;
    while (close - backslashes - 1 > start && text.charCodeAt(close - backslashes - 1) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return close;
    j = close + 1;
  }
}

/**
 * JSON text with every string value under a secret name (or that looks like a client secret)
 * replaced by "[redacted]"; all other bytes stay as they were, so numbers keep their precision.
 * Tolerates text that is not JSON: only string tokens are touched. It jumps from quote to quote and
 * decodes only tokens with escapes (the name and secret tests match the same either way); it runs
 * on every verified callback.
 */
export function redactJsonText(text: string): string {
  let out = "";
  let pos = 0;
  let key: string | undefined;
  let expectingValue = false;
  let i = 0;
  while (i < text.length) {
    const quote = text.indexOf('"', i);
    const gapEnd = quote === -1 ? text.length : quote;
    for (let g = i; expectingValue && g < gapEnd; g++) {
      const code = text.charCodeAt(g);
      if (code === OPEN_BRACE || code === OPEN_BRACKET || code === COMMA) expectingValue = false;
    }
    if (quote === -1) break;
    const end = stringTokenEnd(text, quote);
    let k = end + 1;
    while (k < text.length && /\s/.test(text[k]!)) k++;
    const decoded = decodeToken(text, quote, end);
    if (text.charCodeAt(k) === 0x3a) {
      key = decoded;
      expectingValue = true;
    } else {
      if ((expectingValue && key !== undefined && isSecretName(key)) || isSecretValue(decoded)) {
        out += `${text.slice(pos, quote)}"${REDACTED}"`;
        pos = end + 1;
      }
      expectingValue = false;
    }
    i = end + 1;
  }
  return out + text.slice(pos);
}

/** A string token's value: its characters when it has no escapes, else JSON's decoding (the raw token when that fails). */
function decodeToken(text: string, start: number, end: number): string {
  const inner = text.slice(start + 1, end);
  if (end < text.length && inner.indexOf("\\") === -1) return inner;
  const token = text.slice(start, end + 1);
  try {
    return JSON.parse(token) as string;
  } catch {
    return token;
  }
}

/** A form-urlencoded body with the values of secret names (or client-secret-like values) replaced. */
export function redactFormText(text: string): string {
  return text
    .split("&")
    .map((pair) => {
      const at = pair.indexOf("=");
      if (at === -1) return pair;
      const decode = (part: string) => {
        try {
          return decodeURIComponent(part.replace(/\+/g, " "));
        } catch {
          return part;
        }
      };
      const name = decode(pair.slice(0, at));
      const value = decode(pair.slice(at + 1));
      return isSecretName(name) || isSecretValue(value) ? `${pair.slice(0, at)}=${encodeURIComponent(REDACTED)}` : pair;
    })
    .join("&");
}

/**
 * A body (or an excerpt of one) with secrets replaced: Alipay posts a form, WeChat Pay and the card
 * acquirer JSON. The same bytes when there is nothing to replace.
 */
export function redactBody(channel: ChannelName, body: Buffer): Buffer {
  const text = body.toString("utf8");
  const redacted = channel === "alipay" ? redactFormText(text) : redactJsonText(text);
  return redacted === text ? body : Buffer.from(redacted, "utf8");
}

/**
 * What is stored of a body: verified → redacted (capped), unverified → a redacted excerpt. Excerpts
 * are redacted too: a genuine event fails verification when the webhook secret is misconfigured.
 */
export function storedBody(channel: ChannelName, rawBody: Buffer, verified: boolean): StoredBody {
  const sha256 = createHash("sha256").update(rawBody).digest("hex");
  const bytes = rawBody.length;
  if (!verified) {
    const excerpt = redactBody(channel, utf8Prefix(rawBody, UNVERIFIED_EXCERPT_BYTES));
    return { body: utf8Prefix(excerpt, UNVERIFIED_EXCERPT_BYTES), form: "excerpt", sha256, bytes };
  }
  const redacted = redactBody(channel, rawBody);
  if (redacted.length > MAX_STORED_BODY_BYTES) {
    return { body: utf8Prefix(redacted, MAX_STORED_BODY_BYTES), form: "excerpt", sha256, bytes };
  }
  return { body: redacted === rawBody ? Buffer.from(rawBody) : redacted, form: "redacted", sha256, bytes };
}

/** The headers kept: known names only, values capped, and for unverified requests a cap on the whole. */
export function storedHeaders(headers: Readonly<Record<string, string | undefined>>, verified: boolean): Record<string, string> {
  const valueCap = verified ? VERIFIED_HEADER_VALUE_CHARS : UNVERIFIED_HEADER_VALUE_CHARS;
  const kept: Record<string, string> = {};
  let size = 2;
  for (const name of STORED_HEADER_NAMES) {
    const value = headers[name];
    if (value === undefined) continue;
    const capped = value.slice(0, valueCap);
    const cost = JSON.stringify(name).length + JSON.stringify(capped).length + 2;
    if (!verified && size + cost > UNVERIFIED_HEADERS_JSON_CHARS) break;
    kept[name] = capped;
    size += cost;
  }
  return kept;
}
