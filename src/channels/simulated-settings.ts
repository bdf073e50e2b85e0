/**
 * The channels' settings that point at the simulator with the development keys: what the service
 * process, the reconcile CLI, the benchmarks and the tests configure for a simulated channel.
 */
import type { AlipayConfig, CardConfig, WechatPayConfig } from "../config.js";
import type { DevChannelKeys } from "./dev-keys.js";

/** Every channel's settings for the simulator at `simulatorUrl` (its base URL, no trailing slash), signed with `keys`. */
export function simulatedChannelSettings(
  keys: DevChannelKeys,
  simulatorUrl: string,
): { alipay: AlipayConfig; wechatpay: WechatPayConfig; card: CardConfig } {
  return {
    alipay: {
      gatewayUrl: `${simulatorUrl}/alipay/gateway.do`,
      appId: keys.alipay.appId,
      appPrivateKeyPem: keys.alipay.appPrivateKeyPem,
      alipayPublicKeyPem: keys.alipay.alipayPublicKeyPem,
      sellerId: keys.alipay.sellerId,
    },
    wechatpay: {
      baseUrl: `${simulatorUrl}/wechatpay`,
      mchId: keys.wechatpay.mchId,
      appId: keys.wechatpay.appId,
      mchSerialNo: keys.wechatpay.mchSerialNo,
      mchPrivateKeyPem: keys.wechatpay.mchPrivateKeyPem,
      platformPublicKeyPem: keys.wechatpay.platformPublicKeyPem,
      publicKeyId: keys.wechatpay.publicKeyId,
      apiV3Key: keys.wechatpay.apiV3Key,
    },
    card: { baseUrl: `${simulatorUrl}/card`, secretKey: keys.card.secretKey, webhookSecret: keys.card.webhookSecret },
  };
}
