/**
 * Rules for caller text that is stored, logged or sent to a channel, and for identifiers used as
 * lookups. Control characters have no business in a subject, a name or an id: a U+0000 made the
 * embedded database fail with INTERNAL, and newlines or escape sequences forge log lines and
 * confuse the merchant's and the channel's screens. Checked at the edge with a field violation.
 */
import type { Violations } from "./errors.js";

/** C0 controls (tab and newline included), DEL, C1 controls, and UTF-16 surrogates without their pair. */
const UNSAFE_CHARACTERS = "[\\u0000-\\u001F\\u007F-\\u009F]|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]";
const UNSAFE_CHARACTER = new RegExp(UNSAFE_CHARACTERS);
const EVERY_UNSAFE_CHARACTER = new RegExp(UNSAFE_CHARACTERS, "g");

/** True when `text` holds a control character or an unpaired surrogate. */
function hasUnsafeCharacters(text: string): boolean {
  return UNSAFE_CHARACTER.test(text);
}

/**
 * Caller text made safe to quote in an answer: cut to `maxChars` (with "\u2026"), and control
 * characters and unpaired surrogates shown as U+FFFD.
 */
export function echoable(text: string, maxChars: number): string {
  // Cut first: the replacement then only ever scans a short string.
  const cut = text.length > maxChars ? `${text.slice(0, maxChars - 1)}\u2026` : text;
  return cut.replace(EVERY_UNSAFE_CHARACTER, "\uFFFD");
}

/** Adds a violation when `text` holds a control character; returns whether the text is clean. */
export function checkPrintable(violations: Violations, field: string, text: string): boolean {
  if (!hasUnsafeCharacters(text)) return true;
  violations.add(field, "CONTROL_CHARACTERS", "must not contain control characters or unpaired surrogates");
  return false;
}

/**
 * Ids this service hands out (ULIDs) and names callers choose for their objects fit this; anything
 * else cannot exist, so it is refused before the database is asked.
 */
const LOOKUP_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Adds a violation unless `id` is 1-64 characters of A-Z a-z 0-9 _ -; returns whether it is. */
export function checkLookupId(violations: Violations, field: string, id: string): boolean {
  if (id === "") {
    violations.add(field, "REQUIRED", "is required");
    return false;
  }
  if (LOOKUP_ID.test(id)) return true;
  if (hasUnsafeCharacters(id)) checkPrintable(violations, field, id);
  else violations.add(field, "INVALID_FORMAT", "must be 1-64 characters of A-Z a-z 0-9 _ -");
  return false;
}

/** Page tokens are base64url text; a cap keeps a megabyte "token" from being decoded and parsed. */
const PAGE_TOKEN = /^[A-Za-z0-9_-]{0,512}$/;

/** Adds a violation unless `token` is empty or base64url text of at most 512 characters. */
export function checkPageToken(violations: Violations, field: string, token: string): boolean {
  if (PAGE_TOKEN.test(token)) return true;
  if (hasUnsafeCharacters(token)) checkPrintable(violations, field, token);
  else violations.add(field, "INVALID_PAGE_TOKEN", "is not a token from this listing");
  return false;
}
