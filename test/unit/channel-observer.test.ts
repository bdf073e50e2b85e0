import { describe, expect, it } from "vitest";
import { ChannelRejectedError, ChannelUnavailableError, type PaymentChannel } from "../../src/channels/channel.js";
import { type ChannelCallRecord, MAX_DETAIL_CHARS, MAX_LOG_DETAIL_CHARS, observeChannel } from "../../src/observability/channel-observer.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { TRACING_OFF } from "../../src/observability/tracing.js";
import { capturingLogger } from "../support/log-lines.js";

const trade = { paymentNo: "P1", amountMinor: 100n, currency: "CNY" };

/** A channel whose queryPayment does what `answer` says; nothing else is called here. */
function channelAnswering(answer: () => Promise<never> | Promise<{ state: "succeeded" }>): PaymentChannel {
  return { name: "alipay", queryPayment: answer } as unknown as PaymentChannel;
}

function observed(channel: PaymentChannel) {
  const logs = capturingLogger("info");
  const records: ChannelCallRecord[] = [];
  const metrics = createMetrics();
  const wrapped = observeChannel(channel, { logger: logs.logger, metrics, tracing: TRACING_OFF, sink: { record: (call) => records.push(call) } });
  return { wrapped, logs, records, metrics };
}

describe("the channel observer", () => {
  it("names each outcome: an answer, the channel's rejection with its code, and an unknown with the failure kind", async () => {
    const answered = observed(channelAnswering(async () => ({ state: "succeeded" })));
    await answered.wrapped.queryPayment(trade);
    expect(answered.records[0]).toMatchObject({ operation: "queryPayment", outcome: "answer", detail: "state succeeded", paymentNo: "P1" });

    const rejected = observed(channelAnswering(async () => Promise.reject(new ChannelRejectedError("alipay", "ACQ.TRADE_NOT_EXIST", "no such trade"))));
    await expect(rejected.wrapped.queryPayment(trade)).rejects.toBeInstanceOf(ChannelRejectedError);
    expect(rejected.records[0]).toMatchObject({ outcome: "rejection", code: "ACQ.TRADE_NOT_EXIST" });

    const unknown = observed(channelAnswering(async () => Promise.reject(new ChannelUnavailableError("alipay", "HTTP 503"))));
    await expect(unknown.wrapped.queryPayment(trade)).rejects.toBeInstanceOf(ChannelUnavailableError);
    expect(unknown.records[0]).toMatchObject({ outcome: "unknown", code: "CHANNEL_ERROR" });
    expect(await unknown.metrics.registry.getSingleMetricAsString("payments_channel_calls_total")).toContain(
      'payments_channel_calls_total{channel="alipay",operation="queryPayment",outcome="unknown"} 1',
    );
  });

  it("bounds what it keeps of a long error: the record's detail and the log line's", async () => {
    const long = "x".repeat(10_000);
    const { wrapped, logs, records } = observed(channelAnswering(async () => Promise.reject(new ChannelUnavailableError("alipay", long))));
    await expect(wrapped.queryPayment(trade)).rejects.toBeInstanceOf(ChannelUnavailableError);
    expect(records[0]!.detail.length).toBe(MAX_DETAIL_CHARS);
    const line = logs.records().find((record) => record.msg === "channel call")!;
    expect((line.detail as string).length).toBe(MAX_LOG_DETAIL_CHARS);
  });
});
