/**
 * Alipay's side of the simulator: the open-platform gateway (`POST /alipay/gateway.do` on the
 * shared listener, `POST /gateway.do` at the root of its own; request parsing and errors in
 * `alipay/alipay-params.ts`, the bill file in `alipay/alipay-bill.ts`) for
 * precreate, query, close, refund, refund query and bill URLs, the bill download, and
 * `trade_status_sync` notifies, in Alipay's formats and with its signatures.
 *
 * Behaviour copied from Alipay on purpose: a precreated trade exists for query/close/refund only
 * once the shopper scans the QR code (`ACQ.TRADE_NOT_EXIST` before that, and a close then leaves
 * the QR code payable); closes and refunds send notifies to the trade's notify_url too.
 * Refund faults follow Alipay's refund rules: `refundFails` alone is a `40004`
 * `ACQ.SELLER_BALANCE_NOT_ENOUGH`; `refundDelayMs` answers `fund_change: "N"` and the refund query
 * (`alipay.trade.fastpay.refund.query`) shows the refund without `refund_status` until it is paid
 * out (`REFUND_SUCCESS`; no notify then), or, with `refundFails`, shows no refund at all once it is
 * abandoned.
 * Approximations: bills are served for today as well (Alipay: T+1 after 10:00), request
 * timestamps must be within 30 minutes of the simulator's clock.
 */
import { randomBytes } from "node:crypto";
import type { AlipayDevKeys, DevChannelKeys } from "../channels/dev-keys.js";
import {
  buildSignedGatewayResponse,
  loadAlipayPrivateKey,
  loadAlipayPublicKey,
  responseKeyFor,
  signNotifyParams,
  verifyRequestParams,
} from "../channels/alipay/alipay-signature.js";
import { parseAlipayTime, toAlipayDate, toAlipayTime } from "../channels/alipay/alipay-time.js";
import { alipayBillArchive } from "./alipay/alipay-bill.js";
import {
  amountField,
  business,
  type Content,
  digits,
  GatewayError,
  invalidArgument,
  invalidParameter,
  lowerAlphanumeric,
  maskedLogonId,
  missing,
  paidOutMinor,
  parseTimeoutExpress,
  REQUIRED_PARAMS,
  stringField,
  tradeNotExist,
  yuan,
} from "./alipay/alipay-params.js";
import {
  type ChannelSimulator,
  HOLD_OPEN,
  type PayOutcome,
  type SimulatorContext,
  type SimulatorRequest,
  type SimulatorResponse,
} from "./channel-side.js";
import { refundedMinor, type SimRefund, type SimTrade, SimulatorControlError } from "./trade-store.js";

/** Alipay re-sends an unacknowledged notify after 4m, 10m, 10m, 1h, 2h, 6h, 15h (8 deliveries in about 25 h). */
export const ALIPAY_NOTIFY_RETRY_GAPS_MS: readonly number[] = [4, 10, 10, 60, 120, 360, 900].map((minutes) => minutes * 60_000);

const MIN_AMOUNT_MINOR = 1n;
const MAX_AMOUNT_MINOR = 10_000_000_000n;
const DEFAULT_EXPIRY_MS = 2 * 60 * 60 * 1000;
const TIMESTAMP_TOLERANCE_MS = 30 * 60 * 1000;
const BILL_URL_VALIDITY_MS = 30_000;

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const HTML = { "content-type": "text/html; charset=utf-8" };



/** What a notify reports, fixed when it is queued so that re-sends repeat it. */
interface NotifyFacts {
  kind: "payment" | "closed" | "refund";
  tradeStatus: string;
  refund?: SimRefund;
  refundFeeMinor?: bigint;
}



/** Creates the Alipay side of the simulator. */
export function createAlipaySimulator(context: SimulatorContext, allKeys: DevChannelKeys): ChannelSimulator {
  const keys: AlipayDevKeys = allKeys.alipay;
  const appPublicKey = loadAlipayPublicKey(keys.appPublicKeyPem);
  const alipayPrivateKey = loadAlipayPrivateKey(keys.alipayPrivateKeyPem);
  // A key Alipay does not own, to forge notifies and responses when a fault asks for it.
  const wrongPrivateKey = loadAlipayPrivateKey(keys.appPrivateKeyPem);
  const billTokens = new Map<string, { billDate: string; expiresAt: number }>();
  /** When each refund's money went back to the buyer (`gmt_refund_pay`); later than the request when delayed. */
  const refundPaidAt = new WeakMap<SimRefund, Date>();

  function findTrade(biz: Content): SimTrade | undefined {
    const tradeNo = stringField(biz, "trade_no");
    const outTradeNo = stringField(biz, "out_trade_no");
    if (!tradeNo && !outTradeNo) throw invalidParameter("out_trade_no or trade_no is required");
    const trade = tradeNo ? context.trades.findByChannelTradeNo("alipay", tradeNo) : context.trades.get("alipay", outTradeNo as string);
    if (trade) expireIfDue(trade);
    return trade;
  }

  /** The trade as Alipay's API sees it: unknown until the shopper scanned the QR code. */
  function findVisibleTrade(biz: Content): SimTrade {
    const trade = findTrade(biz);
    if (!trade?.openedAt) throw tradeNotExist();
    return trade;
  }

  function tradeStatus(trade: SimTrade): string {
    switch (trade.state) {
      case "created":
      case "pending":
        return "WAIT_BUYER_PAY";
      case "paid":
        return paidOutMinor(trade) >= trade.amountMinor ? "TRADE_CLOSED" : "TRADE_SUCCESS";
      default:
        return "TRADE_CLOSED";
    }
  }

  function expireIfDue(trade: SimTrade): void {
    if ((trade.state === "created" || trade.state === "pending") && trade.expiresAt && trade.expiresAt.getTime() <= Date.now()) {
      close(trade, trade.expiresAt);
    }
  }

  function close(trade: SimTrade, at: Date): void {
    const wasOpened = trade.openedAt !== undefined;
    trade.state = "closed";
    trade.closedAt = at;
    if (wasOpened) void notify(trade, "closed");
  }

  function markPaid(trade: SimTrade): void {
    const now = new Date();
    trade.openedAt ??= now;
    trade.buyerId ??= `2088${digits(12)}`;
    trade.state = "paid";
    trade.paidAt = now;
  }

  function notifyParams(trade: SimTrade, facts: NotifyFacts, notifyId: string): Record<string, string> {
    const faults = context.faults.resolve("alipay", trade.outTradeNo);
    const delta = faults.alterAmount === true ? 1n : typeof faults.alterAmount === "number" ? BigInt(faults.alterAmount) : 0n;
    const stated = yuan(trade.amountMinor + delta);
    const params: Record<string, string> = {
      notify_time: toAlipayTime(new Date()),
      notify_type: "trade_status_sync",
      notify_id: notifyId,
      app_id: keys.appId,
      auth_app_id: keys.appId,
      charset: "utf-8",
      version: "1.0",
      sign_type: "RSA2",
      trade_no: trade.channelTradeNo,
      out_trade_no: trade.outTradeNo,
      seller_id: keys.sellerId,
      trade_status: facts.tradeStatus,
      total_amount: stated,
      subject: trade.subject,
      gmt_create: toAlipayTime(trade.openedAt ?? trade.createdAt),
    };
    if (trade.buyerId) {
      params.buyer_id = trade.buyerId;
      params.buyer_logon_id = maskedLogonId(trade.buyerId);
    }
    if (trade.paidAt) {
      params.receipt_amount = stated;
      params.invoice_amount = stated;
      params.buyer_pay_amount = stated;
      params.point_amount = "0.00";
      params.gmt_payment = toAlipayTime(trade.paidAt);
      params.fund_bill_list = JSON.stringify([{ amount: stated, fundChannel: "ALIPAYACCOUNT" }]);
    }
    if (trade.closedAt && facts.kind === "closed") params.gmt_close = toAlipayTime(trade.closedAt);
    const { refund } = facts;
    if (refund) {
      params.out_biz_no = refund.refundNo;
      params.refund_fee = yuan(facts.refundFeeMinor ?? refund.amountMinor);
      params.gmt_refund = `${toAlipayTime(refund.createdAt)}.${String(refund.createdAt.getUTCMilliseconds()).padStart(3, "0")}`;
    }
    const signingKey = faults.badSignature ? wrongPrivateKey : alipayPrivateKey;
    params.sign = signNotifyParams(params, signingKey);
    return params;
  }

  /** Queues a notify to the trade's notify_url; resolves after its first delivery attempt. */
  function notify(trade: SimTrade, kind: "payment" | "closed" | "refund", refund?: SimRefund): Promise<void> {
    if (!trade.notifyUrl) return Promise.resolve();
    const notifyId = `${randomBytes(16).toString("hex")}${digits(3)}`;
    const facts: NotifyFacts =
      kind === "payment"
        ? { kind, tradeStatus: "TRADE_SUCCESS" }
        : kind === "closed"
          ? { kind, tradeStatus: "TRADE_CLOSED" }
          : { kind, tradeStatus: tradeStatus(trade), refundFeeMinor: paidOutMinor(trade) };
    if (refund) facts.refund = refund;
    return context.notifier.enqueue(trade, {
      id: notifyId,
      kind,
      url: trade.notifyUrl,
      retryGapsMs: ALIPAY_NOTIFY_RETRY_GAPS_MS,
      build: () => ({
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
        body: new URLSearchParams(notifyParams(trade, facts, notifyId)).toString(),
      }),
      isAcknowledged: (status, body) => status === 200 && body.toString("utf8") === "success",
    });
  }

  function requirePayable(outTradeNo: string): SimTrade {
    const trade = context.trades.require("alipay", outTradeNo);
    expireIfDue(trade);
    if (trade.state === "paid") throw new SimulatorControlError(409, `trade ${outTradeNo} is already paid`);
    if (trade.state === "closed" || trade.state === "failed") {
      const expired = trade.expiresAt !== undefined && trade.closedAt?.getTime() === trade.expiresAt.getTime();
      throw new SimulatorControlError(409, `trade ${outTradeNo} is ${trade.state}${expired ? " (expired)" : ""}`);
    }
    return trade;
  }

  function pay(trade: SimTrade, outcome: PayOutcome): Promise<void> {
    if (outcome === "fail") {
      // Alipay has no failed state: a shopper who cannot pay leaves the trade to close.
      trade.openedAt ??= new Date();
      close(trade, new Date());
      return Promise.resolve();
    }
    markPaid(trade);
    return notify(trade, "payment");
  }

  // --- gateway methods -----------------------------------------------------------------

  async function precreate(biz: Content, params: Record<string, string>): Promise<Content> {
    const outTradeNo = stringField(biz, "out_trade_no");
    if (!outTradeNo) throw invalidParameter("out_trade_no is required");
    if (outTradeNo.length > 64 || !/^[\x21-\x7e]+$/.test(outTradeNo)) {
      throw invalidParameter("out_trade_no: up to 64 visible ASCII characters");
    }
    const amountMinor = amountField(biz, "total_amount");
    if (amountMinor === undefined) throw invalidParameter("total_amount is required");
    if (amountMinor < MIN_AMOUNT_MINOR) throw invalidParameter("total_amount must be at least 0.01");
    if (amountMinor > MAX_AMOUNT_MINOR) throw business("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额");
    const subject = stringField(biz, "subject");
    if (!subject) throw invalidParameter("subject is required");
    const now = new Date();
    const timeExpire = stringField(biz, "time_expire");
    const timeoutExpress = stringField(biz, "timeout_express");
    let expiresAt = new Date(now.getTime() + DEFAULT_EXPIRY_MS);
    if (timeExpire) {
      const parsed = parseAlipayTime(timeExpire);
      if (!parsed) throw invalidParameter("time_expire must be yyyy-MM-dd HH:mm:ss");
      expiresAt = parsed;
    } else if (timeoutExpress) expiresAt = parseTimeoutExpress(timeoutExpress, now);

    const existing = context.trades.get("alipay", outTradeNo);
    if (existing) {
      expireIfDue(existing);
      if (existing.state === "paid") throw business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付");
      if (existing.state === "closed" || existing.state === "failed") throw business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭");
      if (existing.amountMinor !== amountMinor || existing.subject !== subject) {
        throw business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改");
      }
      return { code: "10000", msg: "Success", out_trade_no: outTradeNo, qr_code: existing.attributes.qr_code };
    }

    const trade: SimTrade = {
      channel: "alipay",
      outTradeNo,
      channelTradeNo: `${toAlipayDate(now).replaceAll("-", "")}22001${digits(15)}`,
      amountMinor,
      currency: "CNY",
      subject,
      state: "created",
      createdAt: now,
      expiresAt,
      refunds: [],
      notifications: [],
      attributes: { qr_code: `https://qr.alipay.com/bax0${lowerAlphanumeric(20)}` },
    };
    if (params.notify_url) trade.notifyUrl = params.notify_url;
    context.trades.add(trade);
    context.timers.schedule(expiresAt.getTime() - now.getTime(), () => expireIfDue(trade));

    if (context.faults.resolve("alipay", outTradeNo).notifyBeforeCreateReturns) {
      markPaid(trade);
      await notify(trade, "payment");
    }
    return { code: "10000", msg: "Success", out_trade_no: outTradeNo, qr_code: trade.attributes.qr_code };
  }

  function query(biz: Content): Content {
    const trade = findVisibleTrade(biz);
    const content: Content = {
      code: "10000",
      msg: "Success",
      trade_no: trade.channelTradeNo,
      out_trade_no: trade.outTradeNo,
      trade_status: tradeStatus(trade),
      total_amount: yuan(trade.amountMinor),
    };
    if (trade.buyerId) {
      content.buyer_logon_id = maskedLogonId(trade.buyerId);
      content.buyer_user_id = trade.buyerId;
    }
    if (trade.paidAt) {
      content.buyer_pay_amount = yuan(trade.amountMinor);
      content.receipt_amount = yuan(trade.amountMinor);
      content.point_amount = "0.00";
      content.invoice_amount = yuan(trade.amountMinor);
      content.send_pay_date = toAlipayTime(trade.paidAt);
    } else {
      content.buyer_pay_amount = "0.00";
    }
    return content;
  }

  function closeTrade(biz: Content): Content {
    if (context.faults.resolve("alipay", stringField(biz, "out_trade_no")).paidAfterClose) {
      const trade = findTrade(biz);
      if (trade && (trade.state === "created" || trade.state === "pending")) {
        // The shopper's payment wins the race at Alipay: the close says yes, the money arrives anyway.
        context.timers.schedule(0, () => {
          if (trade.state === "created" || trade.state === "pending") void pay(trade, "success");
        });
        return { code: "10000", msg: "Success", trade_no: trade.channelTradeNo, out_trade_no: trade.outTradeNo };
      }
    }
    const trade = findVisibleTrade(biz);
    if (trade.state !== "pending" && trade.state !== "created") throw business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
    close(trade, new Date());
    return { code: "10000", msg: "Success", trade_no: trade.channelTradeNo, out_trade_no: trade.outTradeNo };
  }

  function refund(biz: Content): Content {
    const trade = findVisibleTrade(biz);
    const amountMinor = amountField(biz, "refund_amount");
    if (amountMinor === undefined) throw invalidParameter("refund_amount is required");
    if (amountMinor < MIN_AMOUNT_MINOR) throw invalidParameter("refund_amount must be at least 0.01");
    const outRequestNo = stringField(biz, "out_request_no");
    const failureExtra = () => ({ out_trade_no: trade.outTradeNo, refund_fee: yuan(paidOutMinor(trade)), send_back_fee: "0.00" });
    if (trade.state !== "paid") throw business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法", failureExtra());
    if (!outRequestNo && amountMinor !== trade.amountMinor) {
      throw business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "撤销或退款金额与订单金额不一致", failureExtra());
    }
    const refundNo = outRequestNo ?? trade.outTradeNo;
    // fund_change Y only when this very call moved the money; a repeat or a refund still in progress says N.
    const answer = (fundChange: "Y" | "N", refundRecord: SimRefund): Content => {
      const paidOut = refundRecord.state === "succeeded";
      const content: Content = {
        code: "10000",
        msg: "Success",
        trade_no: trade.channelTradeNo,
        out_trade_no: trade.outTradeNo,
        buyer_logon_id: maskedLogonId(trade.buyerId ?? "2088000000000000"),
        buyer_user_id: trade.buyerId,
        fund_change: fundChange,
        refund_fee: yuan(paidOutMinor(trade)),
        send_back_fee: paidOut ? yuan(refundRecord.amountMinor) : "0.00",
      };
      if (paidOut) content.gmt_refund_pay = toAlipayTime(refundPaidAt.get(refundRecord) ?? refundRecord.createdAt);
      return content;
    };

    const previous = trade.refunds.find((candidate) => candidate.refundNo === refundNo);
    if (previous && previous.state !== "failed") {
      if (previous.amountMinor !== amountMinor) throw business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致", failureExtra());
      return answer("N", previous);
    }
    // Alipay's advice for a failed refund is to retry with the same out_request_no: a new attempt.
    if (previous) trade.refunds.splice(trade.refunds.indexOf(previous), 1);
    if (refundedMinor(trade) + amountMinor > trade.amountMinor) {
      throw business("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效", failureExtra());
    }
    const refundRecord: SimRefund = { refundNo, amountMinor, state: "processing", createdAt: new Date() };
    const reason = stringField(biz, "refund_reason");
    if (reason) refundRecord.reason = reason;
    trade.refunds.push(refundRecord);

    const faults = context.faults.resolve("alipay", trade.outTradeNo);
    if (faults.refundDelayMs !== undefined) {
      const fails = faults.refundFails === true;
      context.timers.schedule(faults.refundDelayMs, () => finishRefund(refundRecord, fails ? "failed" : "succeeded"));
      return answer("N", refundRecord);
    }
    if (faults.refundFails) {
      // Kept as failed so the control API shows the attempt; the refund query reports nothing for it.
      refundRecord.state = "failed";
      throw business("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足", failureExtra());
    }
    finishRefund(refundRecord, "succeeded");
    void notify(trade, "refund", refundRecord);
    return answer("Y", refundRecord);
  }

  /** A refund leaves processing once; a delayed one is then visible through the refund query only. */
  function finishRefund(refundRecord: SimRefund, state: "succeeded" | "failed"): void {
    if (refundRecord.state !== "processing") return;
    refundRecord.state = state;
    if (state === "succeeded") refundPaidAt.set(refundRecord, new Date());
  }

  function refundQuery(biz: Content): Content {
    const trade = findVisibleTrade(biz);
    const outRequestNo = stringField(biz, "out_request_no");
    if (!outRequestNo) throw invalidParameter("out_request_no is required");
    const refundRecord = trade.refunds.find((candidate) => candidate.refundNo === outRequestNo);
    const content: Content = {
      code: "10000",
      msg: "Success",
      trade_no: trade.channelTradeNo,
      out_trade_no: trade.outTradeNo,
      out_request_no: outRequestNo,
    };
    // 10000 only says the query ran: Alipay returns no refund data for a refund it never received or that failed.
    if (!refundRecord || refundRecord.state === "failed") return content;
    const known: Content = {
      ...content,
      total_amount: yuan(trade.amountMinor),
      refund_amount: yuan(refundRecord.amountMinor),
    };
    if (refundRecord.reason) known.refund_reason = refundRecord.reason;
    // refund_status stays absent until the money is back with the buyer.
    if (refundRecord.state === "processing") return known;
    return {
      ...known,
      refund_status: "REFUND_SUCCESS",
      gmt_refund_pay: toAlipayTime(refundPaidAt.get(refundRecord) ?? refundRecord.createdAt),
    };
  }

  function billDownloadUrl(biz: Content, _params: Record<string, string>, request: SimulatorRequest): Content {
    const billType = stringField(biz, "bill_type");
    const billDate = stringField(biz, "bill_date");
    if (billType !== "trade") throw invalidParameter("bill_type: only trade is simulated");
    if (!billDate || !/^\d{4}-\d{2}-\d{2}$/.test(billDate) || !parseAlipayTime(`${billDate} 00:00:00`)) {
      throw invalidParameter("bill_date must be yyyy-MM-dd (monthly bills are not simulated)");
    }
    if (billDate > toAlipayDate(new Date())) throw business("isp.bill_not_exist", "账单不存在");
    const token = randomBytes(16).toString("hex");
    const now = Date.now();
    for (const [old, entry] of billTokens) if (entry.expiresAt < now) billTokens.delete(old);
    billTokens.set(token, { billDate, expiresAt: now + BILL_URL_VALIDITY_MS });
    const compactDate = billDate.replaceAll("-", "");
    return {
      code: "10000",
      msg: "Success",
      bill_download_url: `${request.origin}${request.mount}/bill/download?bizType=trade&fileType=csv.zip&bizDates=${compactDate}&token=${token}`,
    };
  }

  // --- HTTP ----------------------------------------------------------------------------

  async function gateway(request: SimulatorRequest): Promise<SimulatorResponse | typeof HOLD_OPEN> {
    const params: Record<string, string> = {};
    const contentType = request.headers["content-type"] ?? "";
    const isForm = contentType.includes("application/x-www-form-urlencoded");
    const bodyParams = new URLSearchParams(isForm ? request.rawBody.toString("utf8") : "");
    for (const source of [request.query, bodyParams]) for (const [key, value] of source) params[key] = value;

    const method = params.method ?? "";
    const handler = method ? METHODS[method] : undefined;
    const responseKey = handler ? responseKeyFor(method) : "error_response";
    let biz: Content = {};
    let bizError: GatewayError | undefined;
    if (params.biz_content !== undefined) {
      try {
        const parsed: unknown = JSON.parse(params.biz_content);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
        biz = parsed as Content;
      } catch {
        bizError = invalidParameter("biz_content is not a JSON object");
      }
    }
    const outTradeNo = typeof biz.out_trade_no === "string" ? biz.out_trade_no : undefined;

    const fault = context.faults.takeApiFault("alipay", method, outTradeNo);
    if (fault?.kind === "error") {
      return { status: fault.status, headers: HTML, body: `<html><body><h1>${fault.status} Service Unavailable</h1></body></html>` };
    }
    if (fault?.kind === "timeout" && !fault.apply) return HOLD_OPEN;

    let content: Content;
    try {
      if (request.method !== "POST" && request.method !== "GET") throw invalidArgument("isv.invalid-http-method", "只支持 GET 和 POST");
      for (const [name, what] of REQUIRED_PARAMS) if (!params[name]) throw missing(what);
      if (params.app_id !== keys.appId) throw invalidArgument("isv.invalid-app-id", "无效的AppID参数");
      if (!handler) throw invalidArgument("isv.invalid-method", "不存在的方法名");
      if (params.sign_type !== "RSA2") throw invalidArgument("isv.invalid-signature-type", "无效的签名类型");
      if (params.charset && params.charset.toLowerCase() !== "utf-8") {
        throw invalidArgument("isv.invalid-charset", "字符集错误 (simulator: utf-8 only)");
      }
      if (params.format && params.format.toUpperCase() !== "JSON") throw invalidArgument("isv.invalid-format", "无效的数据格式");
      if (!verifyRequestParams(params, appPublicKey)) throw invalidArgument("isv.invalid-signature", "验签出错");
      const timestamp = parseAlipayTime(params.timestamp);
      if (!timestamp || Math.abs(timestamp.getTime() - Date.now()) > TIMESTAMP_TOLERANCE_MS) {
        throw invalidArgument("isv.invalid-timestamp", "非法的时间戳参数 (yyyy-MM-dd HH:mm:ss, China time)");
      }
      if (params.biz_content === undefined) throw missing("biz-content");
      if (bizError) throw bizError;
      content = await handler(biz, params, request);
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      content = { code: error.code, msg: error.msg, sub_code: error.subCode, sub_msg: error.subMsg, ...error.extra };
    }
    if (fault?.kind === "timeout") return HOLD_OPEN;

    const signingKey = context.faults.resolve("alipay", outTradeNo).badResponseSignature ? wrongPrivateKey : alipayPrivateKey;
    return {
      status: 200,
      headers: { "content-type": "text/html;charset=utf-8" },
      body: buildSignedGatewayResponse(responseKey, content, signingKey),
    };
  }

  const METHODS: Record<string, (biz: Content, params: Record<string, string>, request: SimulatorRequest) => Content | Promise<Content>> = {
    "alipay.trade.precreate": precreate,
    "alipay.trade.query": query,
    "alipay.trade.close": closeTrade,
    "alipay.trade.refund": refund,
    "alipay.trade.fastpay.refund.query": refundQuery,
    "alipay.data.dataservice.bill.downloadurl.query": billDownloadUrl,
  };

  function billDownload(request: SimulatorRequest): SimulatorResponse {
    const entry = billTokens.get(request.query.get("token") ?? "");
    if (!entry || entry.expiresAt < Date.now()) {
      return { status: 404, headers: TEXT, body: "bill download link unknown or expired (valid 30 s)\n" };
    }
    return {
      status: 200,
      headers: {
        "content-type": "application/octet-stream",
        "content-disposition": `attachment; filename="${keys.sellerId}0156_${entry.billDate.replaceAll("-", "")}.csv.zip"`,
      },
      body: alipayBillArchive(context.trades.list("alipay"), keys.sellerId, entry.billDate),
    };
  }

  return {
    channel: "alipay",

    async handle(request) {
      if (request.path === "/gateway.do") return gateway(request);
      if (request.path === "/bill/download" && request.method === "GET") return billDownload(request);
      return { status: 404, headers: TEXT, body: `not found: the Alipay gateway is POST ${request.mount}/gateway.do\n` };
    },

    pay(outTradeNo, outcome) {
      void pay(requirePayable(outTradeNo), outcome);
    },

    scan(outTradeNo) {
      const trade = requirePayable(outTradeNo);
      trade.openedAt ??= new Date();
      trade.state = "pending";
    },

    channelState(trade) {
      expireIfDue(trade);
      return trade.openedAt ? tradeStatus(trade) : "TRADE_NOT_EXIST (QR code not scanned yet)";
    },
  };
}
