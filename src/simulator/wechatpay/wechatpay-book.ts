/**
 * What the WeChat Pay side keeps beside the shared trade store: its keys, refunds by
 * `out_refund_no` (unique per merchant) and the bill files waiting for download. Every other
 * WeChat module reads and writes through one {@link WechatBook}.
 */
import type { KeyObject } from "node:crypto";
import type { WechatPayDevKeys } from "../../channels/dev-keys.js";
import { loadWechatPrivateKey, loadWechatPublicKey } from "../../channels/wechatpay/wechatpay-signature.js";
import type { SimulatorContext } from "../channel-side.js";
import type { SimRefund, SimTrade } from "../trade-store.js";
import type { Json } from "./wechatpay-params.js";

/** The channel's name in the trade store and fault registry. */
export const CHANNEL = "wechatpay";
/** The simulated service fee: 0.6 %, rounded half up to the fen. */
export const FEE_TERMS = { rateBps: 60, fixedFee: 0n, minFee: 0n };
const MAX_REFUND_INDEX = 200_000;

/** What a route handler answers: JSON (signed), nothing (204, signed) or a bill file (unsigned). */
export type Answer = { status: number; json?: Json } | { status: 200; file: Buffer; fileName: string };

/** A refund as WeChat keeps it, found by `out_refund_no` (unique per merchant). */
export interface RefundEntry {
  trade: SimTrade;
  refund: SimRefund;
  notifyUrl?: string;
  /** When it reached SUCCESS (or ABNORMAL). */
  finishedAt?: Date;
}

/** A bill file made by the trade-bill call, kept until its download link expires. */
export interface BillFile {
  file: Buffer;
  fileName: string;
  expiresAt: number;
}

/** The WeChat Pay side's state and the shared simulator machinery, passed to every WeChat module. */
export class WechatBook {
  readonly refunds = new Map<string, RefundEntry>();
  readonly bills = new Map<string, BillFile>();
  readonly merchantPublicKey: KeyObject;
  /** The private half of the WeChat Pay public key: signs answers and callbacks, decrypts sensitive fields. */
  readonly platformPrivateKey: KeyObject;
  // A key WeChat does not own, to forge answers and callbacks when a fault asks for it.
  private readonly wrongPrivateKey: KeyObject;

  constructor(
    readonly context: SimulatorContext,
    readonly keys: WechatPayDevKeys,
  ) {
    this.merchantPublicKey = loadWechatPublicKey(keys.mchPublicKeyPem);
    this.platformPrivateKey = loadWechatPrivateKey(keys.platformPrivateKeyPem);
    this.wrongPrivateKey = loadWechatPrivateKey(keys.mchPrivateKeyPem);
  }

  /** The platform key, or a wrong one when the trade's `fault` is set. */
  signingKey(outTradeNo: string | undefined, fault: "badSignature" | "badResponseSignature"): KeyObject {
    return this.context.faults.resolve(CHANNEL, outTradeNo)[fault] ? this.wrongPrivateKey : this.platformPrivateKey;
  }

  /** Keeps a new refund with its trade and in the `out_refund_no` index (the oldest is forgotten past the bound). */
  addRefund(entry: RefundEntry): void {
    entry.trade.refunds.push(entry.refund);
    this.refunds.set(entry.refund.refundNo, entry);
    if (this.refunds.size > MAX_REFUND_INDEX) this.refunds.delete(this.refunds.keys().next().value as string);
  }
}
