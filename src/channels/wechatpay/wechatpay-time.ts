/**
 * WeChat Pay writes API times as RFC 3339 (`2024-01-01T08:00:00+08:00`) and bill times as
 * `yyyy-MM-dd HH:mm:ss` in China time (UTC+8, no daylight saving). These helpers convert exactly,
 * whatever the host's time zone.
 */

const CHINA_OFFSET_MS = 8 * 60 * 60 * 1000;

function chinaWallClock(date: Date): string {
  return new Date(date.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 19);
}

/** `2024-01-01T00:00:00Z` → `"2024-01-01T08:00:00+08:00"`. Milliseconds are dropped. */
export function toWechatTime(date: Date): string {
  return `${chinaWallClock(date)}+08:00`;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 time with an explicit offset; undefined for anything else. */
export function parseWechatTime(text: unknown): Date | undefined {
  if (typeof text !== "string" || !RFC3339.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** `2024-01-01T00:00:00Z` → `"2024-01-01 08:00:00"`, as the trade bill writes it. */
export function toWechatBillTime(date: Date): string {
  return chinaWallClock(date).replace("T", " ");
}

const BILL_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** Parses a bill time (`yyyy-MM-dd HH:mm:ss`, China time); undefined for anything else, including impossible dates. */
export function parseWechatBillTime(text: string): Date | undefined {
  const match = BILL_TIME.exec(text);
  if (!match) return undefined;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = match.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second) - CHINA_OFFSET_MS);
  return toWechatBillTime(date) === text ? date : undefined;
}
