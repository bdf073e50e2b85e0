/**
 * What a merchant is told when a channel fails, through the whole app: a fixed message naming the
 * channel and the kind of failure, never the channel's URL, host, port or answer text (a card
 * timeout used to answer `POST http://127.0.0.1:18490/card/v1/payment_intents: no complete answer ...`).
 */
import { Code, type ConnectError } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { grpcError } from "../support/waiting.js";

/** Short, so that the timeout case stays quick; still far above a local round trip. */
const CHANNEL_TIMEOUT_MS = 500;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp({ channelTimeoutMs: CHANNEL_TIMEOUT_MS });
  merchant = await t.createMerchant("Channel Errors Shop");
});
afterAll(() => t?.stop());
afterEach(() => t.simulator.clearFaults());

function cardPayment() {
  return {
    merchantOrderNo: `channel-errors-${Date.now()}-${++orderSeq}`,
    currency: "USD",
    amount: 2500n,
    channel: Channel.CARD,
    subject: "Jasmine tea",
    paymentMethod: "pm_card_visa",
  };
}

/** Where the simulator listens, in every spelling that could leak. */
function expectNoInternals(message: string) {
  const { host, port } = new URL(t.simulator.url);
  expect(message).not.toMatch(/http/i);
  expect(message).not.toContain(host);
  expect(message).not.toContain(port);
  expect(message).not.toContain("payment_intents");
}

describe("card channel failures on create", () => {
  it("a timeout: UNAVAILABLE with a fixed message over gRPC and Connect", async () => {
    t.simulator.setFaults({ channel: "card", faults: { apiTimeout: { method: "payment_intents.create" } } });
    const error = await grpcError(t.grpc.payments.createPayment(cardPayment(), merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(error.details).toBe("the card channel did not answer in time; the payment is stored; send the same request again to continue");
    expectNoInternals(error.details);
    expect(readGrpcErrorDetails(error).errorInfo).toMatchObject({
      reason: "CHANNEL_UNAVAILABLE",
      metadata: { channel: "card", failure: "TIMEOUT" },
    });

    const overConnect = await t.connect.payments.createPayment(cardPayment(), { headers: merchant.headers }).then(
      () => undefined,
      (failure: unknown) => failure as ConnectError,
    );
    expect(overConnect?.code).toBe(Code.Unavailable);
    expectNoInternals(overConnect!.rawMessage);
    expect(overConnect?.findDetails(ErrorInfoSchema)[0]?.metadata).toEqual({ channel: "card", failure: "TIMEOUT" });
  });

  it("a 5xx answer: UNAVAILABLE, CHANNEL_ERROR, without the status line", async () => {
    t.simulator.setFaults({ channel: "card", faults: { apiError: { method: "payment_intents.create", status: 503 } } });
    const error = await grpcError(t.grpc.payments.createPayment(cardPayment(), merchant.headers));
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(error.details).toBe("the card channel is temporarily unavailable; the payment is stored; send the same request again to continue");
    expect(error.details).not.toContain("503");
    expect(readGrpcErrorDetails(error).errorInfo?.metadata).toEqual({ channel: "card", failure: "CHANNEL_ERROR" });
  });

  it("an answer signed with the wrong key: UNAVAILABLE, RESPONSE_SIGNATURE_INVALID, nothing of the answer", async () => {
    const created = await t.grpc.payments.createPayment({ ...cardPayment(), channel: Channel.WECHAT_PAY, currency: "CNY", paymentMethod: "" }, merchant.headers);
    t.simulator.setFaults({ channel: "wechatpay", faults: { badResponseSignature: true } });
    const error = await grpcError(
      t.grpc.payments.queryPayment({ lookup: { key: { case: "paymentId", value: created.payment!.id } } }, merchant.headers),
    );
    expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(error.details).toBe("the wechatpay channel's answer failed signature verification and was not used; nothing was changed; try again");
    expectNoInternals(error.details);
    expect(readGrpcErrorDetails(error).errorInfo?.metadata).toMatchObject({ channel: "wechatpay", failure: "RESPONSE_SIGNATURE_INVALID" });
  });
});
