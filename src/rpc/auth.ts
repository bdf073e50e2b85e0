/**
 * Authentication as a Connect interceptor, run on both listeners: which credential each RPC takes
 * ({@link METHOD_ACCESS}), the admin token and merchant API key checks, the merchants' rate limit,
 * and the caller handed to the implementation in the context values ({@link callerKey}), with the
 * unit-of-work session the merchant was looked up in ({@link sessionKey}), so a merchant call opens one.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import type { Session } from "../db/unit-of-work.js";
import { PermissionDeniedError, RateLimitedError, UnauthenticatedError } from "../errors.js";
import { hashApiKey, isApiKeyShaped, secretsEqual } from "../merchants/credentials.js";
import type { MerchantRow } from "../merchants/merchant-entity.js";
import type { MerchantService } from "../merchants/merchant-service.js";
import { AdminService } from "../../gen/payments/v1/admin_service_pb.js";
import { MerchantService as MerchantRpcService } from "../../gen/payments/v1/merchant_service_pb.js";
import { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";
import { SettlementService } from "../../gen/payments/v1/settlement_service_pb.js";
import { type RateLimit, TokenBucketLimiter } from "./rate-limiter.js";

/** The credential an RPC takes: the admin token, or a merchant's API key (the merchant is then the caller). */
export type Access = "admin" | "merchant";

/** An RPC's name as the access table keys it: `payments.v1.SettlementService/GetBalance`. */
export function rpcName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/** An access table from (method, access) pairs; build it from the generated descriptors, so names cannot be misspelt. */
export function accessTable(entries: ReadonlyArray<readonly [DescMethod, Access]>): ReadonlyMap<string, Access> {
  return new Map(entries.map(([method, access]) => [rpcName(method), access]));
}

const adminRpc = AdminService.method;
const merchantRpc = MerchantRpcService.method;
const paymentRpc = PaymentService.method;
const settlementRpc = SettlementService.method;

/**
 * Who may call what, one line per RPC. An RPC missing here is refused with PERMISSION_DENIED
 * whatever the credential (fail closed), so a new RPC is unreachable until it is listed.
 */
export const METHOD_ACCESS: ReadonlyMap<string, Access> = accessTable([
  [merchantRpc.createMerchant, "admin"],
  [merchantRpc.getMerchant, "admin"],
  [merchantRpc.rotateApiKey, "admin"],
  [merchantRpc.setFeeRule, "admin"],
  [merchantRpc.rotateWebhookSecret, "admin"],
  [merchantRpc.listMerchantWebhookDeliveries, "admin"],
  [merchantRpc.redeliverMerchantWebhook, "admin"],
  [paymentRpc.createPayment, "merchant"],
  [paymentRpc.getPayment, "merchant"],
  [paymentRpc.queryPayment, "merchant"],
  [paymentRpc.listPayments, "merchant"],
  [paymentRpc.closePayment, "merchant"],
  [paymentRpc.refundPayment, "merchant"],
  [paymentRpc.getRefund, "merchant"],
  [paymentRpc.listRefunds, "merchant"],
  [paymentRpc.watchPayment, "merchant"],
  [paymentRpc.streamEvents, "merchant"],
  [paymentRpc.listWebhookDeliveries, "merchant"],
  [paymentRpc.redeliverWebhook, "merchant"],
  [settlementRpc.getBalance, "merchant"],
  [settlementRpc.runSettlement, "admin"],
  [settlementRpc.getSettlement, "merchant"],
  [settlementRpc.listSettlements, "merchant"],
  [settlementRpc.submitSettlement, "merchant"],
  [settlementRpc.setSettlementAccount, "admin"],
  [settlementRpc.reconcileChannel, "admin"],
  [settlementRpc.importStatement, "admin"],
  [settlementRpc.listReconciliationRuns, "admin"],
  [settlementRpc.checkLedger, "admin"],
  [settlementRpc.listDiscrepancies, "admin"],
  [settlementRpc.resolveDiscrepancy, "admin"],
  [adminRpc.searchPayments, "admin"],
  [adminRpc.getPaymentTimeline, "admin"],
  [adminRpc.listMerchants, "admin"],
  [adminRpc.listMerchantSettlements, "admin"],
]);

/** The authenticated caller of an RPC. */
export type Caller = { readonly kind: "admin" } | { readonly kind: "merchant"; readonly merchant: MerchantRow };

const ADMIN_CALLER: Caller = Object.freeze({ kind: "admin" });

/** Where the authentication interceptor puts the caller, in `ctx.values`; undefined when no interceptor ran. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "the authenticated caller" });

/** Where the authentication interceptor puts a merchant call's unit-of-work session, in `ctx.values`. */
export const sessionKey = createContextKey<Session | undefined>(undefined, { description: "the call's unit-of-work session" });

/**
 * The session the authentication interceptor opened for this call, else a fresh one from `open`:
 * one session (one EntityManager fork) per call instead of one for the key lookup and one for the work.
 */
export function sessionOf(ctx: HandlerContext, open: () => Session): Session {
  return ctx.values.get(sessionKey) ?? open();
}

/**
 * The merchant calling a merchant RPC, as the authentication interceptor found it. Fails closed
 * (INTERNAL, logged) when there is none: the interceptor did not run, or the RPC is not listed as a
 * merchant RPC in {@link METHOD_ACCESS}.
 */
export function merchantOf(ctx: HandlerContext): MerchantRow {
  const caller = ctx.values.get(callerKey);
  if (caller?.kind !== "merchant") {
    throw new Error(`${rpcName(ctx.method)}: no authenticated merchant in the context; is it listed as a merchant RPC in METHOD_ACCESS?`);
  }
  return caller.merchant;
}

function bearerToken(header: Headers): string {
  const value = header.get("authorization");
  const match = value ? /^Bearer\s+(\S+)$/i.exec(value.trim()) : null;
  if (!match) throw new UnauthenticatedError("missing authorization: Bearer <token>");
  return match[1]!;
}

/**
 * Admin RPCs: the admin token passes. A merchant API key (a token of its `sk_live_` shape) is
 * PERMISSION_DENIED: a credential of the wrong kind for this RPC. That is decided by the shape
 * alone, without looking the key up: the answer would be the same for a current or a rotated key
 * (use the admin token), and a failed admin call then costs no database read. Anything else
 * is UNAUTHENTICATED.
 */
function checkAdminToken(token: string, adminToken: string): void {
  if (secretsEqual(token, adminToken)) return;
  if (isApiKeyShaped(token)) {
    throw new PermissionDeniedError("merchant API keys may not call admin RPCs; use the admin token");
  }
  throw new UnauthenticatedError("invalid admin token");
}

/**
 * Identifies the merchant behind an API key and applies its rate limit (a token bucket per key,
 * `config.rateLimit`, per replica). The authentication interceptor calls it for every merchant
 * RPC, so no merchant RPC can skip the limit.
 *
 * Cheap refusals first: a token that is not shaped like an API key is refused without a database
 * read, and so is a call whose key's bucket is empty. The bucket is keyed by the key's hash and
 * made only after the key authenticated once, so unknown keys cannot fill the map; a merchant has
 * one key at a time, so per key is per merchant.
 */
export class MerchantAuthenticator {
  private readonly limiter: TokenBucketLimiter;

  constructor(
    private readonly merchants: MerchantService,
    limit: RateLimit,
    options: { maxBuckets?: number; now?: () => number } = {},
  ) {
    this.limiter = new TokenBucketLimiter({ ...limit, ...options });
  }

  /** The merchant owning `apiKey`; UNAUTHENTICATED for an unknown key, RESOURCE_EXHAUSTED over the limit. */
  async authenticate(session: Session, apiKey: string): Promise<MerchantRow> {
    if (!isApiKeyShaped(apiKey)) throw new UnauthenticatedError("invalid API key");
    const keyHash = hashApiKey(apiKey);
    // Half the SHA-256 is plenty to tell keys apart and halves the memory per bucket.
    const bucketKey = keyHash.slice(0, 32);
    this.refuseIfWaiting(this.limiter.peek(bucketKey));
    const merchant = await this.merchants.authenticateKeyHash(session, keyHash);
    this.refuseIfWaiting(this.limiter.take(bucketKey));
    return merchant;
  }

  private refuseIfWaiting(waitMs: number): void {
    if (waitMs === 0) return;
    const { perSecond, burst } = this.limiter;
    throw new RateLimitedError(
      `rate limit exceeded: ${perSecond} calls a second per merchant (bursts of ${burst}); retry in ${waitMs} ms`,
      waitMs,
    );
  }
}

/** What {@link createAuthInterceptor} needs. */
export interface AuthInterceptorOptions {
  adminToken: string;
  merchants: MerchantAuthenticator;
  /** A fresh unit-of-work session for a merchant call: the key lookup, then the handler ({@link sessionOf}). */
  session: () => Session;
  /** Who may call what; default {@link METHOD_ACCESS}. */
  access?: ReadonlyMap<string, Access>;
  /** Told about calls refused because their RPC is missing from the table (a wiring mistake). */
  log?: (message: string) => void;
}

/**
 * Checks the credential each RPC takes (by its entry in the access table) before the
 * implementation runs, for unary and streaming calls alike, and puts the caller in `ctx.values`
 * under {@link callerKey}. Errors are domain errors: the error interceptor, outside this one, maps
 * them.
 */
export function createAuthInterceptor(options: AuthInterceptorOptions): Interceptor {
  const access = options.access ?? METHOD_ACCESS;
  const { adminToken, merchants } = options;
  // A promise chain, not an async function: one layer and its microtasks less on every call.
  return (next) => (req) => {
    const name = rpcName(req.method);
    switch (access.get(name)) {
      case "merchant": {
        const session = options.session();
        return merchants.authenticate(session, bearerToken(req.header)).then((merchant) => {
          req.contextValues.set(callerKey, { kind: "merchant", merchant });
          req.contextValues.set(sessionKey, session);
          return next(req);
        });
      }
      case "admin":
        checkAdminToken(bearerToken(req.header), adminToken);
        req.contextValues.set(callerKey, ADMIN_CALLER);
        return next(req);
      default:
        options.log?.(`${name}: refused, the RPC has no entry in the access table`);
        throw new PermissionDeniedError(`${name} is not open to any caller`);
    }
  };
}
