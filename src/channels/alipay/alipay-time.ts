/**
 * Alipay writes times as `yyyy-MM-dd HH:mm:ss` in China time (UTC+8, no daylight saving) and
 * dates as `yyyy-MM-dd`. These helpers convert exactly, whatever the host's time zone.
 */

const CHINA_OFFSET_MS = 8 * 60 * 60 * 1000;

/** `2024-01-01T00:00:00Z` → `"2024-01-01 08:00:00"`. Milliseconds are dropped. */
export function toAlipayTime(date: Date): string {
  return new Date(date.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 19).replace("T", " ");
}

/** The China calendar date of `date`: `2024-01-01T20:00:00Z` → `"2024-01-02"`. */
export function toAlipayDate(date: Date): string {
  return toAlipayTime(date).slice(0, 10);
}

const TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** Parses `yyyy-MM-dd HH:mm:ss` China time; undefined for anything else (including impossible dates). */
export function parseAlipayTime(text: string | undefined | null): Date | undefined {
  if (typeof text !== "string") return undefined;
  const trimmed = text.trim();
  const match = TIME.exec(trimmed);
  if (!match) return undefined;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = match.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second) - CHINA_OFFSET_MS);
  return toAlipayTime(date) === trimmed ? date : undefined;
}
