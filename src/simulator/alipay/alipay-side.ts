/**
 * Alipay's side of the simulator: the open-platform gateway (`POST /alipay/gateway.do` on the
 * shared listener, `POST /gateway.do` at the root of its own) for precreate, query, close, refund,
 * refund query, bill URLs and transfers (payouts), the bill download, and `trade_status_sync` notifies, in Alipay's
 * formats and with its signatures. A gateway call is handled in order: parse, faults, checks and
 * signature, method, signed answer.
 *
 * Modules: `alipay-params` (request parsing and errors), `alipay-auth` (the common-parameter and
 * signature checks, answer signing), `alipay-routes` (the methods by name, which are the fault
 * operation names), `alipay-trades`, `alipay-refunds`, `alipay-payouts`, `alipay-bill`, `alipay-notifications` (the
 * notify sender and its re-send schedule), `alipay-book` (the state).
 *
 * Behaviour copied from Alipay on purpose: a precreated trade exists for query/close/refund only
 * once the shopper scans the QR code (`ACQ.TRADE_NOT_EXIST` before that, and a close then leaves
 * the QR code payable); closes and refunds send notifies to the trade's notify_url too.
 * Approximations: bills are served for today as well (Alipay: T+1 after 10:00), request
 * timestamps must be within 30 minutes of the simulator's clock.
 */
import { responseKeyFor } from "../../channels/alipay/alipay-signature.js";
import type { DevChannelKeys } from "../../channels/dev-keys.js";
import { type ChannelSimulator, HOLD_OPEN, type SimulatorContext, type SimulatorRequest, type SimulatorResponse } from "../channel-side.js";
import { checkGatewayRequest, signedGatewayResponse } from "./alipay-auth.js";
import { billDownload } from "./alipay-bill.js";
import { AlipayBook, CHANNEL } from "./alipay-book.js";
import { type Content, GatewayError, parseBizContent, parseGatewayParams } from "./alipay-params.js";
import { ALIPAY_METHODS } from "./alipay-routes.js";
import { payTrade, scanTrade, tradeChannelState } from "./alipay-trades.js";

export { ALIPAY_NOTIFY_RETRY_GAPS_MS } from "./alipay-notifications.js";

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const HTML = { "content-type": "text/html; charset=utf-8" };

/** Creates the Alipay side of the simulator. */
export function createAlipaySimulator(context: SimulatorContext, allKeys: DevChannelKeys): ChannelSimulator {
  const book = new AlipayBook(context, allKeys.alipay);

  async function gateway(request: SimulatorRequest): Promise<SimulatorResponse | typeof HOLD_OPEN> {
    const params = parseGatewayParams(request);
    const method = params.method ?? "";
    const handler = method ? ALIPAY_METHODS.get(method) : undefined;
    const responseKey = handler ? responseKeyFor(method) : "error_response";
    const { biz, bizError } = parseBizContent(params);
    // Trade-scoped faults follow the trade's out_trade_no, or a transfer's out_biz_no (our payout number).
    const scopeNo = biz.out_trade_no ?? biz.out_biz_no;
    const outTradeNo = typeof scopeNo === "string" ? scopeNo : undefined;

    const fault = context.faults.takeApiFault(CHANNEL, method, outTradeNo);
    if (fault?.kind === "error") {
      return { status: fault.status, headers: HTML, body: `<html><body><h1>${fault.status} Service Unavailable</h1></body></html>` };
    }
    if (fault?.kind === "timeout" && !fault.apply) return HOLD_OPEN;

    let content: Content;
    try {
      checkGatewayRequest(book, request.method, params, handler !== undefined);
      if (bizError) throw bizError;
      content = await (handler as NonNullable<typeof handler>)({ book, biz, params, request });
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      content = { code: error.code, msg: error.msg, sub_code: error.subCode, sub_msg: error.subMsg, ...error.extra };
    }
    if (fault?.kind === "timeout") return HOLD_OPEN;
    return signedGatewayResponse(book, responseKey, content, outTradeNo);
  }

  return {
    channel: CHANNEL,

    async handle(request) {
      if (request.path === "/gateway.do") return gateway(request);
      if (request.path === "/bill/download" && request.method === "GET") return billDownload(book, request);
      return { status: 404, headers: TEXT, body: `not found: the Alipay gateway is POST ${request.mount}/gateway.do\n` };
    },

    pay: (outTradeNo, outcome) => payTrade(book, outTradeNo, outcome),
    scan: (outTradeNo) => scanTrade(book, outTradeNo),
    channelState: (trade) => tradeChannelState(book, trade),
  };
}
