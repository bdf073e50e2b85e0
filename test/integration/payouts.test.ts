/**
 * Payouts end to end on MySQL: SetSettlementAccount over grpc-js (refusals and the sealed, hinted
 * account), payouts created in a transaction as settlement orders will create them, sent and followed
 * by the payout sweeper against the simulated channels over real HTTP (Alipay answers at once, WeChat
 * Pay through its query, the card acquirer through its payout.paid webhook), failures returning the
 * money, unknown answers moving nothing, duplicated webhooks and racing sweepers applying once, and
 * the ledger invariants checked after every test.
 */
import { Code } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildChannels } from "../../src/app.js";
import type { ChannelPayoutRequest, ChannelPayoutStatus, PaymentChannel } from "../../src/channels/channel.js";
import { ChannelRegistry } from "../../src/channels/registry.js";
import { signCardWebhook } from "../../src/channels/card/card-webhook-signature.js";
import { ValidationError } from "../../src/errors.js";
import { newId, newTradeNo } from "../../src/ids.js";
import { checkLedger } from "../../src/ledger/ledger-check.js";
import { SecretBox } from "../../src/merchants/credentials.js";
import { checkPayoutLedger } from "../../src/payouts/payout-check.js";
import { createPayoutService, type PayoutView } from "../../src/payouts/payout-service.js";
import type { SimulatorFaults } from "../../src/simulator/simulator.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { PayeeAccountType } from "../../gen/payments/v1/settlement_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp, testKeys } from "../support/test-app.js";
import { connectError, eventually, grpcError } from "../support/waiting.js";
import { fundMerchant } from "../support/funding.js";

const ALIPAY_USER = "2088123456789012";
const WECHAT_OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const BANK_ACCOUNT = "ba_1QpayoutTestAcct42";

let t: TestApp;
/** sendPayout calls per payout number, counted around the real adapters. */
const sends = new Map<string, number>();

function countingPayouts(channel: PaymentChannel): PaymentChannel {
  const real = channel.payouts;
  return Object.assign(Object.create(channel) as PaymentChannel, {
    name: channel.name,
    payouts: {
      validatePayee: real.validatePayee.bind(real),
      queryPayout: (request: ChannelPayoutRequest) => real.queryPayout(request),
      sendPayout: (request: ChannelPayoutRequest) => {
        sends.set(request.payoutNo, (sends.get(request.payoutNo) ?? 0) + 1);
        return real.sendPayout(request);
      },
    },
  });
}

beforeAll(async () => {
  t = await startTestApp({ channelTimeoutMs: 1000, wrapChannel: countingPayouts });
  await t.registerCardWebhook();
});
afterAll(() => t?.stop());
afterEach(async () => {
  t.simulator.clearFaults();
  const ledger = await checkLedger(t.app.uow.session());
  expect(ledger.violations).toEqual([]);
  expect(ledger.ok).toBe(true);
  expect((await checkPayoutLedger(t.app.uow.session())).violations).toEqual([]);
});

type SqlValue = string | number | bigint | Date | null;
async function query<T = Record<string, unknown>>(sql: string, params: SqlValue[] = []): Promise<T[]> {
  return (await t.app.db.em().getConnection().execute(sql, params)) as T[];
}

interface PayoutRowView {
  status: string;
  attempts: number;
  channel_payout_no: string | null;
  failure_reason: string | null;
  payee_sealed: string;
  next_attempt_at: Date | null;
  finished_at: Date | null;
}

async function payoutRow(id: string): Promise<PayoutRowView> {
  const [row] = await query<PayoutRowView>("select * from payout where id = ?", [id]);
  if (!row) throw new Error(`no payout ${id}`);
  const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));
  return { ...row, attempts: Number(row.attempts), next_attempt_at: date(row.next_attempt_at), finished_at: date(row.finished_at) };
}

async function entriesOf(ref: string): Promise<number> {
  const [row] = await query<{ n: number | string }>("select count(*) as n from journal_entry where ref = ?", [ref]);
  return Number(row?.n ?? 0);
}

/** Makes the payout due for the sweeper now (a test stages time instead of waiting for the back-off). */
async function makeDue(id: string): Promise<void> {
  await query("update payout set next_attempt_at = ? where id = ?", [new Date(Date.now() - 1000), id]);
}

/** Sweeps (making the payout due each time) until it reaches `status`. */
async function sweepUntil(id: string, status: string): Promise<PayoutRowView> {
  return eventually(
    async () => {
      await makeDue(id);
      await t.app.payouts.runOnce();
      return payoutRow(id);
    },
    (row) => row.status === status,
  );
}

async function balance(merchant: { headers: Record<string, string> }, currency: string) {
  return t.grpc.settlement.getBalance({ currency }, merchant.headers);
}


/** Creates a payout for a made-up settlement order, to the merchant's current payout account. */
async function createPayout(merchantId: string, currency: string, amount: bigint): Promise<PayoutView> {
  const session = t.app.uow.session();
  return t.app.uow.transaction(session, async (tx) => {
    const account = await t.app.payouts.lockPayoutAccount(tx, merchantId);
    if (!account) throw new Error(`merchant ${merchantId} has no payout account`);
    return t.app.payouts.createPayout(tx, account, {
      settlementId: newId(),
      settlementNo: newTradeNo("S"),
      merchantId,
      currency,
      amount,
    });
  });
}

async function merchantWithAccount(name: string, channel: Channel, accountType: PayeeAccountType, account: string, payeeName = "") {
  const merchant = await t.createMerchant(name);
  await t.grpc.settlement.setSettlementAccount({ merchantId: merchant.id, channel, accountType, account, name: payeeName }, t.adminHeaders);
  return merchant;
}

function faultsFor(channel: "alipay" | "wechatpay" | "card", faults: SimulatorFaults, payoutNo?: string) {
  t.simulator.setFaults({ channel, ...(payoutNo ? { outTradeNo: payoutNo } : {}), faults });
}

/**
 * A payout service beside the app's whose only channel (alipay) answers the sends of one payout with
 * `send` and knows no other: for answers the simulator does not give, and to see what is sent.
 */
function serviceSending(payoutNo: string, send: (request: ChannelPayoutRequest) => ChannelPayoutStatus) {
  return createPayoutService({
    uow: t.app.uow,
    channels: new ChannelRegistry([
      {
        name: "alipay",
        payouts: {
          validatePayee: () => undefined,
          queryPayout: async () => ({ state: "not_found" }),
          sendPayout: async (request: ChannelPayoutRequest) => {
            if (request.payoutNo !== payoutNo) throw new Error("not this test's payout");
            return send(request);
          },
        },
      } as unknown as PaymentChannel,
    ]),
    secrets: new SecretBox(t.config.dataEncryptionKey),
    log: () => {},
    leaseMs: 1000,
  });
}

describe("SetSettlementAccount", () => {
  async function refusal(request: Record<string, unknown>) {
    const error = await grpcError(t.grpc.settlement.setSettlementAccount(request as never, t.adminHeaders));
    return { code: error.code, ...readGrpcErrorDetails(error) };
  }

  async function accountRows(merchantId: string): Promise<number> {
    const [row] = await query<{ n: number | string }>("select count(*) as n from settlement_account where merchant_id = ?", [merchantId]);
    return Number(row?.n ?? 0);
  }

  it("refuses an account type another channel pays, naming account_type, and stores nothing", async () => {
    const merchant = await t.createMerchant("Wrong Type Shop");
    const error = await refusal({ merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.WECHAT_OPENID, account: WECHAT_OPENID });
    expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(error.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["account_type"]);
    expect(await accountRows(merchant.id)).toBe(0);
  });

  it("refuses an account the channel's payee rules reject, naming account, without echoing it", async () => {
    const merchant = await t.createMerchant("Bad Shape Shop");
    const error = await refusal({ merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: "20881234" });
    expect(error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(error.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["account"]);
    const card = await refusal({ merchantId: merchant.id, channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: "DE89370400440532013000" });
    expect(card.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([["account", "INVALID_PAYEE"]]);
    expect(JSON.stringify(card)).not.toContain("DE89370400440532013000");
    expect(await accountRows(merchant.id)).toBe(0);
  });

  it("refuses missing enums, over-long and control-character text, each naming its field", async () => {
    const merchant = await t.createMerchant("Bounds Shop");
    const missing = await refusal({ merchantId: merchant.id, account: ALIPAY_USER });
    expect(missing.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(missing.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([
      ["channel", "REQUIRED"],
      ["account_type", "REQUIRED"],
    ]);
    const long = await refusal({
      merchantId: merchant.id,
      channel: Channel.ALIPAY,
      accountType: PayeeAccountType.ALIPAY_LOGON_ID,
      account: `${"a".repeat(95)}@x.com1`,
      name: "n".repeat(101),
    });
    expect(long.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([
      ["account", "TOO_LONG"],
      ["name", "TOO_LONG"],
    ]);
    const huge = await refusal({ merchantId: merchant.id, channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: "b".repeat(100_000) });
    expect(huge.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([["account", "TOO_LONG"]]);
    const control = await refusal({ merchantId: merchant.id, channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: "ba_abc\ndef123" });
    expect(control.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([["account", "CONTROL_CHARACTERS"]]);
    const empty = await refusal({ merchantId: merchant.id, channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: "" });
    expect(empty.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([["account", "REQUIRED"]]);
    const loginWithoutName = await refusal({ merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_LOGON_ID, account: "shop@example.com" });
    expect(loginWithoutName.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([["name", "REQUIRED"]]);
    const badId = await refusal({ merchantId: "x".repeat(65), channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: BANK_ACCOUNT });
    expect(badId.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["merchant_id"]);
    expect(await accountRows(merchant.id)).toBe(0);
  });

  it("is an admin call, and answers the same over Connect", async () => {
    const merchant = await t.createMerchant("Connect Account Shop");
    const request = { merchantId: merchant.id, channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: BANK_ACCOUNT };
    const denied = await grpcError(t.grpc.settlement.setSettlementAccount(request, merchant.headers));
    expect(denied.code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect(await accountRows(merchant.id)).toBe(0);
    const answer = await t.connect.settlement.setSettlementAccount(request, { headers: t.adminHeaders });
    expect(answer).toMatchObject({ merchantId: merchant.id, channel: Channel.CARD, accountHint: `${"*".repeat(16)}ct42` });
    const refused = await connectError(t.connect.settlement.setSettlementAccount({ ...request, account: "ba_!" }, { headers: t.adminHeaders }));
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["account"]);
  });

  it("answers NOT_FOUND for an unknown merchant", async () => {
    const error = await refusal({ merchantId: newId(), channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: BANK_ACCOUNT });
    expect(error.code).toBe(GrpcStatus.NOT_FOUND);
    expect(error.errorInfo?.reason).toBe("MERCHANT_NOT_FOUND");
  });

  it("refuses a channel this service does not serve, naming channel", async () => {
    const merchant = await t.createMerchant("Unserved Channel Shop");
    const onlyCard = createPayoutService({
      uow: t.app.uow,
      channels: new ChannelRegistry([]),
      secrets: new SecretBox(t.config.dataEncryptionKey),
      log: () => {},
      leaseMs: 1000,
    });
    const refused = await onlyCard
      .setSettlementAccount(t.app.uow.session(), { merchantId: merchant.id, channel: "wechatpay", accountType: "WECHAT_OPENID", account: WECHAT_OPENID })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).violations.map((v) => [v.field, v.reason])).toEqual([["channel", "CHANNEL_NOT_CONFIGURED"]]);
    expect(await accountRows(merchant.id)).toBe(0);
  });

  it("stores the account sealed, answers only its hint, and makes the account set last the payout account", async () => {
    const merchant = await t.createMerchant("Account Shop");
    const answer = await t.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: ALIPAY_USER, name: "张三" },
      t.adminHeaders,
    );
    expect(answer).toMatchObject({ merchantId: merchant.id, channel: Channel.ALIPAY, accountHint: "************9012" });
    expect(JSON.stringify(answer, (_key, value) => (typeof value === "bigint" ? value.toString() : value))).not.toContain(ALIPAY_USER);

    const [row] = await query("select * from settlement_account where merchant_id = ?", [merchant.id]);
    const stored = JSON.stringify(row, (_key, value) => (typeof value === "bigint" ? value.toString() : value));
    expect(stored).not.toContain(ALIPAY_USER);
    expect(stored).not.toContain("张三");
    expect(row).toMatchObject({ channel: "alipay", account_type: "ALIPAY_USER_ID", account_hint: "************9012" });

    await t.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.CARD, accountType: PayeeAccountType.BANK_ACCOUNT, account: BANK_ACCOUNT },
      t.adminHeaders,
    );
    const current = await t.app.uow.transaction(t.app.uow.session(), (tx) => t.app.payouts.lockPayoutAccount(tx, merchant.id));
    expect(current).toMatchObject({ merchantId: merchant.id, channel: "card", accountType: "BANK_ACCOUNT" });
    // Set again, the Alipay account is the current one once more (one row per channel, replaced).
    await t.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: "2088000000004321" },
      t.adminHeaders,
    );
    const again = await t.app.uow.transaction(t.app.uow.session(), (tx) => t.app.payouts.lockPayoutAccount(tx, merchant.id));
    expect(again).toMatchObject({ channel: "alipay", accountHint: "************4321" });
    expect(await accountRows(merchant.id)).toBe(2);
  });
});

describe("payouts", () => {
  it("pays out through Alipay, which answers SUCCESS at once, and counts it in paid_out", async () => {
    const merchant = await merchantWithAccount("Alipay Payout Shop", Channel.ALIPAY, PayeeAccountType.ALIPAY_USER_ID, ALIPAY_USER);
    await fundMerchant(t.app.uow, merchant.id, 10_000n, "CNY");
    const payout = await createPayout(merchant.id, "CNY", 6_000n);
    expect(payout).toMatchObject({ status: "PENDING", channel: "alipay", amount: 6_000n, currency: "CNY", channelPayoutNo: null });
    expect(payout.payoutNo).toMatch(/^T\d{14}[0-9A-Z]{16}$/);
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 4_000n, paidOut: 6_000n });

    await t.app.payouts.runOnce();
    const row = await payoutRow(payout.id);
    expect(row.status).toBe("PAID");
    expect(row.channel_payout_no).toBeTruthy();
    expect(row.finished_at).not.toBeNull();
    expect(row.next_attempt_at).toBeNull();
    expect(await entriesOf(`payout:${payout.id}`)).toBe(1);
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(1);
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 4_000n, paidOut: 6_000n });
    const views = await t.app.payouts.payoutsOfSettlements(t.app.uow.session(), [payout.settlementId, newId()]);
    expect([...views.values()]).toEqual([expect.objectContaining({ id: payout.id, status: "PAID", finishedAt: expect.any(Date) })]);
  });

  it("pays out through WeChat Pay: accepted as PROCESSING, PAID once its query says so", async () => {
    const merchant = await merchantWithAccount("WeChat Payout Shop", Channel.WECHAT_PAY, PayeeAccountType.WECHAT_OPENID, WECHAT_OPENID);
    await fundMerchant(t.app.uow, merchant.id, 5_000n, "CNY");
    const payout = await createPayout(merchant.id, "CNY", 5_000n);
    // WeChat transfers are asynchronous: the batch is accepted, the detail query tells the outcome.
    await t.app.payouts.runOnce();
    const processing = await payoutRow(payout.id);
    expect(processing.status).toBe("PROCESSING");
    expect(processing.next_attempt_at!.getTime()).toBeGreaterThan(Date.now());
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(0);

    const paid = await sweepUntil(payout.id, "PAID");
    expect(paid.status).toBe("PAID");
    expect(sends.get(payout.payoutNo)).toBe(1);
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(1);
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 0n, paidOut: 5_000n });
  });

  it("pays out through the card acquirer, PAID by its payout.paid webhook; a duplicated webhook applies once", async () => {
    const merchant = await merchantWithAccount("Card Payout Shop", Channel.CARD, PayeeAccountType.BANK_ACCOUNT, BANK_ACCOUNT);
    await fundMerchant(t.app.uow, merchant.id, 9_999n, "USD");
    const payout = await createPayout(merchant.id, "USD", 9_999n);
    faultsFor("card", { duplicatePayoutWebhooks: 3 }, payout.payoutNo);
    await t.app.payouts.runOnce();
    const paid = await eventually(
      () => payoutRow(payout.id),
      (row) => row.status === "PAID",
    );
    expect(paid.status).toBe("PAID");
    expect(paid.channel_payout_no).toMatch(/^po_/);

    const verdicts = await eventually(
      () => query<{ verdict: string }>("select verdict from callback_log where channel = 'card' and effect like ?", [`payout ${payout.id}%`]),
      (rows) => rows.length >= 1,
    );
    expect(verdicts.map((row) => row.verdict)).toEqual(["applied"]);
    const [applied] = await query<{ notification_id: string }>("select notification_id from callback_log where effect like ?", [`payout ${payout.id}%`]);
    const duplicates = await eventually(
      async () => {
        const [row] = await query<{ n: number | string }>(
          "select count(*) as n from callback_log where channel = 'card' and verdict = 'duplicate' and notification_id = ?",
          [applied!.notification_id],
        );
        return Number(row?.n ?? 0);
      },
      (n) => n >= 2,
    );
    expect(duplicates).toBe(2);
    expect(sends.get(payout.payoutNo)).toBe(1);
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(1);
    expect(await balance(merchant, "USD")).toMatchObject({ available: 0n, paidOut: 9_999n });
  });

  it("answers a payout webhook for an unknown payout or another amount with non-success and changes nothing", async () => {
    const merchant = await merchantWithAccount("Card Webhook Shop", Channel.CARD, PayeeAccountType.BANK_ACCOUNT, BANK_ACCOUNT);
    await fundMerchant(t.app.uow, merchant.id, 500n, "USD");
    const payout = await createPayout(merchant.id, "USD", 500n);
    const secret = testKeys().card.webhookSecret;
    const post = async (payoutNo: string, amount: number) => {
      const body = JSON.stringify({
        id: `evt_${newId()}`,
        object: "event",
        api_version: "2024-06-20",
        created: Math.floor(Date.now() / 1000),
        livemode: false,
        type: "payout.paid",
        data: { object: { id: `po_${newId()}`, object: "payout", amount, currency: "usd", status: "paid", metadata: { payout_no: payoutNo } } },
      });
      const response = await fetch(`${t.app.httpUrl}/callbacks/card`, {
        method: "POST",
        headers: { "content-type": "application/json", "stripe-signature": signCardWebhook(secret, body, Math.floor(Date.now() / 1000)) },
        body,
      });
      await response.text();
      return response.status;
    };
    expect(await post(newTradeNo("T"), 500)).toBeGreaterThanOrEqual(400);
    expect(await post(payout.payoutNo, 501)).toBeGreaterThanOrEqual(400);
    const row = await payoutRow(payout.id);
    expect(row.status).toBe("PENDING");
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(0);
    const verdicts = await query<{ verdict: string }>("select verdict from callback_log where channel = 'card' and verdict in ('unknown_payment', 'mismatch') and received_at >= ?", [
      new Date(Date.now() - 60_000),
    ]);
    expect(verdicts.map((v) => v.verdict).sort()).toEqual(expect.arrayContaining(["mismatch", "unknown_payment"]));
    // The real outcome still applies afterwards.
    await t.app.payouts.runOnce();
    expect((await eventually(() => payoutRow(payout.id), (r) => r.status === "PAID")).status).toBe("PAID");
  });

  it("returns a failed payout's amount to the available balance and leaves it out of paid_out", async () => {
    const merchant = await merchantWithAccount("Failed Payout Shop", Channel.ALIPAY, PayeeAccountType.ALIPAY_USER_ID, "2088000000000001");
    await fundMerchant(t.app.uow, merchant.id, 7_000n, "CNY");
    const payout = await createPayout(merchant.id, "CNY", 7_000n);
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 0n, paidOut: 7_000n });
    faultsFor("alipay", { payoutFails: true }, payout.payoutNo);
    await t.app.payouts.runOnce();
    const row = await payoutRow(payout.id);
    expect(row.status).toBe("FAILED");
    expect(row.failure_reason).toBeTruthy();
    expect(row.finished_at).not.toBeNull();
    expect(await entriesOf(`payout_failed:${payout.id}`)).toBe(1);
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 7_000n, paidOut: 0n });
    // Final: another pass and a late success change nothing.
    await makeDue(payout.id);
    await t.app.payouts.runOnce();
    expect((await payoutRow(payout.id)).status).toBe("FAILED");
  });

  it("fails a card payout by its payout.failed webhook and gives the amount back", async () => {
    const merchant = await merchantWithAccount("Card Failed Payout Shop", Channel.CARD, PayeeAccountType.BANK_ACCOUNT, BANK_ACCOUNT);
    await fundMerchant(t.app.uow, merchant.id, 1_250n, "USD");
    const payout = await createPayout(merchant.id, "USD", 1_250n);
    faultsFor("card", { payoutFails: true }, payout.payoutNo);
    await t.app.payouts.runOnce();
    const failed = await eventually(
      () => payoutRow(payout.id),
      (row) => row.status === "FAILED",
    );
    expect(failed.status).toBe("FAILED");
    expect(failed.failure_reason).toContain("account_closed");
    expect(await entriesOf(`payout_failed:${payout.id}`)).toBe(1);
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(0);
    expect(await balance(merchant, "USD")).toMatchObject({ available: 1_250n, paidOut: 0n });
  });

  it("moves nothing on an unknown answer (a timed-out send) and resolves it on the next pass by asking first", async () => {
    const merchant = await merchantWithAccount("Timeout Payout Shop", Channel.ALIPAY, PayeeAccountType.ALIPAY_USER_ID, "2088000000000002");
    await fundMerchant(t.app.uow, merchant.id, 3_000n, "CNY");
    const payout = await createPayout(merchant.id, "CNY", 3_000n);
    // The transfer happens at Alipay, but its answer never arrives.
    faultsFor("alipay", { apiTimeout: { method: "alipay.fund.trans.uni.transfer", times: 1, apply: true } }, payout.payoutNo);
    await t.app.payouts.runOnce();
    const waiting = await payoutRow(payout.id);
    expect(waiting).toMatchObject({ status: "PENDING", attempts: 1, channel_payout_no: null });
    expect(waiting.next_attempt_at!.getTime()).toBeGreaterThan(Date.now());
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(0);
    expect(await entriesOf(`payout_failed:${payout.id}`)).toBe(0);
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 0n, paidOut: 3_000n });

    // Not due yet: a pass leaves it alone.
    await t.app.payouts.runOnce();
    expect((await payoutRow(payout.id)).attempts).toBe(1);

    await makeDue(payout.id);
    await t.app.payouts.runOnce();
    const paid = await payoutRow(payout.id);
    expect(paid.status).toBe("PAID");
    // The query found the transfer: it was not sent a second time.
    expect(sends.get(payout.payoutNo)).toBe(1);
    expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(1);
  });

  it("sends each payout once when two sweepers (as two replicas would have) race over the same rows", async () => {
    const merchant = await merchantWithAccount("Racing Payout Shop", Channel.ALIPAY, PayeeAccountType.ALIPAY_USER_ID, "2088000000000003");
    await fundMerchant(t.app.uow, merchant.id, 10_000n, "CNY");
    const payouts = [];
    for (let i = 0; i < 5; i++) payouts.push(await createPayout(merchant.id, "CNY", 2_000n));
    // A second service with its own adapters, sharing only the database with the app's.
    const replica = createPayoutService({
      uow: t.app.uow,
      channels: new ChannelRegistry(buildChannels(t.config).map(countingPayouts)),
      secrets: new SecretBox(t.config.dataEncryptionKey),
      log: () => {},
      leaseMs: 30_000,
    });
    const [a, b] = await Promise.all([t.app.payouts.runOnce(), replica.runOnce()]);
    expect(a.claimed + b.claimed).toBeGreaterThanOrEqual(5);
    for (const payout of payouts) {
      expect((await payoutRow(payout.id)).status).toBe("PAID");
      expect(sends.get(payout.payoutNo)).toBe(1);
      expect(await entriesOf(`payout_paid:${payout.id}`)).toBe(1);
    }
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 0n, paidOut: 10_000n });
  });

  it("pays a payout in flight to the account it was created for, not one set later", async () => {
    const merchant = await merchantWithAccount("Snapshot Shop", Channel.ALIPAY, PayeeAccountType.ALIPAY_USER_ID, "2088000000000004");
    await fundMerchant(t.app.uow, merchant.id, 1_000n, "CNY");
    const payout = await createPayout(merchant.id, "CNY", 1_000n);
    await t.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: "2088000000009999" },
      t.adminHeaders,
    );
    const payees: string[] = [];
    const spy = serviceSending(payout.payoutNo, (request) => {
      payees.push(request.payee.account);
      return { state: "paid", channelPayoutNo: "spy" };
    });
    await makeDue(payout.id);
    await spy.runOnce();
    expect(payees).toContain("2088000000000004");
    expect(payees).not.toContain("2088000000009999");
    expect((await payoutRow(payout.id)).status).toBe("PAID");
  });
});

describe("payout bounds", () => {
  it("keeps at most 255 characters of a channel's failure text and drops a transfer id too long to store", async () => {
    const merchant = await merchantWithAccount("Long Failure Shop", Channel.ALIPAY, PayeeAccountType.ALIPAY_USER_ID, "2088000000000006");
    await fundMerchant(t.app.uow, merchant.id, 800n, "CNY");
    const payout = await createPayout(merchant.id, "CNY", 800n);
    const service = serviceSending(payout.payoutNo, () => ({ state: "failed", detail: `\u6536\u6b3e\n${"x".repeat(100_000)}`, channelPayoutNo: "y".repeat(65) }));
    await makeDue(payout.id);
    await service.runOnce();
    const row = await payoutRow(payout.id);
    expect(row.status).toBe("FAILED");
    expect(row.failure_reason).toBe(`\u6536\u6b3e ${"x".repeat(252)}`);
    expect(row.channel_payout_no).toBeNull();
    expect(await balance(merchant, "CNY")).toMatchObject({ available: 800n, paidOut: 0n });
  });

  it("finds a payout whose status moved without its ledger entry", async () => {
    const merchant = await merchantWithAccount("Broken Payout Shop", Channel.WECHAT_PAY, PayeeAccountType.WECHAT_OPENID, WECHAT_OPENID);
    await fundMerchant(t.app.uow, merchant.id, 4_321n, "CNY");
    const payout = await createPayout(merchant.id, "CNY", 4_321n);
    // Staged corruption: PAID with no payout_paid entry, so the money seems still in transit.
    await query("update payout set status = 'PAID', next_attempt_at = null where id = ?", [payout.id]);
    const broken = await checkPayoutLedger(t.app.uow.session());
    expect(broken.violations).toEqual([expect.objectContaining({ check: "PAYOUT_IN_TRANSIT_MISMATCH", subject: "payout_in_transit:wechatpay CNY" })]);
    await query("update payout set status = 'PENDING', next_attempt_at = ? where id = ?", [new Date(), payout.id]);
    expect((await checkPayoutLedger(t.app.uow.session())).violations).toEqual([]);
    await sweepUntil(payout.id, "PAID");
  });

  it("looks up the payouts of at most 1,000 settlement orders at once", async () => {
    const ids = Array.from({ length: 1_000 }, () => newId());
    expect((await t.app.payouts.payoutsOfSettlements(t.app.uow.session(), ids)).size).toBe(0);
    await expect(t.app.payouts.payoutsOfSettlements(t.app.uow.session(), [...ids, newId()])).rejects.toThrow(RangeError);
  });
});

describe("payouts on the embedded database", () => {
  let e: TestApp;
  beforeAll(async () => {
    e = await startTestApp({ database: "sqlite" });
  });
  afterAll(() => e?.stop());

  it("stores a settlement account, pays a payout out and keeps the ledger balanced on SQLite", async () => {
    const merchant = await e.createMerchant("Embedded Payout Shop");
    await e.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: ALIPAY_USER },
      e.adminHeaders,
    );
    await e.grpc.settlement.setSettlementAccount(
      { merchantId: merchant.id, channel: Channel.ALIPAY, accountType: PayeeAccountType.ALIPAY_USER_ID, account: "2088000000000005" },
      e.adminHeaders,
    );
    await fundMerchant(e.app.uow, merchant.id, 2_000n);
    const payout = await e.app.uow.transaction(e.app.uow.session(), async (tx) => {
      const account = await e.app.payouts.lockPayoutAccount(tx, merchant.id);
      expect(account).toMatchObject({ accountHint: "************0005" });
      return e.app.payouts.createPayout(tx, account!, {
        settlementId: newId(),
        settlementNo: newTradeNo("S"),
        merchantId: merchant.id,
        currency: "CNY",
        amount: 2_000n,
      });
    });
    expect((await e.app.payouts.runOnce()).finished).toBe(1);
    const views = await e.app.payouts.payoutsOfSettlements(e.app.uow.session(), [payout.settlementId]);
    expect(views.get(payout.settlementId)).toMatchObject({ status: "PAID", amount: 2_000n });
    expect(await e.grpc.settlement.getBalance({ currency: "CNY" }, merchant.headers)).toMatchObject({ available: 0n, paidOut: 2_000n });
    const ledger = await checkLedger(e.app.uow.session());
    expect(ledger.violations).toEqual([]);
    expect((await checkPayoutLedger(e.app.uow.session())).violations).toEqual([]);
  });
});
