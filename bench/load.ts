/**
 * The load generator, run by the harness in its own process: one grpc-js client (one HTTP/2
 * connection, as an internal caller would hold), `concurrency` calls in flight, a warm-up, then a
 * fixed measured window. Prints one JSON line: {@link LoadResult}.
 *
 * Calls completing inside the window count (throughput, latency percentiles); calls still in flight
 * when it closes finish uncounted. CPU seconds and peak RSS of the server process(es) are read from
 * /proc at the window's edges, so warm-up and start-up are excluded.
 *
 * Kinds:
 * - `echo`: `bench.v1.EchoService/Echo` with a payload as big as a create request.
 * - `create`: `CreatePayment` with a fresh order number (and idempotency key) per call.
 * - `full-cycle`: create, then the shopper pays at the simulator (control API), the channel's
 *   success callback reaches the service's shim, and `GetPayment` is polled until `SUCCEEDED`;
 *   a completed payment is one count, its latency create-to-SUCCEEDED.
 * - `callback`: the card acquirer's `payment_intent.succeeded` webhook, as the simulator sends it
 *   (same event shape and headers, `Stripe-Signature` computed afresh per delivery), for the next of
 *   `callbacks.count` PENDING payments the harness inserted beforehand (`${prefix}${i}`), posted
 *   over keep-alive HTTP/1.1 to `callbacks.url`; a 2xx is one count. When the payments run out the
 *   workers stop and the result says `exhausted` (the harness then runs it again with more).
 */
import { createHmac, randomBytes } from "node:crypto";
import http from "node:http";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { PaymentStatus } from "../gen/payments/v1/payment_pb.js";
import {
  CreatePaymentRequestSchema,
  CreatePaymentResponseSchema,
  GetPaymentRequestSchema,
  GetPaymentResponseSchema,
} from "../gen/payments/v1/payment_service_pb.js";
import { ECHO_PATH, EchoMessageSchema } from "./echo-service.js";
import { cpuSeconds, cpuTimes, ioCounts, mainThreadCpuSeconds, peakRssBytes, resetPeakRss } from "./proc-stats.js";
import { type BenchChannel, CREATE_PAYMENT_PATH, createPaymentRequest, GET_PAYMENT_PATH } from "./workload.js";

export interface LoadOptions {
  /** `host:port` of the gRPC server under test (always 127.0.0.1). */
  target: string;
  kind: "echo" | "create" | "full-cycle" | "callback";
  channel?: BenchChannel;
  concurrency: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Request metadata sent with every call (e.g. `authorization`). */
  headers?: Record<string, string>;
  /** Send an `idempotency-key` with each create. */
  idempotency?: boolean;
  /** Simulator base URL, for `full-cycle`. */
  simulatorUrl?: string;
  /** Bearer token of the simulator's control API, for `full-cycle`. */
  simulatorControlToken?: string;
  /** Size of the echo payload in bytes. */
  echoBytes?: number;
  /** The server process measured for CPU and peak RSS. */
  serverPid: number;
  /** Further processes whose CPU seconds are reported (e.g. the simulator, mysqld), by name. */
  otherPids?: Record<string, number>;
  /** Makes order numbers unique across runs. */
  tag: string;
  /** For `callback`: where to post, and the PENDING payments to post about. */
  callbacks?: CallbackTargets;
}

/** The PENDING card payments a `callback` run settles, numbered `${prefix}0` ... `${prefix}${count - 1}`. */
export interface CallbackTargets {
  /** E.g. `http://127.0.0.1:8080/callbacks/card`. */
  url: string;
  webhookSecret: string;
  /** Payment numbers; the intent is `pi_${number}` and the event `evt_${number}`. */
  prefix: string;
  count: number;
  amount: number;
  /** Lower case, as the acquirer writes it. */
  currency: string;
}

export interface LoadResult {
  calls: number;
  errors: number;
  firstError?: string;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU seconds used during the window (user + system). */
  cpuSeconds: number;
  /** Of which in the kernel (system time): socket reads and writes, mostly. */
  cpuSystemSeconds: number;
  /** Of which on the main (JavaScript) thread; the rest is V8's helper threads and libuv's pool. */
  cpuMainThreadSeconds: number;
  /** The server's read and write system calls during the window and the bytes they moved (sockets, pipes, files). */
  io: { reads: number; writes: number; bytesRead: number; bytesWritten: number };
  /** Peak RSS of the server during the window (or since it started, if `rssSinceStart`). */
  peakRssBytes: number;
  rssSinceStart: boolean;
  /** CPU seconds of the other processes during the window, and of this load generator. */
  otherCpuSeconds: Record<string, number>;
  /** Full cycle: GetPayment calls per completed payment. */
  pollsPerPayment?: number;
  /** Callback: the payments ran out before the window closed, so the figures are short. */
  exhausted?: boolean;
  /** The measured window on the monotonic clock, in microseconds (the clock of V8 CPU profiles). */
  windowUs: [number, number];
}

const POLL_FIRST_MS = 5;
const POLL_EVERY_MS = 10;
const CYCLE_TIMEOUT_MS = 20_000;

const options = JSON.parse(process.argv[2] ?? "{}") as LoadOptions;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Only the gRPC kinds hold a gRPC connection.
const client = options.kind === "callback" ? undefined : new grpc.Client(options.target, grpc.credentials.createInsecure());
if (client) {
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())),
  );
}

const baseMetadata = new grpc.Metadata();
for (const [key, value] of Object.entries(options.headers ?? {})) baseMetadata.set(key, value);

function unary<Res>(path: string, request: Buffer, decode: (bytes: Buffer) => Res, metadata: grpc.Metadata): Promise<Res> {
  return new Promise((resolve, reject) => {
    client!.makeUnaryRequest(
      path,
      (bytes: Buffer) => bytes,
      decode,
      request,
      metadata,
      (error, response) => (error ? reject(error) : resolve(response as Res)),
    );
  });
}

let sequence = 0;
function nextOrderNo(): string {
  return `${options.tag}-${process.pid}-${++sequence}`;
}

async function createOne() {
  const orderNo = nextOrderNo();
  const request = Buffer.from(toBinary(CreatePaymentRequestSchema, createPaymentRequest(options.channel ?? "card", orderNo)));
  let metadata = baseMetadata;
  if (options.idempotency) {
    metadata = baseMetadata.clone();
    metadata.set("idempotency-key", `idem-${orderNo}`);
  }
  const response = await unary(CREATE_PAYMENT_PATH, request, (bytes) => fromBinary(CreatePaymentResponseSchema, bytes), metadata);
  if (!response.payment) throw new Error("CreatePayment answered without a payment");
  return response.payment;
}

const simulatorAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function pay(channel: BenchChannel, paymentNo: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${options.simulatorUrl}/simulator/${channel}/trades/${encodeURIComponent(paymentNo)}/pay`,
      {
        method: "POST",
        agent: simulatorAgent,
        headers: {
          "content-type": "application/json",
          "content-length": 2,
          authorization: `Bearer ${options.simulatorControlToken ?? ""}`,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          // 409: the trade is no longer payable, e.g. the acquirer already confirmed it on create.
          if (response.statusCode === 200 || response.statusCode === 409) resolve();
          else reject(new Error(`simulator pay answered ${response.statusCode}: ${Buffer.concat(chunks).toString("utf8").slice(0, 200)}`));
        });
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end("{}");
  });
}

let polls = 0;
async function fullCycleOne(): Promise<void> {
  const channel = options.channel ?? "card";
  const payment = await createOne();
  if (payment.status === PaymentStatus.SUCCEEDED) return;
  await pay(channel, payment.paymentNo);
  const deadline = Date.now() + CYCLE_TIMEOUT_MS;
  const get = Buffer.from(
    toBinary(GetPaymentRequestSchema, create(GetPaymentRequestSchema, { lookup: { key: { case: "paymentId", value: payment.id } } })),
  );
  await sleep(POLL_FIRST_MS);
  for (;;) {
    polls++;
    const current = await unary(GET_PAYMENT_PATH, get, (bytes) => fromBinary(GetPaymentResponseSchema, bytes), baseMetadata);
    const status = current.payment?.status;
    if (status === PaymentStatus.SUCCEEDED) return;
    if (status !== PaymentStatus.PENDING) throw new Error(`payment ${payment.id} became ${PaymentStatus[status ?? 0]}`);
    if (Date.now() > deadline) throw new Error(`payment ${payment.id} not SUCCEEDED after ${CYCLE_TIMEOUT_MS} ms`);
    await sleep(POLL_EVERY_MS);
  }
}

const callbackTargets = options.callbacks;
const callbackAgent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
let nextCallback = 0;
let exhausted = false;
let windowOver = false;

class PaymentsExhausted extends Error {}

/** The acquirer's event for one payment, byte for byte the shape the simulator sends. */
function succeededEvent(targets: CallbackTargets, paymentNo: string): string {
  const created = Math.floor(Date.now() / 1000);
  const intentId = `pi_${paymentNo}`;
  return JSON.stringify({
    id: `evt_${paymentNo}`,
    object: "event",
    api_version: "2024-06-20",
    created,
    data: {
      object: {
        id: intentId,
        object: "payment_intent",
        amount: targets.amount,
        amount_capturable: 0,
        amount_received: targets.amount,
        canceled_at: null,
        cancellation_reason: null,
        capture_method: "automatic",
        client_secret: `${intentId}_secret_${paymentNo.slice(-12)}`,
        confirmation_method: "automatic",
        created: created - 1,
        currency: targets.currency,
        description: "Bench order: tea and cups",
        last_payment_error: null,
        latest_charge: `ch_${paymentNo}`,
        livemode: false,
        metadata: { payment_no: paymentNo },
        next_action: null,
        payment_method: "pm_card_visa",
        payment_method_types: ["card"],
        status: "succeeded",
      },
    },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: "payment_intent.succeeded",
  });
}

function postCallback(): Promise<void> {
  const targets = callbackTargets!;
  if (nextCallback >= targets.count) {
    // Running out after the window closed (while the workers stop) does not matter.
    if (!windowOver) exhausted = true;
    return Promise.reject(new PaymentsExhausted(`all ${targets.count} prepared payments used`));
  }
  const body = succeededEvent(targets, `${targets.prefix}${nextCallback++}`);
  const t = Math.floor(Date.now() / 1000);
  const signature = createHmac("sha256", targets.webhookSecret).update(`${t}.${body}`).digest("hex");
  return new Promise((resolve, reject) => {
    const request = http.request(
      targets.url,
      {
        method: "POST",
        agent: callbackAgent,
        headers: {
          "content-type": "application/json; charset=utf-8",
          "content-length": Buffer.byteLength(body),
          "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
          "stripe-signature": `t=${t},v1=${signature}`,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`callback answered ${status}: ${Buffer.concat(chunks).toString("utf8").slice(0, 200)}`));
        });
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

function echoRequest(): Buffer {
  const message = create(EchoMessageSchema, { payload: randomBytes(options.echoBytes ?? 256) } as never);
  return Buffer.from(toBinary(EchoMessageSchema, message));
}

let operation: () => Promise<unknown>;
switch (options.kind) {
  case "echo": {
    const request = echoRequest();
    operation = () => unary(ECHO_PATH, request, (bytes) => bytes, baseMetadata);
    break;
  }
  case "create":
    operation = createOne;
    break;
  case "full-cycle":
    operation = fullCycleOne;
    break;
  case "callback":
    if (!callbackTargets) throw new Error("a callback run needs options.callbacks");
    operation = postCallback;
    break;
}

const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;
let measuring = false;
let stopped = false;
let pollsAtStart = 0;
let pollsAtEnd = 0;

const cpuAt = () => ({
  server: cpuSeconds(options.serverPid),
  serverSystem: cpuTimes(options.serverPid).system,
  serverMain: mainThreadCpuSeconds(options.serverPid),
  serverIo: ioCounts(options.serverPid),
  others: Object.fromEntries(Object.entries(options.otherPids ?? {}).map(([name, pid]) => [name, cpuSeconds(pid)])),
});

async function worker(): Promise<void> {
  while (!stopped) {
    const started = performance.now();
    try {
      await operation();
      if (measuring) latencies.push(performance.now() - started);
    } catch (error) {
      if (error instanceof PaymentsExhausted) return;
      if (measuring) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      await sleep(10);
    }
  }
}

const workers = Array.from({ length: options.concurrency }, () => worker());
await sleep(options.warmupSeconds * 1000);

const rssReset = resetPeakRss(options.serverPid);
const cpuStart = cpuAt();
const ownCpuStart = process.cpuUsage();
pollsAtStart = polls;
const windowStart = performance.now();
const windowStartUs = Number(process.hrtime.bigint() / 1000n);
measuring = true;
await sleep(options.durationSeconds * 1000);
measuring = false;
windowOver = true;
const windowEndUs = Number(process.hrtime.bigint() / 1000n);
const seconds = (performance.now() - windowStart) / 1000;
const cpuEnd = cpuAt();
const ownCpu = process.cpuUsage(ownCpuStart);
const peakRss = peakRssBytes(options.serverPid);
pollsAtEnd = polls;
stopped = true;
await Promise.all(workers);
client?.close();
simulatorAgent.destroy();
callbackAgent.destroy();

latencies.sort((a, b) => a - b);
const percentile = (p: number) => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!);
const result: LoadResult = {
  calls: latencies.length,
  errors,
  ...(firstError ? { firstError } : {}),
  seconds,
  throughput: latencies.length / seconds,
  p50Ms: percentile(50),
  p99Ms: percentile(99),
  cpuSeconds: cpuEnd.server - cpuStart.server,
  cpuSystemSeconds: cpuEnd.serverSystem - cpuStart.serverSystem,
  cpuMainThreadSeconds: cpuEnd.serverMain - cpuStart.serverMain,
  io: {
    reads: cpuEnd.serverIo.reads - cpuStart.serverIo.reads,
    writes: cpuEnd.serverIo.writes - cpuStart.serverIo.writes,
    bytesRead: cpuEnd.serverIo.bytesRead - cpuStart.serverIo.bytesRead,
    bytesWritten: cpuEnd.serverIo.bytesWritten - cpuStart.serverIo.bytesWritten,
  },
  peakRssBytes: peakRss,
  rssSinceStart: !rssReset,
  otherCpuSeconds: {
    ...Object.fromEntries(Object.keys(cpuEnd.others).map((name) => [name, cpuEnd.others[name]! - cpuStart.others[name]!])),
    "load generator": (ownCpu.user + ownCpu.system) / 1e6,
  },
  windowUs: [windowStartUs, windowEndUs],
  ...(exhausted ? { exhausted } : {}),
  ...(options.kind === "full-cycle" ? { pollsPerPayment: latencies.length ? (pollsAtEnd - pollsAtStart) / latencies.length : 0 } : {}),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
