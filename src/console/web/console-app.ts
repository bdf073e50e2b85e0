/**
 * The admin console in the browser: signs in with the admin token (kept in sessionStorage, sent as
 * `authorization: Bearer`), then calls the service's admin RPCs over Connect, as any browser client
 * would. Pages are chosen by the URL fragment. Text from the service is only ever set as text
 * (`textContent`), never parsed as HTML.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import QRCode from "qrcode";
import { AdminService, type SearchPaymentsRequestSchema, type TimelineEntry } from "../../../gen/payments/v1/admin_service_pb.js";
import { Channel, type Payment, PaymentStatus } from "../../../gen/payments/v1/payment_pb.js";
import { RefundStatus } from "../../../gen/payments/v1/payment_service_pb.js";
import { PayoutStatus, SettlementStatus, SettlementService } from "../../../gen/payments/v1/settlement_service_pb.js";
import { WebhookDeliveryStatus } from "../../../gen/payments/v1/event_pb.js";

const TOKEN_KEY = "payments-console-admin-token";
/** Who the console records as the resolver of a discrepancy. */
const RESOLVED_BY = "console";

const authorize: Interceptor = (next) => async (req) => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [authorize] });
const admin = createClient(AdminService, transport);
const settlement = createClient(SettlementService, transport);

// ---- DOM helpers -------------------------------------------------------------------------------

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | undefined>;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

function mount(...children: Child[]): HTMLElement {
  const app = document.getElementById("app")!;
  app.replaceChildren();
  for (const child of children) if (child) app.append(child);
  return app;
}

function errorBox(error: unknown): HTMLElement {
  return h("p", { class: "error", role: "alert" }, describeError(error));
}

function describeError(error: unknown): string {
  if (error instanceof ConnectError) {
    if (error.code === Code.Unauthenticated) return "The admin token was refused. Sign in again.";
    return `${Code[error.code]}: ${error.rawMessage}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A table that becomes one block per row on a phone (labels from the headings). */
function table(headings: string[], rows: Child[][], numeric: ReadonlySet<number> = new Set()): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "stack" },
      h("thead", {}, h("tr", {}, ...headings.map((heading, i) => h("th", { class: numeric.has(i) ? "num" : undefined }, heading)))),
      h(
        "tbody",
        {},
        ...rows.map((cells) =>
          h("tr", {}, ...cells.map((cell, i) => h("td", { "data-label": headings[i], class: numeric.has(i) ? "num" : undefined }, cell))),
        ),
      ),
    ),
  );
}

function badge(text: string): HTMLElement {
  return h("span", { class: `badge ${text}` }, text);
}

/**
 * A channel call's outcome as a badge: the outcome's own name as the label, coloured with the
 * status colours the page already has (answer green, rejection red, unknown amber: the channel's
 * state is not known until a sweeper asks again).
 */
function outcomeBadge(outcome: string): HTMLElement {
  const colour = OUTCOME_COLOURS[outcome] ?? "";
  return h("span", { class: `badge ${colour}`, "data-outcome": outcome }, outcome);
}

const OUTCOME_COLOURS: Record<string, string> = { answer: "SUCCEEDED", rejection: "FAILED", unknown: "PENDING" };

function mono(text: string): HTMLElement {
  return h("span", { class: "mono" }, text);
}

// ---- formatting ----------------------------------------------------------------------------------

const EXPONENTS: Record<string, number> = { JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, KWD: 3, BHD: 3, OMR: 3, JOD: 3, TND: 3 };

/** Minor units as a decimal amount with its currency, without floating point. */
function money(amount: bigint, currency: string): string {
  const exponent = EXPONENTS[currency] ?? 2;
  const negative = amount < 0n;
  const digits = (negative ? -amount : amount).toString().padStart(exponent + 1, "0");
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent > 0 ? `.${digits.slice(digits.length - exponent)}` : "";
  return `${negative ? "-" : ""}${whole}${fraction} ${currency}`;
}

function when(ts: Timestamp | undefined): string {
  if (!ts) return "";
  return timestampDate(ts).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

const channelName = (channel: Channel) => Channel[channel] ?? String(channel);
const paymentStatusName = (status: PaymentStatus) => PaymentStatus[status] ?? String(status);

// ---- sign-in -------------------------------------------------------------------------------------

function showSignIn(message?: string): void {
  document.getElementById("nav")!.hidden = true;
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, id: "token" });
  const status = h("div", {}, message ? h("p", { class: "error", role: "alert" }, message) : null);
  const form = h(
    "form",
    { id: "sign-in" },
    h("label", { for: "token" }, "Admin token", input),
    h("button", { type: "submit" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      // Any admin RPC proves the token; this one is cheap.
      await admin.listMerchants({ pageSize: 1 });
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      status.replaceChildren(
        h(
          "p",
          { class: "error", role: "alert" },
          error instanceof ConnectError && (error.code === Code.Unauthenticated || error.code === Code.PermissionDenied)
            ? "Wrong admin token."
            : describeError(error),
        ),
      );
      return;
    }
    if (location.hash === "" || location.hash === "#/") location.hash = "#/payments";
    else void route();
  });
  mount(h("section", { class: "card signin" }, h("h1", {}, "Sign in"), form));
  input.focus();
}

// ---- payments ------------------------------------------------------------------------------------

function optionList<E extends Record<string, string | number>>(enumObject: E, prefixLabel: string): HTMLOptionElement[] {
  return [
    h("option", { value: "0" }, prefixLabel),
    ...Object.entries(enumObject)
      .filter(([name, value]) => typeof value === "number" && value !== 0 && Number.isNaN(Number(name)))
      .map(([name, value]) => h("option", { value: String(value) }, name)),
  ];
}

async function showPayments(params: URLSearchParams): Promise<void> {
  const field = (name: string, label: string, type = "text") =>
    h("label", {}, label, h("input", { name, type, value: params.get(name) ?? "", autocomplete: "off" }));
  const status = h("select", { name: "status" }, ...optionList(PaymentStatus, "any status"));
  status.value = params.get("status") ?? "0";
  const channel = h("select", { name: "channel" }, ...optionList(Channel, "any channel"));
  channel.value = params.get("channel") ?? "0";
  const form = h(
    "form",
    { class: "filters", id: "payment-search" },
    field("paymentId", "Payment id"),
    field("paymentNo", "Payment no"),
    field("merchantOrderNo", "Merchant order no"),
    field("merchantId", "Merchant id"),
    h("label", {}, "Status", status),
    h("label", {}, "Channel", channel),
    field("from", "Created from", "date"),
    field("to", "Created to (inclusive)", "date"),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (typeof value === "string" && value !== "" && value !== "0") query.set(name, value.trim());
    location.hash = `#/payments?${query}`;
  });
  const results = h("div", {}, h("p", { class: "muted" }, "Searching…"));
  mount(h("h1", {}, "Payments"), h("section", { class: "card" }, form), results);

  const request: MessageInitShape<typeof SearchPaymentsRequestSchema> = {
    paymentId: params.get("paymentId") ?? "",
    paymentNo: params.get("paymentNo") ?? "",
    merchantOrderNo: params.get("merchantOrderNo") ?? "",
    merchantId: params.get("merchantId") ?? "",
    status: Number(params.get("status") ?? 0),
    channel: Number(params.get("channel") ?? 0),
    pageSize: 50,
    pageToken: params.get("page") ?? "",
  };
  const from = params.get("from");
  const to = params.get("to");
  if (from) request.createdAfter = timestampFromDate(new Date(`${from}T00:00:00Z`));
  if (to) request.createdBefore = timestampFromDate(new Date(new Date(`${to}T00:00:00Z`).getTime() + 86_400_000));
  try {
    const page = await admin.searchPayments(request);
    const rows = page.payments.map((payment) => [
      h("a", { href: `#/payment/${payment.id}`, class: "mono" }, payment.id),
      mono(payment.paymentNo),
      mono(payment.merchantId),
      payment.merchantOrderNo,
      money(payment.amount, payment.currency),
      badge(paymentStatusName(payment.status)),
      channelName(payment.channel),
      when(payment.createdAt),
    ]);
    const next = new URLSearchParams(params);
    next.set("page", page.nextPageToken);
    results.replaceChildren(
      page.payments.length === 0
        ? h("p", { class: "muted" }, "No payments match.")
        : table(["Id", "Payment no", "Merchant", "Order no", "Amount", "Status", "Channel", "Created"], rows, new Set([4])),
      page.nextPageToken ? h("p", { class: "pager" }, h("a", { href: `#/payments?${next}` }, "Next page →")) : "",
    );
  } catch (error) {
    results.replaceChildren(errorBox(error));
  }
}

function qrTarget(payment: Payment): string | undefined {
  if (payment.status !== PaymentStatus.PENDING) return undefined;
  const action = payment.action?.action;
  if (payment.channel === Channel.ALIPAY && action?.case === "qrCodeUrl") return action.value;
  if (payment.channel === Channel.WECHAT_PAY && action?.case === "codeUrl") return action.value;
  return undefined;
}

function timelineItem(entry: TimelineEntry): HTMLElement {
  const at = h("span", { class: "when" }, when(entry.at));
  const body = (() => {
    const e = entry.entry;
    switch (e.case) {
      case "event": {
        let payload = e.value.payloadJson;
        try {
          payload = JSON.stringify(JSON.parse(payload), null, 2);
        } catch {
          // shown as stored
        }
        return h("div", {}, h("span", { class: "kind" }, "Event"), mono(e.value.eventType), " ", h("span", { class: "muted mono" }, e.value.eventId), h("pre", {}, payload));
      }
      case "callback":
        return h(
          "div",
          {},
          h("span", { class: "kind" }, "Callback"),
          `${channelName(e.value.channel)} `,
          badge(e.value.verdict),
          ` answered ${e.value.answerStatus}`,
          e.value.effect ? ` · ${e.value.effect}` : "",
          e.value.reason ? h("div", { class: "muted" }, e.value.reason) : null,
          e.value.notificationId ? h("div", { class: "muted mono" }, `notification ${e.value.notificationId}`) : null,
        );
      case "channelCall":
        return h(
          "div",
          {},
          h("span", { class: "kind" }, "Channel call"),
          `${channelName(e.value.channel)} `,
          mono(e.value.operation),
          " ",
          outcomeBadge(e.value.outcome),
          e.value.code ? " " : "",
          e.value.code ? mono(e.value.code) : null,
          ` · ${e.value.latencyMs} ms`,
          e.value.refundNo ? h("div", { class: "muted mono" }, `refund ${e.value.refundNo}`) : null,
          // Monospaced and broken anywhere: details are often URLs or codes without spaces.
          e.value.detail ? h("div", { class: "muted mono" }, e.value.detail) : null,
          e.value.traceId ? h("div", { class: "muted mono" }, `trace ${e.value.traceId}`) : null,
        );
      case "ledgerEntry":
        return h(
          "div",
          {},
          h("span", { class: "kind" }, "Ledger"),
          mono(e.value.entryType),
          table(
            ["Account", "Amount"],
            e.value.postings.map((posting) => [mono(posting.account), money(posting.amount, e.value.currency)]),
            new Set([1]),
          ),
        );
      case "refund":
        return h(
          "div",
          {},
          h("span", { class: "kind" }, "Refund"),
          `${money(e.value.amount, e.value.currency)} `,
          badge(RefundStatus[e.value.status] ?? ""),
          " ",
          mono(e.value.id),
          e.value.reason ? h("div", { class: "muted" }, e.value.reason) : null,
        );
      case "webhookDelivery":
        return h(
          "div",
          {},
          h("span", { class: "kind" }, "Webhook"),
          mono(e.value.eventType),
          " ",
          badge(WebhookDeliveryStatus[e.value.status] ?? ""),
          ` ${e.value.attemptCount} attempt(s) to `,
          mono(e.value.url),
          ...e.value.attempts.map((attempt) =>
            h("div", { class: "muted" }, `#${attempt.number} ${when(attempt.startedAt)} → ${attempt.httpStatus || attempt.error} (${attempt.latencyMs} ms)`),
          ),
        );
      default:
        return h("div", {}, "(unknown entry)");
    }
  })();
  return h("li", { class: `entry-${entry.entry.case ?? "none"}` }, at, body);
}

async function showPayment(paymentId: string): Promise<void> {
  mount(h("p", { class: "muted" }, "Loading…"));
  try {
    const { payment, entries, truncated } = await admin.getPaymentTimeline({ paymentId });
    if (!payment) throw new Error("no payment in the answer");
    const facts: Array<[string, Child]> = [
      ["Id", mono(payment.id)],
      ["Payment no", mono(payment.paymentNo)],
      ["Merchant", mono(payment.merchantId)],
      ["Merchant order no", payment.merchantOrderNo],
      ["Amount", money(payment.amount, payment.currency)],
      ["Status", badge(paymentStatusName(payment.status))],
      ["Channel", channelName(payment.channel)],
      ["Subject", payment.subject],
      ["Channel trade no", payment.channelTradeNo ? mono(payment.channelTradeNo) : "—"],
      ["Refunded", money(payment.refundedAmount, payment.currency)],
      ["Fee", money(payment.fee, payment.currency)],
      ["Created", when(payment.createdAt)],
      ["Paid", when(payment.paidAt) || "—"],
      ["Closed", when(payment.closedAt) || "—"],
      ["Expires", when(payment.expiresAt) || "—"],
    ];
    const head = h(
      "div",
      { class: "payment-head" },
      h("section", { class: "card" }, h("dl", { class: "facts" }, ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]))),
    );
    const target = qrTarget(payment);
    if (target) {
      const canvas = h("canvas", { id: "payment-qr", "aria-label": "QR code to pay" });
      head.append(h("section", { class: "card qr" }, h("h2", {}, "Scan to pay"), canvas, h("p", { class: "mono muted" }, target)));
      await QRCode.toCanvas(canvas, target, { width: 200, margin: 1, errorCorrectionLevel: "M" });
    }
    mount(
      h("p", {}, h("a", { href: "#/payments" }, "← Payments")),
      h("h1", {}, `Payment ${payment.paymentNo}`),
      head,
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Timeline"),
        h("p", { class: "muted" }, "Channel calls show the operation and how it ended, not the request or answer bodies, and are kept for the configured retention."),
        entries.length === 0 ? h("p", { class: "muted" }, "Nothing recorded yet.") : h("ol", { class: "timeline", id: "timeline" }, ...entries.map(timelineItem)),
        truncated ? h("p", { class: "muted" }, "Only the oldest entries of each kind are shown.") : null,
      ),
    );
  } catch (error) {
    mount(h("p", {}, h("a", { href: "#/payments" }, "← Payments")), errorBox(error));
  }
}

// ---- discrepancies -------------------------------------------------------------------------------

async function showDiscrepancies(params: URLSearchParams): Promise<void> {
  const status = params.get("status") ?? "OPEN";
  const filter = h(
    "p",
    {},
    ...["OPEN", "RESOLVED", "ALL"].flatMap((s) => [
      s === status ? h("strong", {}, s) : h("a", { href: `#/discrepancies?status=${s}` }, s),
      " ",
    ]),
  );
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(h("h1", {}, "Discrepancies"), filter, list);
  try {
    const page = await settlement.listDiscrepancies({ status: status === "ALL" ? "" : status, pageSize: 100, pageToken: params.get("page") ?? "" });
    if (page.discrepancies.length === 0) {
      list.replaceChildren(h("p", { class: "muted" }, status === "OPEN" ? "No open discrepancies." : "None."));
      return;
    }
    list.replaceChildren(
      ...page.discrepancies.map((d) => {
        const card = h(
          "section",
          { class: "card discrepancy", "data-id": d.id },
          h("div", {}, badge(d.status), " ", h("strong", {}, d.kind), " · ", channelName(d.channel), " · ", d.currency ? money(d.amount, d.currency) : ""),
          h("p", {}, d.detail),
          h(
            "dl",
            { class: "facts" },
            h("dt", {}, "Id"),
            h("dd", {}, mono(d.id)),
            h("dt", {}, "Payment"),
            h("dd", {}, d.paymentId ? h("a", { href: `#/payment/${d.paymentId}`, class: "mono" }, d.paymentId) : "—"),
            h("dt", {}, "Merchant"),
            h("dd", {}, d.merchantId ? mono(d.merchantId) : "—"),
            h("dt", {}, "Raised"),
            h("dd", {}, when(d.createdAt)),
            ...(d.status === "RESOLVED"
              ? [h("dt", {}, "Resolution"), h("dd", {}, `${d.resolution} (${d.resolvedBy}, ${when(d.resolvedAt)})`)]
              : []),
          ),
        );
        if (d.status === "OPEN") {
          const resolution = h("input", { name: "resolution", placeholder: "What was done, e.g. refunded at the channel", required: true, maxlength: "500" });
          const outcome = h("div", {});
          const form = h("form", { class: "resolve" }, resolution, h("button", { type: "submit" }, "Resolve"), outcome);
          form.addEventListener("submit", async (event) => {
            event.preventDefault();
            try {
              await settlement.resolveDiscrepancy({ discrepancyId: d.id, resolution: resolution.value.trim(), resolvedBy: RESOLVED_BY });
              form.replaceWith(h("p", { class: "notice", role: "status" }, "Resolved."));
            } catch (error) {
              outcome.replaceChildren(errorBox(error));
            }
          });
          card.append(form);
        }
        return card;
      }),
    );
  } catch (error) {
    list.replaceChildren(errorBox(error));
  }
}

// ---- settlements and payouts ---------------------------------------------------------------------

async function showSettlements(params: URLSearchParams): Promise<void> {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(h("h1", {}, "Settlements and payouts"), body);
  try {
    const merchants = await admin.listMerchants({ pageSize: 100 });
    const select = h(
      "select",
      { name: "merchant", id: "settlement-merchant" },
      h("option", { value: "" }, "Choose a merchant"),
      ...merchants.merchants.map(({ merchant }) => h("option", { value: merchant?.id ?? "" }, `${merchant?.name} (${merchant?.id})`)),
    );
    const merchantId = params.get("merchant") ?? "";
    select.value = merchantId;
    select.addEventListener("change", () => {
      location.hash = `#/settlements?merchant=${encodeURIComponent(select.value)}`;
    });
    const list = h("div", {});
    body.replaceChildren(h("section", { class: "card" }, h("label", {}, "Merchant", select)), list);
    if (!merchantId) return;
    const page = await admin.listMerchantSettlements({ merchantId, pageSize: 100, pageToken: params.get("page") ?? "" });
    list.replaceChildren(
      page.settlements.length === 0
        ? h("p", { class: "muted" }, "No settlement orders yet.")
        : table(
            ["Settlement no", "Date", "Net", "Fee", "Lines", "Status", "Payout", "Payout status"],
            page.settlements.map((s) => [
              mono(s.settlementNo),
              s.settlementDate || "on request",
              money(s.netAmount, s.currency),
              money(s.feeAmount, s.currency),
              String(s.lineCount),
              badge(SettlementStatus[s.status] ?? ""),
              s.payout ? mono(s.payout.payoutNo) : "—",
              s.payout ? badge(PayoutStatus[s.payout.status] ?? "") : "—",
            ]),
            new Set([2, 3, 4]),
          ),
    );
  } catch (error) {
    body.replaceChildren(errorBox(error));
  }
}

// ---- reconciliation runs -------------------------------------------------------------------------

async function showReconciliation(params: URLSearchParams): Promise<void> {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(h("h1", {}, "Reconciliation runs"), body);
  try {
    const page = await settlement.listReconciliationRuns({ pageSize: 100, pageToken: params.get("page") ?? "" });
    body.replaceChildren(
      page.runs.length === 0
        ? h("p", { class: "muted" }, "No reconciliation runs yet.")
        : table(
            ["Channel", "Bill date", "Source", "Lines", "Matched", "Ours missing", "Channel missing", "Amount ≠", "Status ≠", "Fee ≠", "Margin", "Finished"],
            page.runs.map((run) => [
              channelName(run.channel),
              run.billDate,
              run.source,
              String(run.linesTotal),
              String(run.matched),
              String(run.missingOnOurSide),
              String(run.missingOnChannelSide),
              String(run.amountMismatch),
              String(run.statusMismatch),
              String(run.feeMismatch),
              run.currency ? money(run.margin, run.currency) : "",
              when(run.finishedAt) || "running",
            ]),
            new Set([3, 4, 5, 6, 7, 8, 9, 10]),
          ),
    );
  } catch (error) {
    body.replaceChildren(errorBox(error));
  }
}

// ---- merchants -----------------------------------------------------------------------------------

async function showMerchants(params: URLSearchParams): Promise<void> {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(h("h1", {}, "Merchants"), body);
  try {
    const page = await admin.listMerchants({ pageSize: 100, pageToken: params.get("page") ?? "" });
    body.replaceChildren(
      page.merchants.length === 0
        ? h("p", { class: "muted" }, "No merchants yet.")
        : table(
            ["Name", "Id", "Created", "Pending", "Available", "Paid out"],
            page.merchants.map(({ merchant, balances }) => {
              const column = (pick: (b: (typeof balances)[number]) => bigint) =>
                balances.length === 0 ? "—" : h("div", {}, ...balances.map((b) => h("div", {}, money(pick(b), b.currency))));
              return [
                merchant?.name ?? "",
                h("a", { href: `#/payments?merchantId=${merchant?.id ?? ""}`, class: "mono" }, merchant?.id ?? ""),
                when(merchant?.createdAt),
                column((b) => b.pending),
                column((b) => b.available),
                column((b) => b.paidOut),
              ];
            }),
            new Set([3, 4, 5]),
          ),
    );
  } catch (error) {
    body.replaceChildren(errorBox(error));
  }
}

// ---- routing -------------------------------------------------------------------------------------

async function route(): Promise<void> {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    showSignIn();
    return;
  }
  document.getElementById("nav")!.hidden = false;
  const [path = "", query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    link.classList.toggle("active", path.startsWith(link.getAttribute("href")!.slice(1)));
  }
  const paymentMatch = /^\/payment\/([A-Za-z0-9_-]{1,64})$/.exec(path);
  try {
    if (paymentMatch) await showPayment(paymentMatch[1]!);
    else if (path === "/discrepancies") await showDiscrepancies(params);
    else if (path === "/settlements") await showSettlements(params);
    else if (path === "/reconciliation") await showReconciliation(params);
    else if (path === "/merchants") await showMerchants(params);
    else await showPayments(params);
  } catch (error) {
    mount(errorBox(error));
  }
  // A token that stopped working (rotated ADMIN_TOKEN) sends the user back to sign-in.
  if (document.querySelector(".error")?.textContent?.startsWith("The admin token was refused")) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn("The admin token was refused. Sign in again.");
  }
}

document.getElementById("sign-out")!.addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "";
  showSignIn();
});
window.addEventListener("hashchange", () => void route());
void route();
