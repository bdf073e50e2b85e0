/**
 * WeChat Pay's side of the simulator: API v3 under `/wechatpay/v3/...` on the shared listener and
 * `/v3/...` at the root of its own (Native order, query, close, refund, refund query, trade bill
 * and its download) and the encrypted callbacks, in WeChat's formats: every request must carry a
 * valid `WECHATPAY2-SHA256-RSA2048` Authorization header (signed by the merchant key over the
 * request target as sent, so with the `/wechatpay` prefix on the shared listener),
 * and every answer (bill files excepted) and callback is signed with the platform key.
 *
 * Behaviour copied from WeChat on purpose: a repeated Native order with the same body gets the
 * same `code_url`, a changed one `INVALID_REQUEST` "201 商户订单号重复"; closing an unknown or
 * closed order answers 204; only payment successes are notified (`PAYERROR` and closes are not);
 * `trade_state` becomes `REFUND` once a refund was accepted; refunds go through at once (`SUCCESS`)
 * unless `refundDelayMs` makes them `PROCESSING` first; every refund result is notified.
 * Approximations: `USERPAYING` stands for "scanned, not paid yet"; an order past `time_expire`
 * stays `NOTPAY` but can no longer be paid; bills are served for today as well (WeChat: T+1
 * after 10:00); `notify_url` may be plain http.
 */
import { createHash, type KeyObject, randomBytes } from "node:crypto";
import type { DevChannelKeys, WechatPayDevKeys } from "../channels/dev-keys.js";
import { formatWechatTradeBill, type WechatTradeBillRow } from "../channels/wechatpay/wechatpay-bill.js";
import {
  encryptResource,
  loadWechatPrivateKey,
  loadWechatPublicKey,
  signWechatResponse,
  verifyAuthorization,
} from "../channels/wechatpay/wechatpay-signature.js";
import { parseWechatBillTime, parseWechatTime, toWechatTime } from "../channels/wechatpay/wechatpay-time.js";
import { paymentFee } from "../fees/fee-calculator.js";
import {
  type ChannelSimulator,
  HOLD_OPEN,
  type PayOutcome,
  type SimulatorContext,
  type SimulatorRequest,
  type SimulatorResponse,
} from "./channel-side.js";
import { refundedMinor, type SimRefund, type SimTrade, SimulatorControlError } from "./trade-store.js";
import {
  amountField,
  chinaDate,
  decodeSegment,
  invalidRequest,
  isObject,
  type Json,
  paramError,
  randomAlphanumeric,
  randomDigits,
  requireCny,
  requiredString,
  stringField,
  WechatApiError,
} from "./wechatpay/wechatpay-params.js";

/** WeChat re-sends an unacknowledged callback after 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h (24 h 4 m). */
export const WECHATPAY_NOTIFY_RETRY_GAPS_MS: readonly number[] = [
  15, 15, 30, 180, 600, 1_200, 1_800, 1_800, 1_800, 3_600, 10_800, 10_800, 10_800, 21_600, 21_600,
].map((seconds) => seconds * 1000);

/** Operation names for the `method` of `apiError`/`apiTimeout` faults: the API as WeChat's reference lists it. */
export const WECHATPAY_OPERATIONS = Object.freeze({
  native: "POST /v3/pay/transactions/native",
  query: "GET /v3/pay/transactions/out-trade-no/{out_trade_no}",
  close: "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close",
  refund: "POST /v3/refund/domestic/refunds",
  refundQuery: "GET /v3/refund/domestic/refunds/{out_refund_no}",
  tradeBill: "GET /v3/bill/tradebill",
  billDownload: "GET /v3/billdownload/file",
});

const CHANNEL = "wechatpay";
const DEFAULT_EXPIRY_MS = 2 * 60 * 60 * 1000;
const BILL_URL_VALIDITY_MS = 5 * 60 * 1000;
/** The simulated service fee: 0.6 %, rounded half up to the fen. */
const FEE_TERMS = { rateBps: 60, fixedFee: 0n, minFee: 0n };
const MAX_REFUND_INDEX = 200_000;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;


const TRADE_STATE_DESC: Readonly<Record<string, string>> = {
  NOTPAY: "订单未支付",
  USERPAYING: "用户支付中",
  SUCCESS: "支付成功",
  REFUND: "订单发生过退款",
  PAYERROR: "支付失败，请重新下单支付",
  CLOSED: "订单已关闭",
};


/** What a route handler answers: JSON (signed), nothing (204, signed) or a bill file (unsigned). */
type Answer = { status: number; json?: Json } | { status: 200; file: Buffer; fileName: string };

/** A refund as WeChat keeps it, found by `out_refund_no` (unique per merchant). */
interface RefundEntry {
  trade: SimTrade;
  refund: SimRefund;
  notifyUrl?: string;
  /** When it reached SUCCESS (or ABNORMAL). */
  finishedAt?: Date;
}


/** Creates the WeChat Pay side of the simulator. */
export function createWechatPaySimulator(context: SimulatorContext, allKeys: DevChannelKeys): ChannelSimulator {
  const keys: WechatPayDevKeys = allKeys.wechatpay;
  const merchantPublicKey = loadWechatPublicKey(keys.mchPublicKeyPem);
  const platformPrivateKey = loadWechatPrivateKey(keys.platformPrivateKeyPem);
  // A key WeChat does not own, to forge answers and callbacks when a fault asks for it.
  const wrongPrivateKey = loadWechatPrivateKey(keys.mchPrivateKeyPem);
  const refunds = new Map<string, RefundEntry>();
  const bills = new Map<string, { file: Buffer; fileName: string; expiresAt: number }>();

  function signingKey(outTradeNo: string | undefined, fault: "badSignature" | "badResponseSignature"): KeyObject {
    return context.faults.resolve(CHANNEL, outTradeNo)[fault] ? wrongPrivateKey : platformPrivateKey;
  }

  function tradeState(trade: SimTrade): string {
    switch (trade.state) {
      case "created":
        return "NOTPAY";
      case "pending":
        return "USERPAYING";
      case "paid":
        return trade.refunds.some((refund) => refund.state !== "failed") ? "REFUND" : "SUCCESS";
      case "failed":
        return "PAYERROR";
      case "closed":
        return "CLOSED";
    }
  }

  /** The transaction object of queries and `TRANSACTION.*` callbacks. */
  function transaction(trade: SimTrade, state = tradeState(trade)): Json {
    const result: Json = {
      appid: keys.appId,
      mchid: keys.mchId,
      out_trade_no: trade.outTradeNo,
      trade_state: state,
      trade_state_desc: TRADE_STATE_DESC[state],
      attach: "",
      amount: { total: Number(trade.amountMinor), currency: trade.currency, payer_currency: trade.currency },
    };
    if (trade.buyerId) result.payer = { openid: trade.buyerId };
    if (trade.state === "paid" || trade.state === "failed") {
      Object.assign(result, { transaction_id: trade.channelTradeNo, trade_type: "NATIVE", bank_type: "OTHERS" });
    }
    if (trade.paidAt) {
      result.success_time = toWechatTime(trade.paidAt);
      (result.amount as Json).payer_total = Number(trade.amountMinor);
    }
    return result;
  }

  function refundStatus(refund: SimRefund): string {
    return refund.state === "succeeded" ? "SUCCESS" : refund.state === "processing" ? "PROCESSING" : "ABNORMAL";
  }

  function refundAmounts(entry: RefundEntry): Json {
    const total = Number(entry.trade.amountMinor);
    const refund = Number(entry.refund.amountMinor);
    return { total, refund, payer_total: total, payer_refund: refund };
  }

  /** The refund object of the refund and refund-query answers. */
  function refundView(entry: RefundEntry): Json {
    const { trade, refund } = entry;
    const view: Json = {
      refund_id: refund.channelRefundNo,
      out_refund_no: refund.refundNo,
      transaction_id: trade.channelTradeNo,
      out_trade_no: trade.outTradeNo,
      channel: "ORIGINAL",
      user_received_account: "支付用户零钱",
      create_time: toWechatTime(refund.createdAt),
      status: refundStatus(refund),
      funds_account: "AVAILABLE",
      amount: {
        ...refundAmounts(entry),
        settlement_total: Number(trade.amountMinor),
        settlement_refund: Number(refund.amountMinor),
        discount_refund: 0,
        currency: trade.currency,
        refund_fee: Number(paymentFee(refund.amountMinor, FEE_TERMS)),
      },
      promotion_detail: [],
    };
    if (refund.state === "succeeded" && entry.finishedAt) view.success_time = toWechatTime(entry.finishedAt);
    return view;
  }

  /**
   * Queues a callback; resolves after its first delivery attempt. What it reports is fixed now;
   * the amount fault, encryption and signature are applied to each delivery, so a fault set or
   * cleared between re-sends shows on the next one.
   */
  function notify(trade: SimTrade, url: string | undefined, kind: "payment" | "refund", resource: Json): Promise<void> {
    if (!url) return Promise.resolve();
    const id = `EV-${randomDigits(19)}`;
    const createTime = toWechatTime(new Date());
    const eventType = kind === "payment" ? "TRANSACTION.SUCCESS" : `REFUND.${resource.refund_status as string}`;
    const summary = kind === "payment" ? "支付成功" : resource.refund_status === "SUCCESS" ? "退款成功" : "退款异常";
    const originalType = kind === "payment" ? "transaction" : "refund";
    return context.notifier.enqueue(trade, {
      id,
      kind,
      url,
      retryGapsMs: WECHATPAY_NOTIFY_RETRY_GAPS_MS,
      build: () => {
        const faults = context.faults.resolve(CHANNEL, trade.outTradeNo);
        const delta = faults.alterAmount === true ? 1 : typeof faults.alterAmount === "number" ? faults.alterAmount : 0;
        const amount = { ...(resource.amount as Json) };
        // The amount the receiver cross-checks: the order total of a payment, the refunded amount of a refund.
        if (kind === "payment") {
          amount.total = (amount.total as number) + delta;
          amount.payer_total = (amount.payer_total as number) + delta;
        } else {
          amount.refund = (amount.refund as number) + delta;
          amount.payer_refund = (amount.payer_refund as number) + delta;
        }
        const plaintext = JSON.stringify({ ...resource, amount });
        const body = JSON.stringify({
          id,
          create_time: createTime,
          resource_type: "encrypt-resource",
          event_type: eventType,
          summary,
          resource: encryptResource(plaintext, keys.apiV3Key, { associatedData: originalType, originalType }),
        });
        const signature = signWechatResponse({
          body,
          privateKey: signingKey(trade.outTradeNo, "badSignature"),
          publicKeyId: keys.publicKeyId,
        });
        return { headers: { "content-type": "application/json", ...signature }, body };
      },
      isAcknowledged: (status) => status >= 200 && status < 300,
    });
  }

  /** The shopper scanned the code: WeChat now knows who is paying. */
  function open(trade: SimTrade): void {
    trade.openedAt ??= new Date();
    trade.buyerId ??= `o${randomAlphanumeric(27)}`;
  }

  function markPaid(trade: SimTrade): Promise<void> {
    open(trade);
    trade.state = "paid";
    trade.paidAt = new Date();
    return notify(trade, trade.notifyUrl, "payment", transaction(trade, "SUCCESS"));
  }

  function finishRefund(entry: RefundEntry, state: "succeeded" | "failed"): void {
    entry.refund.state = state;
    entry.finishedAt = new Date();
    const { trade, refund } = entry;
    const resource: Json = {
      mchid: keys.mchId,
      transaction_id: trade.channelTradeNo,
      out_trade_no: trade.outTradeNo,
      refund_id: refund.channelRefundNo,
      out_refund_no: refund.refundNo,
      refund_status: refundStatus(refund),
      user_received_account: "支付用户零钱",
      amount: refundAmounts(entry),
    };
    if (state === "succeeded") resource.success_time = toWechatTime(entry.finishedAt);
    void notify(trade, entry.notifyUrl, "refund", resource);
  }

  function requirePayable(outTradeNo: string): SimTrade {
    const trade = context.trades.require(CHANNEL, outTradeNo);
    if (trade.state === "paid") throw new SimulatorControlError(409, `trade ${outTradeNo} is already paid`);
    if (trade.state === "closed" || trade.state === "failed") {
      throw new SimulatorControlError(409, `trade ${outTradeNo} is ${trade.state}`);
    }
    if (trade.expiresAt && trade.expiresAt.getTime() <= Date.now()) {
      throw new SimulatorControlError(409, `trade ${outTradeNo} expired at ${trade.expiresAt.toISOString()}`);
    }
    return trade;
  }

  function requireMchid(mchid: string | undefined): void {
    if (mchid === undefined) throw paramError("缺少参数 mchid");
    if (mchid !== keys.mchId) throw new WechatApiError(400, "MCH_NOT_EXISTS", "商户号不存在");
  }

  // --- API v3 --------------------------------------------------------------------------

  async function createNative(body: Json): Promise<Answer> {
    if (requiredString(body, "appid") !== keys.appId) throw new WechatApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配");
    requireMchid(requiredString(body, "mchid"));
    const description = requiredString(body, "description");
    if (description.length > 127) throw paramError("description 长度不能超过 127 个字符");
    const outTradeNo = requiredString(body, "out_trade_no");
    if (!OUT_TRADE_NO.test(outTradeNo)) throw paramError("out_trade_no 须为 6-32 位数字、大小写字母或 _-|*");
    const notifyUrl = requiredString(body, "notify_url");
    if (!/^https?:\/\/[^?#]+$/.test(notifyUrl)) throw paramError("notify_url 须为不带参数的 http(s) 地址");
    const timeExpire = stringField(body, "time_expire");
    const expiresAt = timeExpire === undefined ? new Date(Date.now() + DEFAULT_EXPIRY_MS) : parseWechatTime(timeExpire);
    if (!expiresAt) throw paramError("time_expire 须为 RFC 3339 时间，如 2018-06-08T10:34:56+08:00");
    if (!isObject(body.amount)) throw paramError("缺少参数 amount");
    const amountMinor = amountField(body.amount, "total");
    requireCny(body.amount);
    const fingerprint = createHash("sha256").update(JSON.stringify(body)).digest("hex");

    const existing = context.trades.get(CHANNEL, outTradeNo);
    if (existing) {
      if (existing.state === "paid") throw new WechatApiError(400, "ORDERPAID", "该订单已支付");
      if (existing.state === "closed") throw new WechatApiError(400, "ORDER_CLOSED", "订单已关闭");
      if (existing.attributes.request_sha256 !== fingerprint) throw invalidRequest("201 商户订单号重复");
      return { status: 200, json: { code_url: existing.attributes.code_url } };
    }

    const now = new Date();
    const trade: SimTrade = {
      channel: CHANNEL,
      outTradeNo,
      channelTradeNo: `42000${randomDigits(5)}${chinaDate(now).replaceAll("-", "")}${randomDigits(10)}`,
      amountMinor,
      currency: "CNY",
      subject: description,
      notifyUrl,
      state: "created",
      createdAt: now,
      expiresAt,
      refunds: [],
      notifications: [],
      attributes: { code_url: `weixin://wxpay/bizpayurl?pr=${randomAlphanumeric(9)}`, request_sha256: fingerprint },
    };
    context.trades.add(trade);
    if (context.faults.resolve(CHANNEL, outTradeNo).notifyBeforeCreateReturns) await markPaid(trade);
    return { status: 200, json: { code_url: trade.attributes.code_url } };
  }

  function queryOrder(outTradeNo: string, query: URLSearchParams): Answer {
    requireMchid(query.get("mchid") ?? undefined);
    const trade = context.trades.get(CHANNEL, outTradeNo);
    if (!trade) throw new WechatApiError(404, "ORDER_NOT_EXIST", "订单不存在");
    return { status: 200, json: transaction(trade) };
  }

  function closeOrder(outTradeNo: string, body: Json): Answer {
    requireMchid(requiredString(body, "mchid"));
    const trade = context.trades.get(CHANNEL, outTradeNo);
    // WeChat answers 204 for an order it does not know, or one already closed.
    if (!trade || trade.state === "closed") return { status: 204 };
    if (trade.state === "paid") throw new WechatApiError(400, "ORDERPAID", "订单已支付");
    if (context.faults.resolve(CHANNEL, outTradeNo).paidAfterClose) {
      // The shopper's payment wins the race at WeChat: the close says yes, the money arrives anyway.
      context.timers.schedule(0, () => {
        if (trade.state === "created" || trade.state === "pending") void markPaid(trade);
      });
      return { status: 204 };
    }
    trade.state = "closed";
    trade.closedAt = new Date();
    return { status: 204 };
  }

  function createRefund(body: Json): Answer {
    const outRefundNo = requiredString(body, "out_refund_no");
    if (!OUT_REFUND_NO.test(outRefundNo)) throw paramError("out_refund_no 须为 1-64 位数字、大小写字母或 _-|*@");
    const transactionId = stringField(body, "transaction_id");
    const outTradeNo = stringField(body, "out_trade_no");
    if (!transactionId && !outTradeNo) throw paramError("transaction_id 和 out_trade_no 必须填一个");
    const trade = transactionId
      ? context.trades.findByChannelTradeNo(CHANNEL, transactionId)
      : context.trades.get(CHANNEL, outTradeNo as string);
    if (!trade) throw new WechatApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在");
    if (!isObject(body.amount)) throw paramError("缺少参数 amount");
    const amountMinor = amountField(body.amount, "refund");
    const totalMinor = amountField(body.amount, "total");
    requireCny(body.amount);
    const reason = stringField(body, "reason");
    const notifyUrl = stringField(body, "notify_url") ?? trade.notifyUrl;

    const previous = refunds.get(outRefundNo);
    if (previous) {
      if (previous.trade !== trade || previous.refund.amountMinor !== amountMinor) {
        throw invalidRequest("退款单号已存在，但订单号或退款金额与之前的请求不一致");
      }
      return { status: 200, json: refundView(previous) };
    }
    if (trade.state !== "paid") throw invalidRequest("订单未支付，不能退款");
    if (totalMinor !== trade.amountMinor) throw invalidRequest("amount.total 与原订单金额不一致");
    if (refundedMinor(trade) + amountMinor > trade.amountMinor) throw invalidRequest("申请退款金额超过订单可退金额");
    const faults = context.faults.resolve(CHANNEL, trade.outTradeNo);
    if (faults.refundFails && !faults.refundDelayMs) {
      throw new WechatApiError(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起");
    }

    const now = new Date();
    const refund: SimRefund = {
      refundNo: outRefundNo,
      channelRefundNo: `50300${randomDigits(6)}${chinaDate(now).replaceAll("-", "")}${randomDigits(10)}`,
      amountMinor,
      state: "processing",
      createdAt: now,
    };
    if (reason) refund.reason = reason;
    trade.refunds.push(refund);
    const entry: RefundEntry = { trade, refund, notifyUrl };
    refunds.set(outRefundNo, entry);
    if (refunds.size > MAX_REFUND_INDEX) refunds.delete(refunds.keys().next().value as string);
    const outcome = faults.refundFails ? "failed" : "succeeded";
    if (faults.refundDelayMs) context.timers.schedule(faults.refundDelayMs, () => finishRefund(entry, outcome));
    else finishRefund(entry, outcome);
    return { status: 200, json: refundView(entry) };
  }

  function queryRefund(outRefundNo: string): Answer {
    const entry = refunds.get(outRefundNo);
    if (!entry) throw new WechatApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在");
    return { status: 200, json: refundView(entry) };
  }

  function billRows(billDate: string, billType: string): WechatTradeBillRow[] {
    const rows: WechatTradeBillRow[] = [];
    if (billType !== "REFUND") {
      for (const trade of context.trades.list(CHANNEL)) {
        if (!trade.paidAt || chinaDate(trade.paidAt) !== billDate) continue;
        rows.push({
          kind: "payment",
          paymentNo: trade.outTradeNo,
          channelTradeNo: trade.channelTradeNo,
          amountMinor: trade.amountMinor,
          feeMinor: paymentFee(trade.amountMinor, FEE_TERMS),
          currency: trade.currency,
          occurredAt: trade.paidAt,
          subject: trade.subject,
        });
      }
    }
    if (billType !== "SUCCESS") {
      for (const { trade, refund, finishedAt } of refunds.values()) {
        if (refund.state !== "succeeded" || !finishedAt || chinaDate(finishedAt) !== billDate) continue;
        rows.push({
          kind: "refund",
          paymentNo: trade.outTradeNo,
          channelTradeNo: trade.channelTradeNo,
          refundNo: refund.refundNo,
          channelRefundNo: refund.channelRefundNo,
          amountMinor: refund.amountMinor,
          feeMinor: paymentFee(refund.amountMinor, FEE_TERMS),
          currency: trade.currency,
          occurredAt: finishedAt,
          subject: trade.subject,
        });
      }
    }
    return rows.sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime());
  }

  function tradeBill(query: URLSearchParams, base: string): Answer {
    const billDate = query.get("bill_date") ?? "";
    if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate) || !parseWechatBillTime(`${billDate} 00:00:00`)) {
      throw paramError("bill_date 须为 yyyy-MM-dd");
    }
    const billType = query.get("bill_type") ?? "ALL";
    if (!["ALL", "SUCCESS", "REFUND"].includes(billType)) throw paramError("bill_type 须为 ALL、SUCCESS 或 REFUND");
    const rows = billRows(billDate, billType);
    if (rows.length === 0) throw new WechatApiError(400, "NO_STATEMENT_EXIST", "请求的账单文件不存在");
    // The hash must match the bytes served later, so the file is made now and kept with its token.
    const file = Buffer.from(formatWechatTradeBill(rows, { appId: keys.appId, mchId: keys.mchId }), "utf8");
    const token = randomBytes(24).toString("base64url");
    const now = Date.now();
    for (const [old, bill] of bills) if (bill.expiresAt < now) bills.delete(old);
    bills.set(token, { file, fileName: `${billDate}_${billType}.csv`, expiresAt: now + BILL_URL_VALIDITY_MS });
    return {
      status: 200,
      json: {
        hash_type: "SHA1",
        hash_value: createHash("sha1").update(file).digest("hex"),
        download_url: `${base}/v3/billdownload/file?token=${token}`,
      },
    };
  }

  function billDownload(query: URLSearchParams): Answer {
    const bill = bills.get(query.get("token") ?? "");
    if (!bill || bill.expiresAt < Date.now()) {
      throw new WechatApiError(404, "RESOURCE_NOT_EXISTS", "账单下载链接无效或已过期（有效期 5 分钟）");
    }
    return { status: 200, file: bill.file, fileName: bill.fileName };
  }

  // --- HTTP ----------------------------------------------------------------------------

  interface Route {
    operation: string;
    /** The trade the call is about, for trade-scoped faults. */
    outTradeNo?: string;
    run(body: Json): Answer | Promise<Answer>;
  }

  function route(request: SimulatorRequest): Route | undefined {
    const { method, path, query } = request;
    const O = WECHATPAY_OPERATIONS;
    if (method === "POST" && path === "/v3/pay/transactions/native") {
      return { operation: O.native, run: createNative };
    }
    const order = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)(\/close)?$/.exec(path);
    if (order) {
      const outTradeNo = decodeSegment(order[1] as string);
      if (order[2] && method === "POST") return { operation: O.close, outTradeNo, run: (body) => closeOrder(outTradeNo, body) };
      if (!order[2] && method === "GET") return { operation: O.query, outTradeNo, run: () => queryOrder(outTradeNo, query) };
      return undefined;
    }
    if (method === "POST" && path === "/v3/refund/domestic/refunds") return { operation: O.refund, run: createRefund };
    const refund = /^\/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(path);
    if (refund && method === "GET") {
      const outRefundNo = decodeSegment(refund[1] as string);
      return { operation: O.refundQuery, outTradeNo: refunds.get(outRefundNo)?.trade.outTradeNo, run: () => queryRefund(outRefundNo) };
    }
    if (method === "GET" && path === "/v3/bill/tradebill") return { operation: O.tradeBill, run: () => tradeBill(query, `${request.origin}${request.mount}`) };
    if (method === "GET" && path === "/v3/billdownload/file") return { operation: O.billDownload, run: () => billDownload(query) };
    return undefined;
  }

  /**
   * Checks the Authorization header over the full request target, as the merchant signed it. The
   * query arrives parsed and is serialised again: exact for the adapter's queries (letters, digits,
   * `-`, `_`, `.`), while a client encoding other characters differently would get SIGN_ERROR.
   */
  function authenticate(request: SimulatorRequest): void {
    const search = request.query.size > 0 ? `?${request.query.toString()}` : "";
    const check = verifyAuthorization({
      header: request.headers.authorization,
      method: request.method,
      pathWithQuery: `${request.mount}${request.path}${search}`,
      body: request.rawBody,
      publicKey: merchantPublicKey,
      mchId: keys.mchId,
      serialNo: keys.mchSerialNo,
    });
    if (!check.ok) throw new WechatApiError(401, "SIGN_ERROR", `错误的签名，验签失败 (${check.reason})`);
  }

  function parseBody(request: SimulatorRequest): Json {
    if (request.method !== "POST") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(request.rawBody.toString("utf8"));
    } catch {
      throw paramError("请求体不是合法的 JSON");
    }
    if (!isObject(parsed)) throw paramError("请求体须为 JSON 对象");
    return parsed;
  }

  /** Writes an answer; JSON answers (and 204s) carry WeChat's signature headers, bill files do not. */
  function respond(answer: Answer, outTradeNo: string | undefined): SimulatorResponse {
    if ("file" in answer) {
      return {
        status: 200,
        headers: { "content-type": "application/octet-stream", "content-disposition": `attachment; filename="${answer.fileName}"` },
        body: answer.file,
      };
    }
    const body = answer.json === undefined ? "" : JSON.stringify(answer.json);
    const signature = signWechatResponse({
      body,
      privateKey: signingKey(outTradeNo, "badResponseSignature"),
      publicKeyId: keys.publicKeyId,
    });
    const headers: Record<string, string> = { ...signature, "Request-ID": randomBytes(16).toString("hex") };
    if (body !== "") headers["content-type"] = "application/json; charset=utf-8";
    return { status: answer.status, headers, body };
  }

  async function handleApi(request: SimulatorRequest): Promise<SimulatorResponse | typeof HOLD_OPEN> {
    let target: Route | undefined;
    let body: Json = {};
    let badInput: WechatApiError | undefined;
    try {
      target = route(request);
      if (target) body = parseBody(request);
    } catch (error) {
      if (!(error instanceof WechatApiError)) throw error;
      badInput = error;
    }
    if (!target && !badInput) {
      return respond(
        { status: 404, json: { code: "NOT_FOUND", message: `${request.method} ${request.mount}${request.path} 不存在` } },
        undefined,
      );
    }
    const outTradeNo = target?.outTradeNo ?? (typeof body.out_trade_no === "string" ? body.out_trade_no : undefined);

    const fault = target ? context.faults.takeApiFault(CHANNEL, target.operation, outTradeNo) : undefined;
    if (fault?.kind === "error") return respond({ status: fault.status, json: { code: "SYSTEM_ERROR", message: "系统错误" } }, outTradeNo);
    if (fault?.kind === "timeout" && !fault.apply) return HOLD_OPEN;

    let answer: Answer;
    try {
      authenticate(request);
      if (badInput) throw badInput;
      answer = await (target as Route).run(body);
    } catch (error) {
      if (!(error instanceof WechatApiError)) throw error;
      answer = { status: error.status, json: { code: error.code, message: error.message } };
    }
    if (fault?.kind === "timeout") return HOLD_OPEN;
    return respond(answer, outTradeNo);
  }

  return {
    channel: CHANNEL,

    handle: handleApi,

    pay(outTradeNo: string, outcome: PayOutcome) {
      const trade = requirePayable(outTradeNo);
      if (outcome === "success") {
        void markPaid(trade);
        return;
      }
      // WeChat notifies successes only: a failed payment is found by querying the order.
      open(trade);
      trade.state = "failed";
    },

    scan(outTradeNo) {
      const trade = requirePayable(outTradeNo);
      open(trade);
      trade.state = "pending";
    },

    channelState(trade) {
      const state = tradeState(trade);
      const expired =
        (trade.state === "created" || trade.state === "pending") && trade.expiresAt && trade.expiresAt.getTime() <= Date.now();
      return expired ? `${state} (expired: no longer payable)` : state;
    },
  };
}
