/**
 * Settlement and payout events on MySQL, seen on a StreamEvents stream: SubmitSettlement writes
 * `settlement.created` and `payout.created` with the order and the payout as built (a refused one
 * writes neither), and the payout sweeper's PAID answer from the Alipay simulator writes
 * `payout.paid`; the objects are in the public format and never carry the payee.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService, type StreamEventsResponse } from "../../gen/payments/v1/payment_service_pb.js";
import { PayeeAccountType } from "../../gen/payments/v1/settlement_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { grpcServerStream, type StreamReader } from "../support/event-stream-client.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";
import { fundMerchant } from "../support/funding.js";

const ALIPAY_USER = "2088123456789012";

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ runEventWorkers: true, config: { events: { ...loadConfig({}).events, pollIntervalMs: 50 } } });
});
afterAll(() => t?.stop());


function types(reader: StreamReader<StreamEventsResponse>): string[] {
  return reader.messages.map((message) => message.event!.type);
}

describe("settlement and payout events", () => {
  it("streams settlement.created and payout.created from SubmitSettlement, then payout.paid from the sweeper", async () => {
    const merchant = await t.createMerchant("Settled Shop");
    await t.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: ALIPAY_USER },
      t.adminHeaders,
    );
    await fundMerchant(t.app.uow, merchant.id, 20_000n);
    const reader = grpcServerStream(`127.0.0.1:${t.app.grpcPort}`, PaymentService.method.streamEvents, {}, merchant.headers);
    await eventually(() => t.app.events.subscriberCount, (n) => n === 1);

    await grpcError(t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 50_000n }, merchant.headers));
    const order = (await t.grpc.settlement.submitSettlement({ currency: "CNY", amount: 5_000n }, merchant.headers)).settlement!;
    await eventually(() => reader.messages.length, (n) => n >= 2);
    expect(types(reader)).toEqual(["settlement.created", "payout.created"]);
    const [created, payoutCreated] = reader.messages.map((message) => message.event!);
    expect(created).toMatchObject({ objectId: order.id, merchantId: merchant.id });
    expect(created!.data).toEqual({
      settlement: expect.objectContaining({
        id: order.id,
        settlement_no: order.settlementNo,
        kind: "ON_REQUEST",
        settlement_date: null,
        currency: "CNY",
        net_amount: "5000",
        gross_amount: "5000",
        fee_amount: "0",
        line_count: "1",
      }),
    });
    const payoutId = payoutCreated!.objectId;
    expect(payoutCreated!.data).toEqual({
      payout: expect.objectContaining({ id: payoutId, settlement_id: order.id, amount: "5000", currency: "CNY", status: "PENDING", channel: "ALIPAY" }),
    });

    await t.app.payouts.runOnce();
    await eventually(() => reader.messages.length, (n) => n >= 3);
    const paid = reader.messages[2]!.event!;
    expect(paid).toMatchObject({ type: "payout.paid", objectId: payoutId });
    expect(paid.data?.payout).toMatchObject({ status: "PAID", amount: "5000", finished_at: expect.any(String) });
    for (const message of reader.messages) expect(JSON.stringify(message.event?.data)).not.toContain(ALIPAY_USER);
    reader.cancel();
    await reader.ended;
  });
});
