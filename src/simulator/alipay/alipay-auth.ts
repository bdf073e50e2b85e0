/**
 * Both ends of Alipay's gateway signatures: the common-parameter and RSA2 signature checks every
 * gateway call passes before its method runs (answered as Alipay does, `40001`/`40002` with an
 * `isv.*` sub-code), and the signed `{"<method>_response": ..., "sign": ...}` answer. Request
 * timestamps must be within 30 minutes of the simulator's clock.
 */
import { buildSignedGatewayResponse, verifyRequestParams } from "../../channels/alipay/alipay-signature.js";
import { parseAlipayTime } from "../../channels/alipay/alipay-time.js";
import type { SimulatorResponse } from "../channel-side.js";
import type { AlipayBook } from "./alipay-book.js";
import { type Content, invalidArgument, missing, REQUIRED_PARAMS } from "./alipay-params.js";

const TIMESTAMP_TOLERANCE_MS = 30 * 60 * 1000;

/**
 * Throws the {@link GatewayError} Alipay answers for a call it refuses before running the method,
 * in Alipay's order of checks; `methodKnown` says whether `params.method` names a simulated method.
 */
export function checkGatewayRequest(book: AlipayBook, httpMethod: string, params: Record<string, string>, methodKnown: boolean): void {
  if (httpMethod !== "POST" && httpMethod !== "GET") throw invalidArgument("isv.invalid-http-method", "只支持 GET 和 POST");
  for (const [name, what] of REQUIRED_PARAMS) if (!params[name]) throw missing(what);
  if (params.app_id !== book.keys.appId) throw invalidArgument("isv.invalid-app-id", "无效的AppID参数");
  if (!methodKnown) throw invalidArgument("isv.invalid-method", "不存在的方法名");
  if (params.sign_type !== "RSA2") throw invalidArgument("isv.invalid-signature-type", "无效的签名类型");
  if (params.charset && params.charset.toLowerCase() !== "utf-8") {
    throw invalidArgument("isv.invalid-charset", "字符集错误 (simulator: utf-8 only)");
  }
  if (params.format && params.format.toUpperCase() !== "JSON") throw invalidArgument("isv.invalid-format", "无效的数据格式");
  if (!verifyRequestParams(params, book.appPublicKey)) throw invalidArgument("isv.invalid-signature", "验签出错");
  const timestamp = parseAlipayTime(params.timestamp);
  if (!timestamp || Math.abs(timestamp.getTime() - Date.now()) > TIMESTAMP_TOLERANCE_MS) {
    throw invalidArgument("isv.invalid-timestamp", "非法的时间戳参数 (yyyy-MM-dd HH:mm:ss, China time)");
  }
  if (params.biz_content === undefined) throw missing("biz-content");
}

/** The gateway's 200 answer: `content` under `responseKey`, signed with Alipay's key (or a wrong one under `badResponseSignature`). */
export function signedGatewayResponse(book: AlipayBook, responseKey: string, content: Content, outTradeNo: string | undefined): SimulatorResponse {
  return {
    status: 200,
    headers: { "content-type": "text/html;charset=utf-8" },
    body: buildSignedGatewayResponse(responseKey, content, book.signingKey(outTradeNo, "badResponseSignature")),
  };
}
