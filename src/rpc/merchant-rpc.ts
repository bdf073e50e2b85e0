/** MerchantService (admin RPCs, checked by the auth interceptor): decodes, calls the merchant domain, encodes. */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { UnitOfWork } from "../db/unit-of-work.js";
import type { MerchantService as MerchantDomain } from "../merchants/merchant-service.js";
import { Violations } from "../errors.js";
import { checkLookupId } from "../input-text.js";
import {
  CreateMerchantResponseSchema,
  GetMerchantResponseSchema,
  type MerchantService,
  RefundFeePolicy,
  RotateApiKeyResponseSchema,
  SetFeeRuleResponseSchema,
} from "../../gen/payments/v1/merchant_service_pb.js";
import { setFeeRule } from "../fees/fee-rules.js";
import { channelToProto, merchantToProto, optionalChannelFromProto, optionalRefundFeePolicyFromProto } from "./mappers.js";

/** The merchant id, or INVALID_ARGUMENT when empty or not an id at all. */
function requireId(merchantId: string): string {
  const v = new Violations();
  checkLookupId(v, "merchant_id", merchantId);
  v.throwIfAny();
  return merchantId;
}

/** The MerchantService handlers of this module; webhook secrets and deliveries live in webhook-rpc.ts. */
export type MerchantRpc = Omit<
  ServiceImpl<typeof MerchantService>,
  "rotateWebhookSecret" | "listMerchantWebhookDeliveries" | "redeliverMerchantWebhook"
>;

export function createMerchantRpc(uow: UnitOfWork, merchants: MerchantDomain): MerchantRpc {
  return {
    async createMerchant(req) {
      const created = await merchants.createMerchant(uow.session(), { name: req.name, notifyUrl: req.notifyUrl });
      return create(CreateMerchantResponseSchema, {
        merchant: merchantToProto(created.merchant),
        apiKey: created.apiKey,
        webhookSecret: created.webhookSecret,
      });
    },
    async getMerchant(req) {
      const merchant = await merchants.getMerchant(uow.session(), requireId(req.merchantId));
      return create(GetMerchantResponseSchema, { merchant: merchantToProto(merchant) });
    },
    async rotateApiKey(req) {
      const rotated = await merchants.rotateApiKey(uow.session(), requireId(req.merchantId));
      return create(RotateApiKeyResponseSchema, { merchant: merchantToProto(rotated.merchant), apiKey: rotated.apiKey });
    },
    async setFeeRule(req) {
      const session = uow.session();
      const v = new Violations();
      checkLookupId(v, "merchant_id", req.merchantId);
      const channel = optionalChannelFromProto(v, "channel", req.channel);
      const refundFeePolicy = optionalRefundFeePolicyFromProto(v, "refund_fee_policy", req.refundFeePolicy) ?? "RETAIN";
      v.throwIfAny();
      await merchants.getMerchant(session, req.merchantId);
      const rule = await setFeeRule(session, {
        merchantId: req.merchantId,
        channel,
        currency: req.currency,
        rateBps: req.rateBps,
        fixedFee: req.fixedFee,
        minFee: req.minFee,
        refundFeePolicy,
      });
      return create(SetFeeRuleResponseSchema, {
        feeRule: {
          merchantId: rule.merchantId,
          channel: channelToProto(rule.channel),
          currency: rule.currency,
          rateBps: rule.rateBps,
          fixedFee: rule.fixedFee,
          minFee: rule.minFee,
          refundFeePolicy: rule.refundFeePolicy === "PRORATE" ? RefundFeePolicy.PRORATE : RefundFeePolicy.RETAIN,
        },
      });
    },
  };
}
