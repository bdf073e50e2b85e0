/**
 * The ceiling: what hand-written code on the same stack reaches for a card CreatePayment. A bare
 * grpc-js server (protobuf-es messages) whose handler does the same outside work as the service,
 * in the same order, and nothing else: no ORM, no validation, no idempotency lookups.
 *
 *   0. the API key: `authorization: Bearer <key>`, its SHA-256 looked up in `merchant.api_key_hash`
 *      (one prepared statement, every call: a hand-written service authenticates too), and the rows
 *      below written for the merchant found; an unknown key is UNAUTHENTICATED;
 *   1. one mysql2 transaction (prepared statements, callback API) inserting the rows the service writes for a new payment: `payment`,
 *      its `payment_item` rows (one multi-row INSERT), the `idempotency_record` and the
 *      `payment.created` `outbox_event`;
 *   2. the acquirer call the card adapter makes (`POST /v1/payment_intents`, same form body and
 *      headers) over a keep-alive `http.Agent`;
 *   3. the UPDATE storing the action (client secret) and the intent id on the payment;
 *   4. the response built from memory.
 *
 * `tsx bench/ceiling-server.ts '<json options>'` prints `{"port":N}` once listening.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import mysql from "mysql2";
import { Channel, PaymentSchema, PaymentStatus } from "../gen/payments/v1/payment_pb.js";
import {
  type CreatePaymentRequest,
  CreatePaymentRequestSchema,
  type CreatePaymentResponse,
  CreatePaymentResponseSchema,
} from "../gen/payments/v1/payment_service_pb.js";
import { CREATE_PAYMENT_PATH } from "./workload.js";
import { paymentObject } from "../src/events/event-objects.js";
import { newId, newTradeNo } from "../src/ids.js";

export interface CeilingOptions {
  databaseUrl: string;
  /** The acquirer's API origin (the simulator's card base). */
  cardBaseUrl: string;
  cardSecretKey: string;
  /** MySQL connections, as the service's pool (20). */
  poolSize: number;
  port: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as CeilingOptions;

// Ids as the service makes them (the same function: ids are not what the comparison is about).
const ulid = newId;

// mysql2's callback API: its promise wrapper captures a stack trace per query (about 8% of this
// server's CPU when measured), which the service's row helpers do not pay either.
const pool = mysql.createPool({
  uri: options.databaseUrl,
  connectionLimit: options.poolSize,
  timezone: "Z",
  supportBigNumbers: true,
});

type Connection = mysql.PoolConnection;

function getConnection(): Promise<Connection> {
  return new Promise((resolve, reject) => pool.getConnection((error, connection) => (error ? reject(error) : resolve(connection))));
}

function execute(on: Connection | mysql.Pool, sql: string, values: Array<string | number | Date | null>): Promise<void> {
  return new Promise((resolve, reject) => on.execute(sql, values, (error) => (error ? reject(error) : resolve())));
}

function select<T>(on: mysql.Pool, sql: string, values: string[]): Promise<T[]> {
  return new Promise((resolve, reject) => on.execute(sql, values, (error, rows) => (error ? reject(error) : resolve(rows as T[]))));
}

function query(connection: Connection, sql: string): Promise<void> {
  return new Promise((resolve, reject) => connection.query(sql, (error) => (error ? reject(error) : resolve())));
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const intentsUrl = new URL(`${options.cardBaseUrl.replace(/\/+$/, "")}/v1/payment_intents`);

function postIntent(body: string, idempotencyKey: string): Promise<{ id: string; client_secret: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      intentsUrl,
      {
        method: "POST",
        agent,
        headers: {
          authorization: `Bearer ${options.cardSecretKey}`,
          accept: "application/json",
          "content-type": "application/x-www-form-urlencoded",
          "idempotency-key": idempotencyKey,
          "content-length": Buffer.byteLength(body),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (response.statusCode !== 200) reject(new Error(`acquirer answered ${response.statusCode}: ${text}`));
          else resolve(JSON.parse(text) as { id: string; client_secret: string });
        });
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

interface Merchant {
  id: string;
  notify_url: string;
}

class Unauthenticated extends Error {}

/** The merchant behind `authorization: Bearer <api key>`: SHA-256 of the key, looked up by its unique index. */
async function authenticate(authorization: string | undefined): Promise<Merchant> {
  const match = authorization ? /^Bearer\s+(sk_live_[0-9A-Za-z]{32})$/i.exec(authorization.trim()) : null;
  if (!match) throw new Unauthenticated("invalid API key");
  const keyHash = createHash("sha256").update(match[1]!).digest("hex");
  const [merchant] = await select<Merchant>(pool, "SELECT id, notify_url FROM merchant WHERE api_key_hash = ?", [keyHash]);
  if (!merchant) throw new Unauthenticated("invalid API key");
  return merchant;
}

async function createPayment(
  merchant: Merchant,
  req: CreatePaymentRequest,
  idempotencyKey: string | undefined,
): Promise<CreatePaymentResponse> {
  const now = new Date();
  const ms = now.getTime();
  const id = ulid(ms);
  const paymentNo = newTradeNo("P", now);
  const expiresAt = new Date(ms + (req.expireSeconds || 900) * 1000);
  const nextQueryAt = new Date(Math.min(ms + 60_000, expiresAt.getTime()));
  const notifyUrl = req.notifyUrl || merchant.notify_url;
  const requestHash = createHash("sha256")
    .update(
      JSON.stringify([
        req.merchantOrderNo,
        req.currency,
        req.amount.toString(),
        "card",
        req.subject,
        req.expireSeconds,
        req.notifyUrl,
        req.paymentMethod,
        req.items.map((item) => [item.sku, item.name, item.quantity.toString(), item.unitAmount.toString()]),
        Object.entries(req.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      ]),
    )
    .digest("hex");
  const metadata = JSON.stringify(req.metadata);

  const connection = await getConnection();
  try {
    await query(connection, "START TRANSACTION");
    await execute(
      connection,
      "INSERT INTO payment (id, payment_no, merchant_id, merchant_order_no, amount, currency, channel, status, status_reason, subject, channel_trade_no, action_kind, action_value, refunded_amount, refund_pending_amount, fee, notify_url, metadata, payment_method_token, request_hash, created_at, updated_at, paid_at, closed_at, expires_at, next_query_at, query_attempts, sweep_lease_until) VALUES (?, ?, ?, ?, ?, ?, 'card', 'PENDING', NULL, ?, NULL, NULL, NULL, 0, 0, 0, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, 0, NULL)",
      [id, paymentNo, merchant.id, req.merchantOrderNo, req.amount.toString(), req.currency, req.subject, notifyUrl, metadata, req.paymentMethod || null, requestHash, now, now, expiresAt, nextQueryAt],
    );
    if (req.items.length > 0) {
      const values: Array<string | number> = [];
      req.items.forEach((item, position) => {
        values.push(ulid(ms), id, merchant.id, position, item.sku, item.name, item.quantity.toString(), item.unitAmount.toString());
      });
      await execute(
        connection,
        `INSERT INTO payment_item (id, payment_id, merchant_id, position, sku, name, quantity, unit_amount) VALUES ${req.items.map(() => "(?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}`,
        values,
      );
    }
    if (idempotencyKey !== undefined) {
      await execute(
        connection,
        "INSERT INTO idempotency_record (id, merchant_id, operation, idempotency_key, request_hash, resource_id, created_at) VALUES (?, ?, 'CreatePayment', ?, ?, ?, ?)",
        [ulid(ms), merchant.id, idempotencyKey, requestHash, id, now],
      );
    }
    await execute(
      connection,
      "INSERT INTO outbox_event (id, merchant_id, aggregate_id, event_type, payload, created_at, seq) VALUES (?, ?, ?, 'payment.created', ?, ?, NULL)",
      [
        ulid(ms),
        merchant.id,
        id,
        JSON.stringify({
          payment: paymentObject({
            id,
            paymentNo,
            merchantOrderNo: req.merchantOrderNo,
            status: "PENDING",
            amount: req.amount,
            currency: req.currency,
            refundedAmount: 0n,
            fee: 0n,
            channel: "card",
            channelTradeNo: null,
            subject: req.subject,
            statusReason: null,
            metadata: req.metadata,
            createdAt: now,
            paidAt: null,
            closedAt: null,
            expiresAt,
          }),
        }),
        now,
      ],
    );
    await query(connection, "COMMIT");
  } catch (error) {
    await query(connection, "ROLLBACK").catch(() => {});
    throw error;
  } finally {
    connection.release();
  }

  const form = new URLSearchParams([
    ["amount", req.amount.toString()],
    ["currency", req.currency.toLowerCase()],
    ["payment_method", req.paymentMethod],
    ["payment_method_types[]", "card"],
    ["confirm", "true"],
    ["metadata[payment_no]", paymentNo],
    ["description", req.subject],
  ]).toString();
  const intent = await postIntent(form, `create-${id}`);

  const updatedAt = new Date();
  await execute(pool, "UPDATE payment SET action_kind = 'client_secret', action_value = ?, channel_trade_no = ?, updated_at = ? WHERE id = ?", [
    intent.client_secret,
    intent.id,
    updatedAt,
    id,
  ]);

  return create(CreatePaymentResponseSchema, {
    payment: create(PaymentSchema, {
      id,
      paymentNo,
      merchantId: merchant.id,
      merchantOrderNo: req.merchantOrderNo,
      amount: req.amount,
      currency: req.currency,
      channel: Channel.CARD,
      status: PaymentStatus.PENDING,
      subject: req.subject,
      items: req.items,
      channelTradeNo: intent.id,
      action: { action: { case: "clientSecret", value: intent.client_secret } },
      refundedAmount: 0n,
      fee: 0n,
      createdAt: timestampFromDate(now),
      expiresAt: timestampFromDate(expiresAt),
      notifyUrl,
      metadata: req.metadata,
    }),
  });
}

const server = new grpc.Server();
server.addService(
  {
    CreatePayment: {
      path: CREATE_PAYMENT_PATH,
      originalName: "createPayment",
      requestStream: false,
      responseStream: false,
      requestSerialize: (message: CreatePaymentRequest) => Buffer.from(toBinary(CreatePaymentRequestSchema, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(CreatePaymentRequestSchema, bytes),
      responseSerialize: (message: CreatePaymentResponse) => Buffer.from(toBinary(CreatePaymentResponseSchema, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(CreatePaymentResponseSchema, bytes),
    },
  },
  {
    CreatePayment: ((call, callback) => {
      const key = call.metadata.get("idempotency-key")[0];
      const authorization = call.metadata.get("authorization")[0];
      authenticate(typeof authorization === "string" ? authorization : undefined)
        .then((merchant) => createPayment(merchant, call.request, typeof key === "string" ? key : undefined))
        .then(
        (response) => callback(null, response),
        (error: unknown) => {
          if (error instanceof Unauthenticated) {
            callback({ code: grpc.status.UNAUTHENTICATED, details: error.message });
            return;
          }
          console.error("ceiling: CreatePayment failed", error);
          callback({ code: grpc.status.INTERNAL, details: String(error) });
        },
      );
    }) satisfies grpc.handleUnaryCall<CreatePaymentRequest, CreatePaymentResponse>,
  },
);
const port = await new Promise<number>((resolve, reject) => {
  server.bindAsync(`127.0.0.1:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  );
});
console.log(JSON.stringify({ port }));
process.on("SIGTERM", () => {
  server.forceShutdown();
  pool.end(() => process.exit(0));
});
