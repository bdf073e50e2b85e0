/**
 * Both ends of WeChat Pay's API signatures: every request must carry a valid
 * `WECHATPAY2-SHA256-RSA2048` Authorization header signed by the merchant key over the request
 * target as sent (with the `/wechatpay` prefix on the shared listener), and every answer (bill
 * files excepted) is signed with the platform key.
 */
import { randomBytes } from "node:crypto";
import { signWechatResponse, verifyAuthorization } from "../../channels/wechatpay/wechatpay-signature.js";
import type { SimulatorRequest, SimulatorResponse } from "../channel-side.js";
import type { Answer, WechatBook } from "./wechatpay-book.js";
import { WechatApiError } from "./wechatpay-params.js";

/**
 * Checks the Authorization header over the full request target, as the merchant signed it. The
 * query arrives parsed and is serialised again: exact for the adapter's queries (letters, digits,
 * `-`, `_`, `.`), while a client encoding other characters differently would get SIGN_ERROR.
 */
export function authenticate(book: WechatBook, request: SimulatorRequest): void {
  const search = request.query.size > 0 ? `?${request.query.toString()}` : "";
  const check = verifyAuthorization({
    header: request.headers.authorization,
    method: request.method,
    pathWithQuery: `${request.mount}${request.path}${search}`,
    body: request.rawBody,
    publicKey: book.merchantPublicKey,
    mchId: book.keys.mchId,
    serialNo: book.keys.mchSerialNo,
  });
  if (!check.ok) throw new WechatApiError(401, "SIGN_ERROR", `错误的签名，验签失败 (${check.reason})`);
}

/** Writes an answer; JSON answers (and 204s) carry WeChat's signature headers, bill files do not. */
export function respond(book: WechatBook, answer: Answer, outTradeNo: string | undefined): SimulatorResponse {
  if ("file" in answer) {
    return {
      status: 200,
      headers: { "content-type": "application/octet-stream", "content-disposition": `attachment; filename="${answer.fileName}"` },
      body: answer.file,
    };
  }
  const body = answer.json === undefined ? "" : JSON.stringify(answer.json);
  const signature = signWechatResponse({
    body,
    privateKey: book.signingKey(outTradeNo, "badResponseSignature"),
    publicKeyId: book.keys.publicKeyId,
  });
  const headers: Record<string, string> = { ...signature, "Request-ID": randomBytes(16).toString("hex") };
  if (body !== "") headers["content-type"] = "application/json; charset=utf-8";
  return { status: answer.status, headers, body };
}
