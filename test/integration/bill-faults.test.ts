/**
 * The simulator's bill faults, each seen through the adapters' fetchBill over real HTTP, for the
 * three bill formats: a trade's line left out, its amount or fee one minor unit more, an extra line
 * for a trade that never existed, a file cut mid-line, and (WeChat Pay) a wrong SHA1. Also: a past
 * day's bill is made from the trades (here none), and the bill days are China days for Alipay and
 * WeChat Pay, UTC days for the card acquirer.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAlipayChannel } from "../../src/channels/alipay/alipay-channel.js";
import { toAlipayDate } from "../../src/channels/alipay/alipay-time.js";
import { createCardChannel } from "../../src/channels/card/card-channel.js";
import { BillFormatError, type BillRecord, type ChannelName, type PaymentChannel } from "../../src/channels/channel.js";
import { closeHttpAgents } from "../../src/channels/http-client.js";
import { createWechatPayChannel } from "../../src/channels/wechatpay/wechatpay-channel.js";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { billRecords } from "../support/bill-records.js";
import { testKeys } from "../support/test-app.js";

let simulator: Simulator;
let sequence = 0;
const channels = {} as Record<ChannelName, PaymentChannel>;

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: "bill-faults-test-control-token" });
  const keys = testKeys();
  channels.alipay = createAlipayChannel({
    gatewayUrl: `${simulator.channelUrls.alipay}/gateway.do`,
    appId: keys.alipay.appId,
    appPrivateKeyPem: keys.alipay.appPrivateKeyPem,
    alipayPublicKeyPem: keys.alipay.alipayPublicKeyPem,
    sellerId: keys.alipay.sellerId,
  });
  channels.wechatpay = createWechatPayChannel({ ...keys.wechatpay, baseUrl: simulator.channelUrls.wechatpay });
  channels.card = createCardChannel({ baseUrl: simulator.channelUrls.card, secretKey: keys.card.secretKey, webhookSecret: keys.card.webhookSecret });
});
afterEach(() => simulator.clearFaults());
afterAll(async () => {
  await simulator?.close();
  closeHttpAgents();
});

const CURRENCY: Record<ChannelName, string> = { alipay: "CNY", wechatpay: "CNY", card: "USD" };

/** A trade paid at the simulator; returns its payment number and its bill date (China day, or UTC day for the card acquirer). */
async function paidTrade(channel: ChannelName, amountMinor: bigint): Promise<{ paymentNo: string; billDate: string }> {
  const paymentNo = `BF${channel.slice(0, 2).toUpperCase()}${Date.now()}${String(++sequence).padStart(4, "0")}`;
  await channels[channel].createPayment({
    paymentNo,
    amountMinor,
    currency: CURRENCY[channel],
    subject: "bill fault test",
    expiresAt: new Date(Date.now() + 600_000),
    notifyUrl: "http://127.0.0.1:9/none",
    idempotencyKey: paymentNo,
    ...(channel === "card" ? { paymentMethodToken: "pm_card_visa" } : {}),
  });
  simulator.pay(channel, paymentNo);
  const paidAt = new Date(simulator.getTrade(channel, paymentNo)?.paidAt as string);
  return { paymentNo, billDate: channel === "card" ? paidAt.toISOString().slice(0, 10) : toAlipayDate(paidAt) };
}

function linesOf(records: BillRecord[], paymentNo: string): BillRecord[] {
  return records.filter((record) => record.paymentNo === paymentNo);
}

describe.each(["alipay", "wechatpay", "card"] as const)("%s bill faults", (channel) => {
  it("billOmitLine, billAlterAmount and billAlterFee change only their own trade's line", async () => {
    const plain = await paidTrade(channel, 10_000n);
    const omitted = await paidTrade(channel, 10_000n);
    const altered = await paidTrade(channel, 20_000n);
    const feeAltered = await paidTrade(channel, 30_000n);
    const before = await billRecords(channels[channel].fetchBill(plain.billDate));
    const fee = (paymentNo: string) => linesOf(before, paymentNo)[0]?.feeMinor as bigint;

    simulator.setFaults({ channel, outTradeNo: omitted.paymentNo, faults: { billOmitLine: true } });
    simulator.setFaults({ channel, outTradeNo: altered.paymentNo, faults: { billAlterAmount: true } });
    simulator.setFaults({ channel, outTradeNo: feeAltered.paymentNo, faults: { billAlterFee: true } });
    const after = await billRecords(channels[channel].fetchBill(plain.billDate));

    expect(linesOf(after, plain.paymentNo)).toEqual(linesOf(before, plain.paymentNo).map((record) => ({ ...record, line: expect.any(Number) })));
    expect(linesOf(before, omitted.paymentNo)).toHaveLength(1);
    expect(linesOf(after, omitted.paymentNo)).toEqual([]);
    expect(linesOf(after, altered.paymentNo)).toEqual([expect.objectContaining({ kind: "payment", amountMinor: 20_001n, feeMinor: fee(altered.paymentNo) })]);
    expect(linesOf(after, feeAltered.paymentNo)).toEqual([expect.objectContaining({ kind: "payment", amountMinor: 30_000n, feeMinor: fee(feeAltered.paymentNo) + 1n })]);
  });

  it("billExtraLine adds one payment line for a trade the channel never had, the same on every download", async () => {
    const { billDate } = await paidTrade(channel, 5_000n);
    const before = await billRecords(channels[channel].fetchBill(billDate));
    simulator.setFaults({ channel, faults: { billExtraLine: true } });
    const after = await billRecords(channels[channel].fetchBill(billDate));
    const extra = after.filter((record) => !before.some((known) => known.paymentNo === record.paymentNo));
    expect(extra).toEqual([expect.objectContaining({ kind: "payment", amountMinor: 1_000n, currency: CURRENCY[channel] })]);
    expect(simulator.getTrade(channel, extra[0]?.paymentNo as string)).toBeUndefined();
    expect(after).toHaveLength(before.length + 1);
    const again = await billRecords(channels[channel].fetchBill(billDate));
    expect(again.map((record) => record.paymentNo)).toEqual(after.map((record) => record.paymentNo));
  });

  it("billTruncated: the bill is refused as malformed, naming the line where it was cut", async () => {
    const { billDate } = await paidTrade(channel, 7_000n);
    simulator.setFaults({ channel, faults: { billTruncated: true } });
    const error = await billRecords(channels[channel].fetchBill(billDate)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BillFormatError);
    expect((error as BillFormatError).line).toEqual(expect.any(Number));
    expect((error as BillFormatError).detail).toMatch(channel === "card" ? /missing field type \(a transaction cut off\?\)/ : /^truncated/);
  });

  it("serves a past day's bill from the trades, empty when that day had none", async () => {
    expect(await billRecords(channels[channel].fetchBill("2020-01-01"))).toEqual([]);
  });
});

describe("wechatpay billWrongHash", () => {
  it("refuses the download: the file does not match the SHA1 the signed answer states", async () => {
    const { billDate } = await paidTrade("wechatpay", 3_000n);
    simulator.setFaults({ channel: "wechatpay", faults: { billWrongHash: true } });
    const error = await channels.wechatpay.fetchBill(billDate).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BillFormatError);
    expect((error as BillFormatError).detail).toMatch(/^hash mismatch/);
    simulator.clearFaults();
    expect((await billRecords(channels.wechatpay.fetchBill(billDate))).length).toBeGreaterThan(0);
  });
});
