/**
 * The channel contract: every fault the simulator can inject that every channel must survive the
 * same way, run for Alipay, WeChat Pay and the card acquirer through the whole service on MySQL.
 * Callbacks duplicated, re-sent, early, delayed, out of order, dropped, forged and altered; the
 * channel's API failing, hanging or answering unsigned on create, query, close and refund; money
 * arriving after close; refunds in full, in parts, repeated, too large, racing, rejected and slow.
 * What differs per channel (wire names, answers, states) is in test/support/channel-profiles.ts;
 * what only one channel does stays in its own files.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SimulatorFaults, SimTradeView } from "../../src/simulator/simulator.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { CHANNEL_PROFILES, type ChannelProfile } from "../support/channel-profiles.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { type ServiceRows, serviceRows } from "../support/service-rows.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually, grpcError } from "../support/waiting.js";

/** Far above a local round trip, short enough that the timeout cases stay quick. */
const CHANNEL_TIMEOUT_MS = 1000;
const AMOUNT = 8888n;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let rows: ServiceRows;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp({ channelTimeoutMs: CHANNEL_TIMEOUT_MS });
  merchant = await t.createMerchant("Contract Tea");
  rows = serviceRows(t);
  for (const profile of CHANNEL_PROFILES) await profile.setUp(t);
});
afterAll(() => t?.stop());

let sweeping: Promise<unknown> = Promise.resolve();
/**
 * A sweep claims every due row, whichever channel's test made it due: sweeps (and the staging that
 * makes a row due) run one at a time so each test sees its own rows swept.
 */
function oneSweepAtATime<T>(work: () => Promise<T>): Promise<T> {
  const run = sweeping.then(work, work);
  sweeping = run.catch(() => {});
  return run;
}

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

function reasonOf(error: ServiceError): string | undefined {
  return readGrpcErrorDetails(error).errorInfo?.reason;
}

// The channels share nothing but the service, so their suites run side by side (the file takes as
// long as its slowest channel); within a channel the cases run one after another, because
// channel-wide faults (on create, say) would hit a neighbouring case's calls.
describe.each(CHANNEL_PROFILES)("$name", { concurrent: true }, (profile: ChannelProfile) => {
  describe.sequential("contract", () => {
    const faultedTrades = new Set<string>();
    afterEach(() => {
      t.simulator.clearFaults({ channel: profile.name });
      for (const outTradeNo of faultedTrades) t.simulator.clearFaults({ channel: profile.name, outTradeNo });
      faultedTrades.clear();
    });

    function request(overrides: Record<string, unknown> = {}) {
      return {
        merchantOrderNo: `contract-${profile.name}-${Date.now()}-${++orderSeq}`,
        currency: profile.currency,
        amount: AMOUNT,
        channel: profile.protoChannel,
        subject: "Oolong tea 250g",
        items: [{ sku: "TEA-250", name: "Oolong tea 250g", quantity: 2n, unitAmount: 4444n }],
        ...profile.requestFields,
        ...overrides,
      };
    }

    async function create(overrides: Record<string, unknown> = {}) {
      return (await t.grpc.payments.createPayment(request(overrides), merchant.headers)).payment!;
    }

    async function statusOf(id: string) {
      return (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment?.status;
    }

    async function paymentOf(id: string) {
      return (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment!;
    }

    function trade(paymentNo: string): SimTradeView {
      const view = t.simulator.getTrade(profile.name, paymentNo);
      if (!view) throw new Error(`the ${profile.name} simulator has no trade ${paymentNo}`);
      return view;
    }

    function faultsFor(paymentNo: string, faults: SimulatorFaults) {
      faultedTrades.add(paymentNo);
      t.simulator.setFaults({ channel: profile.name, outTradeNo: paymentNo, faults });
    }

    function channelFaults(faults: SimulatorFaults) {
      t.simulator.setFaults({ channel: profile.name, faults });
    }

    function expectActionOf(value: string | null | undefined, view: SimTradeView) {
      const expected = profile.expectedAction(view);
      if (typeof expected === "string") expect(value).toBe(expected);
      else expect(value).toMatch(expected);
    }

    /** A payment the shopper paid whose callback never reaches us: only a query can tell. */
    async function paidSilently() {
      const payment = await create();
      faultsFor(payment.paymentNo, { dropNotifies: true });
      t.simulator.pay(profile.name, payment.paymentNo);
      return payment;
    }

    /** A payment of `amount`, paid and SUCCEEDED here. */
    async function paid(amount: bigint) {
      const payment = await create({ amount, items: [] });
      t.simulator.pay(profile.name, payment.paymentNo);
      const read = await eventually(
        () => paymentOf(payment.id),
        (p) => p.status === PaymentStatus.SUCCEEDED,
      );
      expect(read.status).toBe(PaymentStatus.SUCCEEDED);
      return read;
    }

    function refund(paymentId: string, merchantRefundNo: string, amount: bigint) {
      return t.grpc.payments
        .refundPayment({ paymentId, merchantRefundNo, amount, reason: "changed their mind" }, merchant.headers)
        .then((answer) => answer.refund!);
    }

    async function getRefund(refundId: string) {
      return (await t.grpc.payments.getRefund({ refundId }, merchant.headers)).refund!;
    }

    function sweepPayments(stage: () => Promise<void>) {
      return oneSweepAtATime(async () => {
        await stage();
        return t.app.sweeper.runOnce();
      });
    }

    function sweepRefund(refundId: string) {
      return oneSweepAtATime(async () => {
        await rows.refundDue(refundId);
        return t.app.refundSweeper.runOnce();
      });
    }

    async function postToShim(headers: Record<string, string>, body: Buffer) {
      const response = await fetch(`${t.app.httpUrl}/callbacks/${profile.name}`, { method: "POST", headers, body });
      return { status: response.status, body: await response.text() };
    }

    describe("callbacks", () => {
      it("applies ten concurrent copies of one callback once: one transition, inbox row, outbox event and journal entry", async () => {
        const payment = await create();
        faultsFor(payment.paymentNo, { duplicateNotifies: 10 });
        t.simulator.pay(profile.name, payment.paymentNo);
        const logs = await eventually(
          () => rows.callbackLogs({ paymentId: payment.id }),
          (found) => found.length >= 10,
        );
        expect(logs.map((log) => log.verdict).sort()).toEqual(["applied", ...Array(9).fill("duplicate")]);
        expect(logs.find((log) => log.verdict === "applied")?.effect).toBe("PENDING->SUCCEEDED");
        expect(await statusOf(payment.id)).toBe(PaymentStatus.SUCCEEDED);
        expect(await rows.inboxRows(payment.id)).toBe(1);
        expect(await rows.outboxEvents(payment.id, "payment.succeeded")).toBe(1);
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded"]);
        const attempts = await eventually(
          () => trade(payment.paymentNo).notifications[0]!.attempts,
          (list) => list.length === 10 && list.every((attempt) => attempt.status !== undefined),
        );
        // Every copy, the duplicates too, gets the channel's exact acknowledgement, so none is re-sent.
        expect(attempts.map(({ status, body, acknowledged }) => ({ status, body, acknowledged }))).toEqual(
          Array(10).fill({ ...profile.accept, acknowledged: true }),
        );
      });

      it("answers non-success to a callback for a payment not visible yet, applies the re-send once, and byte-identical re-sends are duplicates", async () => {
        const payment = await create();
        // Under another number for a moment, as when the callback beats our insert on another replica.
        await rows.renumberPayment(payment.id, `X${payment.paymentNo.slice(1)}`);
        t.simulator.pay(profile.name, payment.paymentNo);
        const notificationId = trade(payment.paymentNo).notifications[0]!.id;
        const refused = await eventually(
          () => rows.callbackLogs({ channel: profile.name, notificationId }),
          (found) => found.some((log) => log.verdict === "unknown_payment"),
        );
        expect(refused[0]).toMatchObject({ verdict: "unknown_payment", answerStatus: 400 });
        await rows.renumberPayment(payment.id, payment.paymentNo);

        const notification = await eventually(
          () => trade(payment.paymentNo).notifications[0]!,
          (n) => n.state === "acknowledged",
        );
        expect(notification.attempts.length).toBeGreaterThanOrEqual(2);
        expect(notification.attempts[0]).toMatchObject({ ...profile.reject(`no payment ${payment.paymentNo}`), acknowledged: false });
        expect(notification.attempts.at(-1)).toMatchObject({ ...profile.accept, acknowledged: true });
        expect(await statusOf(payment.id)).toBe(PaymentStatus.SUCCEEDED);

        const logs = await rows.callbackLogs({ channel: profile.name, notificationId });
        const applied = logs.filter((log) => log.verdict === "applied");
        expect(applied).toHaveLength(1);
        if (profile.logKeepsSignedBody) {
          // Two more deliveries of the byte-identical request, as the channel sends after a lost answer.
          const { "content-length": _length, ...headers } = applied[0]!.headers;
          for (let i = 0; i < 2; i++) expect(await postToShim(headers, applied[0]!.rawBody)).toEqual(profile.accept);
          const verdicts = (await rows.callbackLogs({ channel: profile.name, notificationId })).map((log) => log.verdict);
          expect(verdicts.filter((verdict) => verdict === "applied")).toHaveLength(1);
          expect(verdicts.filter((verdict) => verdict === "duplicate")).toHaveLength(2);
        }
        expect(await rows.outboxEvents(payment.id, "payment.succeeded")).toBe(1);
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded"]);
      });

      it("answers the create and ends SUCCEEDED when the success callback arrives before the create call returns", async () => {
        // The payment number is not known before the create, so the fault is set for the whole channel.
        channelFaults({ notifyBeforeCreateReturns: true });
        const payment = await create();
        t.simulator.clearFaults({ channel: profile.name });
        expect(payment.status).toBe(PaymentStatus.SUCCEEDED);
        const view = trade(payment.paymentNo);
        expect(payment.channelTradeNo).toBe(view.channelTradeNo);
        const logs = await rows.callbackLogs({ paymentId: payment.id });
        expect(logs.map((log) => [log.verdict, log.effect])).toEqual([["applied", "PENDING->SUCCEEDED"]]);
        const stored = await rows.payment({ id: payment.id });
        expect(stored.actionKind).toBe(profile.actionKind);
        expectActionOf(stored.actionValue, view);
        expect(await rows.outboxEvents(payment.id, "payment.succeeded")).toBe(1);
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded"]);
      });

      it("stays PENDING while the callback is held back, then ends SUCCEEDED from one delivery", async () => {
        const payment = await create();
        faultsFor(payment.paymentNo, { notifyDelayMs: 1000 });
        t.simulator.pay(profile.name, payment.paymentNo);
        expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
        expect(trade(payment.paymentNo).notifications[0]).toMatchObject({ state: "queued", attempts: [] });

        const status = await eventually(
          () => statusOf(payment.id),
          (s) => s === PaymentStatus.SUCCEEDED,
        );
        expect(status).toBe(PaymentStatus.SUCCEEDED);
        const notification = await eventually(
          () => trade(payment.paymentNo).notifications[0]!,
          (n) => n.state === "acknowledged",
        );
        expect(notification.attempts).toHaveLength(1);
        expect(notification.attempts[0]).toMatchObject({ ...profile.accept, acknowledged: true });
      });

      it("ends REFUNDED when a full refund's callback overtakes the payment's success callback; the late one changes nothing", async () => {
        const payment = await create();
        // The delay lets both callbacks queue up; outOfOrder then delivers the newest first.
        faultsFor(payment.paymentNo, { outOfOrder: true, notifyDelayMs: 800 });
        t.simulator.pay(profile.name, payment.paymentNo);
        expect((await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)).payment?.status).toBe(PaymentStatus.SUCCEEDED);
        const full = await refund(payment.id, "ooo-full", AMOUNT);
        expect(full.status).toBe(RefundStatus.SUCCEEDED);

        const notifications = await eventually(
          () => trade(payment.paymentNo).notifications,
          (list) => list.length === 2 && list.every((n) => n.state === "acknowledged"),
        );
        const [paymentNotify, refundNotify] = notifications;
        expect(refundNotify!.attempts[0]!.at < paymentNotify!.attempts[0]!.at).toBe(true);
        const paymentLogs = await rows.callbackLogs({ channel: profile.name, notificationId: paymentNotify!.id });
        expect(paymentLogs.map((log) => [log.verdict, log.effect])).toEqual([["applied", "unchanged"]]);
        const refundLogs = await rows.callbackLogs({ channel: profile.name, notificationId: refundNotify!.id });
        expect(refundLogs.map((log) => log.verdict)).toEqual([profile.lateRefundNotifyVerdict]);
        expect(refundLogs.every((log) => log.effect === null || log.effect === "unchanged")).toBe(true);

        const after = await paymentOf(payment.id);
        expect(after.status).toBe(PaymentStatus.REFUNDED);
        expect(after.refundedAmount).toBe(AMOUNT);
        expect(trade(payment.paymentNo)).toMatchObject({ channelState: profile.refundedState, refundedMinor: AMOUNT.toString() });
        expect(await rows.outboxEvents(payment.id, "payment.succeeded")).toBe(1);
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded", "refund_accepted", "refund_succeeded"]);
      });

      it("finds a success whose callback never comes by QueryPayment", async () => {
        const payment = await paidSilently();
        expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
        const queried = await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers);
        expect(queried.payment?.status).toBe(PaymentStatus.SUCCEEDED);
        expect(queried.payment?.channelTradeNo).toBe(trade(payment.paymentNo).channelTradeNo);
        expect(trade(payment.paymentNo).notifications.map((n) => n.state)).toEqual(["dropped"]);
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded"]);
      });

      it("finds a success whose callback never comes by the sweeper, instead of closing the expired payment", async () => {
        const payment = await paidSilently();
        const result = await sweepPayments(() => rows.paymentDue(payment.id, { expired: true }));
        expect(result.settled).toBeGreaterThanOrEqual(1);
        expect(await statusOf(payment.id)).toBe(PaymentStatus.SUCCEEDED);
        expect(trade(payment.paymentNo).state).toBe("paid");
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded"]);
      });

      it("refuses a callback not signed by the channel with its non-success answer, changing nothing", async () => {
        const payment = await create();
        faultsFor(payment.paymentNo, { badSignature: true });
        t.simulator.pay(profile.name, payment.paymentNo);
        const notification = await eventually(
          () => trade(payment.paymentNo).notifications[0]!,
          (n) => n.attempts.length >= 1 && n.attempts[0]!.status !== undefined,
        );
        expect(notification.attempts[0]).toMatchObject({ ...profile.reject("bad_signature"), acknowledged: false });
        expect(notification.state).not.toBe("acknowledged");
        expect(await rows.rejectedCallbacks(profile.name, "bad_signature")).toBeGreaterThanOrEqual(1);
        // Unverified, so nothing was tied to the payment.
        expect(await rows.callbackLogs({ paymentId: payment.id })).toEqual([]);
        expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
        expect(await rows.inboxRows(payment.id)).toBe(0);
        expect(await rows.outboxEvents(payment.id, "payment.succeeded")).toBe(0);
        expect(await rows.journal(payment.id)).toEqual([]);
      });

      it("refuses a correctly signed callback for another amount as a mismatch, changing nothing", async () => {
        const payment = await create();
        faultsFor(payment.paymentNo, { alterAmount: 1 });
        t.simulator.pay(profile.name, payment.paymentNo);
        const logs = await eventually(
          () => rows.callbackLogs({ paymentId: payment.id }),
          (found) => found.length >= 1,
        );
        for (const log of logs) {
          expect(log).toMatchObject({
            verdict: "mismatch",
            reason: `amount ${AMOUNT + 1n} ${profile.currency} != ${AMOUNT} ${profile.currency}`,
            answerStatus: 400,
          });
        }
        const notification = await eventually(
          () => trade(payment.paymentNo).notifications[0]!,
          (n) => n.attempts[0]?.status !== undefined,
        );
        expect(notification.attempts[0]).toMatchObject({ ...profile.reject("amount mismatch"), acknowledged: false });
        expect(notification.state).not.toBe("acknowledged");
        expect(await statusOf(payment.id)).toBe(PaymentStatus.PENDING);
        expect(await rows.inboxRows(payment.id)).toBe(0);
        expect(await rows.outboxEvents(payment.id, "payment.succeeded")).toBe(0);
        expect(await rows.journal(payment.id)).toEqual([]);
      });
    });

    describe("the channel's API failing", () => {
      async function expectStoredWithoutAction(merchantOrderNo: string) {
        const stored = await rows.payment({ merchantOrderNo });
        expect(stored).toMatchObject({ status: "PENDING", actionKind: null, actionValue: null, channelTradeNo: null });
        return stored;
      }

      async function retryGetsTheSamePayment(body: ReturnType<typeof request>, paymentId: string) {
        const retried = (await t.grpc.payments.createPayment(body, merchant.headers)).payment!;
        expect(retried.id).toBe(paymentId);
        expect(retried.status).toBe(PaymentStatus.PENDING);
        expect(retried.action?.action.case).toBe(profile.actionCase);
        const view = trade(retried.paymentNo);
        expectActionOf(retried.action?.action.value, view);
        if (profile.createNamesTrade) expect(retried.channelTradeNo).toBe(view.channelTradeNo);
        expect(t.simulator.listTrades(profile.name).filter((sim) => sim.outTradeNo === retried.paymentNo)).toHaveLength(1);
        return retried;
      }

      for (const [what, faults] of [
        ["a 5xx", (operation: string): SimulatorFaults => ({ apiError: { method: operation, status: 503, times: 1 } })],
        ["a timeout", (operation: string): SimulatorFaults => ({ apiTimeout: { method: operation, times: 1 } })],
      ] as const) {
        it(`answers CreatePayment UNAVAILABLE on ${what}, keeps the payment PENDING without an action, and the retry opens the same payment`, async () => {
          channelFaults(faults(profile.operations.create));
          const body = request();
          const error = await grpcError(t.grpc.payments.createPayment(body, merchant.headers));
          expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
          expect(reasonOf(error)).toBe("CHANNEL_UNAVAILABLE");
          const stored = await expectStoredWithoutAction(body.merchantOrderNo);
          expect(t.simulator.getTrade(profile.name, stored.paymentNo)).toBeUndefined();
          await retryGetsTheSamePayment(body, stored.id);
        });
      }

      it("gets back the trade the channel did open when only the create answer was lost", async () => {
        channelFaults({ apiTimeout: { method: profile.operations.create, times: 1, apply: true } });
        const body = request();
        const error = await grpcError(t.grpc.payments.createPayment(body, merchant.headers));
        expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
        expect(reasonOf(error)).toBe("CHANNEL_UNAVAILABLE");
        const stored = await expectStoredWithoutAction(body.merchantOrderNo);
        const openedAtChannel = trade(stored.paymentNo);

        const retried = await retryGetsTheSamePayment(body, stored.id);
        expectActionOf(retried.action?.action.value, openedAtChannel);
        expect(trade(stored.paymentNo).channelTradeNo).toBe(openedAtChannel.channelTradeNo);
      });

      it("answers QueryPayment UNAVAILABLE on a 5xx and on a timeout, changing nothing; the next query applies the payment", async () => {
        const payment = await paidSilently();
        const before = await rows.payment({ id: payment.id });
        channelFaults({ apiError: { method: profile.operations.query, status: 500, times: 1 } });
        const error = await grpcError(t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers));
        expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
        expect(reasonOf(error)).toBe("CHANNEL_UNAVAILABLE");
        expect(await rows.payment({ id: payment.id })).toEqual(before);

        // The same over Connect: its error carries the same code and ErrorInfo.
        channelFaults({ apiTimeout: { method: profile.operations.query, times: 1 } });
        const viaConnect = await t.connect.payments
          .queryPayment(lookup(payment.id), { headers: merchant.headers })
          .catch((e: unknown) => ConnectError.from(e));
        expect(viaConnect).toBeInstanceOf(ConnectError);
        expect((viaConnect as ConnectError).code).toBe(Code.Unavailable);
        expect((viaConnect as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason).toBe("CHANNEL_UNAVAILABLE");
        expect(await rows.payment({ id: payment.id })).toEqual(before);
        expect(await rows.journal(payment.id)).toEqual([]);
        expect(before).toMatchObject({ status: "PENDING", fee: 0n });

        const queried = await t.connect.payments.queryPayment(lookup(payment.id), { headers: merchant.headers });
        expect(queried.payment?.status).toBe(PaymentStatus.SUCCEEDED);
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded"]);
      });

      for (const [what, faults] of [
        ["a 5xx", (operation: string): SimulatorFaults => ({ apiError: { method: operation, status: 500 } })],
        ["a timeout", (operation: string): SimulatorFaults => ({ apiTimeout: { method: operation } })],
      ] as const) {
        it(`leaves an expired payment PENDING and asks again later when the sweeper's query gets ${what}`, async () => {
          const payment = await create();
          channelFaults(faults(profile.operations.query));
          const result = await sweepPayments(() => rows.paymentDue(payment.id, { expired: true }));
          t.simulator.clearFaults({ channel: profile.name });
          expect(result.retried).toBeGreaterThanOrEqual(1);
          const row = await rows.payment({ id: payment.id });
          expect(row).toMatchObject({ status: "PENDING", queryAttempts: 1, statusReason: null });
          expect(row.nextQueryAt!.getTime()).toBeGreaterThan(Date.now());
          // Never closed on a guess: the channel was not asked to close it either.
          expect(t.simulator.getTrade(profile.name, payment.paymentNo)?.state ?? "created").toBe("created");
        });
      }

      describe.runIf(profile.signsAnswers)("answers not signed by the channel", () => {
        function expectUntrusted(error: ServiceError) {
          // The outcome at the channel is unknown, as if it were unreachable; the cause is named for operators.
          expect(error.code).toBe(GrpcStatus.UNAVAILABLE);
          expect(readGrpcErrorDetails(error).errorInfo?.metadata.channel_code).toBe("RESPONSE_SIGNATURE_INVALID");
        }

        it("refuses a create answer it cannot verify and leaves the payment PENDING to retry", async () => {
          channelFaults({ badResponseSignature: true });
          const body = request();
          expectUntrusted(await grpcError(t.grpc.payments.createPayment(body, merchant.headers)));
          const stored = await rows.payment({ merchantOrderNo: body.merchantOrderNo });
          expect(stored).toMatchObject({ status: "PENDING", actionKind: null });
          t.simulator.clearFaults({ channel: profile.name });
          await retryGetsTheSamePayment(body, stored.id);
        });

        it("refuses query and close answers it cannot verify, changing nothing; the next verified query applies the payment", async () => {
          const payment = await paidSilently();
          faultsFor(payment.paymentNo, { badResponseSignature: true });
          expectUntrusted(await grpcError(t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)));
          expectUntrusted(await grpcError(t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers)));
          expect((await rows.payment({ id: payment.id })).status).toBe("PENDING");
          expect(await rows.journal(payment.id)).toEqual([]);

          t.simulator.clearFaults({ channel: profile.name, outTradeNo: payment.paymentNo });
          faultsFor(payment.paymentNo, { dropNotifies: true });
          expect((await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)).payment?.status).toBe(PaymentStatus.SUCCEEDED);
        });
      });
    });

    describe("closing", () => {
      it("closes at the channel and here; closing again is a no-op", async () => {
        const payment = await create();
        const closed = await t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers);
        expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);
        expect(closed.payment?.closedAt).toBeDefined();
        if (profile.closedState !== undefined) {
          expect(trade(payment.paymentNo).channelState).toBe(profile.closedState);
          expect(() => t.simulator.pay(profile.name, payment.paymentNo)).toThrow(/closed|cancel/);
        }
        const again = await t.connect.payments.closePayment({ paymentId: payment.id }, { headers: merchant.headers });
        expect(again.payment?.status).toBe(PaymentStatus.CLOSED);
        expect(await rows.journal(payment.id)).toEqual([]);
      });

      it("closes an expired payment with the sweeper, at the channel and here", async () => {
        const payment = await create();
        const result = await sweepPayments(() => rows.paymentDue(payment.id, { expired: true }));
        expect(result.closed).toBeGreaterThanOrEqual(1);
        expect(await statusOf(payment.id)).toBe(PaymentStatus.CLOSED);
        if (profile.closedState !== undefined) expect(trade(payment.paymentNo).channelState).toBe(profile.closedState);
        expect(trade(payment.paymentNo).state).not.toBe("paid");
      });

      it("keeps a payment CLOSED and raises PAID_AFTER_CLOSE once when the channel confirms the close but the money arrives", async () => {
        const payment = await create();
        t.simulator.scan(profile.name, payment.paymentNo);
        // The delay lets our close commit first; the race itself is the next case.
        faultsFor(payment.paymentNo, { paidAfterClose: true, notifyDelayMs: 300 });
        const closed = await t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers);
        expect(closed.payment?.status).toBe(PaymentStatus.CLOSED);

        const logs = await eventually(
          () => rows.callbackLogs({ paymentId: payment.id }),
          (found) => found.some((log) => log.verdict === "applied"),
        );
        expect(logs.map((log) => [log.verdict, log.effect, log.answerStatus])).toEqual([["applied", "paid_after_close", profile.accept.status]]);
        const after = await paymentOf(payment.id);
        expect(after.status).toBe(PaymentStatus.CLOSED);
        expect(after.refundedAmount).toBe(0n);
        const view = trade(payment.paymentNo);
        expect(view.state).toBe("paid");

        const listed = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
        const raised = listed.discrepancies.filter((d) => d.paymentId === payment.id);
        expect(raised).toHaveLength(1);
        expect(raised[0]).toMatchObject({
          kind: "PAID_AFTER_CLOSE",
          channel: profile.protoChannel,
          merchantId: merchant.id,
          channelTradeNo: view.channelTradeNo,
          amount: AMOUNT,
          currency: profile.currency,
          status: "OPEN",
        });
        expect(await rows.outboxEvents(payment.id, "payment.succeeded")).toBe(0);
        expect(await rows.journal(payment.id)).toEqual(["paid_after_close"]);

        // Asking the channel again sees the same money: no second discrepancy, no state change.
        expect((await t.grpc.payments.queryPayment(lookup(payment.id), merchant.headers)).payment?.status).toBe(PaymentStatus.CLOSED);
        const resolution = `refunded the shopper on trade ${view.channelTradeNo}`;
        const resolved = await t.grpc.settlement.resolveDiscrepancy({ discrepancyId: raised[0]!.id, resolution, resolvedBy: "ops" }, t.adminHeaders);
        expect(resolved.discrepancy).toMatchObject({ status: "RESOLVED", resolution });
        const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
        expect(open.discrepancies.filter((d) => d.paymentId === payment.id)).toEqual([]);
        expect(await rows.journal(payment.id)).toEqual(["paid_after_close"]);
      });

      it("never drops the money when the success callback races the close: CLOSED with a discrepancy, or SUCCEEDED", async () => {
        const payments = await Promise.all(Array.from({ length: 10 }, () => create()));
        for (const payment of payments) {
          t.simulator.scan(profile.name, payment.paymentNo);
          faultsFor(payment.paymentNo, { paidAfterClose: true });
        }
        const closes = await Promise.allSettled(
          payments.map((payment) => t.grpc.payments.closePayment({ paymentId: payment.id }, merchant.headers)),
        );
        await eventually(
          () => Promise.all(payments.map(async (payment) => (await rows.callbackLogs({ paymentId: payment.id })).filter((l) => l.verdict === "applied"))),
          (applied) => applied.every((list) => list.length === 1),
        );
        const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
        for (const [index, payment] of payments.entries()) {
          const close = closes[index]!;
          const status = await statusOf(payment.id);
          const raised = open.discrepancies.filter((d) => d.paymentId === payment.id && d.kind === "PAID_AFTER_CLOSE");
          if (close.status === "fulfilled") {
            // Our close committed first: the money that came anyway is raised for refund.
            expect(status).toBe(PaymentStatus.CLOSED);
            expect(raised).toHaveLength(1);
            expect(await rows.journal(payment.id)).toEqual(["paid_after_close"]);
          } else {
            // The callback committed first: the payment is paid and the close is refused.
            expect((close.reason as ServiceError).code).toBe(GrpcStatus.FAILED_PRECONDITION);
            expect(status).toBe(PaymentStatus.SUCCEEDED);
            expect(raised).toHaveLength(0);
            expect(await rows.journal(payment.id)).toEqual(["payment_succeeded"]);
          }
        }
      });
    });

    describe("refunds", () => {
      it("refunds in full: the refund SUCCEEDED, the payment REFUNDED, the channel's trade refunded, nothing left to refund", async () => {
        const payment = await paid(AMOUNT);
        const full = await refund(payment.id, "full-1", AMOUNT);
        expect(full.status).toBe(RefundStatus.SUCCEEDED);
        expect(full.succeededAt).toBeDefined();
        const after = await paymentOf(payment.id);
        expect(after.status).toBe(PaymentStatus.REFUNDED);
        expect(after.refundedAmount).toBe(AMOUNT);
        const view = trade(payment.paymentNo);
        expect(view.refunds).toMatchObject([{ refundNo: full.refundNo, amountMinor: AMOUNT.toString(), state: "succeeded" }]);
        expect(view.refunds[0]!.channelRefundNo ?? "").toBe(full.channelRefundNo);
        expect(view).toMatchObject({ channelState: profile.refundedState, refundedMinor: AMOUNT.toString() });

        const more = await grpcError(refund(payment.id, "full-2", 1n));
        expect(more.code).toBe(GrpcStatus.FAILED_PRECONDITION);
        expect(reasonOf(more)).toBe("REFUND_EXCEEDS_PAYMENT");
        expect(await rows.journal(payment.id)).toEqual(["payment_succeeded", "refund_accepted", "refund_succeeded"]);
      });

      it("refunds in parts: SUCCEEDED with refunded_amount, more than is left refused before the channel, the last part makes it REFUNDED", async () => {
        const payment = await paid(10_000n);
        expect((await refund(payment.id, "part-1", 3000n)).status).toBe(RefundStatus.SUCCEEDED);
        expect((await refund(payment.id, "part-2", 3000n)).status).toBe(RefundStatus.SUCCEEDED);
        const partly = await paymentOf(payment.id);
        expect(partly.status).toBe(PaymentStatus.SUCCEEDED);
        expect(partly.refundedAmount).toBe(6000n);

        const tooMuch = await grpcError(refund(payment.id, "too-much", 4001n));
        expect(tooMuch.code).toBe(GrpcStatus.FAILED_PRECONDITION);
        expect(reasonOf(tooMuch)).toBe("REFUND_EXCEEDS_PAYMENT");
        expect(await rows.refundRows(payment.id)).toBe(2);
        expect(trade(payment.paymentNo).refunds).toHaveLength(2);

        expect((await refund(payment.id, "part-3", 4000n)).status).toBe(RefundStatus.SUCCEEDED);
        const full = await paymentOf(payment.id);
        expect(full.status).toBe(PaymentStatus.REFUNDED);
        expect(full.refundedAmount).toBe(10_000n);
        expect(trade(payment.paymentNo).refunds.map((r) => r.amountMinor)).toEqual(["3000", "3000", "4000"]);
        expect(trade(payment.paymentNo).refundedMinor).toBe("10000");
        const listed = await t.grpc.payments.listRefunds({ paymentId: payment.id }, merchant.headers);
        expect(listed.refunds.map((r) => r.merchantRefundNo).sort()).toEqual(["part-1", "part-2", "part-3"]);
      });

      it("refuses a refund above the paid amount with REFUND_EXCEEDS_PAYMENT without asking the channel", async () => {
        const payment = await paid(AMOUNT);
        const error = await grpcError(refund(payment.id, "above", AMOUNT + 1n));
        expect(error.code).toBe(GrpcStatus.FAILED_PRECONDITION);
        expect(reasonOf(error)).toBe("REFUND_EXCEEDS_PAYMENT");
        expect(await rows.refundRows(payment.id)).toBe(0);
        expect(trade(payment.paymentNo).refunds).toEqual([]);
        expect((await paymentOf(payment.id)).refundedAmount).toBe(0n);
      });

      it("answers the same merchant_refund_no and amount with the same refund, refunded once; another amount is IDEMPOTENCY_KEY_REUSED", async () => {
        const payment = await paid(AMOUNT);
        const first = await refund(payment.id, "same-no", 1000n);
        const again = await refund(payment.id, "same-no", 1000n);
        const viaConnect = (
          await t.connect.payments.refundPayment(
            { paymentId: payment.id, merchantRefundNo: "same-no", amount: 1000n, reason: "changed their mind" },
            { headers: merchant.headers },
          )
        ).refund!;
        expect([again.id, viaConnect.id]).toEqual([first.id, first.id]);
        expect(again.status).toBe(RefundStatus.SUCCEEDED);
        expect(trade(payment.paymentNo).refunds).toHaveLength(1);

        const changed = await grpcError(refund(payment.id, "same-no", 1001n));
        expect(changed.code).toBe(GrpcStatus.ALREADY_EXISTS);
        expect(reasonOf(changed)).toBe("IDEMPOTENCY_KEY_REUSED");
        expect((await paymentOf(payment.id)).refundedAmount).toBe(1000n);
        expect(trade(payment.paymentNo).refunds).toHaveLength(1);
      });

      it("lets exactly 30 of 50 concurrent one-unit refunds of a 30-unit payment through, here and at the channel", async () => {
        const payment = await paid(30n);
        const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => refund(payment.id, `unit-${i}`, 1n)));
        const succeeded = results.filter((r) => r.status === "fulfilled");
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
        expect(succeeded).toHaveLength(30);
        expect(succeeded.every((r) => r.value.status === RefundStatus.SUCCEEDED)).toBe(true);
        expect(refused.map((r) => [(r.reason as ServiceError).code, reasonOf(r.reason as ServiceError)])).toEqual(
          Array.from({ length: 20 }, () => [GrpcStatus.FAILED_PRECONDITION, "REFUND_EXCEEDS_PAYMENT"]),
        );
        const after = await paymentOf(payment.id);
        expect(after.refundedAmount).toBe(30n);
        expect(after.status).toBe(PaymentStatus.REFUNDED);
        expect(trade(payment.paymentNo).refunds).toHaveLength(30);
        expect(trade(payment.paymentNo).refundedMinor).toBe("30");
      });

      it("marks a refund the channel rejects FAILED and makes the amount refundable again", async () => {
        const payment = await paid(AMOUNT);
        faultsFor(payment.paymentNo, { refundFails: true });
        const rejected = await refund(payment.id, "rejected", AMOUNT);
        expect(rejected.status).toBe(RefundStatus.FAILED);
        expect(rejected.failureReason).toContain(profile.refundRejection);
        expect(trade(payment.paymentNo).refunds).toMatchObject(profile.rejectedRefundKept ? [{ amountMinor: AMOUNT.toString(), state: "failed" }] : []);
        const after = await paymentOf(payment.id);
        expect(after.status).toBe(PaymentStatus.SUCCEEDED);
        expect(after.refundedAmount).toBe(0n);

        t.simulator.clearFaults({ channel: profile.name, outTradeNo: payment.paymentNo });
        expect((await refund(payment.id, "rejected-retry", AMOUNT)).status).toBe(RefundStatus.SUCCEEDED);
        expect((await paymentOf(payment.id)).status).toBe(PaymentStatus.REFUNDED);
      });

      it("keeps a refund the channel has not finished PROCESSING with its amount reserved; the refund sweeper asks again and finishes it", async () => {
        const payment = await paid(AMOUNT);
        // No callback: only the sweeper's refund query can tell (Alipay never sends one for refunds).
        faultsFor(payment.paymentNo, { refundDelayMs: 1000, dropNotifies: true });
        const slow = await refund(payment.id, "slow", AMOUNT);
        expect(slow.status).toBe(RefundStatus.PROCESSING);
        expect(trade(payment.paymentNo).refunds).toMatchObject([{ amountMinor: AMOUNT.toString(), state: "processing" }]);
        expect(reasonOf(await grpcError(refund(payment.id, "on-top", 1n)))).toBe("REFUND_EXCEEDS_PAYMENT");

        expect(await sweepRefund(slow.id)).toEqual({ claimed: 1, finished: 0 });
        const swept = await rows.refund(slow.id);
        expect(swept).toMatchObject({ status: "PROCESSING", queryAttempts: 1 });
        expect(swept.nextQueryAt!.getTime()).toBeGreaterThan(Date.now());
        expect(await paymentOf(payment.id)).toMatchObject({ status: PaymentStatus.SUCCEEDED, refundedAmount: 0n });

        await eventually(
          () => trade(payment.paymentNo).refunds[0]?.state,
          (state) => state === "succeeded",
        );
        expect(await sweepRefund(slow.id)).toEqual({ claimed: 1, finished: 1 });
        const done = await getRefund(slow.id);
        expect(done.status).toBe(RefundStatus.SUCCEEDED);
        expect(await paymentOf(payment.id)).toMatchObject({ status: PaymentStatus.REFUNDED, refundedAmount: AMOUNT });
      });

      it("keeps a refund whose answer was lost PROCESSING; the refund sweeper confirms the one refund the channel made", async () => {
        const payment = await paid(AMOUNT);
        faultsFor(payment.paymentNo, { dropNotifies: true });
        channelFaults({ apiTimeout: { method: profile.operations.refund, times: 1, apply: true } });
        const lost = await refund(payment.id, "lost-answer", 1000n);
        expect(lost.status).toBe(RefundStatus.PROCESSING);
        expect(trade(payment.paymentNo).refunds).toEqual([expect.objectContaining({ refundNo: lost.refundNo, state: "succeeded" })]);

        expect(await sweepRefund(lost.id)).toMatchObject({ finished: 1 });
        const done = await getRefund(lost.id);
        expect(done.status).toBe(RefundStatus.SUCCEEDED);
        expect(done.channelRefundNo).toBe(trade(payment.paymentNo).refunds[0]!.channelRefundNo ?? "");
        expect(trade(payment.paymentNo).refunds).toHaveLength(1);
        expect((await paymentOf(payment.id)).refundedAmount).toBe(1000n);
      });

      it.runIf(profile.signsAnswers)(
        "keeps a refund PROCESSING, its amount reserved, when the refund answer cannot be verified; the sweeper finishes it once it can",
        async () => {
          const payment = await paid(AMOUNT);
          faultsFor(payment.paymentNo, { badResponseSignature: true, dropNotifies: true });
          const unsigned = await refund(payment.id, "unsigned-1", 5000n);
          // The channel did pay it back: marking it FAILED would make the amount refundable a second time.
          expect(trade(payment.paymentNo).refunds).toMatchObject([{ amountMinor: "5000", state: "succeeded" }]);
          expect(unsigned.status).toBe(RefundStatus.PROCESSING);
          expect(reasonOf(await grpcError(refund(payment.id, "unsigned-2", AMOUNT - 4999n)))).toBe("REFUND_EXCEEDS_PAYMENT");

          // The sweeper cannot trust the refund query either while the fault lasts.
          await sweepRefund(unsigned.id);
          expect((await rows.refund(unsigned.id)).status).toBe("PROCESSING");

          t.simulator.clearFaults({ channel: profile.name, outTradeNo: payment.paymentNo });
          expect(await sweepRefund(unsigned.id)).toMatchObject({ finished: 1 });
          expect((await getRefund(unsigned.id)).status).toBe(RefundStatus.SUCCEEDED);
          expect((await paymentOf(payment.id)).refundedAmount).toBe(5000n);
        },
      );
    });
  });
});

describe("after every channel's contract", () => {
  it("leaves the ledger balanced", async () => {
    const check = await t.grpc.settlement.checkLedger({}, t.adminHeaders);
    expect(check.violations).toEqual([]);
    expect(check.ok).toBe(true);
  });
});
