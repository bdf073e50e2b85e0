/**
 * Webhook deliveries and secrets: ListWebhookDeliveries and RedeliverWebhook (PaymentService, the
 * calling merchant's), RotateWebhookSecret, ListMerchantWebhookDeliveries and
 * RedeliverMerchantWebhook (MerchantService, admin). PLACEHOLDER: unimplemented so far.
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { WebhooksConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import type { SecretBox } from "../merchants/credentials.js";
import type { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import type { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";

export interface WebhookRpc {
  merchant: Pick<ServiceImpl<typeof PaymentService>, "listWebhookDeliveries" | "redeliverWebhook">;
  admin: Pick<ServiceImpl<typeof MerchantService>, "rotateWebhookSecret" | "listMerchantWebhookDeliveries" | "redeliverMerchantWebhook">;
}

export interface WebhookRpcDeps {
  uow: UnitOfWork;
  secrets: SecretBox;
  config: WebhooksConfig;
}

const unimplemented = async (): Promise<never> => {
  throw new ConnectError("not implemented yet", Code.Unimplemented);
};

export function createWebhookRpc(_deps: WebhookRpcDeps): WebhookRpc {
  return {
    merchant: { listWebhookDeliveries: unimplemented, redeliverWebhook: unimplemented },
    admin: {
      rotateWebhookSecret: unimplemented,
      listMerchantWebhookDeliveries: unimplemented,
      redeliverMerchantWebhook: unimplemented,
    },
  };
}
