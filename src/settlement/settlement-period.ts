/**
 * Settlement dates and the periods they settle. Settlement date D (a calendar date in the
 * settlement time zone) settles [cut-off of day D - delay, cut-off of day D - delay + 1): with the
 * defaults (Asia/Shanghai, cut-off 00:00, T+1) D settles what became final on D - 1, China midnight
 * to midnight. Pure functions: the zone's offsets come from Intl, no floats, no libraries.
 */
import type { SettlementSchedule } from "../config.js";

/** When a settlement date's period starts (inclusive) and ends (exclusive). */
export interface SettlementPeriod {
  settlementDate: string;
  start: Date;
  end: Date;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

/** Whether `text` is a real calendar date `YYYY-MM-DD` (years 2000-9999). */
export function isSettlementDate(text: string): boolean {
  const match = DATE.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (year < 2000) return false;
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** `date` moved by `days` calendar days. */
export function addDays(date: string, days: number): string {
  const [year, month, day] = date.split("-").map(Number) as [number, number, number];
  return new Date(Date.UTC(year, month - 1, day) + days * DAY_MS).toISOString().slice(0, 10);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's wall-clock time at `instant`, as if it were UTC (milliseconds). */
function wallClock(instant: number, timeZone: string): number {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, format);
  }
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(new Date(instant))) if (part.type !== "literal") parts[part.type] = Number(part.value);
  const seconds = Math.floor(instant / 1000) * 1000;
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!) + (instant - seconds);
}

/**
 * The instant the zone's clock shows `minutes` past midnight of `date`; a time a DST jump skips is
 * moved forward by the gap (02:30 on a 02:00 → 03:00 night is 03:30), as JavaScript's Temporal does.
 */
function zonedInstant(date: string, minutes: number, timeZone: string): Date {
  const [year, month, day] = date.split("-").map(Number) as [number, number, number];
  const wanted = Date.UTC(year, month - 1, day) + minutes * 60_000;
  // Two rounds find the offset at the instant itself, also across a DST change.
  let guess = wanted - (wallClock(wanted, timeZone) - wanted);
  guess = wanted - (wallClock(guess, timeZone) - guess);
  // A wall-clock time the jump skips: move forward by the gap.
  const shown = wallClock(guess, timeZone);
  if (shown < wanted) guess += wanted - shown;
  return new Date(guess);
}

/** The period settlement date `date` settles. */
export function settlementPeriod(date: string, schedule: SettlementSchedule): SettlementPeriod {
  const day = addDays(date, -schedule.delayDays);
  return {
    settlementDate: date,
    start: zonedInstant(day, schedule.cutoffMinutes, schedule.timeZone),
    end: zonedInstant(addDays(day, 1), schedule.cutoffMinutes, schedule.timeZone),
  };
}

/** The latest settlement date whose period has ended at `now`: what the daily run settles. */
export function currentSettlementDate(now: Date, schedule: SettlementSchedule): string {
  // The zone's day on which the last cut-off passed; that cut-off ends the period of the day before.
  const shifted = wallClock(now.getTime(), schedule.timeZone) - schedule.cutoffMinutes * 60_000;
  let candidate = addDays(new Date(shifted).toISOString().slice(0, 10), schedule.delayDays - 1);
  // DST edges: step until the period has ended and the next one has not.
  while (settlementPeriod(candidate, schedule).end.getTime() > now.getTime()) candidate = addDays(candidate, -1);
  while (settlementPeriod(addDays(candidate, 1), schedule).end.getTime() <= now.getTime()) candidate = addDays(candidate, 1);
  return candidate;
}
