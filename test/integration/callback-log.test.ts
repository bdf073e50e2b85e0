/**
 * The callback log stays bounded under forged callbacks and never keeps a secret: 500 forged
 * callbacks of about 64 KiB (the most the shim accepts) over real HTTP to all three routes keep
 * at most 2 KiB each, and after a real card payment no client secret is anywhere in the table.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

/** 65,535 bytes: one under the shim's 64 KiB limit, and what the old BLOB column could still hold. */
const FORGED_BODY_BYTES = 64 * 1024 - 1;

function forgedBody(channel: string, n: number): Buffer {
  const head =
    channel === "alipay"
      ? `notify_id=forged-${n}&out_trade_no=P${n}&total_amount=1.00&sign_type=RSA2&sign=AAAA&pad=`
      : `{"id":"evt_forged_${n}","type":"payment_intent.succeeded","data":{"object":{"client_secret":"pi_${n}_secret_forged","pad":"`;
  // Multi-byte padding, so the 512-byte excerpt has to find a character boundary.
  const pad = Buffer.from("茶🍵".repeat(FORGED_BODY_BYTES));
  return Buffer.concat([Buffer.from(head), pad]).subarray(0, FORGED_BODY_BYTES);
}

function forgedHeaders(channel: string): Record<string, string> {
  const headers: Record<string, string> = {
    "content-type": channel === "alipay" ? "application/x-www-form-urlencoded" : "application/json",
    authorization: "Bearer forged-credential-do-not-store",
    cookie: "session=forged-cookie-do-not-store",
    "x-junk": "j".repeat(4_000),
    "user-agent": "u".repeat(2_000),
  };
  if (channel === "card") headers["stripe-signature"] = `t=1,v1=${"0".repeat(3_000)}`;
  if (channel === "wechatpay") {
    Object.assign(headers, {
      "wechatpay-signature": "s".repeat(2_000),
      "wechatpay-timestamp": "1700000000",
      "wechatpay-nonce": "n".repeat(1_000),
      "wechatpay-serial": "PUB_KEY_ID_forged",
    });
  }
  return headers;
}

describe("forged callbacks", () => {
  it("500 forged ~64 KiB callbacks keep at most 2 KiB each: an excerpt, a hash, capped headers", async () => {
    const plan = [
      ...Array.from({ length: 300 }, () => "card"),
      ...Array.from({ length: 100 }, () => "alipay"),
      ...Array.from({ length: 100 }, () => "wechatpay"),
    ];
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < plan.length) {
          const n = next++;
          const channel = plan[n]!;
          const response = await fetch(`${t.app.httpUrl}/callbacks/${channel}`, {
            method: "POST",
            headers: forgedHeaders(channel),
            body: forgedBody(channel, n),
          });
          await response.arrayBuffer();
          statuses.push(response.status);
        }
      }),
    );
    expect(statuses.every((status) => status >= 400 && status < 500)).toBe(true);

    const [totals] = (await t.app.db.em().execute(
      `select count(*) as n_rows,
              sum(length(raw_body)) as body_bytes,
              sum(length(raw_body) + length(headers) + coalesce(length(reason), 0) + coalesce(length(body_sha256), 0)) as stored_bytes
         from callback_log`,
    )) as Array<{ n_rows: unknown; body_bytes: unknown; stored_bytes: unknown }>;
    const storedBytes = Number(totals!.stored_bytes);
    expect(Number(totals!.n_rows)).toBe(500);
    expect(storedBytes, `stored ${storedBytes} bytes for 500 forged callbacks`).toBeLessThan(500 * 2048);

    const rows = (await t.app.db.em().execute(
      "select channel, verdict, headers, raw_body, body_sha256, body_bytes, body_form from callback_log",
    )) as Array<Record<string, unknown>>;
    const sent = new Map(plan.map((channel, n) => [createHash("sha256").update(forgedBody(channel, n)).digest("hex"), channel]));
    for (const row of rows) {
      expect(row.verdict).toBe("rejected");
      expect(row.body_form).toBe("excerpt");
      expect(Number(row.body_bytes)).toBe(FORGED_BODY_BYTES);
      expect(sent.get(String(row.body_sha256))).toBe(row.channel);
      const body = Buffer.from(row.raw_body as Buffer);
      expect(body.length).toBeLessThanOrEqual(512);
      expect(Buffer.from(body.toString("utf8")).equals(body)).toBe(true);
      const headers = typeof row.headers === "string" ? JSON.parse(row.headers) : row.headers;
      expect(Object.keys(headers)).not.toContain("authorization");
      expect(Object.keys(headers)).not.toContain("cookie");
      expect(Object.keys(headers)).not.toContain("x-junk");
      expect(JSON.stringify(headers).length).toBeLessThanOrEqual(1024);
    }
  });
});

describe("a verified card payment", () => {
  it("is kept with its client_secret redacted: no client secret anywhere in the table (forged rows included)", async () => {
    await t.registerCardWebhook();
    const merchant = await t.createMerchant("Card Shop");
    const created = await t.grpc.payments.createPayment(
      {
        merchantOrderNo: "card-secret-1",
        currency: "USD",
        amount: 1999n,
        channel: Channel.CARD,
        subject: "Green tea",
        paymentMethod: "pm_card_visa",
      },
      merchant.headers,
    );
    const clientSecret = created.payment!.action?.action.value as string;
    expect(clientSecret).toMatch(/_secret_/);
    t.simulator.pay("card", created.payment!.paymentNo);
    const applied = await eventually(
      () => t.app.db.em().execute("select raw_body, body_form, verdict from callback_log where payment_id = ? and verdict = 'applied'", [created.payment!.id]),
      (rows) => rows.length === 1,
    );
    expect(applied).toHaveLength(1);
    const read = await t.grpc.payments.getPayment({ lookup: { key: { case: "paymentId", value: created.payment!.id } } }, merchant.headers);
    expect(read.payment?.status).toBe(PaymentStatus.SUCCEEDED);

    const body = JSON.parse(Buffer.from(applied[0]!.raw_body as Buffer).toString("utf8"));
    expect(applied[0]!.body_form).toBe("redacted");
    expect(body.data.object.client_secret).toBe("[redacted]");
    expect(body.data.object.amount).toBe(1999);

    const dump = (await t.app.db.em().execute("select * from callback_log")) as Array<Record<string, unknown>>;
    const text = dump
      .map((row) => Object.values(row).map((value) => (Buffer.isBuffer(value) ? value.toString("utf8") : JSON.stringify(value))).join("\t"))
      .join("\n");
    // Booleans, not toContain: a failure would print the whole table.
    expect(text.includes("_secret_"), "a client secret in callback_log").toBe(false);
    expect(text.includes(clientSecret), "the payment's client secret in callback_log").toBe(false);
    expect(text.includes("forged-credential"), "an Authorization header in callback_log").toBe(false);
  });
});
