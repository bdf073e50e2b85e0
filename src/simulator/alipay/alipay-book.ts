/**
 * What the Alipay side keeps beside the shared trade store: its keys, the bill download tokens,
 * and when each refund's money went back to the buyer. Every other Alipay module reads and writes
 * through one {@link AlipayBook}.
 */
import type { KeyObject } from "node:crypto";
import type { AlipayDevKeys } from "../../channels/dev-keys.js";
import { loadAlipayPrivateKey, loadAlipayPublicKey } from "../../channels/alipay/alipay-signature.js";
import type { SimulatorContext } from "../channel-side.js";
import type { SimRefund } from "../trade-store.js";

/** The channel's name in the trade store and fault registry. */
export const CHANNEL = "alipay";

/** The Alipay side's state and the shared simulator machinery, passed to every Alipay module. */
export class AlipayBook {
  /** Bill download tokens handed out by `alipay.data.dataservice.bill.downloadurl.query`. */
  readonly billTokens = new Map<string, { billDate: string; expiresAt: number }>();
  /** When each refund's money went back to the buyer (`gmt_refund_pay`); later than the request when delayed. */
  readonly refundPaidAt = new WeakMap<SimRefund, Date>();
  readonly appPublicKey: KeyObject;
  private readonly alipayPrivateKey: KeyObject;
  // A key Alipay does not own, to forge notifies and responses when a fault asks for it.
  private readonly wrongPrivateKey: KeyObject;

  constructor(
    readonly context: SimulatorContext,
    readonly keys: AlipayDevKeys,
  ) {
    this.appPublicKey = loadAlipayPublicKey(keys.appPublicKeyPem);
    this.alipayPrivateKey = loadAlipayPrivateKey(keys.alipayPrivateKeyPem);
    this.wrongPrivateKey = loadAlipayPrivateKey(keys.appPrivateKeyPem);
  }

  /** Alipay's key, or a wrong one when the trade's `fault` is set. */
  signingKey(outTradeNo: string | undefined, fault: "badSignature" | "badResponseSignature"): KeyObject {
    return this.context.faults.resolve(CHANNEL, outTradeNo)[fault] ? this.wrongPrivateKey : this.alipayPrivateKey;
  }
}
