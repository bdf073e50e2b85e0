/**
 * WeChat Pay's merchant transfers to balance (商家转账到零钱): `POST /v3/transfer/batches`, the
 * detail query by out numbers and the batch query, kept in a payout book by `out_batch_no`.
 *
 * Behaviour copied from WeChat: amounts are integer fen from 10 (0.10 yuan); `user_name` is
 * RSA-OAEP (SHA-1) ciphertext under the WeChat Pay public key, named by the request's
 * `Wechatpay-Serial`, and required from 2,000 yuan; a batch is accepted (`ACCEPTED`) and its
 * details move from `PROCESSING` to `SUCCESS` or `FAIL` on their own. A repeated `out_batch_no`
 * with the same transfers answers the original batch; with other ones `INVALID_REQUEST`. Faults
 * (scope: the channel, or the payout by `out_batch_no`): `payoutFails` fails every detail with
 * `ACCOUNT_FROZEN`; `payoutDelayMs` keeps the details `PROCESSING` that many real milliseconds
 * (without it they finish right after the answer).
 * Approximations: the details exist as soon as the batch does; any well-formed openid exists.
 */
import { decryptWechatSensitiveField } from "../../channels/wechatpay/wechatpay-payouts.js";
import { toWechatTime } from "../../channels/wechatpay/wechatpay-time.js";
import { type Answer, CHANNEL, type WechatBook } from "./wechatpay-book.js";
import { invalidRequest, isObject, type Json, paramError, randomDigits, requiredString, stringField, WechatApiError } from "./wechatpay-params.js";

/** The book keeps at most this many batches, forgetting the oldest. */
export const MAX_WECHATPAY_PAYOUT_BATCHES = 100_000;
/** At most this many details in one batch, as WeChat allows. */
const MAX_TRANSFER_DETAILS = 1_000;
const OUT_NO = /^[0-9A-Za-z]{5,32}$/;
const OPENID = /^[A-Za-z0-9_-]{16,64}$/;
const MAX_TEXT_CHARS = 32;
const MIN_AMOUNT_MINOR = 10n;
const NAME_REQUIRED_FROM_MINOR = 200_000n;
const FAIL_REASON = "ACCOUNT_FROZEN";
const DETAIL_SEPARATOR = "/details/out-detail-no/";

/** One transfer of a batch. */
export interface SimTransferDetail {
  outDetailNo: string;
  detailId: string;
  amountMinor: bigint;
  remark: string;
  openid: string;
  /** The decrypted name, when one was sent. */
  userName?: string;
  status: "PROCESSING" | "SUCCESS" | "FAIL";
  failReason?: string;
  initiatedAt: Date;
  updatedAt: Date;
}

/** A transfer batch as WeChat keeps it. */
export interface SimTransferBatch {
  outBatchNo: string;
  batchId: string;
  appid: string;
  batchName: string;
  batchRemark: string;
  totalAmountMinor: bigint;
  details: SimTransferDetail[];
  createdAt: Date;
  updatedAt: Date;
}

interface PayoutBook {
  batches: Map<string, SimTransferBatch>;
}

/** Batches by `out_batch_no`, one book per simulated WeChat Pay (found through its {@link WechatBook}). */
const books = new WeakMap<WechatBook, PayoutBook>();

function payoutBook(book: WechatBook): PayoutBook {
  let payouts = books.get(book);
  if (!payouts) {
    payouts = { batches: new Map() };
    books.set(book, payouts);
  }
  return payouts;
}

/** The batches of one simulated WeChat Pay, oldest first. */
export function wechatPayoutBatches(book: WechatBook): ReadonlyMap<string, SimTransferBatch> {
  return payoutBook(book).batches;
}

function boundedText(body: Json, name: string): string {
  const value = requiredString(body, name);
  if (Array.from(value).length > MAX_TEXT_CHARS) throw paramError(`${name} 长度不能超过 ${MAX_TEXT_CHARS} 个字符`);
  return value;
}

function fen(body: Json, name: string): bigint {
  const value = body[name];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) throw paramError(`${name} 必须是大于 0 的整数（单位：分）`);
  return BigInt(value);
}

function outNo(body: Json, name: string): string {
  const value = requiredString(body, name);
  if (!OUT_NO.test(value)) throw paramError(`${name} 须为 5-32 位数字或大小写字母`);
  return value;
}

function readDetail(book: WechatBook, item: unknown, index: number, serial: string | undefined, publicKeyId: string, now: Date) {
  if (!isObject(item)) throw paramError(`transfer_detail_list[${index}] 须为 JSON 对象`);
  const amountMinor = fen(item, "transfer_amount");
  if (amountMinor < MIN_AMOUNT_MINOR) throw paramError("转账金额不能低于 0.1 元");
  const openid = requiredString(item, "openid");
  if (!OPENID.test(openid)) throw paramError("openid 格式不正确");
  const detail: SimTransferDetail = {
    outDetailNo: outNo(item, "out_detail_no"),
    detailId: "",
    amountMinor,
    remark: boundedText(item, "transfer_remark"),
    openid,
    status: "PROCESSING",
    initiatedAt: now,
    updatedAt: now,
  };
  const cipherName = stringField(item, "user_name");
  if (cipherName !== undefined) {
    if (serial !== publicKeyId) throw paramError("加密敏感信息时请求头 Wechatpay-Serial 须为微信支付公钥ID");
    try {
      detail.userName = decryptWechatSensitiveField(cipherName, book.platformPrivateKey);
    } catch {
      throw paramError("user_name 解密失败，请使用微信支付公钥 RSA-OAEP 加密");
    }
  } else if (amountMinor >= NAME_REQUIRED_FROM_MINOR) {
    throw paramError("转账金额 >= 2000 元时，收款用户姓名 user_name 必填");
  }
  return detail;
}

/** Two requests are the same batch when they move the same money to the same people. */
function sameTransfers(a: SimTransferBatch, b: SimTransferBatch): boolean {
  return (
    a.totalAmountMinor === b.totalAmountMinor &&
    a.details.length === b.details.length &&
    a.details.every((detail, i) => {
      const other = b.details[i] as SimTransferDetail;
      return (
        detail.outDetailNo === other.outDetailNo &&
        detail.amountMinor === other.amountMinor &&
        detail.openid === other.openid &&
        detail.userName === other.userName
      );
    })
  );
}

function batchStatus(batch: SimTransferBatch): string {
  return batch.details.every((detail) => detail.status !== "PROCESSING") ? "FINISHED" : "ACCEPTED";
}

function finish(batch: SimTransferBatch, fails: boolean): void {
  const now = new Date();
  for (const detail of batch.details) {
    if (detail.status !== "PROCESSING") continue;
    detail.status = fails ? "FAIL" : "SUCCESS";
    if (fails) detail.failReason = FAIL_REASON;
    detail.updatedAt = now;
  }
  batch.updatedAt = now;
}

function createdAnswer(batch: SimTransferBatch): Answer {
  return {
    status: 200,
    json: { out_batch_no: batch.outBatchNo, batch_id: batch.batchId, create_time: toWechatTime(batch.createdAt), batch_status: batchStatus(batch) },
  };
}

/** `POST /v3/transfer/batches`. */
export function createTransferBatch(book: WechatBook, body: Json, serial: string | undefined): Answer {
  const payouts = payoutBook(book);
  const appid = requiredString(body, "appid");
  if (appid !== book.keys.appId) throw invalidRequest("appid 与商户号不匹配");
  const outBatchNo = outNo(body, "out_batch_no");
  const batchName = boundedText(body, "batch_name");
  const batchRemark = boundedText(body, "batch_remark");
  const totalAmountMinor = fen(body, "total_amount");
  const totalNum = fen(body, "total_num");
  const list = body.transfer_detail_list;
  if (!Array.isArray(list) || list.length === 0) throw paramError("缺少参数 transfer_detail_list");
  if (list.length > MAX_TRANSFER_DETAILS) throw paramError(`transfer_detail_list 最多 ${MAX_TRANSFER_DETAILS} 笔`);
  if (totalNum !== BigInt(list.length)) throw paramError("total_num 与 transfer_detail_list 的笔数不一致");
  const now = new Date();
  const details = list.map((item, index) => readDetail(book, item, index, serial, book.keys.publicKeyId, now));
  if (new Set(details.map((detail) => detail.outDetailNo)).size !== details.length) throw paramError("out_detail_no 在批次内重复");
  if (details.reduce((sum, detail) => sum + detail.amountMinor, 0n) !== totalAmountMinor) {
    throw paramError("total_amount 与明细金额之和不一致");
  }
  const candidate: SimTransferBatch = {
    outBatchNo,
    batchId: "",
    appid,
    batchName,
    batchRemark,
    totalAmountMinor,
    details,
    createdAt: now,
    updatedAt: now,
  };

  const previous = payouts.batches.get(outBatchNo);
  if (previous) {
    if (!sameTransfers(previous, candidate)) throw invalidRequest("商家批次单号已存在，但请求参数与原批次不一致");
    return createdAnswer(previous);
  }
  const faults = book.context.faults.resolve(CHANNEL, outBatchNo);
  const stamp = toWechatTime(now).slice(0, 10).replaceAll("-", "");
  candidate.batchId = `131000${randomDigits(6)}${stamp}${randomDigits(20)}`;
  for (const detail of details) detail.detailId = `130000${randomDigits(6)}${stamp}${randomDigits(20)}`;
  payouts.batches.set(outBatchNo, candidate);
  if (payouts.batches.size > MAX_WECHATPAY_PAYOUT_BATCHES) payouts.batches.delete(payouts.batches.keys().next().value as string);

  const fails = faults.payoutFails === true;
  const answer = createdAnswer(candidate);
  // Asynchronous like WeChat: without a delay the details finish right after this answer.
  book.context.timers.schedule(faults.payoutDelayMs ?? 0, () => finish(candidate, fails));
  return answer;
}

function detailView(book: WechatBook, batch: SimTransferBatch, detail: SimTransferDetail): Json {
  const view: Json = {
    mchid: book.keys.mchId,
    out_batch_no: batch.outBatchNo,
    batch_id: batch.batchId,
    appid: batch.appid,
    out_detail_no: detail.outDetailNo,
    detail_id: detail.detailId,
    detail_status: detail.status,
    transfer_amount: Number(detail.amountMinor),
    transfer_remark: detail.remark,
    openid: detail.openid,
    initiate_time: toWechatTime(detail.initiatedAt),
    update_time: toWechatTime(detail.updatedAt),
  };
  if (detail.failReason) view.fail_reason = detail.failReason;
  return view;
}

const notFound = () => new WechatApiError(404, "NOT_FOUND", "记录不存在");

/** The route id of the detail query: `{out_batch_no}/details/out-detail-no/{out_detail_no}`, decoded. */
export function queryTransferDetail(book: WechatBook, id: string): Answer {
  const at = id.indexOf(DETAIL_SEPARATOR);
  const outBatchNo = id.slice(0, at);
  const outDetailNo = id.slice(at + DETAIL_SEPARATOR.length);
  if (at < 0 || !OUT_NO.test(outBatchNo) || !OUT_NO.test(outDetailNo)) throw paramError("out_batch_no 与 out_detail_no 须为 5-32 位数字或大小写字母");
  const batch = payoutBook(book).batches.get(outBatchNo);
  const detail = batch?.details.find((candidate) => candidate.outDetailNo === outDetailNo);
  if (!batch || !detail) throw notFound();
  return { status: 200, json: detailView(book, batch, detail) };
}

/** The out_batch_no a detail-query route id is about (for payout-scoped faults). */
export function outBatchNoOfDetailId(id: string): string {
  const at = id.indexOf(DETAIL_SEPARATOR);
  return at < 0 ? id : id.slice(0, at);
}

/** `GET /v3/transfer/batches/out-batch-no/{out_batch_no}` (`need_query_detail`, `detail_status`, `offset`, `limit`). */
export function queryTransferBatch(book: WechatBook, outBatchNo: string, query: URLSearchParams): Answer {
  if (!OUT_NO.test(outBatchNo)) throw paramError("out_batch_no 须为 5-32 位数字或大小写字母");
  const needDetail = query.get("need_query_detail");
  if (needDetail !== "true" && needDetail !== "false") throw paramError("need_query_detail 须为 true 或 false");
  const offset = Number(query.get("offset") ?? "0");
  const limit = Number(query.get("limit") ?? "20");
  if (!Number.isSafeInteger(offset) || offset < 0) throw paramError("offset 须为非负整数");
  if (!Number.isSafeInteger(limit) || limit < 20 || limit > 100) throw paramError("limit 须在 20 到 100 之间");
  const detailStatus = query.get("detail_status") ?? "ALL";
  if (!["ALL", "SUCCESS", "FAIL"].includes(detailStatus)) throw paramError("detail_status 须为 ALL、SUCCESS 或 FAIL");
  const batch = payoutBook(book).batches.get(outBatchNo);
  if (!batch) throw notFound();
  const successes = batch.details.filter((detail) => detail.status === "SUCCESS");
  const failures = batch.details.filter((detail) => detail.status === "FAIL");
  const sum = (details: SimTransferDetail[]) => Number(details.reduce((total, detail) => total + detail.amountMinor, 0n));
  const json: Json = {
    offset,
    limit,
    transfer_batch: {
      mchid: book.keys.mchId,
      out_batch_no: batch.outBatchNo,
      batch_id: batch.batchId,
      appid: batch.appid,
      batch_status: batchStatus(batch),
      batch_type: "API",
      batch_name: batch.batchName,
      batch_remark: batch.batchRemark,
      total_amount: Number(batch.totalAmountMinor),
      total_num: batch.details.length,
      create_time: toWechatTime(batch.createdAt),
      update_time: toWechatTime(batch.updatedAt),
      success_amount: sum(successes),
      success_num: successes.length,
      fail_amount: sum(failures),
      fail_num: failures.length,
    },
  };
  // WeChat lists details only once the batch is FINISHED.
  if (needDetail === "true" && batchStatus(batch) === "FINISHED") {
    const listed = batch.details.filter((detail) => detailStatus === "ALL" || detail.status === detailStatus);
    json.transfer_detail_list = listed
      .slice(offset, offset + limit)
      .map((detail) => ({ detail_id: detail.detailId, out_detail_no: detail.outDetailNo, detail_status: detail.status }));
  }
  return { status: 200, json };
}
