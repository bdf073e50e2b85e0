/**
 * Alipay payouts (settlement by transfer to an Alipay account), over the same gateway call pipeline
 * as the rest of the adapter:
 *
 * - send: `alipay.fund.trans.uni.transfer` (`product_code` TRANS_ACCOUNT_NO_PWD, `biz_scene`
 *   DIRECT_TRANSFER), idempotent on `out_biz_no` = our payout number. `status` SUCCESS → paid,
 *   DEALING → processing, FAIL → failed. A `40004` business failure (PAYEE_NOT_EXIST,
 *   PAYER_BALANCE_NOT_ENOUGH, ...) means Alipay created no transfer: failed, with the sub-code as
 *   detail. `SYSTEM_ERROR` means "outcome unknown, query then re-send the same request": unavailable.
 * - query: `alipay.fund.trans.common.query`. SUCCESS → paid; DEALING/WAIT_PAY/INIT → processing;
 *   FAIL, REFUND (bounced back) and CLOSED → failed with `fail_reason`; `ORDER_NOT_EXIST` → not_found.
 *
 * Only CNY, 0.10 to 100,000,000.00 yuan per transfer. Payees are `ALIPAY_USER_ID` (`2088` + 12
 * digits) or `ALIPAY_LOGON_ID` (an e-mail or a mainland mobile number, with the payee's real name).
 */
import { formatMinor } from "../../money/currency.js";
import type { ChannelPayoutRequest, ChannelPayoutStatus, PayeeAccount, PayoutOperations } from "../channel.js";
import type { ChannelCallName, ChannelCaller, ChannelCallOutcome, ChannelOperation } from "../channel-call.js";
import type { WireReader } from "../wire-fields.js";
import type { AlipayFailure } from "./alipay-wire.js";

/** Alipay's bounds for one transfer, in fen: 0.10 to 100,000,000.00 yuan. */
const ALIPAY_PAYOUT_MIN_AMOUNT_MINOR = 10n;
const ALIPAY_PAYOUT_MAX_AMOUNT_MINOR = 10_000_000_000n;
/** Alipay's field limits: `order_title` 128 characters, `remark` 200, payee `name` 64; longer titles and remarks are cut. */
const ALIPAY_ORDER_TITLE_MAX_CHARS = 128;
const ALIPAY_REMARK_MAX_CHARS = 200;
export const ALIPAY_PAYEE_NAME_MAX_CHARS = 64;
/** `out_biz_no`: at most 64 letters, digits or underscores. */
const OUT_BIZ_NO = /^[0-9A-Za-z_]{1,64}$/;
const ALIPAY_USER_ID = /^2088\d{12}$/;
const MAINLAND_MOBILE = /^1[3-9]\d{9}$/;
const EMAIL = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$/;
const MAX_EMAIL_CHARS = 100;
// Control characters have no place in a name Alipay compares with the account's real name.
const CONTROL_CHARACTERS = /\p{Cc}/u;

/** The wire methods, by the {@link PayoutOperations} method each serves. */
const ALIPAY_PAYOUT_CALLS = Object.freeze({
  transfer: { operation: "sendPayout", wireMethod: "alipay.fund.trans.uni.transfer" },
  query: { operation: "queryPayout", wireMethod: "alipay.fund.trans.common.query" },
} satisfies Record<string, ChannelCallName>);

/** The fixed product of a transfer to an Alipay account without the payer's password. */
const PRODUCT = { product_code: "TRANS_ACCOUNT_NO_PWD", biz_scene: "DIRECT_TRANSFER" } as const;

/** A sub-code that means "the outcome is not known; query, then re-send the very same request". */
const UNKNOWN_OUTCOME_SUB_CODE = "SYSTEM_ERROR";
/** The same `out_biz_no` with other parameters: nothing new was sent, but what the first one did is unknown. */
const INCONSISTENT_REPEAT_SUB_CODE = "PAYMENT_INFO_INCONSISTENCY";

/** What the payouts need from the Alipay adapter: its pipeline and its signed gateway call. */
export interface AlipayPayoutGateway {
  readonly gateway: ChannelCaller<AlipayFailure>;
  callGateway<T>(
    operation: ChannelOperation,
    wireMethod: string,
    biz: Record<string, unknown>,
    decode: (answer: WireReader) => T,
  ): Promise<ChannelCallOutcome<T, AlipayFailure>>;
}

/** Alipay's transfer `status` → our payout state. Undefined for a status we do not know. */
export function mapAlipayTransferStatus(status: string): ChannelPayoutStatus["state"] | undefined {
  switch (status) {
    case "SUCCESS":
      return "paid";
    case "DEALING":
    case "WAIT_PAY":
    case "INIT":
      return "processing";
    case "FAIL":
    case "REFUND": // paid, then bounced back by the payee's side: the money is ours again
    case "CLOSED":
      return "failed";
    default:
      return undefined;
  }
}

/** A transfer as `alipay.fund.trans.uni.transfer` and `alipay.fund.trans.common.query` report it. */
export interface AlipayTransferAnswer {
  status: string;
  state: ChannelPayoutStatus["state"];
  orderId?: string;
  /** Query only: the amount Alipay holds for the transfer. */
  transAmountMinor?: bigint;
  failReason?: string;
}

/** Decodes either answer (both carry `status`, `order_id`; the query adds `trans_amount` and `fail_reason`). */
export function readAlipayTransferAnswer(answer: WireReader): AlipayTransferAnswer {
  const { text: status, value: state } = answer.oneOf("status", mapAlipayTransferStatus);
  const result: AlipayTransferAnswer = { status, state };
  const orderId = answer.text("order_id");
  if (orderId) result.orderId = orderId;
  const transAmountMinor = answer.decimalAmount("trans_amount", "CNY");
  if (transAmountMinor !== undefined) result.transAmountMinor = transAmountMinor;
  const failReason = answer.text("fail_reason");
  if (failReason) result.failReason = failReason;
  return result;
}

/** The first `max` characters (code points, so a cut never splits a character). */
function cut(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, max).join("");
}

/** Checks an Alipay payee's shape; returns what is wrong, or undefined. */
export function validateAlipayPayee(payee: PayeeAccount): string | undefined {
  if (payee.name !== undefined) {
    const length = Array.from(payee.name).length;
    if (length === 0 || length > ALIPAY_PAYEE_NAME_MAX_CHARS || payee.name.trim() === "") {
      return `name must be 1 to ${ALIPAY_PAYEE_NAME_MAX_CHARS} characters`;
    }
    if (CONTROL_CHARACTERS.test(payee.name)) return "name must not contain control characters";
  }
  switch (payee.type) {
    case "ALIPAY_USER_ID":
      return ALIPAY_USER_ID.test(payee.account) ? undefined : "an ALIPAY_USER_ID is 2088 followed by 12 digits";
    case "ALIPAY_LOGON_ID": {
      const isEmail = payee.account.length <= MAX_EMAIL_CHARS && EMAIL.test(payee.account);
      if (!isEmail && !MAINLAND_MOBILE.test(payee.account)) {
        return "an ALIPAY_LOGON_ID is an e-mail address or a mainland mobile number (11 digits starting with 1)";
      }
      return payee.name === undefined ? "name (the payee's real name) is required for an ALIPAY_LOGON_ID" : undefined;
    }
    default:
      return `Alipay pays ALIPAY_USER_ID or ALIPAY_LOGON_ID accounts, not ${payee.type}`;
  }
}

/** Creates the Alipay {@link PayoutOperations} over the adapter's gateway. */
export function createAlipayPayouts({ gateway, callGateway }: AlipayPayoutGateway): PayoutOperations {
  function statusOf(answer: AlipayTransferAnswer, request: ChannelPayoutRequest, name: ChannelCallName): ChannelPayoutStatus {
    if (answer.transAmountMinor !== undefined && answer.transAmountMinor !== request.amountMinor) {
      // Never apply an outcome for another amount than ours: someone must look at this transfer.
      throw gateway.unexpected(
        name,
        `transfer ${request.payoutNo} is for ${formatMinor(answer.transAmountMinor, "CNY")} CNY at Alipay, not ${formatMinor(request.amountMinor, "CNY")}`,
      );
    }
    const status: ChannelPayoutStatus = { state: answer.state, detail: answer.failReason ? `${answer.status}: ${answer.failReason}` : answer.status };
    const channelPayoutNo = answer.orderId ?? request.channelPayoutNo ?? undefined;
    if (channelPayoutNo) status.channelPayoutNo = channelPayoutNo;
    return status;
  }

  function checkRequest(request: ChannelPayoutRequest, name: ChannelCallName): void {
    if (request.currency !== "CNY") {
      throw gateway.rejected(name, { code: "CURRENCY_NOT_SUPPORTED", message: `Alipay transfers CNY only, got ${request.currency}` });
    }
    if (!OUT_BIZ_NO.test(request.payoutNo)) {
      throw gateway.rejected(name, { code: "INVALID_PAYOUT_NO", message: "out_biz_no must be 1 to 64 letters, digits or underscores" });
    }
  }

  return {
    validatePayee: validateAlipayPayee,

    async sendPayout(request: ChannelPayoutRequest): Promise<ChannelPayoutStatus> {
      const name = ALIPAY_PAYOUT_CALLS.transfer;
      checkRequest(request, name);
      if (request.amountMinor < ALIPAY_PAYOUT_MIN_AMOUNT_MINOR || request.amountMinor > ALIPAY_PAYOUT_MAX_AMOUNT_MINOR) {
        throw gateway.rejected(name, {
          code: "AMOUNT_OUT_OF_RANGE",
          message: `Alipay transfers 0.10 to 100000000.00 CNY, got ${formatMinor(request.amountMinor, "CNY")}`,
        });
      }
      const payeeProblem = validateAlipayPayee(request.payee);
      if (payeeProblem) throw gateway.rejected(name, { code: "PAYEE_INVALID", message: payeeProblem });

      const payeeInfo: Record<string, string> = { identity: request.payee.account, identity_type: request.payee.type };
      if (request.payee.name !== undefined) payeeInfo.name = request.payee.name;
      const biz = {
        out_biz_no: request.payoutNo,
        trans_amount: formatMinor(request.amountMinor, "CNY"),
        ...PRODUCT,
        order_title: cut(request.remark, ALIPAY_ORDER_TITLE_MAX_CHARS),
        payee_info: payeeInfo,
        remark: cut(request.remark, ALIPAY_REMARK_MAX_CHARS),
      };
      const outcome = await callGateway(name.operation, name.wireMethod, biz, readAlipayTransferAnswer);
      if (outcome.ok) return statusOf(outcome.value, request, name);
      const { failure } = outcome;
      if (failure.subCode === UNKNOWN_OUTCOME_SUB_CODE) throw gateway.unavailable(name, failure.message);
      if (failure.gatewayCode === "40004" && failure.subCode !== INCONSISTENT_REPEAT_SUB_CODE) {
        // A business failure of this synchronous API: Alipay created no transfer, no money moved.
        return { state: "failed", detail: failure.message };
      }
      throw gateway.rejected(name, failure);
    },

    async queryPayout(request: ChannelPayoutRequest): Promise<ChannelPayoutStatus> {
      const name = ALIPAY_PAYOUT_CALLS.query;
      checkRequest(request, name);
      const outcome = await callGateway(name.operation, name.wireMethod, { out_biz_no: request.payoutNo, ...PRODUCT }, readAlipayTransferAnswer);
      if (outcome.ok) return statusOf(outcome.value, request, name);
      const { failure } = outcome;
      if (failure.subCode === "ORDER_NOT_EXIST") return { state: "not_found", detail: failure.message };
      if (failure.subCode === UNKNOWN_OUTCOME_SUB_CODE) throw gateway.unavailable(name, failure.message);
      throw gateway.rejected(name, failure);
    },
  };
}
