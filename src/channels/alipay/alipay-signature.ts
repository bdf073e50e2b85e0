/**
 * Alipay open-platform signatures (RSA2 = SHA256withRSA, base64): the signing string for request
 * and notify parameters, and gateway responses signed over the exact raw JSON text of their
 * `*_response` member. Verification functions never throw on malformed input: they return false.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

/** Parameters as they travel on the wire: absent, null and empty values are left out of signatures. */
export type AlipayParams = Readonly<Record<string, string | undefined | null>>;

/**
 * The string Alipay signs: every parameter except those in `exclude`, empty values dropped,
 * sorted by key in ASCII order, joined as `k=v` with `&`, values not URL-encoded.
 */
export function buildSignContent(params: AlipayParams, exclude: readonly string[] = ["sign"]): string {
  return Object.keys(params)
    .filter((key) => !exclude.includes(key))
    .filter((key) => {
      const value = params[key];
      return value !== undefined && value !== null && value !== "";
    })
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((key) => `${key}=${params[key]}`)
    .join("&");
}

/** SHA256withRSA over the UTF-8 bytes of `content`, base64. */
export function signRsa2(content: string, privateKey: KeyObject | string): string {
  return sign("sha256", Buffer.from(content, "utf8"), privateKey).toString("base64");
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** True when `signature` is a valid RSA2 signature of `content`; false for anything malformed. */
export function verifyRsa2(content: string, signature: string | undefined | null, publicKey: KeyObject | string): boolean {
  if (typeof signature !== "string") return false;
  const compact = signature.replace(/\s+/g, "");
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) return false;
  try {
    return verify("sha256", Buffer.from(content, "utf8"), publicKey, Buffer.from(compact, "base64"));
  } catch {
    return false;
  }
}

/** Signs request parameters (everything but `sign`, so `sign_type` is covered). */
export function signRequestParams(params: AlipayParams, privateKey: KeyObject | string): string {
  return signRsa2(buildSignContent(params, ["sign"]), privateKey);
}

/** Verifies a request's `sign` (the gateway's check, used by the simulator). */
export function verifyRequestParams(params: AlipayParams, publicKey: KeyObject | string): boolean {
  return verifyRsa2(buildSignContent(params, ["sign"]), params.sign, publicKey);
}

/** Signs an asynchronous notify: `sign` and `sign_type` are both left out of the signed string. */
export function signNotifyParams(params: AlipayParams, privateKey: KeyObject | string): string {
  return signRsa2(buildSignContent(params, ["sign", "sign_type"]), privateKey);
}

/** Verifies an asynchronous notify's `sign` with the Alipay public key. */
export function verifyNotifyParams(params: AlipayParams, publicKey: KeyObject | string): boolean {
  return verifyRsa2(buildSignContent(params, ["sign", "sign_type"]), params.sign, publicKey);
}

/** `alipay.trade.precreate` → `alipay_trade_precreate_response`. */
export function responseKeyFor(method: string): string {
  return `${method.replaceAll(".", "_")}_response`;
}

/**
 * The raw text of each member of a top-level JSON object, exactly as it appears in `json`
 * (no re-serialisation, so a signature over it can be checked). Undefined when `json` is not an object.
 */
export function rawObjectMembers(json: string): Map<string, string> | undefined {
  const members = new Map<string, string>();
  let index = skipWhitespace(json, 0);
  if (json[index] !== "{") return undefined;
  index = skipWhitespace(json, index + 1);
  if (json[index] === "}") return members;
  for (;;) {
    const keyEnd = endOfValue(json, index);
    if (keyEnd === undefined || json[index] !== '"') return undefined;
    let key: unknown;
    try {
      key = JSON.parse(json.slice(index, keyEnd));
    } catch {
      return undefined;
    }
    index = skipWhitespace(json, keyEnd);
    if (json[index] !== ":") return undefined;
    const valueStart = skipWhitespace(json, index + 1);
    const valueEnd = endOfValue(json, valueStart);
    if (valueEnd === undefined) return undefined;
    members.set(key as string, json.slice(valueStart, valueEnd));
    index = skipWhitespace(json, valueEnd);
    if (json[index] === "}") return skipWhitespace(json, index + 1) === json.length ? members : undefined;
    if (json[index] !== ",") return undefined;
    index = skipWhitespace(json, index + 1);
  }
}

function skipWhitespace(text: string, index: number): number {
  while (index < text.length && " \t\r\n".includes(text[index] as string)) index++;
  return index;
}

/** Index just past the JSON value starting at `start`, by bracket matching outside strings. */
function endOfValue(text: string, start: number): number | undefined {
  const first = text[start];
  if (first === undefined) return undefined;
  if (first === '"') {
    for (let i = start + 1; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return i + 1;
    }
    return undefined;
  }
  if (first === "{" || first === "[") {
    let depth = 0;
    for (let i = start; i < text.length; i++) {
      const char = text[i];
      if (char === '"') {
        const stringEnd = endOfValue(text, i);
        if (stringEnd === undefined) return undefined;
        i = stringEnd - 1;
      } else if (char === "{" || char === "[") depth++;
      else if (char === "}" || char === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return undefined;
  }
  let i = start;
  while (i < text.length && !",}] \t\r\n".includes(text[i] as string)) i++;
  return i > start ? i : undefined;
}

/** A gateway answer split into the signed `*_response` text and its signature. */
export interface AlipayGatewayResponseParts {
  /** The member name found: `<method>_response`, or `error_response` for gateway-level errors. */
  responseKey: string;
  /** The exact raw JSON text of that member: what the signature covers. */
  responseText: string;
  sign?: string;
}

/**
 * Splits a raw gateway body for `method`. Undefined when the body is not a JSON object holding
 * `<method>_response` or `error_response`.
 */
export function splitGatewayResponse(rawBody: string, method: string): AlipayGatewayResponseParts | undefined {
  const members = rawObjectMembers(rawBody);
  if (!members) return undefined;
  for (const responseKey of [responseKeyFor(method), "error_response"]) {
    const responseText = members.get(responseKey);
    if (responseText === undefined) continue;
    const rawSign = members.get("sign");
    let signValue: string | undefined;
    if (rawSign !== undefined) {
      try {
        const parsed: unknown = JSON.parse(rawSign);
        if (typeof parsed === "string") signValue = parsed;
      } catch {
        signValue = undefined;
      }
    }
    return signValue === undefined ? { responseKey, responseText } : { responseKey, responseText, sign: signValue };
  }
  return undefined;
}

/** Verifies a gateway response's signature over the exact `*_response` text, with the Alipay public key. */
export function verifyGatewayResponse(parts: AlipayGatewayResponseParts, alipayPublicKey: KeyObject | string): boolean {
  return verifyRsa2(parts.responseText, parts.sign, alipayPublicKey);
}

/**
 * Builds a signed gateway body the way Alipay does: `{"<key>":<json>,"sign":"..."}` with the
 * signature over exactly the `<json>` text written.
 */
export function buildSignedGatewayResponse(
  responseKey: string,
  content: Readonly<Record<string, unknown>>,
  alipayPrivateKey: KeyObject | string,
): string {
  const responseText = JSON.stringify(content);
  const signature = signRsa2(responseText, alipayPrivateKey);
  return `{${JSON.stringify(responseKey)}:${responseText},"sign":${JSON.stringify(signature)}}`;
}

function isPem(text: string): boolean {
  return text.includes("-----BEGIN");
}

/**
 * A private key from PEM text, or from the bare base64 PKCS#8 body that Alipay's key tool prints.
 */
export function loadAlipayPrivateKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (isPem(trimmed)) return createPrivateKey(trimmed);
  return createPrivateKey({ key: Buffer.from(trimmed.replace(/\s+/g, ""), "base64"), format: "der", type: "pkcs8" });
}

/** A public key from PEM text, or from the bare base64 SPKI body shown in Alipay's console. */
export function loadAlipayPublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (isPem(trimmed)) return createPublicKey(trimmed);
  return createPublicKey({ key: Buffer.from(trimmed.replace(/\s+/g, ""), "base64"), format: "der", type: "spki" });
}
