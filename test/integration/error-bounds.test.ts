/**
 * Validation errors stay small whatever the request: a CreatePayment with thousands of invalid
 * items, or about 1 MiB of them, answers INVALID_ARGUMENT with a `grpc-status-details-bin` trailer
 * and a Connect JSON error body under 8 KiB (the usual metadata limit of gRPC clients), and says
 * how many violations were left out. Real grpc-js and Connect clients against the app on MySQL.
 */
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel } from "../../gen/payments/v1/payment_pb.js";
import {
  type CreatePaymentRequest,
  CreatePaymentRequestSchema,
  CreatePaymentResponseSchema,
  PaymentService,
} from "../../gen/payments/v1/payment_service_pb.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { startTestApp, type TestApp } from "../support/test-app.js";

/** gRPC clients commonly refuse response metadata above 8 KiB (grpc-go, grpc-java, grpc-js defaults). */
const METADATA_LIMIT_BYTES = 8 * 1024;
/** A call that is answered at all is answered within seconds; this only keeps a hang from stalling the suite. */
const CALL_DEADLINE_MS = 20_000;

let t: TestApp;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let grpcClient: grpc.Client;
let orderSeq = 0;

beforeAll(async () => {
  t = await startTestApp();
  merchant = await t.createMerchant("Error Bounds Shop");
  grpcClient = new grpc.Client(`127.0.0.1:${t.app.grpcPort}`, grpc.credentials.createInsecure());
});
afterAll(async () => {
  grpcClient?.close();
  await t?.stop();
});

/** `count` items, each invalid in four ways: empty sku, empty name, zero quantity, negative price. */
function invalidItems(count: number) {
  return Array.from({ length: count }, () => ({ sku: "", name: "", quantity: 0n, unitAmount: -1n }));
}

function paymentRequest(overrides: Omit<MessageInitShape<typeof CreatePaymentRequestSchema>, "$typeName"> = {}): CreatePaymentRequest {
  return create(CreatePaymentRequestSchema, {
    merchantOrderNo: `bounds-${Date.now()}-${++orderSeq}`,
    currency: "CNY",
    amount: 100n,
    channel: Channel.ALIPAY,
    subject: "Tea",
    ...overrides,
  });
}

interface GrpcAnswer {
  code: grpc.status;
  message: string;
  detailsBytes: number;
  violations: { field: string; reason: string }[];
  reason?: string;
}

/** Calls CreatePayment with a plain grpc-js client and reads the status and its trailers. */
function grpcCreatePayment(request: CreatePaymentRequest): Promise<GrpcAnswer> {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", merchant.headers.authorization!);
  return new Promise((resolve) => {
    grpcClient.makeUnaryRequest(
      `/${PaymentService.typeName}/CreatePayment`,
      (message: CreatePaymentRequest) => Buffer.from(toBinary(CreatePaymentRequestSchema, message)),
      (bytes: Buffer) => fromBinary(CreatePaymentResponseSchema, bytes),
      request,
      metadata,
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (error) => {
        if (!error) return resolve({ code: grpc.status.OK, message: "", detailsBytes: 0, violations: [] });
        const [bytes] = error.metadata?.get("grpc-status-details-bin") ?? [];
        const { errorInfo, badRequest } = readGrpcErrorDetails(error);
        resolve({
          code: error.code,
          message: error.details,
          detailsBytes: bytes instanceof Buffer ? bytes.length : 0,
          violations: badRequest?.fieldViolations ?? [],
          reason: errorInfo?.reason,
        });
      },
    );
  });
}

/** Posts the request as Connect JSON and returns the status and the raw error body. */
async function connectCreatePayment(request: CreatePaymentRequest): Promise<{ status: number; body: string; json: ConnectErrorJson }> {
  const body = JSON.stringify({
    merchantOrderNo: request.merchantOrderNo,
    currency: request.currency,
    amount: request.amount.toString(),
    channel: "CHANNEL_ALIPAY",
    subject: request.subject,
    items: request.items.map((item) => ({
      sku: item.sku,
      name: item.name,
      quantity: item.quantity.toString(),
      unitAmount: item.unitAmount.toString(),
    })),
    metadata: request.metadata,
  });
  expect(Buffer.byteLength(body)).toBeLessThan(t.config.maxRequestBytes);
  const response = await fetch(`${t.app.httpUrl}/${PaymentService.typeName}/CreatePayment`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: merchant.headers.authorization! },
    body,
    signal: AbortSignal.timeout(CALL_DEADLINE_MS),
  });
  const text = await response.text();
  return { status: response.status, body: text, json: JSON.parse(text) as ConnectErrorJson };
}

interface ConnectErrorJson {
  code: string;
  message: string;
  details?: { type: string; value: string }[];
}

/**
 * Bytes the error takes in the trailers on the wire, rounded up: the binary details travel
 * base64-encoded, the message percent-encoded (encodeURIComponent encodes more than gRPC does).
 */
function trailerWireBytes(answer: GrpcAnswer): number {
  return Math.ceil(answer.detailsBytes / 3) * 4 + Buffer.byteLength(encodeURIComponent(answer.message));
}

function expectBoundedInvalidArgument(answer: GrpcAnswer) {
  expect(answer.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(answer.reason).toBeDefined();
  expect(answer.detailsBytes).toBeGreaterThan(0);
  expect(trailerWireBytes(answer)).toBeLessThan(METADATA_LIMIT_BYTES);
}

describe("CreatePayment with too many items", () => {
  it.each([30, 300, 5_000])("%i invalid items over gRPC: INVALID_ARGUMENT with a bounded trailer", async (count) => {
    const answer = await grpcCreatePayment(paymentRequest({ items: invalidItems(count) }));
    console.log(`gRPC ${count} invalid items: grpc-status-details-bin ${answer.detailsBytes} bytes, message ${answer.message.length} chars, trailers ~${trailerWireBytes(answer)} bytes on the wire`);
    expectBoundedInvalidArgument(answer);
    expect(answer.violations.length).toBeGreaterThan(0);
    expect(answer.violations.length).toBeLessThanOrEqual(20);
    if (count > 100) {
      // Over the list limit: one violation for the list, no per-item work.
      expect(answer.violations).toEqual([expect.objectContaining({ field: "items", reason: "TOO_MANY" })]);
    }
  });

  it("100 items each invalid four ways: the first violations are listed and the message counts the rest", async () => {
    const answer = await grpcCreatePayment(paymentRequest({ items: invalidItems(100) }));
    expectBoundedInvalidArgument(answer);
    expect(answer.message).toMatch(/\.\.\. and 380 more violations$/);
    expect(answer.violations).toHaveLength(20);
    expect(answer.violations[0]).toMatchObject({ field: "items[0].sku", reason: "INVALID_LENGTH" });
    expect(answer.reason).toBe("INVALID_REQUEST");
  });

  it("about 1 MiB of items, just under MAX_REQUEST_BYTES: INVALID_ARGUMENT with a bounded trailer", async () => {
    const longName = "n".repeat(300);
    const items = Array.from({ length: 3_200 }, (_, i) => ({ sku: `sku-${i}`, name: longName, quantity: 1n, unitAmount: 1n }));
    const request = paymentRequest({ items });
    const size = toBinary(CreatePaymentRequestSchema, request).length;
    expect(size).toBeGreaterThan(t.config.maxRequestBytes - 64 * 1024);
    expect(size).toBeLessThan(t.config.maxRequestBytes);
    const answer = await grpcCreatePayment(request);
    console.log(`gRPC ${size}-byte request: grpc-status-details-bin ${answer.detailsBytes} bytes`);
    expectBoundedInvalidArgument(answer);
    expect(answer.violations).toEqual([expect.objectContaining({ field: "items", reason: "TOO_MANY" })]);
  });

  it("over 20 metadata entries with invalid keys and values: one violation for the map", async () => {
    const metadata: Record<string, string> = {};
    for (let i = 0; i < 1_000; i++) metadata[`k${i}-${"x".repeat(60)}`] = "v".repeat(600);
    const answer = await grpcCreatePayment(paymentRequest({ metadata }));
    expectBoundedInvalidArgument(answer);
    expect(answer.violations).toEqual([expect.objectContaining({ field: "metadata", reason: "TOO_MANY" })]);
  });

  /** 20 entries, each with a 10,000-character CJK key (3 bytes a character) and an over-long value. */
  function hugeNonAsciiMetadata(): Record<string, string> {
    const metadata: Record<string, string> = {};
    for (let i = 0; i < 20; i++) metadata[`${i}-${"\u8ba2".repeat(10_000)}`] = "v".repeat(1_000);
    return metadata;
  }

  it("20 metadata entries with huge non-ASCII keys: echoed field paths are cut short", async () => {
    const answer = await grpcCreatePayment(paymentRequest({ metadata: hugeNonAsciiMetadata() }));
    console.log(`gRPC huge metadata keys: grpc-status-details-bin ${answer.detailsBytes} bytes, trailers ~${trailerWireBytes(answer)} bytes on the wire`);
    expectBoundedInvalidArgument(answer);
    expect(answer.message).toMatch(/more violations?$/);
  });

  it.each([30, 100, 5_000])("%i invalid items over Connect JSON: a bounded error body", async (count) => {
    const answer = await connectCreatePayment(paymentRequest({ items: invalidItems(count) }));
    console.log(`Connect ${count} invalid items: error body ${Buffer.byteLength(answer.body)} bytes`);
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe("invalid_argument");
    expect(Buffer.byteLength(answer.body)).toBeLessThan(METADATA_LIMIT_BYTES);
    if (count === 100) expect(answer.json.message).toMatch(/and 380 more violations/);
  });

  it("20 metadata entries with huge non-ASCII keys over Connect JSON: a bounded error body", async () => {
    const answer = await connectCreatePayment(paymentRequest({ metadata: hugeNonAsciiMetadata() }));
    console.log(`Connect huge metadata keys: error body ${Buffer.byteLength(answer.body)} bytes`);
    expect(answer.json.code).toBe("invalid_argument");
    expect(Buffer.byteLength(answer.body)).toBeLessThan(METADATA_LIMIT_BYTES);
    expect(answer.json.message).toMatch(/\.\.\. and \d+ more violations$/);
  });
});
