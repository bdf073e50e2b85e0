/**
 * Crash safety: the service as a real process on MySQL under create/pay/refund load, killed with
 * SIGKILL at random moments (several cycles) and restarted on the same ports. A client that got no
 * answer retries later with the same merchant_order_no / merchant_refund_no, as a real client does.
 * Once the sweepers and the simulator's re-sends have finished, the service's records are compared
 * with every acknowledged answer and with the simulated channels' own records: no acknowledged
 * payment lost, no payment or refund applied twice, and the ledger checks clean.
 *
 * Seeded: `CRASH_SAFETY_SEED=<n>` repeats a run's choices (channels, amounts, refunds, kill times);
 * the processes' own timing is not repeatable, so a failure may need a few runs to come back.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServiceError, status as GrpcStatus } from "@grpc/grpc-js";
import type { RowDataPacket } from "mysql2";
import { createConnection } from "mysql2/promise";
import { afterAll, expect, it, onTestFailed } from "vitest";
import type { ChannelName } from "../../src/channels/channel.js";
import { registerCardWebhookEndpoint } from "../../src/simulator/card-webhook-endpoint.js";
import { type Simulator, type SimTradeView, startSimulator } from "../../src/simulator/simulator.js";
import { MerchantService, RefundFeePolicy } from "../../gen/payments/v1/merchant_service_pb.js";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService, RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import { SettlementService } from "../../gen/payments/v1/settlement_service_pb.js";
import { createGrpcJsClient, type GrpcJsClient } from "../support/grpc-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { channelEnvironment, type ServiceProcess, spawnServiceProcess } from "../support/service-process.js";
import { freePort, testKeys } from "../support/test-app.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";

const KILL_CYCLES = 4;
const WORKERS = 8;
/** Load between a restart and the next kill, in ms. */
const RUN_MIN_MS = 500;
const RUN_MAX_MS = 2500;
/** The simulator's re-send gaps scaled down: Alipay's 4 minutes become 240 ms. */
const TIME_SCALE = 0.001;
/** Bound on waiting for the sweepers, re-sends and straggler queries after the load. */
const SETTLE_TIMEOUT_MS = 30_000;
/** A refund is asked for at least this long after the shopper paid. */
const REFUND_AFTER_MS = 1000;
const ADMIN_TOKEN = "crash-safety-admin-token-0123";
/** Long past: moves a sweeper's next query to "due now", as the minutes of its schedule would. */
const LONG_AGO = new Date("2000-01-01T00:00:00Z");

/** Small seeded generator (mulberry32): the same seed gives the same sequence of choices. */
function seededRandom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** An integer from min to max, both included. */
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    chance: (probability: number) => next() < probability,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}
type Random = ReturnType<typeof seededRandom>;

interface Clients {
  merchants: GrpcJsClient<typeof MerchantService>;
  payments: GrpcJsClient<typeof PaymentService>;
  settlement: GrpcJsClient<typeof SettlementService>;
}

interface Merchant {
  id: string;
  headers: Record<string, string>;
}

/** One order a worker places, and what the service answered about it. */
interface OrderRecord {
  merchant: Merchant;
  channelName: ChannelName;
  request: {
    merchantOrderNo: string;
    currency: string;
    amount: bigint;
    channel: Channel;
    subject: string;
    items: { sku: string; name: string; quantity: bigint; unitAmount: bigint }[];
    paymentMethod?: string;
  };
  /** `unknown` until an answer came (the call may or may not have taken effect). */
  state: "unknown" | "acknowledged";
  attempts: number;
  acknowledged?: { id: string; paymentNo: string; merchantOrderNo: string; amount: bigint; currency: string };
  paidAtChannel: boolean;
  /** When the shopper paid (Date.now()), so refunds follow a little later, as in life. */
  paidAt?: number;
  refunds: RefundRecord[];
}

/** One refund request and what the service answered about it. */
interface RefundRecord {
  order: OrderRecord;
  merchantRefundNo: string;
  amount: bigint;
  /** `rejected`: a definite refusal (payment not yet SUCCEEDED at the service), so nothing exists. */
  state: "unknown" | "acknowledged" | "rejected";
  attempts: number;
  acknowledged?: { id: string; refundNo: string; amount: bigint; status: RefundStatus };
}

type CallResult<T> = { ok: true; value: T } | { ok: false; error: ServiceError; unknown: boolean };

/** Errors that say the call did nothing; anything else (connection gone, channel down, internal) leaves the outcome unknown. */
const DEFINITE_CODES = new Set<number>([
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.FAILED_PRECONDITION,
  GrpcStatus.NOT_FOUND,
  GrpcStatus.ALREADY_EXISTS,
  GrpcStatus.PERMISSION_DENIED,
  GrpcStatus.UNAUTHENTICATED,
  GrpcStatus.OUT_OF_RANGE,
]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let simulator: Simulator | undefined;
let database: TestDatabase | undefined;
let service: ServiceProcess | undefined;
let clients: Clients | undefined;

afterAll(async () => {
  await service?.killHard();
  for (const client of Object.values(clients ?? {})) client.close();
  await simulator?.close();
  await database?.drop();
});

it("loses no acknowledged payment and applies no payment or refund twice across SIGKILLs", { timeout: 180_000 }, async () => {
  const seed = process.env.CRASH_SAFETY_SEED ? Number(process.env.CRASH_SAFETY_SEED) : Math.floor(Math.random() * 2 ** 31);
  const stats = {
    cycles: 0,
    killsMidFlight: 0,
    callsInFlightAtKills: 0,
    unknownOutcomes: 0,
    /** Unknown outcomes by status code and reason, e.g. `UNAVAILABLE` (connection cut) or `UNAVAILABLE/CHANNEL_UNAVAILABLE`. */
    unknownKinds: new Map<string, number>(),
    retriedUnknowns: 0,
    paidWhileDown: 0,
    refundRejections: 0,
    stragglerQueries: 0,
    restartMs: [] as number[],
  };
  onTestFailed(() => {
    console.error(`crash-safety FAILED with seed ${seed}: repeat with CRASH_SAFETY_SEED=${seed}`);
    console.error(`last service output:\n${service?.output().slice(-4000) ?? "(none)"}`);
  });
  const random = seededRandom(seed);

  // The simulator runs in this process: the channels' records survive every kill of the service.
  const keys = testKeys();
  simulator = await startSimulator({ port: 0, keys, timeScale: TIME_SCALE, controlToken: "crash-safety-control-token-0123" });
  const sim = simulator;
  database = await createTestDatabase();
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN,
    DATA_ENCRYPTION_KEY: "crash-safety-data-key-0123456789abcdef",
    DATA_DIR: mkdtempSync(join(tmpdir(), "payments-crash-")),
    GRPC_PORT: String(grpcPort),
    HTTP_PORT: String(httpPort),
    PUBLIC_BASE_URL: `http://127.0.0.1:${httpPort}`,
    SIMULATED_CHANNELS: "none",
    SWEEP_INTERVAL_MS: "200",
    CHANNEL_TIMEOUT_MS: "1500",
    RATE_LIMIT_PER_SECOND: "100000",
    RATE_LIMIT_BURST: "100000",
    ...channelEnvironment(sim.url, keys, mkdtempSync(join(tmpdir(), "payments-crash-keys-"))),
  };

  // Workers wait at this gate while the service is down, so only calls already in flight are cut.
  let gate: { open: boolean; opened: Promise<void>; release: () => void } = { open: true, opened: Promise.resolve(), release: () => {} };
  const closeGate = () => {
    let release = () => {};
    const opened = new Promise<void>((resolve) => (release = resolve));
    gate = { open: false, opened, release };
  };
  let inFlight = 0;

  async function startService(): Promise<void> {
    const started = Date.now();
    service = spawnServiceProcess(env);
    await service.waitForHealth(httpPort, 60_000);
    stats.restartMs.push(Date.now() - started);
    const address = `127.0.0.1:${grpcPort}`;
    clients = {
      merchants: createGrpcJsClient(MerchantService, address),
      payments: createGrpcJsClient(PaymentService, address),
      settlement: createGrpcJsClient(SettlementService, address),
    };
  }

  async function killService(): Promise<void> {
    closeGate();
    stats.callsInFlightAtKills += inFlight;
    if (inFlight > 0) stats.killsMidFlight++;
    await service!.killHard();
    for (const client of Object.values(clients!)) client.close();
  }

  async function call<T>(work: (current: Clients) => Promise<T>): Promise<CallResult<T>> {
    while (!gate.open) await gate.opened;
    inFlight++;
    try {
      return { ok: true, value: await work(clients!) };
    } catch (error) {
      const serviceError = error as ServiceError;
      const unknown = !DEFINITE_CODES.has(serviceError.code);
      if (unknown) {
        stats.unknownOutcomes++;
        const reason = readGrpcErrorDetails(serviceError).errorInfo?.reason;
        const kind = `${GrpcStatus[serviceError.code] ?? serviceError.code}${reason ? `/${reason}` : ""}`;
        stats.unknownKinds.set(kind, (stats.unknownKinds.get(kind) ?? 0) + 1);
      }
      return { ok: false, error: serviceError, unknown };
    } finally {
      inFlight--;
    }
  }

  await startService();
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const merchants: Merchant[] = [];
  for (const [name, policy, rateBps] of [
    ["Crash Tea House", RefundFeePolicy.PRORATE, 60],
    ["Crash Card Shop", RefundFeePolicy.RETAIN, 120],
  ] as const) {
    const created = await clients!.merchants.createMerchant({ name }, admin);
    const merchantId = created.merchant!.id;
    for (const [channel, currency] of [
      [Channel.ALIPAY, "CNY"],
      [Channel.WECHAT_PAY, "CNY"],
      [Channel.CARD, "USD"],
    ] as const) {
      await clients!.merchants.setFeeRule(
        { merchantId, channel, currency, rateBps, fixedFee: channel === Channel.CARD ? 30n : 0n, minFee: 1n, refundFeePolicy: policy },
        admin,
      );
    }
    merchants.push({ id: merchantId, headers: { authorization: `Bearer ${created.apiKey}` } });
  }
  await registerCardWebhookEndpoint(sim.url, keys.card.secretKey, `${env.PUBLIC_BASE_URL}/callbacks/card`);

  const orders: OrderRecord[] = [];
  const unexpected: string[] = [];
  /** Acknowledged payments the shopper pays later, some while the service is down. */
  const payLater: OrderRecord[] = [];
  let stopping = false;

  function payAtChannel(order: OrderRecord): void {
    try {
      sim.pay(order.channelName, order.acknowledged!.paymentNo);
      order.paidAtChannel = true;
      order.paidAt = Date.now();
    } catch (error) {
      unexpected.push(`paying ${order.request.merchantOrderNo} at the simulator: ${(error as Error).message}`);
    }
  }

  async function attemptCreate(order: OrderRecord, workerRandom: Random): Promise<void> {
    order.attempts++;
    const result = await call((current) => current.payments.createPayment(order.request, order.merchant.headers));
    if (result.ok) {
      const payment = result.value.payment!;
      if (order.state === "unknown" && order.attempts > 1) stats.retriedUnknowns++;
      order.state = "acknowledged";
      order.acknowledged = {
        id: payment.id,
        paymentNo: payment.paymentNo,
        merchantOrderNo: payment.merchantOrderNo,
        amount: payment.amount,
        currency: payment.currency,
      };
      const choice = workerRandom.next();
      if (choice < 0.7) payAtChannel(order);
      else if (choice < 0.9) payLater.push(order);
      return;
    }
    if (!result.unknown) unexpected.push(`CreatePayment ${order.request.merchantOrderNo}: ${describeError(result.error)}`);
  }

  async function attemptRefund(refund: RefundRecord): Promise<void> {
    refund.attempts++;
    const result = await call((current) =>
      current.payments.refundPayment(
        {
          paymentId: refund.order.acknowledged!.id,
          merchantRefundNo: refund.merchantRefundNo,
          amount: refund.amount,
          reason: "crash-safety",
        },
        refund.order.merchant.headers,
      ),
    );
    if (result.ok) {
      const answer = result.value.refund!;
      if (refund.state === "unknown" && refund.attempts > 1) stats.retriedUnknowns++;
      refund.state = "acknowledged";
      refund.acknowledged = { id: answer.id, refundNo: answer.refundNo, amount: answer.amount, status: answer.status };
      return;
    }
    if (result.unknown) return;
    // The payment's success has not reached the service yet: a refusal, nothing was stored.
    if (readGrpcErrorDetails(result.error).errorInfo?.reason === "INVALID_TRANSITION") {
      if (refund.state === "unknown" && refund.attempts > 1) stats.retriedUnknowns++;
      refund.state = "rejected";
      stats.refundRejections++;
      return;
    }
    refund.state = "rejected";
    unexpected.push(`RefundPayment ${refund.merchantRefundNo}: ${describeError(result.error)}`);
  }

  /** What may still be refunded as far as this client knows (unknown and unfinished refunds count as taken). */
  function refundable(order: OrderRecord): bigint {
    const taken = order.refunds
      .filter((refund) => refund.state === "unknown" || (refund.state === "acknowledged" && refund.acknowledged!.status !== RefundStatus.FAILED))
      .reduce((sum, refund) => sum + refund.amount, 0n);
    return order.acknowledged!.amount - taken;
  }

  async function worker(index: number): Promise<void> {
    const workerRandom = seededRandom(seed + 7919 * (index + 1));
    const merchant = merchants[index % merchants.length]!;
    const mine: OrderRecord[] = [];
    let sequence = 0;
    const unknownWork = () => {
      for (const order of mine) {
        if (order.state === "unknown") return () => attemptCreate(order, workerRandom);
        const refund = order.refunds.find((candidate) => candidate.state === "unknown");
        if (refund) return () => attemptRefund(refund);
      }
      return undefined;
    };
    while (!stopping) {
      const retry = unknownWork();
      if (retry) {
        await retry();
        if (unknownWork()) await sleep(50);
        continue;
      }
      const candidates = mine.filter(
        (order) => order.paidAt !== undefined && Date.now() - order.paidAt > REFUND_AFTER_MS && refundable(order) > 0n,
      );
      if (candidates.length === 0 || workerRandom.chance(0.6)) {
        const channelName = workerRandom.pick(["alipay", "wechatpay", "card"] as const);
        const quantity = BigInt(workerRandom.int(1, 3));
        const unitAmount = BigInt(workerRandom.int(1, 30_000));
        const order: OrderRecord = {
          merchant,
          channelName,
          request: {
            merchantOrderNo: `crash-${seed}-w${index}-${++sequence}`,
            currency: channelName === "card" ? "USD" : "CNY",
            amount: quantity * unitAmount,
            channel: { alipay: Channel.ALIPAY, wechatpay: Channel.WECHAT_PAY, card: Channel.CARD }[channelName],
            subject: "Oolong tea",
            items: [{ sku: "TEA-OOLONG", name: "Oolong tea tin", quantity, unitAmount }],
            ...(channelName === "card" ? { paymentMethod: "pm_card_visa" } : {}),
          },
          state: "unknown",
          attempts: 0,
          paidAtChannel: false,
          refunds: [],
        };
        mine.push(order);
        orders.push(order);
        await attemptCreate(order, workerRandom);
      } else {
        const order = workerRandom.pick(candidates);
        const left = refundable(order);
        const refund: RefundRecord = {
          order,
          merchantRefundNo: `${order.request.merchantOrderNo}-r${order.refunds.length + 1}`,
          amount: workerRandom.chance(0.4) ? left : BigInt(workerRandom.int(1, Number(left))),
          state: "unknown",
          attempts: 0,
        };
        order.refunds.push(refund);
        await attemptRefund(refund);
      }
    }
    // Load is over: a real client still finds out what became of every call it got no answer to.
    for (let round = 0; round < 40; round++) {
      const retry = unknownWork();
      if (!retry) break;
      await retry();
      if (unknownWork()) await sleep(100);
    }
  }

  // Load, with SIGKILLs at random moments and restarts on the same ports.
  const workers = Array.from({ length: WORKERS }, (_, index) => worker(index));
  for (let cycle = 0; cycle < KILL_CYCLES; cycle++) {
    await sleep(random.int(RUN_MIN_MS, RUN_MAX_MS));
    await killService();
    stats.cycles++;
    // Shoppers keep paying while the service is down; the channels' callbacks fail until it is back.
    for (const order of payLater.splice(0, Math.ceil(payLater.length / 2))) {
      payAtChannel(order);
      stats.paidWhileDown++;
    }
    await startService();
    gate.open = true;
    gate.release();
  }
  await sleep(random.int(RUN_MIN_MS, RUN_MAX_MS));
  stopping = true;
  await Promise.all(workers);
  for (const order of payLater.splice(0)) payAtChannel(order);

  // Settle: re-sends and sweepers finish; the sweepers' schedule (minutes in real life) is moved to
  // "due now", and a client asks about payments the channel shows paid but the service does not.
  const sql = await createConnection({ uri: database.url, supportBigNumbers: true, bigNumberStrings: true, timezone: "Z" });
  try {
    const simTrades = () =>
      new Map((["alipay", "wechatpay", "card"] as const).flatMap((name) => sim.listTrades(name)).map((trade) => [trade.outTradeNo, trade]));
    const settleDeadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (let round = 0; ; round++) {
      await sql.query("update refund set next_query_at = ? where status = 'PROCESSING'", [LONG_AGO]);
      await sql.query("update payment set next_query_at = ? where status = 'PENDING'", [LONG_AGO]);
      const [processing] = await sql.query<RowList>("select count(*) as n from refund where status = 'PROCESSING'");
      const [pending] = await sql.query<RowList>("select merchant_id, id, payment_no from payment where status = 'PENDING'");
      const trades = simTrades();
      const stragglers = pending.filter((row) => trades.get(String(row.payment_no))?.state === "paid");
      if ((Number(processing[0]!.n) === 0 && stragglers.length === 0) || Date.now() > settleDeadline) break;
      if (round >= 6) {
        for (const row of stragglers) {
          const merchant = merchants.find((candidate) => candidate.id === row.merchant_id)!;
          stats.stragglerQueries++;
          await call((current) =>
            current.payments.queryPayment({ lookup: { key: { case: "paymentId", value: String(row.id) } } }, merchant.headers),
          );
        }
      }
      await sleep(500);
    }

    // Compare.
    const problems: string[] = [...unexpected];
    const [paymentRows] = await sql.query<RowList>(
      "select id, merchant_id, merchant_order_no, payment_no, amount, currency, channel, status, refunded_amount, refund_pending_amount from payment",
    );
    const [refundRows] = await sql.query<RowList>("select id, refund_no, payment_id, merchant_refund_no, amount, status from refund");
    const [entryRows] = await sql.query<RowList>(
      "select entry_type, payment_id, refund_id, count(*) as n from journal_entry group by entry_type, payment_id, refund_id",
    );
    const [discrepancyRows] = await sql.query<RowList>("select kind, payment_id from discrepancy");
    const entries = (type: string, key: "payment_id" | "refund_id", id: string) =>
      entryRows.filter((row) => row.entry_type === type && row[key] === id).reduce((sum, row) => sum + Number(row.n), 0);
    const paymentByOrder = new Map(paymentRows.map((row) => [`${row.merchant_id}/${row.merchant_order_no}`, row]));
    const paymentByNo = new Map(paymentRows.map((row) => [String(row.payment_no), row]));
    const trades = simTrades();

    // 1. Every acknowledged payment exists with what was acknowledged; no payment nobody asked for.
    if (paymentRows.length !== orders.length) problems.push(`${paymentRows.length} payments in the service for ${orders.length} orders placed`);
    for (const order of orders) {
      if (order.state !== "acknowledged") {
        problems.push(`order ${order.request.merchantOrderNo} never answered after ${order.attempts} attempts`);
        continue;
      }
      const ack = order.acknowledged!;
      const row = paymentByOrder.get(`${order.merchant.id}/${order.request.merchantOrderNo}`);
      if (!row) {
        problems.push(`acknowledged payment ${ack.id} (${order.request.merchantOrderNo}) is lost`);
        continue;
      }
      if (row.id !== ack.id || row.payment_no !== ack.paymentNo || big(row.amount) !== ack.amount || ack.amount !== order.request.amount) {
        problems.push(`payment ${ack.id}: acknowledged ${ack.paymentNo} ${ack.amount}, stored ${row.id} ${row.payment_no} ${row.amount}`);
      }
      if (ack.merchantOrderNo !== order.request.merchantOrderNo || row.currency !== ack.currency) {
        problems.push(`payment ${ack.id}: order no or currency differ from the request`);
      }
      if (order.paidAtChannel && trades.get(ack.paymentNo)?.state !== "paid") {
        problems.push(`payment ${ack.id} was paid at the channel but the simulator shows ${trades.get(ack.paymentNo)?.state}`);
      }
    }

    // 2. The channels' payments: each paid trade succeeded once at the service, nothing else did.
    for (const trade of trades.values()) {
      const row = paymentByNo.get(trade.outTradeNo);
      if (!row) {
        problems.push(`${trade.channel} trade ${trade.outTradeNo} has no payment at the service`);
        continue;
      }
      if (BigInt(trade.amountMinor) !== big(row.amount)) problems.push(`payment ${row.id}: channel amount ${trade.amountMinor}, ours ${row.amount}`);
      const succeeded = row.status === "SUCCEEDED" || row.status === "REFUNDED";
      const postings = entries("payment_succeeded", "payment_id", String(row.id));
      if (trade.state === "paid") {
        const paidAfterClose =
          row.status === "CLOSED" && discrepancyRows.some((d) => d.kind === "PAID_AFTER_CLOSE" && d.payment_id === row.id);
        if (!succeeded && !paidAfterClose) problems.push(`payment ${row.id} is paid at ${trade.channel} but ${row.status} at the service`);
        if (succeeded && postings !== 1) problems.push(`payment ${row.id} has ${postings} payment_succeeded entries`);
      } else if (succeeded || postings !== 0) {
        problems.push(`payment ${row.id} is ${row.status} with ${postings} success entries but ${trade.state} at ${trade.channel}`);
      }
    }
    for (const row of paymentRows) {
      if ((row.status === "SUCCEEDED" || row.status === "REFUNDED") && !trades.has(String(row.payment_no))) {
        problems.push(`payment ${row.id} is ${row.status} without a trade at the channel`);
      }
    }

    // 3. Refunds: each one the channel holds is one refund here with its amount; totals agree; none posted twice.
    const simRefunds = new Map<string, { trade: SimTradeView; refund: SimTradeView["refunds"][number] }>();
    for (const trade of trades.values()) {
      for (const refund of trade.refunds) {
        if (simRefunds.has(refund.refundNo)) problems.push(`refund number ${refund.refundNo} twice at ${trade.channel}`);
        simRefunds.set(refund.refundNo, { trade, refund });
      }
      const row = paymentByNo.get(trade.outTradeNo);
      if (row && big(row.refunded_amount) !== BigInt(trade.refundedMinor)) {
        problems.push(`payment ${row.id}: refunded ${row.refunded_amount} here, ${trade.refundedMinor} at ${trade.channel}`);
      }
    }
    for (const row of paymentRows) {
      if (big(row.refund_pending_amount) !== 0n) problems.push(`payment ${row.id} still has ${row.refund_pending_amount} refund pending`);
      if ((row.status === "REFUNDED") !== (big(row.refunded_amount) === big(row.amount) && big(row.amount) > 0n)) {
        problems.push(`payment ${row.id} is ${row.status} with ${row.refunded_amount} of ${row.amount} refunded`);
      }
    }
    for (const row of refundRows) {
      const id = String(row.id);
      const atChannel = simRefunds.get(String(row.refund_no));
      simRefunds.delete(String(row.refund_no));
      if (row.status === "PROCESSING") problems.push(`refund ${id} is still PROCESSING`);
      if (atChannel) {
        if (paymentByNo.get(atChannel.trade.outTradeNo)?.id !== row.payment_id) {
          problems.push(`refund ${id} belongs to another payment at the channel`);
        }
        if (BigInt(atChannel.refund.amountMinor) !== big(row.amount)) {
          problems.push(`refund ${id}: ${row.amount} here, ${atChannel.refund.amountMinor} at the channel`);
        }
        const expected = { succeeded: "SUCCEEDED", failed: "FAILED", processing: "PROCESSING" }[atChannel.refund.state];
        if (row.status !== expected) problems.push(`refund ${id} is ${row.status} here, ${atChannel.refund.state} at the channel`);
      } else {
        // Accepted here but never received by the channel (the process died in between): the refund
        // sweeper must send it again under the same number, never fail it as unknown.
        problems.push(`refund ${id} is ${row.status} but the channel has no such refund`);
      }
      const accepted = entries("refund_accepted", "refund_id", id);
      const succeededEntries = entries("refund_succeeded", "refund_id", id);
      const failedEntries = entries("refund_failed", "refund_id", id);
      if (accepted !== 1 || succeededEntries !== (row.status === "SUCCEEDED" ? 1 : 0) || failedEntries !== (row.status === "FAILED" ? 1 : 0)) {
        problems.push(`refund ${id} (${row.status}) has ${accepted} accepted, ${succeededEntries} succeeded, ${failedEntries} failed entries`);
      }
    }
    for (const { trade, refund } of simRefunds.values()) {
      problems.push(`${trade.channel} refund ${refund.refundNo} of ${refund.amountMinor} has no refund at the service`);
    }
    const refundByKey = new Map(refundRows.map((row) => [`${row.payment_id}/${row.merchant_refund_no}`, row]));
    const allRefunds = orders.flatMap((order) => order.refunds);
    for (const refund of allRefunds) {
      const row = refund.order.acknowledged && refundByKey.get(`${refund.order.acknowledged.id}/${refund.merchantRefundNo}`);
      if (refund.state === "rejected") {
        if (row) problems.push(`refused refund ${refund.merchantRefundNo} exists as ${row.id}`);
        continue;
      }
      if (refund.state === "unknown") {
        problems.push(`refund ${refund.merchantRefundNo} never answered after ${refund.attempts} attempts`);
        continue;
      }
      const ack = refund.acknowledged!;
      if (!row) {
        problems.push(`acknowledged refund ${ack.id} (${refund.merchantRefundNo}) is lost`);
        continue;
      }
      if (row.id !== ack.id || big(row.amount) !== refund.amount || ack.amount !== refund.amount) {
        problems.push(`refund ${ack.id}: acknowledged ${ack.amount}, stored ${row.id} ${row.amount}, asked ${refund.amount}`);
      }
      if (ack.status === RefundStatus.SUCCEEDED && row.status !== "SUCCEEDED") {
        problems.push(`refund ${ack.id} acknowledged SUCCEEDED is ${row.status}`);
      }
      if (ack.status === RefundStatus.FAILED && row.status !== "FAILED") problems.push(`refund ${ack.id} acknowledged FAILED is ${row.status}`);
    }

    // 4. The ledger's own invariants, through the admin RPC of the restarted service.
    const ledger = await clients!.settlement.checkLedger({}, admin);
    for (const violation of ledger.violations) problems.push(`ledger ${violation.check} ${violation.subject}: ${violation.detail}`);

    const acknowledgedRefunds = allRefunds.filter((refund) => refund.state === "acknowledged");
    const succeededPayments = paymentRows.filter((row) => row.status === "SUCCEEDED" || row.status === "REFUNDED").length;
    console.log(
      `crash-safety seed=${seed} cycles=${stats.cycles} kills-mid-flight=${stats.killsMidFlight} calls-cut=${stats.callsInFlightAtKills} ` +
        `payments-acknowledged=${orders.filter((order) => order.state === "acknowledged").length} paid=${succeededPayments} ` +
        `paid-while-down=${stats.paidWhileDown} refunds-acknowledged=${acknowledgedRefunds.length} ` +
        `refunds-succeeded=${refundRows.filter((row) => row.status === "SUCCEEDED").length} ` +
        `refunds-failed=${refundRows.filter((row) => row.status === "FAILED").length} ` +
        `refunds-refused-early=${stats.refundRejections} unknown-outcomes=${stats.unknownOutcomes} ` +
        `(${[...stats.unknownKinds].map(([kind, count]) => `${kind}:${count}`).join(",")}) ` +
        `unknowns-resolved-by-retry=${stats.retriedUnknowns} straggler-queries=${stats.stragglerQueries} ledger-entries=${ledger.entriesChecked} ` +
        `restart-ms=${stats.restartMs.join("/")}`,
    );
    expect(problems).toEqual([]);
    expect(ledger.ok).toBe(true);
    // The run must have done what it is meant to test.
    expect(stats.cycles).toBe(KILL_CYCLES);
    expect(succeededPayments).toBeGreaterThan(0);
    expect(acknowledgedRefunds.length).toBeGreaterThan(0);
  } finally {
    await sql.end();
  }
});

type RowList = (RowDataPacket & Record<string, unknown>)[];

function describeError(error: ServiceError): string {
  return `${GrpcStatus[error.code] ?? error.code} ${readGrpcErrorDetails(error).errorInfo?.reason ?? ""} ${error.details}`;
}

/** A BIGINT column read as a decimal string (bigNumberStrings), exactly. */
function big(value: unknown): bigint {
  return BigInt(String(value));
}
