/** The Payout message as the API shows a payout (Settlement.payout): no database. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import type { PayoutView } from "../../src/payouts/payout-service.js";
import { payoutToProto } from "../../src/rpc/payout-rpc.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { PayoutStatus } from "../../gen/payments/v1/settlement_service_pb.js";

function view(overrides: Partial<PayoutView> = {}): PayoutView {
  return {
    id: "01JPAYOUT000000000000000000",
    payoutNo: "T20261202060000ABCDEFGHJKMNPQRS",
    settlementId: "01JSETTLEMENT0000000000000",
    merchantId: "01JMERCHANT000000000000000",
    channel: "wechatpay",
    amount: 12_345n,
    currency: "CNY",
    status: "PENDING",
    channelPayoutNo: null,
    failureReason: null,
    createdAt: new Date("2026-12-02T06:00:00.123Z"),
    finishedAt: null,
    ...overrides,
  };
}

describe("payoutToProto", () => {
  it("maps an open payout with empty strings for what is not known yet and no finish time", () => {
    const message = payoutToProto(view());
    expect(message).toMatchObject({
      id: "01JPAYOUT000000000000000000",
      payoutNo: "T20261202060000ABCDEFGHJKMNPQRS",
      channel: Channel.WECHAT_PAY,
      amount: 12_345n,
      currency: "CNY",
      status: PayoutStatus.PENDING,
      channelPayoutNo: "",
      failureReason: "",
    });
    expect(timestampDate(message.createdAt!)).toEqual(new Date("2026-12-02T06:00:00.123Z"));
    expect(message.finishedAt).toBeUndefined();
  });

  it("maps every status, and a finished payout's channel id, failure and finish time", () => {
    const statuses = (["PENDING", "PROCESSING", "PAID", "FAILED"] as const).map((status) => payoutToProto(view({ status })).status);
    expect(statuses).toEqual([PayoutStatus.PENDING, PayoutStatus.PROCESSING, PayoutStatus.PAID, PayoutStatus.FAILED]);
    const failed = payoutToProto(
      view({ status: "FAILED", channel: "card", channelPayoutNo: "po_1", failureReason: "account_closed", finishedAt: new Date("2026-12-03T00:00:00Z") }),
    );
    expect(failed).toMatchObject({ channel: Channel.CARD, channelPayoutNo: "po_1", failureReason: "account_closed" });
    expect(timestampDate(failed.finishedAt!)).toEqual(new Date("2026-12-03T00:00:00Z"));
  });
});
