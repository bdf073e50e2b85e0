/**
 * The callback ceiling: what hand-written code on the same stack reaches for the card acquirer's
 * `payment_intent.succeeded` webhook. A bare `node:http` server (the service's shim also runs on
 * node:http) whose handler does the service's outside work for a successful payment callback, in
 * the service's order, and nothing else: no ORM, no channel registry, no error mapping.
 *
 *   1. the raw body, capped at 64 KiB as the shim caps it;
 *   2. `Stripe-Signature` verified: HMAC-SHA256 over `${t}.${raw body}` with the endpoint secret,
 *      compared in constant time, `t` within 300 s;
 *   3. the event parsed and its fields read (id, type, `data.object` amount, currency, id,
 *      `metadata.payment_no`);
 *   4. the payment read by number and channel, its amount and currency cross-checked;
 *   5. ONE transaction of prepared statements (mysql2 `execute`, callback API) writing the rows
 *      the service writes for a success:
 *      `callback_inbox` (unique per channel and event id: a duplicate rolls back and is logged),
 *      the merchant's `fee_rule` read (the fee is fixed when the money arrives),
 *      `payment` UPDATE ... WHERE status IN ('PENDING', 'FAILED') (the transition table's sources),
 *      the `payment.succeeded` `outbox_event`, the `journal_entry` and its `journal_posting` rows
 *      (one multi-row INSERT), the `account_balance` slot upsert of the merchant's pending account,
 *      and the `callback_log` row (known headers, the body with the client secret redacted,
 *      SHA-256 and length), then COMMIT;
 *   6. the acquirer's acknowledgement, `{"received":true}`.
 *
 * `tsx bench/callback-ceiling-server.ts '<json options>'` prints `{"port":N}` once listening.
 */
import { createHash, createHmac, randomInt, timingSafeEqual } from "node:crypto";
import http from "node:http";
import mysql from "mysql2";
import { paymentObject } from "../src/events/event-objects.js";
import { newId } from "../src/ids.js";

export interface CallbackCeilingOptions {
  databaseUrl: string;
  /** The card acquirer's webhook signing secret (`whsec_...`). */
  webhookSecret: string;
  /** MySQL connections, as the service's pool (20). */
  poolSize: number;
  port: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as CallbackCeilingOptions;

const MAX_CALLBACK_BYTES = 64 * 1024;
const TOLERANCE_SECONDS = 300;
/** Slots per cached merchant account, as the ledger spreads them. */
const BALANCE_SLOTS = 16;
const STORED_HEADERS = ["content-type", "content-length", "user-agent", "x-request-id", "stripe-signature"];
const ACCEPT = JSON.stringify({ received: true });

const pool = mysql.createPool({
  uri: options.databaseUrl,
  connectionLimit: options.poolSize,
  timezone: "Z",
  supportBigNumbers: true,
  bigNumberStrings: true,
});

type Connection = mysql.PoolConnection;
type Value = string | number | Date | Buffer | null;

function getConnection(): Promise<Connection> {
  return new Promise((resolve, reject) => pool.getConnection((error, connection) => (error ? reject(error) : resolve(connection))));
}

function execute<T = mysql.ResultSetHeader>(connection: Connection, sql: string, values: Value[]): Promise<T> {
  return new Promise((resolve, reject) =>
    connection.execute(sql, values, (error, result) => (error ? reject(error) : resolve(result as T))),
  );
}

function query(connection: Connection, sql: string): Promise<void> {
  return new Promise((resolve, reject) => connection.query(sql, (error) => (error ? reject(error) : resolve())));
}

class Rejected extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** The `v1` signatures and `t` of a `Stripe-Signature` header, checked against the raw body. */
function verifySignature(rawBody: Buffer, header: string | undefined): void {
  if (!header) throw new Rejected(400, "missing_signature");
  let t: string | undefined;
  const candidates: Buffer[] = [];
  for (const element of header.split(",")) {
    const at = element.indexOf("=");
    if (at < 0) continue;
    const scheme = element.slice(0, at).trim();
    const value = element.slice(at + 1).trim();
    if (scheme === "t") t = value;
    else if (scheme === "v1" && value.length === 64) candidates.push(Buffer.from(value, "hex"));
  }
  if (t === undefined || !/^\d{1,12}$/.test(t) || candidates.length === 0) throw new Rejected(400, "bad_signature");
  const expected = createHmac("sha256", options.webhookSecret).update(`${t}.`).update(rawBody).digest();
  let matched = false;
  for (const candidate of candidates) if (candidate.length === 32 && timingSafeEqual(candidate, expected)) matched = true;
  if (!matched) throw new Rejected(400, "bad_signature");
  if (Math.abs(Math.floor(Date.now() / 1000) - Number(t)) > TOLERANCE_SECONDS) throw new Rejected(400, "stale_timestamp");
}

interface SucceededEvent {
  id: string;
  created: number;
  intentId: string;
  paymentNo: string;
  amount: bigint;
  currency: string;
}

function readEvent(rawBody: Buffer): SucceededEvent | { id: string; type: string } {
  // biome-ignore lint/suspicious/noExplicitAny: a parsed JSON event, read field by field below
  let event: any;
  try {
    event = JSON.parse(rawBody.toString("utf8"));
  } catch {
    throw new Rejected(400, "malformed_body");
  }
  const object = event?.data?.object;
  if (typeof event?.id !== "string" || typeof event.type !== "string" || !Number.isSafeInteger(event.created) || typeof object !== "object" || object === null) {
    throw new Rejected(400, "malformed_body");
  }
  if (event.type !== "payment_intent.succeeded") return { id: event.id, type: event.type };
  const paymentNo = object.metadata?.payment_no;
  if (typeof paymentNo !== "string" || paymentNo === "") throw new Rejected(400, "missing_payment_no");
  if (!Number.isSafeInteger(object.amount) || object.amount < 0) throw new Rejected(400, "bad_amount");
  if (typeof object.currency !== "string" || object.currency === "") throw new Rejected(400, "missing_currency");
  return {
    id: event.id,
    created: event.created,
    intentId: typeof object.id === "string" ? object.id : "",
    paymentNo,
    amount: BigInt(object.amount),
    currency: object.currency.toUpperCase(),
  };
}

/** The body as the log keeps it: every `client_secret`-like string value replaced (JSON text stays as sent otherwise). */
function redacted(rawBody: Buffer): Buffer {
  const text = rawBody.toString("utf8");
  const out = text.replace(/"([^"\\]*_secret_[^"\\]*)"/g, '"[redacted]"').replace(/("[^"\\]*secret[^"\\]*"\s*:\s*)"[^"\\]*"/gi, '$1"[redacted]"');
  return out === text ? rawBody : Buffer.from(out, "utf8");
}

function storedHeaders(headers: http.IncomingHttpHeaders): string {
  const kept: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    const value = headers[name];
    if (typeof value === "string") kept[name] = value.slice(0, 1024);
  }
  return JSON.stringify(kept);
}

interface PaymentRow {
  id: string;
  merchant_id: string;
  amount: string;
  currency: string;
  status: string;
  payment_no: string;
  merchant_order_no: string;
  refunded_amount: string;
  subject: string;
  metadata: Record<string, string> | string;
  created_at: Date;
  expires_at: Date;
}

interface FeeRuleRow {
  rate_bps: number;
  fixed_fee: string;
  min_fee: string;
}

function fee(amount: bigint, rule: FeeRuleRow | undefined): bigint {
  if (!rule) return 0n;
  // round half up of amount x bps / 10000, plus the fixed part, at least the minimum, at most the amount
  let value = (amount * BigInt(rule.rate_bps) * 2n + 10_000n) / 20_000n + BigInt(rule.fixed_fee);
  if (value < BigInt(rule.min_fee)) value = BigInt(rule.min_fee);
  return value > amount ? amount : value;
}

async function logOnly(
  connection: Connection,
  receivedAt: Date,
  headersJson: string,
  rawBody: Buffer,
  verdict: string,
  reason: string | null,
  notificationId: string | null,
  paymentId: string | null,
  status: number,
): Promise<void> {
  await execute(
    connection,
    "INSERT INTO callback_log (id, channel, received_at, headers, raw_body, body_sha256, body_bytes, body_form, verdict, reason, notification_id, payment_id, effect, answer_status) VALUES (?, 'card', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
    [
      newId(receivedAt.getTime()),
      receivedAt,
      headersJson,
      verdict === "rejected" ? rawBody.subarray(0, 512) : redacted(rawBody),
      createHash("sha256").update(rawBody).digest("hex"),
      rawBody.length,
      verdict === "rejected" ? "excerpt" : "redacted",
      verdict,
      reason,
      notificationId,
      paymentId,
      status,
    ],
  );
}

async function handleCallback(headers: http.IncomingHttpHeaders, rawBody: Buffer): Promise<{ status: number; body: string }> {
  const receivedAt = new Date();
  const ms = receivedAt.getTime();
  const headersJson = storedHeaders(headers);
  const signature = headers["stripe-signature"];
  const connection = await getConnection();
  try {
    let event: ReturnType<typeof readEvent>;
    try {
      verifySignature(rawBody, typeof signature === "string" ? signature : undefined);
      event = readEvent(rawBody);
    } catch (error) {
      if (!(error instanceof Rejected)) throw error;
      await logOnly(connection, receivedAt, headersJson, rawBody, "rejected", error.reason, null, null, error.status);
      return { status: error.status, body: JSON.stringify({ error: error.reason }) };
    }
    if (!("paymentNo" in event)) {
      await logOnly(connection, receivedAt, headersJson, rawBody, "ignored", `event not used here: ${event.type}`, event.id, null, 200);
      return { status: 200, body: ACCEPT };
    }

    const [payment] = await execute<PaymentRow[]>(
      connection,
      "SELECT id, merchant_id, amount, currency, status, payment_no, merchant_order_no, refunded_amount, subject, metadata, created_at, expires_at FROM payment WHERE payment_no = ? AND channel = 'card'",
      [event.paymentNo],
    );
    if (!payment) {
      const reason = `no payment ${event.paymentNo}`;
      await logOnly(connection, receivedAt, headersJson, rawBody, "unknown_payment", reason, event.id, null, 400);
      return { status: 400, body: JSON.stringify({ error: reason }) };
    }
    const amount = BigInt(payment.amount);
    if (event.amount !== amount || event.currency !== payment.currency) {
      await logOnly(connection, receivedAt, headersJson, rawBody, "mismatch", "amount mismatch", event.id, payment.id, 400);
      return { status: 400, body: JSON.stringify({ error: "amount mismatch" }) };
    }

    await query(connection, "START TRANSACTION");
    try {
      try {
        await execute(connection, "INSERT INTO callback_inbox (id, channel, notification_id, payment_id, created_at) VALUES (?, 'card', ?, ?, ?)", [
          newId(ms),
          event.id,
          payment.id,
          receivedAt,
        ]);
      } catch (error) {
        if ((error as { code?: string }).code !== "ER_DUP_ENTRY") throw error;
        await query(connection, "ROLLBACK");
        await logOnly(connection, receivedAt, headersJson, rawBody, "duplicate", null, event.id, payment.id, 200);
        return { status: 200, body: ACCEPT };
      }
      const [rule] = await execute<FeeRuleRow[]>(
        connection,
        "SELECT rate_bps, fixed_fee, min_fee FROM fee_rule WHERE merchant_id = ? AND channel = 'card' AND currency = ?",
        [payment.merchant_id, payment.currency],
      );
      const paymentFee = fee(amount, rule);
      const now = new Date();
      const updated = await execute(
        connection,
        "UPDATE payment SET channel_trade_no = ?, paid_at = ?, fee = ?, next_query_at = NULL, status_reason = NULL, status = 'SUCCEEDED', updated_at = ? WHERE id = ? AND status IN ('PENDING', 'FAILED')",
        [event.intentId || null, new Date(event.created * 1000), paymentFee.toString(), now, payment.id],
      );
      let effect = "unchanged";
      if (updated.affectedRows === 1) {
        effect = `${payment.status}->SUCCEEDED`;
        await execute(
          connection,
          "INSERT INTO outbox_event (id, merchant_id, aggregate_id, event_type, payload, created_at, seq) VALUES (?, ?, ?, 'payment.succeeded', ?, ?, NULL)",
          [
            newId(now.getTime()),
            payment.merchant_id,
            payment.id,
            JSON.stringify({
              payment: paymentObject({
                id: payment.id,
                paymentNo: payment.payment_no,
                merchantOrderNo: payment.merchant_order_no,
                status: "SUCCEEDED",
                amount,
                currency: payment.currency,
                refundedAmount: BigInt(payment.refunded_amount),
                fee: paymentFee,
                channel: "card",
                channelTradeNo: event.intentId || null,
                subject: payment.subject,
                statusReason: null,
                metadata: typeof payment.metadata === "string" ? JSON.parse(payment.metadata) : payment.metadata,
                createdAt: payment.created_at,
                paidAt: new Date(event.created * 1000),
                closedAt: null,
                expiresAt: payment.expires_at,
              }),
              previous_status: payment.status,
              cause: "callback:payment_intent.succeeded",
            }),
            now,
          ],
        );
        const entryId = newId(now.getTime());
        await execute(
          connection,
          "INSERT INTO journal_entry (id, ref, entry_type, merchant_id, payment_id, refund_id, currency, created_at) VALUES (?, ?, 'payment_succeeded', ?, ?, NULL, ?, ?)",
          [entryId, `payment_succeeded:${payment.id}`, payment.merchant_id, payment.id, payment.currency, now],
        );
        const pendingAccount = `merchant_pending:${payment.merchant_id}`;
        const postings: Array<[string, bigint]> = [
          ["channel_clearing:card", amount],
          [pendingAccount, -(amount - paymentFee)],
          ["fee_revenue", -paymentFee],
        ].filter(([, value]) => value !== 0n) as Array<[string, bigint]>;
        const values: Value[] = [];
        for (const [account, value] of postings) values.push(newId(now.getTime()), entryId, payment.merchant_id, account, payment.currency, value.toString());
        await execute(
          connection,
          `INSERT INTO journal_posting (id, entry_id, merchant_id, account, currency, amount) VALUES ${postings.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`,
          values,
        );
        await execute(
          connection,
          "INSERT INTO account_balance (id, merchant_id, account, currency, slot, balance, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance), updated_at = VALUES(updated_at)",
          [newId(now.getTime()), payment.merchant_id, pendingAccount, payment.currency, randomInt(BALANCE_SLOTS), (-(amount - paymentFee)).toString(), now],
        );
      }
      await execute(
        connection,
        "INSERT INTO callback_log (id, channel, received_at, headers, raw_body, body_sha256, body_bytes, body_form, verdict, reason, notification_id, payment_id, effect, answer_status) VALUES (?, 'card', ?, ?, ?, ?, ?, 'redacted', 'applied', NULL, ?, ?, ?, 200)",
        [newId(ms), receivedAt, headersJson, redacted(rawBody), createHash("sha256").update(rawBody).digest("hex"), rawBody.length, event.id, payment.id, effect],
      );
      await query(connection, "COMMIT");
      return { status: 200, body: ACCEPT };
    } catch (error) {
      await query(connection, "ROLLBACK").catch(() => {});
      throw error;
    }
  } finally {
    connection.release();
  }
}

function answer(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/callbacks/card") {
    answer(res, 404, "text/plain", "not found");
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_CALLBACK_BYTES) {
      answer(res, 413, "text/plain", "callback too large");
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", () => {
    handleCallback(req.headers, Buffer.concat(chunks)).then(
      (result) => answer(res, result.status, "application/json", result.body),
      (error: unknown) => {
        console.error("callback ceiling: failed", error);
        answer(res, 500, "application/json", JSON.stringify({ error: "internal error" }));
      },
    );
  });
});
server.keepAliveTimeout = 5_000;
const port = await new Promise<number>((resolve) => {
  server.listen(options.port, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
});
console.log(JSON.stringify({ port }));
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  pool.end(() => process.exit(0));
});
