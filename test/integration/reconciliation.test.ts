/**
 * Reconciliation end to end, for each bill format (Alipay zip, WeChat Pay CSV, card balance
 * transactions): payments made and paid through the simulator over real HTTP, the day's bill
 * downloaded by ReconcileChannel (the app's reconciliation clock runs two days ahead, so today's
 * trades are a past bill day), each class raised through the simulator's bill faults, rejected
 * bills storing nothing, reruns idempotent, the channel fee in the ledger once, ImportStatement
 * streamed over gRPC and over Connect on HTTP/2, and discrepancies resolved with who did it.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App, type ResolvedConfig, startApp } from "../../src/app.js";
import type { ChannelName } from "../../src/channels/channel.js";
import { writeCardBillFile } from "../../src/channels/card/card-bill.js";
import { simulatedChannelSettings } from "../../src/channels/simulated-settings.js";
import { loadConfig } from "../../src/config.js";
import { registerCardWebhookEndpoint } from "../../src/simulator/card-webhook-endpoint.js";
import type { SetFaultsRequest } from "../../src/simulator/faults.js";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { billDateOf } from "../../src/reconciliation/bill-days.js";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { PaymentService, RefundStatus } from "../../gen/payments/v1/payment_service_pb.js";
import {
  type ImportStatementRequest,
  ImportStatementRequestSchema,
  ImportStatementResponseSchema,
  type ReconciliationRun,
  SettlementService,
} from "../../gen/payments/v1/settlement_service_pb.js";
import { CHANNEL_PROFILES, type ChannelProfile } from "../support/channel-profiles.js";
import { createGrpcJsClient, type GrpcJsClient } from "../support/grpc-client.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { ADMIN_TOKEN, freePort, SIMULATOR_CONTROL_TOKEN, testKeys, testLogger } from "../support/test-app.js";
import { createTestDatabase, type TestDatabase } from "../support/test-database.js";
import { eventually, grpcError } from "../support/waiting.js";

const DAY_MS = 86_400_000;
const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` };

let simulator: Simulator;
let database: TestDatabase;
let app: App;
let config: ResolvedConfig;
let clients: {
  merchants: GrpcJsClient<typeof MerchantService>;
  payments: GrpcJsClient<typeof PaymentService>;
  settlement: GrpcJsClient<typeof SettlementService>;
};
let merchant: { id: string; headers: Record<string, string> };
let orderSeq = 0;

beforeAll(async () => {
  const keys = testKeys();
  simulator = await startSimulator({ port: 0, keys, timeScale: 0.0005, controlToken: SIMULATOR_CONTROL_TOKEN });
  database = await createTestDatabase();
  const httpPort = await freePort();
  config = Object.freeze({
    ...loadConfig({}),
    databaseUrl: database.url,
    dataDir: "./data",
    grpcPort: 0,
    httpPort,
    publicBaseUrl: `http://127.0.0.1:${httpPort}`,
    adminToken: ADMIN_TOKEN,
    dataEncryptionKey: "test-data-encryption-key-0123456789abcdef",
    channelTimeoutMs: 2000,
    shutdownGraceMs: 2000,
    ...simulatedChannelSettings(keys, simulator.url),
  });
  // Two days ahead: the day the tests pay in is a past bill day for every channel.
  app = await startApp({ config, runSweeper: false, logger: testLogger(), reconciliationClock: () => new Date(Date.now() + 2 * DAY_MS) });
  const address = `127.0.0.1:${app.grpcPort}`;
  clients = {
    merchants: createGrpcJsClient(MerchantService, address),
    payments: createGrpcJsClient(PaymentService, address),
    settlement: createGrpcJsClient(SettlementService, address),
  };
  await registerCardWebhookEndpoint(simulator.url, keys.card.secretKey, `${config.publicBaseUrl}/callbacks/card`);
  const created = await clients.merchants.createMerchant({ name: "Reconciled Teas", notifyUrl: "https://shop.example/notify" }, adminHeaders);
  merchant = { id: created.merchant!.id, headers: { authorization: `Bearer ${created.apiKey}` } };
  // Our fee: 1 % on every channel, so the margin figures have both sides.
  for (const profile of CHANNEL_PROFILES) {
    await clients.merchants.setFeeRule(
      { merchantId: merchant.id, channel: profile.protoChannel, currency: profile.currency, rateBps: 100, fixedFee: 0n, minFee: 0n },
      adminHeaders,
    );
  }
});

afterAll(async () => {
  for (const client of Object.values(clients ?? {})) client.close();
  await app?.stop();
  await simulator?.close();
  await database?.drop();
});

async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await app.db.em().getConnection().execute(text, params)) as T[];
}

async function countOf(text: string, params: unknown[] = []): Promise<number> {
  const [row] = await sql<{ n: unknown }>(text, params);
  return Number(row?.n ?? 0);
}

/** What a rejected bill must leave untouched. */
async function storedState(channel: ChannelName) {
  return {
    runs: await countOf("select count(*) as n from reconciliation_run where channel = ?", [channel]),
    discrepancies: await countOf("select count(*) as n from discrepancy where channel = ?", [channel]),
    entries: await countOf("select count(*) as n from journal_entry where entry_type = 'channel_fee' and ref like ?", [`channel_fee:${channel}:%`]),
  };
}

async function discrepanciesOf(kind: string, subject: { paymentId?: string; channel?: ChannelName }) {
  const where = subject.paymentId ? "payment_id = ?" : "channel = ?";
  return sql<{ id: string; status: string; resolved_by: string | null; reconciliation_run_id: string | null; resolution: string | null }>(
    `select id, status, resolved_by, reconciliation_run_id, resolution from discrepancy where kind = ? and ${where}`,
    [kind, subject.paymentId ?? subject.channel],
  );
}

async function channelFeePosted(channel: ChannelName, currency: string): Promise<bigint> {
  const [row] = await sql<{ total: unknown }>(
    `select coalesce(sum(p.amount), 0) as total from journal_posting p join journal_entry e on e.id = p.entry_id
     where e.entry_type = 'channel_fee' and p.account = ? and p.currency = ?`,
    [`channel_fee_expense:${channel}`, currency],
  );
  return BigInt(String(row?.total ?? 0));
}

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

describe.each(CHANNEL_PROFILES)("$name bills", { concurrent: true }, (profile: ChannelProfile) => {
  describe.sequential("reconciliation", () => {
    const billDate = billDateOf(profile.name, new Date());

    async function create(amount: bigint) {
      const answer = await clients.payments.createPayment(
        {
          merchantOrderNo: `recon-${profile.name}-${Date.now()}-${++orderSeq}`,
          currency: profile.currency,
          amount,
          channel: profile.protoChannel,
          subject: "Jasmine tea 100g",
          ...profile.requestFields,
        },
        merchant.headers,
      );
      return answer.payment!;
    }

    async function paid(amount: bigint) {
      const payment = await create(amount);
      simulator.pay(profile.name, payment.paymentNo);
      const read = await eventually(
        async () => (await clients.payments.getPayment(lookup(payment.id), merchant.headers)).payment!,
        (p) => p.status === PaymentStatus.SUCCEEDED,
      );
      expect(read.status).toBe(PaymentStatus.SUCCEEDED);
      return read;
    }

    async function reconcile(): Promise<ReconciliationRun> {
      return (await clients.settlement.reconcileChannel({ channel: profile.protoChannel, billDate }, adminHeaders)).run!;
    }

    /** Reconciles with `faults` set on the channel (cleared after), expecting a refusal; proves nothing was stored and returns the error. */
    async function refusedStoringNothing(faults: SetFaultsRequest["faults"]): Promise<grpc.ServiceError> {
      const before = await storedState(profile.name);
      simulator.setFaults({ channel: profile.name, faults });
      let error: grpc.ServiceError;
      try {
        error = await grpcError(reconcile());
      } finally {
        simulator.clearFaults({ channel: profile.name });
      }
      expect(await storedState(profile.name)).toEqual(before);
      return error;
    }

    it("matches every line of a clean bill: counts, channel fee posted, margin = our fee - the channel's", async () => {
      const first = await paid(10_000n);
      const second = await paid(25_050n);
      const refund = (
        await clients.payments.refundPayment(
          { paymentId: second.id, merchantRefundNo: "recon-r1", amount: 5_000n, reason: "one tin dented" },
          merchant.headers,
        )
      ).refund!;
      const done = await eventually(
        async () => (await clients.payments.getRefund({ refundId: refund.id }, merchant.headers)).refund!,
        (r) => r.status === RefundStatus.SUCCEEDED,
      );
      expect(done.status).toBe(RefundStatus.SUCCEEDED);

      const run = await reconcile();
      expect(run).toMatchObject({ billDate, source: "DOWNLOAD", currency: profile.currency });
      expect(run.linesTotal).toBe(3n);
      expect(run.matched).toBe(3n);
      expect([run.missingOnOurSide, run.missingOnChannelSide, run.amountMismatch, run.statusMismatch, run.feeMismatch]).toEqual([0n, 0n, 0n, 0n, 0n]);
      const ourFee = first.fee + second.fee - done.feeReturned;
      expect(run.merchantFee).toBe(ourFee);
      expect(run.channelFee).toBeGreaterThan(0n);
      expect(run.margin).toBe(run.merchantFee - run.channelFee);
      expect(run.finishedAt).toBeDefined();
      expect(await channelFeePosted(profile.name, profile.currency)).toBe(run.channelFee);
    });

    it("a rerun raises nothing twice and posts the channel fee once", async () => {
      const before = await storedState(profile.name);
      const again = await reconcile();
      const after = await storedState(profile.name);
      expect(after.runs).toBe(before.runs + 1);
      expect(after.discrepancies).toBe(before.discrepancies);
      expect(after.entries).toBe(before.entries);
      expect(await channelFeePosted(profile.name, profile.currency)).toBe(again.channelFee);
    });

    it("a payment left off the bill is MISSING_ON_CHANNEL_SIDE", async () => {
      const payment = await paid(3_300n);
      simulator.setFaults({ channel: profile.name, outTradeNo: payment.paymentNo, faults: { billOmitLine: true } });
      const run = await reconcile();
      expect(run.missingOnChannelSide).toBe(1n);
      const [raised] = await discrepanciesOf("MISSING_ON_CHANNEL_SIDE", { paymentId: payment.id });
      expect(raised).toMatchObject({ status: "OPEN", reconciliation_run_id: run.id });
      // Keep the next runs clean: the line comes back.
      simulator.clearFaults({ channel: profile.name, outTradeNo: payment.paymentNo });
    });

    it("a bill line for a trade we never made is MISSING_ON_OUR_SIDE", async () => {
      simulator.setFaults({ channel: profile.name, faults: { billExtraLine: true } });
      try {
        const run = await reconcile();
        expect(run.missingOnOurSide).toBe(1n);
        const raised = await discrepanciesOf("MISSING_ON_OUR_SIDE", { channel: profile.name });
        expect(raised).toHaveLength(1);
        // A rerun sees the same line and raises nothing new.
        await reconcile();
        expect(await discrepanciesOf("MISSING_ON_OUR_SIDE", { channel: profile.name })).toHaveLength(1);
      } finally {
        simulator.clearFaults({ channel: profile.name });
      }
    });

    it("an altered amount is BILL_AMOUNT_MISMATCH and an altered fee FEE_MISMATCH", async () => {
      const amountOff = await paid(4_400n);
      const feeOff = await paid(5_500n);
      simulator.setFaults({ channel: profile.name, outTradeNo: amountOff.paymentNo, faults: { billAlterAmount: true } });
      simulator.setFaults({ channel: profile.name, outTradeNo: feeOff.paymentNo, faults: { billAlterFee: true } });
      const run = await reconcile();
      expect(run.amountMismatch).toBe(1n);
      expect(run.feeMismatch).toBe(1n);
      expect(await discrepanciesOf("BILL_AMOUNT_MISMATCH", { paymentId: amountOff.id })).toHaveLength(1);
      expect(await discrepanciesOf("FEE_MISMATCH", { paymentId: feeOff.id })).toHaveLength(1);
      const [item] = await sql<{ our_amount: unknown; channel_amount: unknown }>(
        "select our_amount, channel_amount from reconciliation_item where run_id = ? and payment_id = ?",
        [run.id, amountOff.id],
      );
      expect(BigInt(String(item!.channel_amount)) - BigInt(String(item!.our_amount))).toBe(1n);
      simulator.clearFaults({ channel: profile.name, outTradeNo: amountOff.paymentNo });
      simulator.clearFaults({ channel: profile.name, outTradeNo: feeOff.paymentNo });
    });

    it("a payment paid at the channel whose notify never came is repaired by the active query: STATUS_MISMATCH resolved", async () => {
      const payment = await create(6_600n);
      simulator.setFaults({ channel: profile.name, outTradeNo: payment.paymentNo, faults: { dropNotifies: true } });
      simulator.pay(profile.name, payment.paymentNo);
      expect((await clients.payments.getPayment(lookup(payment.id), merchant.headers)).payment!.status).toBe(PaymentStatus.PENDING);
      const run = await reconcile();
      expect(run.statusMismatch).toBe(1n);
      expect((await clients.payments.getPayment(lookup(payment.id), merchant.headers)).payment!.status).toBe(PaymentStatus.SUCCEEDED);
      const [raised] = await discrepanciesOf("STATUS_MISMATCH", { paymentId: payment.id });
      expect(raised).toMatchObject({ status: "RESOLVED", resolved_by: "reconciliation" });
      expect(raised!.resolution).toMatch(/SUCCEEDED/);
      // The next run finds it matched.
      const next = await reconcile();
      expect(next.statusMismatch).toBe(0n);
    });

    it("a truncated bill is refused (BILL_INVALID naming the line) and stores nothing", async () => {
      await paid(7_700n);
      const error = await refusedStoringNothing({ billTruncated: true });
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("BILL_INVALID");
    });

    it("a channel answering 503 is UNAVAILABLE and stores nothing", async () => {
      const error = await refusedStoringNothing({ apiError: { status: 503 } });
      expect(error.code).toBe(grpc.status.UNAVAILABLE);
    });

    it.runIf(profile.name === "wechatpay")("a bill whose SHA1 does not match is refused and stores nothing", async () => {
      const error = await refusedStoringNothing({ billWrongHash: true });
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("BILL_INVALID");
    });

    it("the ledger checks stay ok with the platform's channel fee entries", async () => {
      const checked = await clients.settlement.checkLedger({}, adminHeaders);
      expect(checked.violations).toEqual([]);
      expect(checked.ok).toBe(true);
    });
  });
});

describe("ReconcileChannel input", () => {
  it("refuses a day that is not over, a malformed date and a missing channel, naming the field", async () => {
    const today = billDateOf("alipay", new Date(Date.now() + 2 * DAY_MS));
    for (const billDate of [today, "2026-13-01", "yesterday"]) {
      const error = await grpcError(clients.settlement.reconcileChannel({ channel: Channel.ALIPAY, billDate }, adminHeaders));
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(readGrpcErrorDetails(error).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["bill_date"]);
    }
    const noChannel = await grpcError(clients.settlement.reconcileChannel({ billDate: "2026-11-01" }, adminHeaders));
    expect(readGrpcErrorDetails(noChannel).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["channel"]);
  });

  it("is an admin call: a merchant key is refused", async () => {
    const error = await grpcError(clients.settlement.reconcileChannel({ channel: Channel.ALIPAY, billDate: "2026-11-01" }, merchant.headers));
    expect(error.code).toBe(grpc.status.PERMISSION_DENIED);
  });
});

describe("ImportStatement and the runs list", () => {
  /** A card bill (JSON lines of balance transactions) with one line for a trade we never made. */
  async function cardBill(billDate: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
    const directory = await mkdtemp(join(tmpdir(), "recon-import-"));
    const path = join(directory, "bill.jsonl");
    await writeCardBillFile(path, [
      {
        kind: "payment",
        paymentNo: `P-IMPORTED-${billDate}`,
        intentId: "pi_imported",
        amountMinor: 1_000n,
        feeMinor: 59n,
        currency: "USD",
        occurredAt: new Date(`${billDate}T12:00:00Z`),
      },
    ]);
    return { path, cleanup: () => rm(directory, { recursive: true, force: true }) };
  }

  function messagesOf(billDate: string, bytes: Buffer, chunkBytes: number): ImportStatementRequest[] {
    const messages = [create(ImportStatementRequestSchema, { part: { case: "header", value: { channel: Channel.CARD, billDate } } })];
    for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
      messages.push(create(ImportStatementRequestSchema, { part: { case: "chunk", value: bytes.subarray(offset, offset + chunkBytes) } }));
    }
    return messages;
  }

  function importOverGrpc(messages: ImportStatementRequest[]): Promise<ReconciliationRun> {
    const client = new grpc.Client(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", adminHeaders.authorization);
    return new Promise((resolve, reject) => {
      const call = client.makeClientStreamRequest(
        "/payments.v1.SettlementService/ImportStatement",
        (message: ImportStatementRequest) => Buffer.from(toBinary(ImportStatementRequestSchema, message)),
        (bytes: Buffer) => fromBinary(ImportStatementResponseSchema, bytes),
        metadata,
        (error, response) => {
          client.close();
          if (error) reject(error);
          else resolve(response!.run!);
        },
      );
      for (const message of messages) call.write(message);
      call.end();
    });
  }

  it("reconciles a file streamed in chunks over gRPC", async () => {
    const billDate = "2026-11-20";
    const bill = await cardBill(billDate);
    try {
      const run = await importOverGrpc(messagesOf(billDate, await readFile(bill.path), 64));
      expect(run).toMatchObject({ source: "IMPORT", billDate, currency: "USD", linesTotal: 1n, missingOnOurSide: 1n, matched: 0n });
      expect(run.channelFee).toBe(59n);
    } finally {
      await bill.cleanup();
    }
  });

  it("reconciles a file streamed by connect-node clients: gRPC over HTTP/2, and Connect on the HTTP listener", async () => {
    const billDate = "2026-11-21";
    const bill = await cardBill(billDate);
    try {
      const messages = messagesOf(billDate, await readFile(bill.path), 100);
      async function* stream() {
        yield* messages;
      }
      const overGrpc = createClient(SettlementService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}` }));
      const viaGrpc = await overGrpc.importStatement(stream(), { headers: adminHeaders });
      expect(viaGrpc.run).toMatchObject({ source: "IMPORT", billDate, linesTotal: 1n, missingOnOurSide: 1n });
      // The HTTP listener speaks HTTP/1.1 (no h2c): the request stream goes as one chunked body.
      const overConnect: Client<typeof SettlementService> = createClient(
        SettlementService,
        createConnectTransport({ baseUrl: app.httpUrl, httpVersion: "1.1" }),
      );
      const viaConnect = await overConnect.importStatement(stream(), { headers: adminHeaders });
      expect(viaConnect.run).toMatchObject({ source: "IMPORT", billDate, linesTotal: 1n, missingOnOurSide: 1n });
    } finally {
      await bill.cleanup();
    }
  });

  it("refuses a chunk over 512 KiB (which still fits the listener's message limit) naming the limit, and stores nothing", async () => {
    const runs = await countOf("select count(*) as n from reconciliation_run");
    const big = Buffer.alloc(512 * 1024 + 1, 0x20);
    const error = await grpcError(importOverGrpc(messagesOf("2026-11-23", big, big.length)));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain("524288");
    expect(await countOf("select count(*) as n from reconciliation_run")).toBe(runs);
  });

  it("lists runs newest first, paged, filtered by channel", async () => {
    const first = await clients.settlement.listReconciliationRuns({ channel: Channel.CARD, pageSize: 1 }, adminHeaders);
    expect(first.runs).toHaveLength(1);
    expect(first.runs[0]!.channel).toBe(Channel.CARD);
    expect(first.nextPageToken).not.toBe("");
    const second = await clients.settlement.listReconciliationRuns({ channel: Channel.CARD, pageSize: 1, pageToken: first.nextPageToken }, adminHeaders);
    expect(second.runs[0]!.id < first.runs[0]!.id).toBe(true);
    const tooBig = await grpcError(clients.settlement.listReconciliationRuns({ pageSize: 101 }, adminHeaders));
    expect(tooBig.code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

describe("ResolveDiscrepancy", () => {
  it("needs resolution and resolved_by, records who and when, and refuses a second resolution", async () => {
    const open = await clients.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, adminHeaders);
    const target = open.discrepancies.find((d) => d.kind === "MISSING_ON_OUR_SIDE");
    expect(target).toBeDefined();
    expect(target!.reconciliationRunId).not.toBe("");

    const missing = await grpcError(clients.settlement.resolveDiscrepancy({ discrepancyId: target!.id, resolution: "asked the channel" }, adminHeaders));
    expect(readGrpcErrorDetails(missing).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["resolved_by"]);
    const tooLong = await grpcError(
      clients.settlement.resolveDiscrepancy({ discrepancyId: target!.id, resolution: "x", resolvedBy: "y".repeat(129) }, adminHeaders),
    );
    expect(readGrpcErrorDetails(tooLong).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["resolved_by"]);

    const resolved = await clients.settlement.resolveDiscrepancy(
      { discrepancyId: target!.id, resolution: "the channel withdrew the line", resolvedBy: "li.wei" },
      adminHeaders,
    );
    expect(resolved.discrepancy).toMatchObject({ status: "RESOLVED", resolvedBy: "li.wei", resolution: "the channel withdrew the line" });
    expect(resolved.discrepancy!.resolvedAt).toBeDefined();

    const again = await grpcError(
      clients.settlement.resolveDiscrepancy({ discrepancyId: target!.id, resolution: "the channel withdrew the line", resolvedBy: "li.wei" }, adminHeaders),
    );
    expect(again.code).toBe(grpc.status.FAILED_PRECONDITION);
  });
});
