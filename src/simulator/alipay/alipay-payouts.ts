/**
 * Alipay's transfers to Alipay accounts (`alipay.fund.trans.uni.transfer`) and their query
 * (`alipay.fund.trans.common.query`), kept in a payout book by `out_biz_no`.
 *
 * Behaviour copied from Alipay: a repeated `out_biz_no` with the same amount and payee answers the
 * original transfer again; with other parameters it is `PAYMENT_INFO_INCONSISTENCY`. A transfer
 * refused with a `40004` is never created (the query then says `ORDER_NOT_EXIST`, and the same
 * number may be sent again). Faults (scope: the channel, or the payout by `out_biz_no`):
 * `payoutFails` alone refuses the transfer with `PAYEE_NOT_EXIST`; `payoutDelayMs` answers
 * `DEALING` and turns the transfer `SUCCESS` after that many real milliseconds, or `FAIL` (with
 * `fail_reason`) when `payoutFails` is set too.
 * Approximations: any well-formed payee exists; `ALIPAY_LOGON_ID`s are not looked up.
 */
import { toAlipayTime } from "../../channels/alipay/alipay-time.js";
import { type AlipayBook, CHANNEL } from "./alipay-book.js";
import { amountField, business, type Content, digits, stringField, yuan } from "./alipay-params.js";

/** The book keeps at most this many transfers, forgetting the oldest. */
export const MAX_ALIPAY_PAYOUTS = 100_000;
const MIN_AMOUNT_MINOR = 10n;
const MAX_AMOUNT_MINOR = 10_000_000_000n;
const OUT_BIZ_NO = /^[0-9A-Za-z_]{1,64}$/;
const MAX_TITLE_CHARS = 128;
const MAX_REMARK_CHARS = 200;
const MAX_NAME_CHARS = 64;
const MAX_IDENTITY_CHARS = 100;
const FAIL_REASON = "收款账户状态异常 (simulated payoutFails)";

/** A transfer as Alipay keeps it. */
export interface SimAlipayTransfer {
  outBizNo: string;
  orderId: string;
  payFundOrderId: string;
  amountMinor: bigint;
  identity: string;
  identityType: string;
  name?: string;
  orderTitle: string;
  remark?: string;
  status: "DEALING" | "SUCCESS" | "FAIL";
  failReason?: string;
  createdAt: Date;
  finishedAt?: Date;
}

/** Transfers by `out_biz_no`, one book per simulated Alipay (found through its {@link AlipayBook}). */
const books = new WeakMap<AlipayBook, Map<string, SimAlipayTransfer>>();

/** The transfers of one simulated Alipay, oldest first. */
export function alipayPayouts(book: AlipayBook): Map<string, SimAlipayTransfer> {
  let payouts = books.get(book);
  if (!payouts) {
    payouts = new Map();
    books.set(book, payouts);
  }
  return payouts;
}

function keep(payouts: Map<string, SimAlipayTransfer>, transfer: SimAlipayTransfer): void {
  payouts.set(transfer.outBizNo, transfer);
  if (payouts.size > MAX_ALIPAY_PAYOUTS) payouts.delete(payouts.keys().next().value as string);
}

/** The fund APIs' "bad parameter" (no `ACQ.` prefix there). */
const invalid = (detail: string) => business("INVALID_PARAMETER", `参数有误: ${detail}`);

function boundedText(biz: Content, name: string, max: number, required: boolean): string | undefined {
  const value = stringField(biz, name);
  if (value === undefined) {
    if (required) throw invalid(`${name} 不能为空`);
    return undefined;
  }
  if (Array.from(value).length > max) throw invalid(`${name} 长度不能超过 ${max}`);
  return value;
}

function checkProduct(biz: Content): void {
  if (stringField(biz, "product_code") !== "TRANS_ACCOUNT_NO_PWD") throw invalid("product_code 须为 TRANS_ACCOUNT_NO_PWD");
  if (stringField(biz, "biz_scene") !== "DIRECT_TRANSFER") throw invalid("biz_scene 须为 DIRECT_TRANSFER");
}

function readPayee(biz: Content): { identity: string; identityType: string; name?: string } {
  const payee = biz.payee_info;
  if (typeof payee !== "object" || payee === null || Array.isArray(payee)) throw invalid("payee_info 不能为空");
  const info = payee as Content;
  const identity = boundedText(info, "identity", MAX_IDENTITY_CHARS, true) as string;
  const identityType = stringField(info, "identity_type");
  const name = boundedText(info, "name", MAX_NAME_CHARS, false);
  if (identityType === "ALIPAY_USER_ID") {
    if (!/^2088\d{12}$/.test(identity)) throw business("PAYEE_NOT_EXIST", "收款账号不存在");
  } else if (identityType === "ALIPAY_LOGON_ID") {
    if (!name) throw invalid("identity_type 为 ALIPAY_LOGON_ID 时 name 不能为空");
  } else {
    throw invalid("identity_type 须为 ALIPAY_USER_ID 或 ALIPAY_LOGON_ID");
  }
  return name === undefined ? { identity, identityType } : { identity, identityType, name };
}

function finish(transfer: SimAlipayTransfer, fails: boolean): void {
  if (transfer.status !== "DEALING") return;
  transfer.status = fails ? "FAIL" : "SUCCESS";
  if (fails) transfer.failReason = FAIL_REASON;
  transfer.finishedAt = new Date();
}

function transferAnswer(transfer: SimAlipayTransfer): Content {
  const content: Content = {
    code: "10000",
    msg: "Success",
    out_biz_no: transfer.outBizNo,
    order_id: transfer.orderId,
    pay_fund_order_id: transfer.payFundOrderId,
    status: transfer.status,
  };
  if (transfer.status === "SUCCESS") content.trans_date = toAlipayTime(transfer.finishedAt ?? transfer.createdAt);
  return content;
}

/** `alipay.fund.trans.uni.transfer`. */
export function transfer(book: AlipayBook, biz: Content): Content {
  const outBizNo = stringField(biz, "out_biz_no");
  if (!outBizNo) throw invalid("out_biz_no 不能为空");
  if (!OUT_BIZ_NO.test(outBizNo)) throw invalid("out_biz_no 只能由字母、数字、下划线组成，长度不超过64");
  checkProduct(biz);
  const amountMinor = amountField(biz, "trans_amount");
  if (amountMinor === undefined) throw invalid("trans_amount 不能为空");
  if (amountMinor < MIN_AMOUNT_MINOR) throw business("EXCEED_LIMIT_SM_MIN_AMOUNT", "单笔最低转账金额0.1元");
  if (amountMinor > MAX_AMOUNT_MINOR) throw business("EXCEED_LIMIT_SM_AMOUNT", "转账金额超过单笔限额");
  const payee = readPayee(biz);
  const orderTitle = boundedText(biz, "order_title", MAX_TITLE_CHARS, true) as string;
  const remark = boundedText(biz, "remark", MAX_REMARK_CHARS, false);

  const payouts = alipayPayouts(book);
  const previous = payouts.get(outBizNo);
  if (previous) {
    const same =
      previous.amountMinor === amountMinor &&
      previous.identity === payee.identity &&
      previous.identityType === payee.identityType &&
      previous.name === payee.name;
    if (!same) throw business("PAYMENT_INFO_INCONSISTENCY", "两次请求商户单号一样，但是参数不一致");
    return transferAnswer(previous);
  }

  const faults = book.context.faults.resolve(CHANNEL, outBizNo);
  if (faults.payoutFails && faults.payoutDelayMs === undefined) throw business("PAYEE_NOT_EXIST", "收款账号不存在");
  const now = new Date();
  const day = toAlipayTime(now).slice(0, 10).replaceAll("-", "");
  const record: SimAlipayTransfer = {
    outBizNo,
    orderId: `${day}110070000${digits(15)}`,
    payFundOrderId: `${day}110070001${digits(15)}`,
    amountMinor,
    ...payee,
    orderTitle,
    status: "DEALING",
    createdAt: now,
  };
  if (remark !== undefined) record.remark = remark;
  keep(payouts, record);
  if (faults.payoutDelayMs !== undefined) {
    const fails = faults.payoutFails === true;
    book.context.timers.schedule(faults.payoutDelayMs, () => finish(record, fails));
  } else {
    finish(record, false);
  }
  return transferAnswer(record);
}

/** `alipay.fund.trans.common.query`, by `out_biz_no` or `order_id`. */
export function queryTransfer(book: AlipayBook, biz: Content): Content {
  const outBizNo = stringField(biz, "out_biz_no");
  const orderId = stringField(biz, "order_id");
  if (!outBizNo && !orderId) throw invalid("out_biz_no 与 order_id 不能同时为空");
  checkProduct(biz);
  const payouts = alipayPayouts(book);
  const found = outBizNo ? payouts.get(outBizNo) : [...payouts.values()].find((candidate) => candidate.orderId === orderId);
  if (!found || (orderId && found.orderId !== orderId)) throw business("ORDER_NOT_EXIST", "转账订单不存在");
  const content: Content = {
    code: "10000",
    msg: "Success",
    order_id: found.orderId,
    pay_fund_order_id: found.payFundOrderId,
    out_biz_no: found.outBizNo,
    trans_amount: yuan(found.amountMinor),
    status: found.status,
    order_fee: "0.00",
  };
  if (found.status === "SUCCESS") content.pay_date = toAlipayTime(found.finishedAt ?? found.createdAt);
  if (found.status === "FAIL") {
    content.fail_reason = found.failReason;
    content.error_code = "PAYEE_ACCOUNT_STATUS_ERROR";
  }
  return content;
}
