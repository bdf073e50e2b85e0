/**
 * WeChat Pay's callback sender: `TRANSACTION.SUCCESS` and `REFUND.*` events with the resource
 * AES-GCM-encrypted under the API v3 key, signed with the platform key, re-sent on WeChat's
 * schedule until the receiver answers 2xx.
 */
import { encryptResource, signWechatResponse } from "../../channels/wechatpay/wechatpay-signature.js";
import { toWechatTime } from "../../channels/wechatpay/wechatpay-time.js";
import type { SimTrade } from "../trade-store.js";
import { CHANNEL, type WechatBook } from "./wechatpay-book.js";
import { type Json, randomDigits } from "./wechatpay-params.js";

/** WeChat re-sends an unacknowledged callback after 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h (24 h 4 m). */
export const WECHATPAY_NOTIFY_RETRY_GAPS_MS: readonly number[] = [
  15, 15, 30, 180, 600, 1_200, 1_800, 1_800, 1_800, 3_600, 10_800, 10_800, 10_800, 21_600, 21_600,
].map((seconds) => seconds * 1000);

/**
 * Queues a callback; resolves after its first delivery attempt. What it reports is fixed now;
 * the amount fault, encryption and signature are applied to each delivery, so a fault set or
 * cleared between re-sends shows on the next one.
 */
export function notify(
  book: WechatBook,
  trade: SimTrade,
  url: string | undefined,
  kind: "payment" | "refund",
  resource: Json,
): Promise<void> {
  if (!url) return Promise.resolve();
  const { context, keys } = book;
  const id = `EV-${randomDigits(19)}`;
  const createTime = toWechatTime(new Date());
  const eventType = kind === "payment" ? "TRANSACTION.SUCCESS" : `REFUND.${resource.refund_status as string}`;
  const summary = kind === "payment" ? "支付成功" : resource.refund_status === "SUCCESS" ? "退款成功" : "退款异常";
  const originalType = kind === "payment" ? "transaction" : "refund";
  return context.notifier.enqueue(trade, {
    id,
    kind,
    url,
    retryGapsMs: WECHATPAY_NOTIFY_RETRY_GAPS_MS,
    build: () => {
      const faults = context.faults.resolve(CHANNEL, trade.outTradeNo);
      const delta = faults.alterAmount === true ? 1 : typeof faults.alterAmount === "number" ? faults.alterAmount : 0;
      const amount = { ...(resource.amount as Json) };
      // The amount the receiver cross-checks: the order total of a payment, the refunded amount of a refund.
      if (kind === "payment") {
        amount.total = (amount.total as number) + delta;
        amount.payer_total = (amount.payer_total as number) + delta;
      } else {
        amount.refund = (amount.refund as number) + delta;
        amount.payer_refund = (amount.payer_refund as number) + delta;
      }
      const plaintext = JSON.stringify({ ...resource, amount });
      const body = JSON.stringify({
        id,
        create_time: createTime,
        resource_type: "encrypt-resource",
        event_type: eventType,
        summary,
        resource: encryptResource(plaintext, keys.apiV3Key, { associatedData: originalType, originalType }),
      });
      const signature = signWechatResponse({
        body,
        privateKey: book.signingKey(trade.outTradeNo, "badSignature"),
        publicKeyId: keys.publicKeyId,
      });
      return { headers: { "content-type": "application/json", ...signature }, body };
    },
    isAcknowledged: (status) => status >= 200 && status < 300,
  });
}
