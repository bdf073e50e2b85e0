/** Settlement dates and their periods (src/settlement/settlement-period.ts): pure date arithmetic in a time zone. */
import { describe, expect, it } from "vitest";
import type { SettlementSchedule } from "../../src/config.js";
import { addDays, currentSettlementDate, isSettlementDate, settlementPeriod } from "../../src/settlement/settlement-period.js";

const CHINA_T1: SettlementSchedule = { timeZone: "Asia/Shanghai", cutoffMinutes: 0, delayDays: 1, scheduled: true, minSubmitAmount: 100n };

function period(date: string, schedule: SettlementSchedule = CHINA_T1) {
  const { start, end } = settlementPeriod(date, schedule);
  return [start.toISOString(), end.toISOString()];
}

describe("settlement periods", () => {
  it("with the defaults, date D settles D-1 from China midnight to China midnight", () => {
    expect(period("2026-12-02")).toEqual(["2026-11-30T16:00:00.000Z", "2026-12-01T16:00:00.000Z"]);
    expect(period("2026-01-01")).toEqual(["2025-12-30T16:00:00.000Z", "2025-12-31T16:00:00.000Z"]);
    expect(period("2028-03-01")).toEqual(["2028-02-28T16:00:00.000Z", "2028-02-29T16:00:00.000Z"]);
  });

  it("moves with the cut-off and the delay", () => {
    expect(period("2026-12-02", { ...CHINA_T1, cutoffMinutes: 22 * 60 + 30 })).toEqual(["2026-12-01T14:30:00.000Z", "2026-12-02T14:30:00.000Z"]);
    expect(period("2026-12-03", { ...CHINA_T1, delayDays: 2 })).toEqual(["2026-11-30T16:00:00.000Z", "2026-12-01T16:00:00.000Z"]);
    expect(period("2026-12-01", { ...CHINA_T1, delayDays: 0 })).toEqual(["2026-11-30T16:00:00.000Z", "2026-12-01T16:00:00.000Z"]);
  });

  it("follows daylight saving time: a 23-hour and a 25-hour day in New York, and a cut-off the jump skips", () => {
    const newYork = { ...CHINA_T1, timeZone: "America/New_York" };
    expect(period("2026-03-09", newYork)).toEqual(["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]);
    expect(period("2026-11-02", newYork)).toEqual(["2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"]);
    // 02:30 does not exist on 2026-03-08 in New York: the clock jumps from 02:00 to 03:00, so 03:30 EDT.
    expect(period("2026-03-09", { ...newYork, cutoffMinutes: 150 })[0]).toBe("2026-03-08T07:30:00.000Z");
  });

  it("makes the current settlement date the latest whose period has ended", () => {
    expect(currentSettlementDate(new Date("2026-12-01T15:59:59.999Z"), CHINA_T1)).toBe("2026-12-01");
    expect(currentSettlementDate(new Date("2026-12-01T16:00:00.000Z"), CHINA_T1)).toBe("2026-12-02");
    expect(currentSettlementDate(new Date("2026-12-02T05:37:00.000Z"), CHINA_T1)).toBe("2026-12-02");
    const late = { ...CHINA_T1, cutoffMinutes: 22 * 60, delayDays: 2 };
    const now = new Date("2026-12-02T05:37:00.000Z");
    const current = currentSettlementDate(now, late);
    expect(settlementPeriod(current, late).end.getTime()).toBeLessThanOrEqual(now.getTime());
    expect(settlementPeriod(addDays(current, 1), late).end.getTime()).toBeGreaterThan(now.getTime());
  });

  it("accepts only real calendar dates YYYY-MM-DD", () => {
    for (const good of ["2026-12-02", "2028-02-29", "2000-01-01"]) expect(isSettlementDate(good)).toBe(true);
    for (const bad of ["2026-02-29", "2026-13-01", "2026-12-32", "2026-1-2", "20261202", "1999-12-31", "", "2026-12-02T00:00"]) {
      expect(isSettlementDate(bad)).toBe(false);
    }
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(addDays("2026-03-01", -1)).toBe("2026-02-28");
  });
});
