/**
 * SetSettlementAccount (admin): decodes, calls the payout domain, encodes (the account never comes
 * back, only its hint). Also the Payout message mapping the settlement-order handlers share.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ChannelName } from "../channels/channel.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { Violations } from "../errors.js";
import type { PayeeAccountType as DomainPayeeAccountType } from "../payouts/payee.js";
import type { PayoutService, PayoutView } from "../payouts/payout-service.js";
import type { PayoutStatus as DomainPayoutStatus } from "../payouts/payout-status.js";
import {
  PayeeAccountType,
  type Payout,
  PayoutSchema,
  PayoutStatus,
  SetSettlementAccountResponseSchema,
} from "../../gen/payments/v1/settlement_service_pb.js";
import { channelToProto, optionalChannelFromProto } from "./mappers.js";
import type { SettlementRpcParts } from "./settlement-rpc.js";

const ACCOUNT_TYPE_FROM_PROTO: ReadonlyMap<PayeeAccountType, DomainPayeeAccountType> = new Map([
  [PayeeAccountType.ALIPAY_USER_ID, "ALIPAY_USER_ID"],
  [PayeeAccountType.ALIPAY_LOGON_ID, "ALIPAY_LOGON_ID"],
  [PayeeAccountType.WECHAT_OPENID, "WECHAT_OPENID"],
  [PayeeAccountType.BANK_ACCOUNT, "BANK_ACCOUNT"],
]);

const PAYOUT_STATUS_TO_PROTO: Readonly<Record<DomainPayoutStatus, PayoutStatus>> = {
  PENDING: PayoutStatus.PENDING,
  PROCESSING: PayoutStatus.PROCESSING,
  PAID: PayoutStatus.PAID,
  FAILED: PayoutStatus.FAILED,
};

/** A payout as the API shows it (Settlement.payout). */
export function payoutToProto(payout: PayoutView): Payout {
  return create(PayoutSchema, {
    id: payout.id,
    payoutNo: payout.payoutNo,
    channel: channelToProto(payout.channel),
    amount: payout.amount,
    currency: payout.currency,
    status: PAYOUT_STATUS_TO_PROTO[payout.status],
    channelPayoutNo: payout.channelPayoutNo ?? "",
    failureReason: payout.failureReason ?? "",
    createdAt: timestampFromDate(payout.createdAt),
    finishedAt: payout.finishedAt ? timestampFromDate(payout.finishedAt) : undefined,
  });
}

/** The required enums of the request; the domain checks the rest (ids, strings, the channel's rules). */
function requiredEnums(v: Violations, channel: ChannelName | undefined, accountType: PayeeAccountType, channelValue: number) {
  if (channelValue === 0) v.add("channel", "REQUIRED", "is required");
  let type: DomainPayeeAccountType | undefined;
  if (accountType === PayeeAccountType.UNSPECIFIED) v.add("account_type", "REQUIRED", "is required");
  else {
    type = ACCOUNT_TYPE_FROM_PROTO.get(accountType);
    if (type === undefined) v.add("account_type", "UNKNOWN_ENUM_VALUE", `${accountType} is not a PayeeAccountType this server knows`);
  }
  return { channel, type };
}

export function createPayoutRpc(uow: UnitOfWork, payouts: PayoutService): SettlementRpcParts["payouts"] {
  return {
    async setSettlementAccount(req) {
      const v = new Violations();
      const decoded = requiredEnums(v, optionalChannelFromProto(v, "channel", req.channel), req.accountType, req.channel);
      v.throwIfAny();
      const set = await payouts.setSettlementAccount(uow.session(), {
        merchantId: req.merchantId,
        channel: decoded.channel!,
        accountType: decoded.type!,
        account: req.account,
        name: req.name,
      });
      return create(SetSettlementAccountResponseSchema, {
        merchantId: set.merchantId,
        channel: channelToProto(set.channel),
        accountHint: set.accountHint,
      });
    },
  };
}
