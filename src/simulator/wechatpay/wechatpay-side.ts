/**
 * WeChat Pay's side of the simulator: API v3 under `/wechatpay/v3/...` on the shared listener and
 * `/v3/...` at the root of its own (Native order, query, close, refund, refund query, trade bill
 * and its download, transfer batches for payouts) and the encrypted callbacks, in WeChat's formats. A request is handled in
 * order: route and parse, faults, signature check, handler, signed answer.
 *
 * Modules: `wechatpay-params` (request parsing and errors), `wechatpay-auth` (the request
 * signature check and answer signing), `wechatpay-routes` (the route table with each endpoint's
 * fault operation name), `wechatpay-trades` (orders), `wechatpay-refunds`, `wechatpay-payouts`, `wechatpay-bill`,
 * `wechatpay-notifications` (the callback sender and its re-send schedule), `wechatpay-book` (the
 * state).
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
import type { DevChannelKeys } from "../../channels/dev-keys.js";
import { type ChannelSimulator, HOLD_OPEN, type SimulatorContext, type SimulatorRequest, type SimulatorResponse } from "../channel-side.js";
import { authenticate, respond } from "./wechatpay-auth.js";
import { type Answer, CHANNEL, WechatBook } from "./wechatpay-book.js";
import { type Json, parseJsonBody, WechatApiError } from "./wechatpay-params.js";
import { matchWechatRoute, type WechatRoute } from "./wechatpay-routes.js";
import { orderChannelState, payOrder, scanOrder } from "./wechatpay-trades.js";

export { WECHATPAY_NOTIFY_RETRY_GAPS_MS } from "./wechatpay-notifications.js";
export { WECHATPAY_OPERATIONS } from "./wechatpay-routes.js";

/** Creates the WeChat Pay side of the simulator. */
export function createWechatPaySimulator(context: SimulatorContext, allKeys: DevChannelKeys): ChannelSimulator {
  const book = new WechatBook(context, allKeys.wechatpay);

  async function handle(request: SimulatorRequest): Promise<SimulatorResponse | typeof HOLD_OPEN> {
    let route: WechatRoute | undefined;
    let id = "";
    let body: Json = {};
    // Bad input is answered after the signature check, as WeChat checks the signature first.
    let badInput: WechatApiError | undefined;
    try {
      const matched = matchWechatRoute(request.method, request.path);
      if (matched) {
        ({ route, id } = matched);
        body = parseJsonBody(request.method, request.rawBody);
      }
    } catch (error) {
      if (!(error instanceof WechatApiError)) throw error;
      badInput = error;
    }
    if (!route && !badInput) {
      return respond(
        book,
        { status: 404, json: { code: "NOT_FOUND", message: `${request.method} ${request.mount}${request.path} 不存在` } },
        undefined,
      );
    }
    // A transfer batch's faults are scoped by its out_batch_no (our payout number).
    const bodyScope = body.out_trade_no ?? body.out_batch_no;
    const outTradeNo = route?.outTradeNo?.(book, id) ?? (typeof bodyScope === "string" ? bodyScope : undefined);

    const fault = route ? context.faults.takeApiFault(CHANNEL, route.operation, outTradeNo) : undefined;
    if (fault?.kind === "error") return respond(book, { status: fault.status, json: { code: "SYSTEM_ERROR", message: "系统错误" } }, outTradeNo);
    if (fault?.kind === "timeout" && !fault.apply) return HOLD_OPEN;

    let answer: Answer;
    try {
      authenticate(book, request);
      if (badInput) throw badInput;
      answer = await (route as WechatRoute).run({
        book,
        body,
        query: request.query,
        id,
        base: `${request.origin}${request.mount}`,
        headers: request.headers,
      });
    } catch (error) {
      if (!(error instanceof WechatApiError)) throw error;
      answer = { status: error.status, json: { code: error.code, message: error.message } };
    }
    if (fault?.kind === "timeout") return HOLD_OPEN;
    return respond(book, answer, outTradeNo);
  }

  return {
    channel: CHANNEL,
    handle,
    pay: (outTradeNo, outcome) => payOrder(book, outTradeNo, outcome),
    scan: (outTradeNo) => scanOrder(book, outTradeNo),
    channelState: orderChannelState,
  };
}
