/** Bearer-token checks for admin and merchant calls, from the request headers. */
import type { HandlerContext } from "@connectrpc/connect";
import type { SqlEntityManager } from "@mikro-orm/knex";
import { UnauthenticatedError } from "../errors.js";
import { secretsEqual } from "../merchants/credentials.js";
import type { MerchantRow } from "../merchants/merchant-entity.js";
import type { MerchantService } from "../merchants/merchant-service.js";

function bearerToken(ctx: HandlerContext): string {
  const header = ctx.requestHeader.get("authorization");
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  if (!match) throw new UnauthenticatedError("missing authorization: Bearer <token>");
  return match[1]!;
}

export function requireAdmin(ctx: HandlerContext, adminToken: string): void {
  if (!secretsEqual(bearerToken(ctx), adminToken)) throw new UnauthenticatedError("invalid admin token");
}

export function authenticateMerchant(
  ctx: HandlerContext,
  em: SqlEntityManager,
  merchants: MerchantService,
): Promise<MerchantRow> {
  return merchants.authenticate(em, bearerToken(ctx));
}
