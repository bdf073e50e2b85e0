/**
 * Read-only looks at the service's tables for integration tests: the end state a test proves
 * (payment row, callback log, inbox, outbox, journal) read with plain SQL by table and column, so
 * the tests do not depend on how the service's stores are written. Also the few writes a test
 * makes to stage a situation (a payment due for the sweeper, a payment number hidden for a moment).
 */
import type { TestApp } from "./test-app.js";

type SqlValue = string | number | bigint | Date | null;

async function query<T>(t: TestApp, sql: string, params: SqlValue[] = []): Promise<T[]> {
  return (await t.app.db.em().getConnection().execute(sql, params)) as T[];
}

async function countOf(t: TestApp, sql: string, params: SqlValue[]): Promise<number> {
  const [row] = await query<{ n: number | bigint | string }>(t, sql, params);
  return Number(row?.n ?? 0);
}

/** The payment columns the fault tests look at. */
export interface PaymentRowView {
  id: string;
  paymentNo: string;
  status: string;
  statusReason: string | null;
  fee: bigint;
  channelTradeNo: string | null;
  actionKind: string | null;
  actionValue: string | null;
  updatedAt: Date;
  nextQueryAt: Date | null;
  queryAttempts: number;
}

/** One callback_log row. */
export interface CallbackLogView {
  id: string;
  verdict: string;
  reason: string | null;
  effect: string | null;
  notificationId: string | null;
  answerStatus: number;
  headers: Record<string, string>;
  rawBody: Buffer;
}

/** Read-only access to one test app's tables. */
export function serviceRows(t: TestApp) {
  return {
    async payment(where: { id: string } | { merchantOrderNo: string }): Promise<PaymentRowView> {
      const [column, value] = "id" in where ? ["id", where.id] : ["merchant_order_no", where.merchantOrderNo];
      const [row] = await query<Record<string, unknown>>(
        t,
        `select id, payment_no, status, status_reason, fee, channel_trade_no, action_kind, action_value, updated_at, next_query_at, query_attempts
         from payment where ${column} = ?`,
        [value],
      );
      if (!row) throw new Error(`no payment row with ${column} ${value}`);
      return {
        id: row.id as string,
        paymentNo: row.payment_no as string,
        status: row.status as string,
        statusReason: (row.status_reason as string | null) ?? null,
        fee: BigInt(row.fee as number | bigint | string),
        channelTradeNo: (row.channel_trade_no as string | null) ?? null,
        actionKind: (row.action_kind as string | null) ?? null,
        actionValue: (row.action_value as string | null) ?? null,
        updatedAt: new Date(row.updated_at as Date | string),
        nextQueryAt: row.next_query_at === null ? null : new Date(row.next_query_at as Date | string),
        queryAttempts: Number(row.query_attempts),
      };
    },

    /** Callback log rows of a payment (verified ones carry its id), oldest first. */
    async callbackLogs(where: { paymentId: string } | { channel: string; notificationId: string }): Promise<CallbackLogView[]> {
      const rows =
        "paymentId" in where
          ? await query<Record<string, unknown>>(t, "select * from callback_log where payment_id = ? order by received_at, id", [where.paymentId])
          : await query<Record<string, unknown>>(t, "select * from callback_log where channel = ? and notification_id = ? order by received_at, id", [
              where.channel,
              where.notificationId,
            ]);
      return rows.map((row) => ({
        id: row.id as string,
        verdict: row.verdict as string,
        reason: (row.reason as string | null) ?? null,
        effect: (row.effect as string | null) ?? null,
        notificationId: (row.notification_id as string | null) ?? null,
        answerStatus: Number(row.answer_status),
        headers: (typeof row.headers === "string" ? JSON.parse(row.headers) : row.headers) as Record<string, string>,
        rawBody: Buffer.from(row.raw_body as Uint8Array),
      }));
    },

    /** Callbacks of a channel refused for `reason` (unverified ones carry no payment id). */
    rejectedCallbacks(channel: string, reason: string): Promise<number> {
      return countOf(t, "select count(*) as n from callback_log where channel = ? and verdict = 'rejected' and reason = ?", [channel, reason]);
    },

    /** Rows in callback_inbox for the payment: one per notification applied. */
    inboxRows(paymentId: string): Promise<number> {
      return countOf(t, "select count(*) as n from callback_inbox where payment_id = ?", [paymentId]);
    },

    outboxEvents(aggregateId: string, eventType: string): Promise<number> {
      return countOf(t, "select count(*) as n from outbox_event where aggregate_id = ? and event_type = ?", [aggregateId, eventType]);
    },

    /** The payment's journal entry types in booking order. */
    async journal(paymentId: string): Promise<string[]> {
      const rows = await query<{ entry_type: string }>(t, "select entry_type from journal_entry where payment_id = ? order by id", [paymentId]);
      return rows.map((row) => row.entry_type);
    },

    refundRows(paymentId: string): Promise<number> {
      return countOf(t, "select count(*) as n from refund where payment_id = ?", [paymentId]);
    },

    async refund(refundId: string): Promise<{ status: string; queryAttempts: number; nextQueryAt: Date | null }> {
      const [row] = await query<Record<string, unknown>>(t, "select status, query_attempts, next_query_at from refund where id = ?", [refundId]);
      if (!row) throw new Error(`no refund row ${refundId}`);
      return {
        status: row.status as string,
        queryAttempts: Number(row.query_attempts),
        nextQueryAt: row.next_query_at === null ? null : new Date(row.next_query_at as Date | string),
      };
    },

    /** Makes the payment due for the sweeper now, and expired too when `expired`. */
    async paymentDue(paymentId: string, options: { expired?: boolean } = {}): Promise<void> {
      const past = new Date(Date.now() - 1000);
      if (options.expired) await query(t, "update payment set next_query_at = ?, expires_at = ? where id = ?", [past, past, paymentId]);
      else await query(t, "update payment set next_query_at = ? where id = ?", [past, paymentId]);
    },

    async refundDue(refundId: string): Promise<void> {
      await query(t, "update refund set next_query_at = ? where id = ?", [new Date(Date.now() - 1000), refundId]);
    },

    /** Files the payment under another payment number, as if its row were not committed yet. */
    async renumberPayment(paymentId: string, paymentNo: string): Promise<void> {
      await query(t, "update payment set payment_no = ? where id = ?", [paymentNo, paymentId]);
    },
  };
}

export type ServiceRows = ReturnType<typeof serviceRows>;
