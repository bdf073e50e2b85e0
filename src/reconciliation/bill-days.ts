/**
 * Which instants a channel's bill day covers. Alipay and WeChat Pay cut their bills at China-time
 * midnight (Asia/Shanghai, UTC+8 all year: no daylight saving); the card acquirer's balance
 * transactions are listed per UTC day. The simulator cuts its bills the same way
 * (src/simulator/{alipay,wechatpay}/*-bill.ts by China date, the card adapter by `created` in UTC).
 */
import type { ChannelName } from "../channels/channel.js";

const DAY_MS = 86_400_000;

/** Minutes east of UTC of each channel's bill day. */
const BILL_DAY_OFFSET_MINUTES: Readonly<Record<ChannelName, number>> = Object.freeze({ alipay: 480, wechatpay: 480, card: 0 });

/** Whether `text` is a real calendar date written `YYYY-MM-DD`. */
export function isCalendarDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

/** The instants [from, to) of the channel's bill day `billDate` (a calendar date, see {@link isCalendarDate}). */
export function billDayWindow(channel: ChannelName, billDate: string): { from: Date; to: Date } {
  const from = Date.parse(`${billDate}T00:00:00Z`) - BILL_DAY_OFFSET_MINUTES[channel] * 60_000;
  return { from: new Date(from), to: new Date(from + DAY_MS) };
}

/** The channel's bill date (`YYYY-MM-DD`) that `instant` falls on. */
export function billDateOf(channel: ChannelName, instant: Date): string {
  return new Date(instant.getTime() + BILL_DAY_OFFSET_MINUTES[channel] * 60_000).toISOString().slice(0, 10);
}
