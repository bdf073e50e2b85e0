/**
 * The WeChat Pay side's route table: API v3 paths, each with its operation name (the `method` of
 * `apiError`/`apiTimeout` faults, as WeChat's reference lists the API), the trade it is about (for
 * trade-scoped faults) and its handler. Paths match after the mount prefix (`/wechatpay` on the
 * shared listener, nothing on WeChat's own listener).
 */
import { billDownload, tradeBill } from "./wechatpay-bill.js";
import type { Answer, WechatBook } from "./wechatpay-book.js";
import { decodeSegment, type Json } from "./wechatpay-params.js";
import { createTransferBatch, outBatchNoOfDetailId, queryTransferBatch, queryTransferDetail } from "./wechatpay-payouts.js";
import { createRefund, queryRefund } from "./wechatpay-refunds.js";
import { closeOrder, createNative, queryOrder } from "./wechatpay-trades.js";

/** Operation names for the `method` of `apiError`/`apiTimeout` faults: the API as WeChat's reference lists it. */
export const WECHATPAY_OPERATIONS = Object.freeze({
  native: "POST /v3/pay/transactions/native",
  query: "GET /v3/pay/transactions/out-trade-no/{out_trade_no}",
  close: "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close",
  refund: "POST /v3/refund/domestic/refunds",
  refundQuery: "GET /v3/refund/domestic/refunds/{out_refund_no}",
  tradeBill: "GET /v3/bill/tradebill",
  billDownload: "GET /v3/billdownload/file",
  transferBatch: "POST /v3/transfer/batches",
  transferBatchQuery: "GET /v3/transfer/batches/out-batch-no/{out_batch_no}",
  transferDetailQuery: "GET /v3/transfer/batches/out-batch-no/{out_batch_no}/details/out-detail-no/{out_detail_no}",
});

/** What a handler gets: the book, the JSON body (POST; `{}` otherwise), the query, the path's `{id}`, the channel's base URL. */
export interface WechatCall {
  book: WechatBook;
  body: Json;
  query: URLSearchParams;
  id: string;
  /** `${origin}${mount}`, for links the answer hands out. */
  base: string;
  /** The request's headers (lower-case names), for the few endpoints that read one (`Wechatpay-Serial`). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** One endpoint. */
export interface WechatRoute {
  method: "GET" | "POST";
  /** Matched against the whole path; one capture group at most, the object's id. */
  path: RegExp;
  operation: string;
  run(call: WechatCall): Answer | Promise<Answer>;
  /** The trade the call is about, for trade-scoped faults (else the body's `out_trade_no`). */
  outTradeNo?(book: WechatBook, id: string): string | undefined;
}

const O = WECHATPAY_OPERATIONS;
const ID = "([^/]+)";
const idIsTrade = (_book: WechatBook, id: string) => id;

/** Every endpoint. */
const WECHATPAY_ROUTES: readonly WechatRoute[] = [
  {
    method: "POST",
    path: /^\/v3\/pay\/transactions\/native$/,
    operation: O.native,
    run: ({ book, body }) => createNative(book, body),
  },
  {
    method: "GET",
    path: new RegExp(`^/v3/pay/transactions/out-trade-no/${ID}$`),
    operation: O.query,
    run: ({ book, id, query }) => queryOrder(book, id, query),
    outTradeNo: idIsTrade,
  },
  {
    method: "POST",
    path: new RegExp(`^/v3/pay/transactions/out-trade-no/${ID}/close$`),
    operation: O.close,
    run: ({ book, id, body }) => closeOrder(book, id, body),
    outTradeNo: idIsTrade,
  },
  {
    method: "POST",
    path: /^\/v3\/refund\/domestic\/refunds$/,
    operation: O.refund,
    run: ({ book, body }) => createRefund(book, body),
  },
  {
    method: "GET",
    path: new RegExp(`^/v3/refund/domestic/refunds/${ID}$`),
    operation: O.refundQuery,
    run: ({ book, id }) => queryRefund(book, id),
    outTradeNo: (book, id) => book.refunds.get(id)?.trade.outTradeNo,
  },
  {
    method: "GET",
    path: /^\/v3\/bill\/tradebill$/,
    operation: O.tradeBill,
    run: ({ book, query, base }) => tradeBill(book, query, base),
  },
  {
    method: "GET",
    path: /^\/v3\/billdownload\/file$/,
    operation: O.billDownload,
    run: ({ book, query }) => billDownload(book, query),
  },
  {
    method: "POST",
    path: /^\/v3\/transfer\/batches$/,
    operation: O.transferBatch,
    run: ({ book, body, headers }) => createTransferBatch(book, body, singleHeader(headers["wechatpay-serial"])),
  },
  {
    method: "GET",
    path: new RegExp(`^/v3/transfer/batches/out-batch-no/${ID}$`),
    operation: O.transferBatchQuery,
    run: ({ book, id, query }) => queryTransferBatch(book, id, query),
    outTradeNo: idIsTrade,
  },
  {
    method: "GET",
    // One capture for both numbers (the table's one-id rule); the handler splits them.
    path: /^\/v3\/transfer\/batches\/out-batch-no\/([^/]+\/details\/out-detail-no\/[^/]+)$/,
    operation: O.transferDetailQuery,
    run: ({ book, id }) => queryTransferDetail(book, id),
    outTradeNo: (_book, id) => outBatchNoOfDetailId(id),
  },
];

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The route for `method path` and its decoded `{id}` (empty when the path has none), or undefined.
 * Throws `PARAM_ERROR` when the id's percent-encoding is malformed.
 */
export function matchWechatRoute(method: string, path: string): { route: WechatRoute; id: string } | undefined {
  for (const route of WECHATPAY_ROUTES) {
    if (route.method !== method) continue;
    const match = route.path.exec(path);
    if (match) return { route, id: match[1] === undefined ? "" : decodeSegment(match[1]) };
  }
  return undefined;
}
