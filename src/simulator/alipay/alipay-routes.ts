/**
 * The Alipay side's route table. Alipay has one gateway URL (`/gateway.do`) with a `method`
 * parameter, so the table is keyed by method name, which is also the operation name of
 * `apiError`/`apiTimeout` faults; the bill download is the one other path.
 */
import type { SimulatorRequest } from "../channel-side.js";
import { billDownloadUrl } from "./alipay-bill.js";
import type { AlipayBook } from "./alipay-book.js";
import type { Content } from "./alipay-params.js";
import { queryTransfer, transfer } from "./alipay-payouts.js";
import { queryRefund, refundTrade } from "./alipay-refunds.js";
import { closeTrade, precreate, queryTrade } from "./alipay-trades.js";

/** What a gateway method gets: the book, the parsed `biz_content`, the common parameters, the request. */
export interface AlipayCall {
  book: AlipayBook;
  biz: Content;
  params: Record<string, string>;
  request: SimulatorRequest;
}

/** One gateway method's handler; its answer is signed under `<method>_response`. */
export type AlipayMethod = (call: AlipayCall) => Content | Promise<Content>;

/** Every simulated gateway method, by name (a Map, so that no inherited name such as `toString` is a method). */
export const ALIPAY_METHODS: ReadonlyMap<string, AlipayMethod> = new Map<string, AlipayMethod>([
  ["alipay.trade.precreate", ({ book, biz, params }) => precreate(book, biz, params)],
  ["alipay.trade.query", ({ book, biz }) => queryTrade(book, biz)],
  ["alipay.trade.close", ({ book, biz }) => closeTrade(book, biz)],
  ["alipay.trade.refund", ({ book, biz }) => refundTrade(book, biz)],
  ["alipay.trade.fastpay.refund.query", ({ book, biz }) => queryRefund(book, biz)],
  ["alipay.fund.trans.uni.transfer", ({ book, biz }) => transfer(book, biz)],
  ["alipay.fund.trans.common.query", ({ book, biz }) => queryTransfer(book, biz)],
  ["alipay.data.dataservice.bill.downloadurl.query", ({ book, biz, request }) => billDownloadUrl(book, biz, request)],
]);
