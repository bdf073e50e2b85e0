/**
 * WeChat Pay payouts: merchant transfers to a user's WeChat balance (商家转账到零钱), API v3, one
 * transfer per batch, over the adapter's signed call pipeline.
 *
 * - send: `POST /v3/transfer/batches` with our payout number as both `out_batch_no` and
 *   `out_detail_no`. WeChat transfers are asynchronous: an accepted batch is `processing` and the
 *   detail query tells the outcome. The payee's real name (`user_name`) travels encrypted with the
 *   WeChat Pay public key (RSA-OAEP, SHA-1, as WeChat specifies) and the request then names that
 *   key in `Wechatpay-Serial`; WeChat wants a name from 2,000 yuan up.
 * - query: `GET /v3/transfer/batches/out-batch-no/{no}/details/out-detail-no/{no}`: INIT, WAIT_PAY,
 *   PROCESSING → processing; SUCCESS → paid; FAIL (and REFUND, bounced) → failed with `fail_reason`.
 *   A 404 `NOT_FOUND` there is ambiguous (WeChat creates the details a little after the batch), so
 *   the batch query decides: no batch → not_found; a batch still being handled → processing; a
 *   closed batch → failed with its `close_reason`.
 *
 * Only CNY in whole fen, from 0.10 yuan; payees are `WECHAT_OPENID`s.
 */
import { constants, type KeyObject, privateDecrypt, publicEncrypt } from "node:crypto";
import type { ChannelPayoutRequest, ChannelPayoutStatus, PayeeAccount, PayoutOperations } from "../channel.js";
import type { ChannelBusinessFailure, ChannelCallName, ChannelCaller } from "../channel-call.js";
import { type WireObject, WireFieldError, type WireReader } from "../wire-fields.js";

/** WeChat's smallest transfer: 0.10 yuan. */
const WECHATPAY_PAYOUT_MIN_AMOUNT_MINOR = 10n;
/** From 2,000 yuan WeChat requires the payee's real name (`user_name`). */
const WECHATPAY_PAYOUT_NAME_REQUIRED_FROM_MINOR = 200_000n;
/** `batch_name`, `batch_remark` and `transfer_remark` hold at most 32 characters; longer remarks are cut. */
const WECHATPAY_TRANSFER_TEXT_MAX_CHARS = 32;
/** The payee's real name: at most 64 characters before encryption. */
export const WECHATPAY_PAYEE_NAME_MAX_CHARS = 64;
const OPENID = /^[A-Za-z0-9_-]{16,64}$/;
/** `out_batch_no` and `out_detail_no`: 5 to 32 letters or digits. */
const OUT_BATCH_NO = /^[0-9A-Za-z]{5,32}$/;
const CONTROL_CHARACTERS = /\p{Cc}/u;
const NOT_FOUND_CODES = new Set(["NOT_FOUND", "RESOURCE_NOT_EXISTS"]);
/** Refusals of a batch after which WeChat holds no transfer and no money moved: the payout failed. */
const REFUSED_NOTHING_MOVED_CODES = new Set(["NOT_ENOUGH"]);

/** The API calls, by the {@link PayoutOperations} method each serves (also the simulator's fault operation names). */
const WECHATPAY_PAYOUT_CALLS = Object.freeze({
  createBatch: { operation: "sendPayout", wireMethod: "POST /v3/transfer/batches" },
  queryDetail: {
    operation: "queryPayout",
    wireMethod: "GET /v3/transfer/batches/out-batch-no/{out_batch_no}/details/out-detail-no/{out_detail_no}",
  },
  queryBatch: { operation: "queryPayout", wireMethod: "GET /v3/transfer/batches/out-batch-no/{out_batch_no}" },
} satisfies Record<string, ChannelCallName>);

/** A signed request as the adapter builds it (`headers` may take more, e.g. `Wechatpay-Serial`). */
export interface WechatSignedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | undefined;
}

/** What the payouts need from the WeChat Pay adapter. */
export interface WechatPayoutApi {
  readonly api: ChannelCaller<ChannelBusinessFailure>;
  signedRequest(method: "GET" | "POST", url: URL, payload?: WireObject): WechatSignedRequest;
  apiUrl(pathWithQuery: string): URL;
  appId: string;
  /** The WeChat Pay public key, which encrypts `user_name`, and its id `PUB_KEY_ID_...`. */
  platformKey: KeyObject;
  publicKeyId: string;
}

/**
 * Encrypts a sensitive field (`user_name`) the way WeChat Pay API v3 wants it: RSA-OAEP with SHA-1
 * and MGF1-SHA-1 under the WeChat Pay public key, base64.
 */
export function encryptWechatSensitiveField(plaintext: string, platformKey: KeyObject): string {
  return publicEncrypt({ key: platformKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, Buffer.from(plaintext, "utf8")).toString(
    "base64",
  );
}

/** WeChat's side of {@link encryptWechatSensitiveField}: throws when it does not decrypt with `privateKey`. */
export function decryptWechatSensitiveField(ciphertext: string, privateKey: KeyObject): string {
  return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, Buffer.from(ciphertext, "base64")).toString(
    "utf8",
  );
}

/** WeChat's `detail_status` → our payout state. Undefined for a status we do not know. */
export function mapWechatDetailStatus(status: string): ChannelPayoutStatus["state"] | undefined {
  switch (status) {
    case "INIT":
    case "WAIT_PAY":
    case "PROCESSING":
      return "processing";
    case "SUCCESS":
      return "paid";
    case "FAIL":
    case "REFUND": // paid, then refused by the payee's side: the money came back
      return "failed";
    default:
      return undefined;
  }
}

/** A transfer detail from the detail query. */
export interface WechatTransferDetail {
  detailStatus: string;
  state: ChannelPayoutStatus["state"];
  batchId: string;
  transferAmountMinor: bigint;
  failReason?: string;
}

export function readWechatTransferDetail(answer: WireReader): WechatTransferDetail {
  const { text: detailStatus, value: state } = answer.oneOf("detail_status", mapWechatDetailStatus);
  // amount() reads a present field; requiredInteger() reports an absent one as missing.
  const transferAmountMinor = answer.amount("transfer_amount") ?? answer.requiredInteger("transfer_amount");
  const detail: WechatTransferDetail = { detailStatus, state, batchId: answer.requiredText("batch_id"), transferAmountMinor };
  const failReason = answer.text("fail_reason");
  if (failReason) detail.failReason = failReason;
  return detail;
}

/** The batch of `GET /v3/transfer/batches/out-batch-no/{out_batch_no}`. */
export interface WechatTransferBatch {
  batchStatus: string;
  batchId: string;
  closeReason?: string;
}

function readWechatTransferBatch(answer: WireReader): WechatTransferBatch {
  const batch = answer.object("transfer_batch");
  if (!batch) throw new WireFieldError(answer.pathOf("transfer_batch"), "is missing");
  const result: WechatTransferBatch = { batchStatus: batch.requiredText("batch_status"), batchId: batch.requiredText("batch_id") };
  const closeReason = batch.text("close_reason");
  if (closeReason) result.closeReason = closeReason;
  return result;
}

/** The answer of `POST /v3/transfer/batches`. */
function readWechatBatchCreated(answer: WireReader): { batchId: string; batchStatus?: string } {
  const created: { batchId: string; batchStatus?: string } = { batchId: answer.requiredText("batch_id") };
  const batchStatus = answer.text("batch_status");
  if (batchStatus) created.batchStatus = batchStatus;
  return created;
}

function cut(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, max).join("");
}

/** Checks a WeChat Pay payee's shape; returns what is wrong, or undefined. */
export function validateWechatPayee(payee: PayeeAccount): string | undefined {
  if (payee.type !== "WECHAT_OPENID") return `WeChat Pay pays WECHAT_OPENID accounts, not ${payee.type}`;
  if (!OPENID.test(payee.account)) return "an openid is 16 to 64 letters, digits, '_' or '-'";
  if (payee.name !== undefined) {
    const length = Array.from(payee.name).length;
    if (length === 0 || length > WECHATPAY_PAYEE_NAME_MAX_CHARS || payee.name.trim() === "") {
      return `name must be 1 to ${WECHATPAY_PAYEE_NAME_MAX_CHARS} characters`;
    }
    if (CONTROL_CHARACTERS.test(payee.name)) return "name must not contain control characters";
  }
  return undefined;
}

/** Creates the WeChat Pay {@link PayoutOperations} over the adapter's signed calls. */
export function createWechatPayPayouts(deps: WechatPayoutApi): PayoutOperations {
  const { api } = deps;
  const C = WECHATPAY_PAYOUT_CALLS;
  const batchPath = (payoutNo: string) => `/v3/transfer/batches/out-batch-no/${encodeURIComponent(payoutNo)}`;

  function checkRequest(request: ChannelPayoutRequest, name: ChannelCallName): void {
    if (request.currency !== "CNY") {
      throw api.rejected(name, { code: "CURRENCY_NOT_SUPPORTED", message: `WeChat Pay transfers CNY only, got ${request.currency}` });
    }
    if (!OUT_BATCH_NO.test(request.payoutNo)) {
      throw api.rejected(name, { code: "INVALID_PAYOUT_NO", message: "out_batch_no must be 5 to 32 letters or digits" });
    }
  }

  function withBatchId(status: ChannelPayoutStatus, batchId: string | undefined, request: ChannelPayoutRequest): ChannelPayoutStatus {
    const channelPayoutNo = batchId ?? request.channelPayoutNo ?? undefined;
    if (channelPayoutNo) status.channelPayoutNo = channelPayoutNo;
    return status;
  }

  /** After a detail 404: the batch says whether WeChat has the transfer at all. */
  async function queryBatch(request: ChannelPayoutRequest): Promise<ChannelPayoutStatus> {
    const name = C.queryBatch;
    const url = deps.apiUrl(`${batchPath(request.payoutNo)}?need_query_detail=false`);
    const outcome = await api.call({ ...name, request: deps.signedRequest("GET", url), decode: readWechatTransferBatch });
    if (!outcome.ok) {
      if (NOT_FOUND_CODES.has(outcome.failure.code)) return { state: "not_found", detail: outcome.failure.message };
      throw api.rejected(name, outcome.failure);
    }
    const batch = outcome.value;
    switch (batch.batchStatus) {
      case "WAIT_PAY":
      case "ACCEPTED":
      case "PROCESSING":
        return withBatchId({ state: "processing", detail: `batch ${batch.batchStatus}, detail not yet created` }, batch.batchId, request);
      case "CLOSED":
        return withBatchId({ state: "failed", detail: `batch CLOSED: ${batch.closeReason ?? "no close_reason"}` }, batch.batchId, request);
      default:
        throw api.unexpected(name, `batch ${batch.batchStatus} has no detail ${request.payoutNo}`);
    }
  }

  return {
    validatePayee: validateWechatPayee,

    async sendPayout(request: ChannelPayoutRequest): Promise<ChannelPayoutStatus> {
      const name = C.createBatch;
      checkRequest(request, name);
      const payeeProblem = validateWechatPayee(request.payee);
      if (payeeProblem) throw api.rejected(name, { code: "PAYEE_INVALID", message: payeeProblem });
      if (request.amountMinor < WECHATPAY_PAYOUT_MIN_AMOUNT_MINOR || request.amountMinor > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw api.rejected(name, { code: "AMOUNT_OUT_OF_RANGE", message: `WeChat Pay transfers from 0.10 CNY, got ${request.amountMinor} fen` });
      }
      if (request.payee.name === undefined && request.amountMinor >= WECHATPAY_PAYOUT_NAME_REQUIRED_FROM_MINOR) {
        throw api.rejected(name, { code: "PAYEE_NAME_REQUIRED", message: "WeChat Pay needs the payee's real name for 2000.00 CNY and more" });
      }
      const amount = Number(request.amountMinor);
      const text = cut(request.remark, WECHATPAY_TRANSFER_TEXT_MAX_CHARS);
      const detail: WireObject = {
        out_detail_no: request.payoutNo,
        transfer_amount: amount,
        transfer_remark: text,
        openid: request.payee.account,
      };
      if (request.payee.name !== undefined) detail.user_name = encryptWechatSensitiveField(request.payee.name, deps.platformKey);
      const batch: WireObject = {
        appid: deps.appId,
        out_batch_no: request.payoutNo,
        batch_name: text,
        batch_remark: text,
        total_amount: amount,
        total_num: 1,
        transfer_detail_list: [detail],
      };
      const signed = deps.signedRequest("POST", deps.apiUrl("/v3/transfer/batches"), batch);
      // The encrypted field names the key it was encrypted with.
      if (detail.user_name !== undefined) signed.headers["wechatpay-serial"] = deps.publicKeyId;
      const outcome = await api.call({ ...name, request: signed, decode: readWechatBatchCreated });
      if (!outcome.ok) {
        if (REFUSED_NOTHING_MOVED_CODES.has(outcome.failure.code)) return { state: "failed", detail: outcome.failure.message };
        throw api.rejected(name, outcome.failure);
      }
      const created = outcome.value;
      return withBatchId({ state: "processing", detail: created.batchStatus ?? "ACCEPTED" }, created.batchId, request);
    },

    async queryPayout(request: ChannelPayoutRequest): Promise<ChannelPayoutStatus> {
      const name = C.queryDetail;
      checkRequest(request, name);
      const url = deps.apiUrl(`${batchPath(request.payoutNo)}/details/out-detail-no/${encodeURIComponent(request.payoutNo)}`);
      const outcome = await api.call({ ...name, request: deps.signedRequest("GET", url), decode: readWechatTransferDetail });
      if (!outcome.ok) {
        if (NOT_FOUND_CODES.has(outcome.failure.code)) return queryBatch(request);
        throw api.rejected(name, outcome.failure);
      }
      const detail = outcome.value;
      if (detail.transferAmountMinor !== request.amountMinor) {
        // Never apply an outcome for another amount than ours: someone must look at this transfer.
        throw api.unexpected(name, `transfer ${request.payoutNo} is for ${detail.transferAmountMinor} fen at WeChat Pay, not ${request.amountMinor}`);
      }
      const text = detail.failReason ? `${detail.detailStatus}: ${detail.failReason}` : detail.detailStatus;
      return withBatchId({ state: detail.state, detail: text }, detail.batchId, request);
    },
  };
}
