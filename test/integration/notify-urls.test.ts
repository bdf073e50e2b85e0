/**
 * Notify URLs through the API: CreateMerchant and CreatePayment refuse credentials in the URL and
 * internal hosts (cloud metadata, loopback, private ranges) with INVALID_ARGUMENT naming
 * `notify_url`, and refuse http:// outside development unless NOTIFY_URL_ALLOW_HTTP.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { grpcError } from "../support/waiting.js";

const REFUSED = [
  ["http://169.254.169.254/latest/meta-data/", "INTERNAL_ADDRESS"],
  ["http://admin:pw@127.0.0.1:3306/", "CREDENTIALS_IN_URL"],
  ["https://127.0.0.1/notify", "INTERNAL_ADDRESS"],
  ["https://2130706433/notify", "INTERNAL_ADDRESS"],
  ["https://[::ffff:10.0.0.1]/notify", "INTERNAL_ADDRESS"],
  ["https://metadata.google.internal/computeMetadata/v1/", "INTERNAL_ADDRESS"],
  ["http://shop.example/notify", "HTTPS_REQUIRED"],
] as const;

let t: TestApp;
let orderSeq = 0;

beforeAll(async () => {
  // As in production (MySQL): https only, no internal hosts.
  t = await startTestApp({ config: { notifyUrls: { allowHttp: false, allowPrivateNetworks: false } } });
});
afterAll(() => t?.stop());

describe("notify URLs", () => {
  it("CreateMerchant refuses internal hosts, credentials and http, and echoes nothing back", async () => {
    for (const [notifyUrl, reason] of REFUSED) {
      const error = await grpcError(t.grpc.merchants.createMerchant({ name: "Sneaky", notifyUrl }, t.adminHeaders));
      expect(error.code, notifyUrl).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).badRequest?.fieldViolations, notifyUrl).toEqual([
        expect.objectContaining({ field: "notify_url", reason }),
      ]);
      expect(error.details).not.toContain("pw@");
    }
    const created = await t.connect.merchants.createMerchant({ name: "Honest", notifyUrl: "https://shop.example/notify" }, { headers: t.adminHeaders });
    expect(created.merchant?.notifyUrl).toBe("https://shop.example/notify");
  });

  it("CreatePayment refuses the same notify URLs, over Connect too", async () => {
    const merchant = await t.createMerchant("Payment Shop");
    for (const [notifyUrl, reason] of REFUSED) {
      const request = {
        merchantOrderNo: `notify-${++orderSeq}`,
        currency: "CNY",
        amount: 100n,
        channel: Channel.ALIPAY,
        subject: "Tea",
        notifyUrl,
      };
      const refused = await t.connect.payments.createPayment(request, { headers: merchant.headers }).then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
      expect(refused?.code, notifyUrl).toBe(Code.InvalidArgument);
      expect(refused?.findDetails(BadRequestSchema)[0]?.fieldViolations, notifyUrl).toEqual([
        expect.objectContaining({ field: "notify_url", reason }),
      ]);
    }
  });
});
