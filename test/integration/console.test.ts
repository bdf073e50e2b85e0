/**
 * The admin console in headless Chromium (Debian's `chromium`, driven by playwright-core; never a
 * downloaded browser): sign-in refused with a wrong token and accepted with the right one, a payment
 * search, a pending Alipay payment's timeline with its QR code, a paid payment's timeline (with its
 * channel calls, one of them failed by the simulator), resolving
 * a paid-after-close discrepancy (checked through the RPC), the other pages, and a phone-sized
 * viewport. Data is made through the real RPCs and the channel simulator. Screenshots go to
 * test-artifacts/console/. Also the static handler's headers and refusals over raw HTTP.
 */
import { existsSync, mkdirSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel, PaymentStatus } from "../../gen/payments/v1/payment_pb.js";
import { ChannelCall } from "../../src/channel-calls/channel-call-entity.js";
import { ADMIN_TOKEN, startTestApp, type TestApp } from "../support/test-app.js";
import { eventually } from "../support/waiting.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "test-artifacts", "console");
/** The flags that keep Chromium off the network on a closed machine (and runnable as root in CI). */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

let t: TestApp;
let browser: Browser;
let merchant: Awaited<ReturnType<TestApp["createMerchant"]>>;
let pending: { id: string; paymentNo: string; merchantOrderNo: string };
let paid: { id: string; paymentNo: string; merchantOrderNo: string };
let closedThenPaid: { id: string };
let orderSeq = 0;

function alipayPayment(amount: bigint) {
  return {
    merchantOrderNo: `console-${Date.now()}-${++orderSeq}`,
    currency: "CNY",
    amount,
    channel: Channel.ALIPAY,
    subject: "Jasmine tea 100g",
    items: [{ sku: "TEA-100", name: "Jasmine tea 100g", quantity: 1n, unitAmount: amount }],
  };
}

const lookup = (id: string) => ({ lookup: { key: { case: "paymentId" as const, value: id } } });

async function createAlipay(amount: bigint) {
  const { payment } = await t.grpc.payments.createPayment(alipayPayment(amount), merchant.headers);
  return payment!;
}

async function statusOf(id: string): Promise<PaymentStatus> {
  return (await t.grpc.payments.getPayment(lookup(id), merchant.headers)).payment!.status;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the console tests need Debian's chromium (apt-get install -y chromium) ` +
        "or CHROMIUM_PATH pointing at a Chromium binary",
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  [t, browser] = await Promise.all([startTestApp(), chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })]);
  merchant = await t.createMerchant("Tea House");

  pending = await createAlipay(2590n);
  paid = await createAlipay(12800n);
  // A query Alipay fails (HTTP 503): an `unknown` channel call on the timeline.
  t.simulator.setFaults({ channel: "alipay", faults: { apiError: { method: "alipay.trade.query", status: 503, times: 1 } } });
  await t.grpc.payments.queryPayment(lookup(paid.id), merchant.headers).catch(() => undefined);
  t.simulator.clearFaults();
  t.simulator.pay("alipay", paid.paymentNo);
  await eventually(() => statusOf(paid.id), (status) => status === PaymentStatus.SUCCEEDED);

  const late = await createAlipay(4400n);
  await t.grpc.payments.closePayment({ paymentId: late.id }, merchant.headers);
  t.simulator.pay("alipay", late.paymentNo);
  await eventually(
    async () => (await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders)).discrepancies,
    (open) => open.some((d) => d.paymentId === late.id),
  );
  closedThenPaid = late;
  // Channel calls are written in the background (every 200 ms): wait for the paid payment's.
  await eventually(
    async () => (await t.app.db.em().find(ChannelCall, { paymentNo: paid.paymentNo }, { disableIdentityMap: true })).map((call) => call.outcome),
    (outcomes) => outcomes.includes("answer") && outcomes.includes("unknown"),
  );
  // The timeline's events are the sequenced feed; the test app runs no event loop of its own.
  await t.app.events.runOnce();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

async function newPage(options: { phone?: boolean } = {}): Promise<{ context: BrowserContext; page: Page; cspViolations: string[] }> {
  const context = await browser.newContext(
    options.phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 900 } },
  );
  const page = await context.newPage();
  const cspViolations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  return { context, page, cspViolations };
}

async function signIn(page: Page, token = ADMIN_TOKEN): Promise<void> {
  await page.goto(`${t.app.httpUrl}/console`);
  await page.fill("#token", token);
  await page.click("#sign-in button[type=submit]");
}

function shot(page: Page, name: string): Promise<Buffer> {
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describe("admin console in Chromium", () => {
  it("refuses a wrong admin token and signs in with the right one, under a CSP with no violations", async () => {
    const { context, page, cspViolations } = await newPage();
    const response = await page.goto(`${t.app.httpUrl}/console`);
    expect(response?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
    expect(response?.headers()["x-content-type-options"]).toBe("nosniff");

    await signIn(page, "not-the-admin-token");
    await expect(page.locator("#sign-in .error").textContent()).resolves.toBe("Wrong admin token.");
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
    await shot(page, "sign-in-refused");

    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#sign-in button[type=submit]");
    await page.waitForSelector("#payment-search");
    expect(await page.isVisible("#nav")).toBe(true);
    expect(await page.evaluate("Object.keys(sessionStorage)")).toEqual(["payments-console-admin-token"]);
    expect(cspViolations).toEqual([]);
    await context.close();
  });

  it("searches payments by merchant order number and opens a paid payment's timeline", async () => {
    const { context, page } = await newPage();
    await signIn(page);
    await page.waitForSelector("#payment-search");
    await page.fill("#payment-search input[name=merchantOrderNo]", paid.merchantOrderNo);
    await page.click("#payment-search button[type=submit]");
    const link = page.locator(`a[href="#/payment/${paid.id}"]`);
    await link.waitFor();
    expect(await page.locator("table tbody tr").count()).toBe(1);
    expect(await page.locator("table tbody tr").textContent()).toContain("128.00 CNY");
    await shot(page, "payment-search");

    await link.click();
    await page.waitForSelector("#timeline");
    const timeline = (await page.locator("#timeline").textContent()) ?? "";
    expect(timeline).toContain("payment.succeeded");
    expect(timeline).toContain("applied");
    expect(timeline).toContain("payment_succeeded");
    expect(await page.locator("#timeline li.entry-callback").count()).toBeGreaterThanOrEqual(1);
    expect(await page.locator("#timeline li.entry-ledgerEntry").count()).toBeGreaterThanOrEqual(1);
    const created = page.locator("#timeline li.entry-channelCall", { hasText: "createPayment" });
    expect(await created.count()).toBe(1);
    expect(await created.locator('[data-outcome="answer"]').textContent()).toBe("answer");
    expect(await created.textContent()).toMatch(/ALIPAY createPayment answer · \d+ ms/);
    const failed = page.locator("#timeline li.entry-channelCall", { has: page.locator('[data-outcome="unknown"]') });
    expect(await failed.count()).toBe(1);
    expect(await failed.textContent()).toContain("queryPayment");
    expect(await page.locator("#payment-qr").count()).toBe(0);
    await shot(page, "payment-timeline-paid");
    await context.close();
  });

  it("draws the QR code of a pending Alipay payment", async () => {
    const { context, page, cspViolations } = await newPage();
    await signIn(page);
    await page.waitForSelector("#payment-search");
    await page.goto(`${t.app.httpUrl}/console#/payment/${pending.id}`);
    await page.waitForSelector("#payment-qr");
    // A drawn QR code has both dark and light modules.
    // Evaluated in the page (as text: this file is type-checked without the DOM library).
    const colours = (await page.evaluate(`(() => {
      const canvas = document.getElementById("payment-qr");
      const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      let dark = 0;
      let light = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i] < 64) dark++;
        else if (data[i] > 192) light++;
      }
      return { dark, light };
    })()`)) as { dark: number; light: number };
    expect(colours.dark).toBeGreaterThan(100);
    expect(colours.light).toBeGreaterThan(100);
    expect(await page.locator(".qr .mono").textContent()).toMatch(/^https:\/\//);
    await shot(page, "payment-timeline-qr");
    expect(cspViolations).toEqual([]);
    await context.close();
  });

  it("resolves an open discrepancy, recorded as resolved by the console", async () => {
    const { context, page } = await newPage();
    await signIn(page);
    await page.waitForSelector("#payment-search");
    await page.click('nav a[href="#/discrepancies"]');
    const open = await t.grpc.settlement.listDiscrepancies({ status: "OPEN", pageSize: 100 }, t.adminHeaders);
    const discrepancy = open.discrepancies.find((d) => d.paymentId === closedThenPaid.id)!;
    const card = page.locator(`.discrepancy[data-id="${discrepancy.id}"]`);
    await card.waitFor();
    expect(await card.textContent()).toContain("PAID_AFTER_CLOSE");
    await shot(page, "discrepancies-open");
    await card.locator("input[name=resolution]").fill("refunded the shopper at Alipay");
    await card.locator("button[type=submit]").click();
    await card.locator(".notice").waitFor();

    const resolved = await t.grpc.settlement.listDiscrepancies({ status: "RESOLVED", pageSize: 100 }, t.adminHeaders);
    expect(resolved.discrepancies.find((d) => d.id === discrepancy.id)).toMatchObject({
      status: "RESOLVED",
      resolution: "refunded the shopper at Alipay",
      resolvedBy: "console",
    });
    await context.close();
  });

  it("shows merchants with balances, settlements and reconciliation runs without errors", async () => {
    const { context, page } = await newPage();
    await signIn(page);
    await page.waitForSelector("#payment-search");
    await page.click('nav a[href="#/merchants"]');
    await page.waitForSelector("table");
    const merchants = (await page.locator("table").textContent()) ?? "";
    expect(merchants).toContain("Tea House");
    expect(merchants).toMatch(/\d+\.\d{2} CNY/);
    await shot(page, "merchants");

    await page.click('nav a[href="#/settlements"]');
    await page.selectOption("#settlement-merchant", merchant.id);
    await page.waitForSelector("text=No settlement orders yet.");
    await page.click('nav a[href="#/reconciliation"]');
    await page.waitForSelector("text=No reconciliation runs yet.");
    expect(await page.locator(".error").count()).toBe(0);
    await context.close();
  });

  it("fits a phone-sized viewport without sideways scrolling", async () => {
    const { context, page, cspViolations } = await newPage({ phone: true });
    await signIn(page);
    await page.waitForSelector("#payment-search");
    await page.fill("#payment-search input[name=merchantId]", merchant.id);
    await page.click("#payment-search button[type=submit]");
    await page.locator(`a[href="#/payment/${paid.id}"]`).waitFor();
    const overflow = async () => (await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) as number;
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot(page, "phone-payment-search");
    await page.goto(`${t.app.httpUrl}/console#/payment/${pending.id}`);
    await page.waitForSelector("#payment-qr");
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot(page, "phone-payment-timeline");
    expect(cspViolations).toEqual([]);
    await context.close();
  });
});

/** A raw request, so paths reach the server exactly as written (no client-side `..` normalisation). */
function rawGet(path: string, method = "GET"): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(t.app.httpUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("console static handler", () => {
  it("serves only its own assets, with strict headers", async () => {
    const script = await rawGet("/console/console.js");
    expect(script.status).toBe(200);
    expect(script.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(script.headers["x-content-type-options"]).toBe("nosniff");
    expect(script.headers["content-security-policy"]).toContain("default-src 'none'");
    const page = await rawGet("/console");
    expect(page.body).not.toMatch(/<script>|<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.body).not.toMatch(/ on[a-z]+=/);
  });

  it("refuses path traversal, unknown names and other methods", async () => {
    for (const path of [
      "/console/../package.json",
      "/console/..%2f..%2fpackage.json",
      "/console/%2e%2e/%2e%2e/package.json",
      "/console/..\\..\\package.json",
      "/console/web/console-app.ts",
      "/console/console-handler.ts",
      "/console//console.js",
      "/console/console.js%00.png",
    ]) {
      const answer = await rawGet(path);
      expect(answer.status, path).toBe(404);
      expect(answer.body, path).toBe("not found");
    }
    expect((await rawGet("/console", "POST")).status).toBe(405);
    expect((await rawGet("/console", "DELETE")).status).toBe(405);
  });
});
