/**
 * AdminService over gRPC and Connect against MySQL: the search across merchants with its filters and
 * paging (and the page-size cap), a payment's timeline (its parts with its channel calls, NOT_FOUND,
 * the per-kind bound for callbacks and channel calls),
 * merchants with their ledger balances, and a merchant's settlements. The permission checks of
 * these RPCs are in admin-permissions.test.ts.
 */
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/payments/v1/admin_service_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { TIMELINE_ROWS_PER_KIND } from "../../src/admin/admin-views.js";
import { insertLogRow } from "../../src/callbacks/callback-store.js";
import { insertChannelCalls } from "../../src/channel-calls/channel-call-store.js";
import { newId } from "../../src/ids.js";
import { createGrpcJsClient, type GrpcJsClient } from "../support/grpc-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { connectError, eventually, grpcError } from "../support/waiting.js";

let t: TestApp;
let grpc: GrpcJsClient<typeof AdminService>;
let connect: ReturnType<typeof createClient<typeof AdminService>>;
let shop: Awaited<ReturnType<TestApp["createMerchant"]>>;
let other: Awaited<ReturnType<TestApp["createMerchant"]>>;
let orderSeq = 0;

function order(channel: Channel, amount: bigint, merchantOrderNo = `admin-${Date.now()}-${++orderSeq}`) {
  return { merchantOrderNo, currency: "CNY", amount, channel, subject: "Green tea" };
}

async function paidAlipay(owner: typeof shop, amount: bigint) {
  const { payment } = await t.grpc.payments.createPayment(order(Channel.ALIPAY, amount), owner.headers);
  t.simulator.pay("alipay", payment!.paymentNo);
  await eventually(
    async () => (await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: payment!.id } } }, owner.headers)).payment!.status,
    (status) => status === PaymentStatus.SUCCEEDED,
  );
  return payment!;
}

beforeAll(async () => {
  t = await startTestApp();
  grpc = createGrpcJsClient(AdminService, `127.0.0.1:${t.app.grpcPort}`);
  connect = createClient(AdminService, createConnectTransport({ baseUrl: t.app.httpUrl, httpVersion: "1.1" }));
  shop = await t.createMerchant("Admin Search Shop");
  other = await t.createMerchant("Other Shop");
}, 60_000);

afterAll(async () => {
  grpc?.close();
  await t?.stop();
});

describe("SearchPayments", () => {
  it("finds payments of any merchant by each identifier and filter, newest first", async () => {
    const sharedOrderNo = `shared-${Date.now()}`;
    const mine = (await t.grpc.payments.createPayment(order(Channel.ALIPAY, 100n, sharedOrderNo), shop.headers)).payment!;
    const theirs = (await t.grpc.payments.createPayment(order(Channel.WECHAT_PAY, 200n, sharedOrderNo), other.headers)).payment!;
    const paid = await paidAlipay(shop, 300n);

    const byOrderNo = await grpc.searchPayments({ merchantOrderNo: sharedOrderNo }, t.adminHeaders);
    expect(byOrderNo.payments.map((p) => p.id)).toEqual([theirs.id, mine.id]);
    const byMerchant = await connect.searchPayments({ merchantOrderNo: sharedOrderNo, merchantId: other.id }, { headers: t.adminHeaders });
    expect(byMerchant.payments.map((p) => p.id)).toEqual([theirs.id]);
    expect((await grpc.searchPayments({ paymentId: mine.id }, t.adminHeaders)).payments.map((p) => p.id)).toEqual([mine.id]);
    expect((await grpc.searchPayments({ paymentNo: theirs.paymentNo }, t.adminHeaders)).payments.map((p) => p.id)).toEqual([theirs.id]);
    const succeeded = await grpc.searchPayments({ merchantId: shop.id, status: PaymentStatus.SUCCEEDED }, t.adminHeaders);
    expect(succeeded.payments.map((p) => p.id)).toEqual([paid.id]);
    const wechat = await grpc.searchPayments({ merchantOrderNo: sharedOrderNo, channel: Channel.WECHAT_PAY }, t.adminHeaders);
    expect(wechat.payments.map((p) => p.id)).toEqual([theirs.id]);
    const future = await grpc.searchPayments(
      { merchantId: shop.id, createdAfter: { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600), nanos: 0 } },
      t.adminHeaders,
    );
    expect(future.payments).toEqual([]);
  });

  it("pages with a token tied to the filters, and caps the page size at 100", async () => {
    const first = await grpc.searchPayments({ merchantId: shop.id, pageSize: 1 }, t.adminHeaders);
    expect(first.payments).toHaveLength(1);
    expect(first.nextPageToken).not.toBe("");
    const second = await grpc.searchPayments({ merchantId: shop.id, pageSize: 1, pageToken: first.nextPageToken }, t.adminHeaders);
    expect(second.payments[0]!.id < first.payments[0]!.id).toBe(true);

    const otherFilters = await grpcError(grpc.searchPayments({ merchantId: other.id, pageSize: 1, pageToken: first.nextPageToken }, t.adminHeaders));
    expect(otherFilters.code).toBe(Code.InvalidArgument);
    expect(readGrpcErrorDetails(otherFilters).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["page_token"]);

    const tooBig = await grpcError(grpc.searchPayments({ pageSize: 101 }, t.adminHeaders));
    expect(tooBig.code).toBe(Code.InvalidArgument);
    expect(readGrpcErrorDetails(tooBig).badRequest?.fieldViolations).toMatchObject([{ field: "page_size", reason: "OUT_OF_RANGE" }]);
    expect((await grpc.searchPayments({ pageSize: 100 }, t.adminHeaders)).payments.length).toBeLessThanOrEqual(100);
  });

  it("names each malformed filter", async () => {
    const error = await grpcError(grpc.searchPayments({ paymentId: "../etc", merchantId: "x".repeat(65), status: 99 as PaymentStatus }, t.adminHeaders));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(readGrpcErrorDetails(error).badRequest?.fieldViolations.map((v) => v.field).sort()).toEqual(["merchant_id", "payment_id", "status"]);
  });
});

describe("GetPaymentTimeline", () => {
  it("puts the payment's events, callbacks, ledger entries and refunds in time order", async () => {
    const paid = await paidAlipay(shop, 5000n);
    await t.grpc.payments.refundPayment({ paymentId: paid.id, merchantRefundNo: "r1", amount: 1000n, reason: "broken cup" }, shop.headers);
    await t.app.events.runOnce();

    // Channel calls are written in the background: wait for the refund's.
    const timeline = await eventually(
      () => connect.getPaymentTimeline({ paymentId: paid.id }, { headers: t.adminHeaders }),
      (answer) => answer.entries.some((entry) => entry.entry.case === "channelCall" && entry.entry.value.operation === "refund"),
    );
    expect(timeline.payment?.id).toBe(paid.id);
    expect(timeline.truncated).toBe(false);
    const kinds = timeline.entries.map((entry) => entry.entry.case);
    expect(kinds).toContain("callback");
    expect(kinds).toContain("ledgerEntry");
    expect(kinds).toContain("refund");
    const calls = timeline.entries.flatMap((entry) => (entry.entry.case === "channelCall" ? [`${entry.entry.value.operation} ${entry.entry.value.outcome}`] : []));
    expect(calls[0]).toBe("createPayment answer");
    expect(calls.at(-1)).toBe("refund answer");
    const eventTypes = timeline.entries.flatMap((entry) => (entry.entry.case === "event" ? [entry.entry.value.eventType] : []));
    expect(eventTypes.slice(0, 2)).toEqual(["payment.created", "payment.succeeded"]);
    expect(eventTypes).toContain("refund.created");
    const times = timeline.entries.map((entry) => Number(entry.at!.seconds) * 1e9 + entry.at!.nanos);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const callback = timeline.entries.find((entry) => entry.entry.case === "callback")!.entry;
    expect(callback.case === "callback" && callback.value).toMatchObject({ channel: Channel.ALIPAY, verdict: "applied", answerStatus: 200 });
    const ledger = timeline.entries.find((entry) => entry.entry.case === "ledgerEntry")!.entry;
    expect(ledger.case === "ledgerEntry" && ledger.value.entryType).toBe("payment_succeeded");
    expect(ledger.case === "ledgerEntry" && ledger.value.postings.reduce((sum, posting) => sum + posting.amount, 0n)).toBe(0n);
  });

  it("shows at most TIMELINE_ROWS_PER_KIND rows of a kind and says it cut the rest", async () => {
    const { payment } = await t.grpc.payments.createPayment(order(Channel.ALIPAY, 700n), shop.headers);
    const session = t.app.uow.session();
    for (let i = 0; i <= TIMELINE_ROWS_PER_KIND; i++) {
      await insertLogRow(session, {
        id: newId(),
        channel: "alipay",
        receivedAt: new Date(Date.now() + i),
        headers: {},
        rawBody: Buffer.from("x"),
        bodySha256: null,
        bodyBytes: 1,
        bodyForm: "excerpt",
        verdict: "rejected",
        reason: "bad signature",
        notificationId: `n-${i}`,
        paymentId: payment!.id,
        effect: null,
        answerStatus: 400,
      });
    }
    const timeline = await grpc.getPaymentTimeline({ paymentId: payment!.id }, t.adminHeaders);
    expect(timeline.truncated).toBe(true);
    expect(timeline.entries.filter((entry) => entry.entry.case === "callback")).toHaveLength(TIMELINE_ROWS_PER_KIND);
  });

  it("shows at most TIMELINE_ROWS_PER_KIND channel calls, the oldest, and says it cut the rest", async () => {
    const { payment } = await t.grpc.payments.createPayment(order(Channel.ALIPAY, 710n), shop.headers);
    // Started an hour ago, so the create call the service made itself comes after all of them.
    const start = Date.now() - 3_600_000;
    await insertChannelCalls(
      t.app.uow.session(),
      Array.from({ length: TIMELINE_ROWS_PER_KIND + 1 }, (_, i) => ({
        id: newId(start + i),
        startedAt: new Date(start + i),
        channel: "alipay",
        operation: "queryPayment" as const,
        paymentNo: payment!.paymentNo,
        refundNo: null,
        payoutNo: null,
        outcome: "unknown" as const,
        code: "TIMEOUT",
        detail: `query ${i}`,
        latencyMs: 2000,
        traceId: null,
      })),
    );
    const timeline = await grpc.getPaymentTimeline({ paymentId: payment!.id }, t.adminHeaders);
    expect(timeline.truncated).toBe(true);
    const calls = timeline.entries.flatMap((entry) => (entry.entry.case === "channelCall" ? [entry.entry.value] : []));
    expect(calls).toHaveLength(TIMELINE_ROWS_PER_KIND);
    expect(calls.map((call) => call.detail)).toEqual(Array.from({ length: TIMELINE_ROWS_PER_KIND }, (_, i) => `query ${i}`));
  });

  it("answers NOT_FOUND for an unknown payment and names a missing id", async () => {
    const missing = await connectError(connect.getPaymentTimeline({ paymentId: newId() }, { headers: t.adminHeaders }));
    expect(missing.code).toBe(Code.NotFound);
    const empty = await grpcError(grpc.getPaymentTimeline({ paymentId: "" }, t.adminHeaders));
    expect(readGrpcErrorDetails(empty).badRequest?.fieldViolations).toMatchObject([{ field: "payment_id", reason: "REQUIRED" }]);
  });
});

describe("ListMerchants and ListMerchantSettlements", () => {
  it("lists merchants newest first with their balances per currency from the ledger", async () => {
    const fresh = await t.createMerchant("Balance Shop");
    await paidAlipay(fresh, 2000n);
    const page = await grpc.listMerchants({ pageSize: 100 }, t.adminHeaders);
    expect(page.merchants[0]?.merchant?.id).toBe(fresh.id);
    const balance = await t.grpc.settlement.getBalance({ currency: "CNY" }, fresh.headers);
    expect(page.merchants[0]?.balances).toMatchObject([
      { currency: "CNY", pending: balance.pending, available: balance.available, paidOut: balance.paidOut },
    ]);
    expect(balance.pending).toBeGreaterThan(0n);
    expect(page.merchants.find((m) => m.merchant?.id === other.id)?.balances).toEqual([]);
    expect((await grpcError(grpc.listMerchants({ pageSize: 101 }, t.adminHeaders))).code).toBe(Code.InvalidArgument);
  });

  it("lists one merchant's settlements and requires the merchant", async () => {
    expect((await grpc.listMerchantSettlements({ merchantId: shop.id }, t.adminHeaders)).settlements).toEqual([]);
    const error = await grpcError(grpc.listMerchantSettlements({ merchantId: "" }, t.adminHeaders));
    expect(readGrpcErrorDetails(error).badRequest?.fieldViolations).toMatchObject([{ field: "merchant_id", reason: "REQUIRED" }]);
  });
});

describe("on the embedded database", () => {
  it("searches, builds a timeline and lists balances there too", async () => {
    const embedded = await startTestApp({ database: "sqlite" });
    const client = createGrpcJsClient(AdminService, `127.0.0.1:${embedded.app.grpcPort}`);
    try {
      const owner = await embedded.createMerchant("Embedded Shop");
      const { payment } = await embedded.grpc.payments.createPayment(order(Channel.ALIPAY, 990n), owner.headers);
      embedded.simulator.pay("alipay", payment!.paymentNo);
      await eventually(
        async () => (await client.searchPayments({ merchantId: owner.id, status: PaymentStatus.SUCCEEDED }, embedded.adminHeaders)).payments,
        (found) => found.length === 1,
      );
      await embedded.app.events.runOnce();
      const timeline = await eventually(
        () => client.getPaymentTimeline({ paymentId: payment!.id }, embedded.adminHeaders),
        (answer) => answer.entries.some((entry) => entry.entry.case === "channelCall"),
      );
      expect(timeline.entries.map((entry) => entry.entry.case)).toEqual(expect.arrayContaining(["event", "callback", "ledgerEntry", "channelCall"]));
      const merchants = await client.listMerchants({}, embedded.adminHeaders);
      expect(merchants.merchants[0]?.balances[0]).toMatchObject({ currency: "CNY" });
      expect(merchants.merchants[0]!.balances[0]!.pending).toBeGreaterThan(0n);
    } finally {
      client.close();
      await embedded.stop();
    }
  }, 60_000);
});
