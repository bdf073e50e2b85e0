/**
 * WeChat Pay API v3 cryptography: the `Authorization` header on our requests (SHA256withRSA with
 * the merchant key), the `Wechatpay-*` signature headers on responses and callbacks (verified with
 * the WeChat Pay public key, public-key mode), and the AEAD_AES_256_GCM callback resources.
 * Verification works on the raw body bytes and never throws on malformed input: it returns a reason.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  randomInt,
  sign,
  verify,
} from "node:crypto";

/** The only signature scheme of API v3. */
export const WECHATPAY_AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048";

/** How far a signed timestamp may be from our clock, either way. */
export const WECHATPAY_MAX_CLOCK_SKEW_SECONDS = 5 * 60;

/** The algorithm of every encrypted callback resource. */
export const WECHATPAY_RESOURCE_ALGORITHM = "AEAD_AES_256_GCM";

const GCM_TAG_BYTES = 16;
const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A fresh request nonce: 32 upper-case hex characters. */
export function newWechatNonce(): string {
  return randomBytes(16).toString("hex").toUpperCase();
}

function unixSeconds(date: Date): string {
  return String(Math.floor(date.getTime() / 1000));
}

function utf8(data: string | Buffer): Buffer {
  return typeof data === "string" ? Buffer.from(data, "utf8") : data;
}

/**
 * The string a request signature covers: `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n`
 * (every line ends in `\n`; an empty body still leaves its empty line).
 */
export function buildRequestSignMessage(
  method: string,
  pathWithQuery: string,
  timestamp: string,
  nonce: string,
  body: string,
): string {
  return `${method}\n${pathWithQuery}\n${timestamp}\n${nonce}\n${body}\n`;
}

/**
 * The bytes a response or callback signature covers: `TIMESTAMP\nNONCE\nBODY\n`, with the body as
 * received (bytes are kept as they are, never decoded and re-encoded).
 */
export function buildResponseSignMessage(timestamp: string, nonce: string, body: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, "utf8"), utf8(body), Buffer.from("\n", "utf8")]);
}

/** SHA256withRSA (PKCS#1 v1.5), base64. */
export function signSha256WithRsa(message: string | Buffer, privateKey: KeyObject | string): string {
  return sign("sha256", utf8(message), privateKey).toString("base64");
}

/** True when `signature` (base64) verifies over `message`; false for anything malformed. */
export function verifySha256WithRsa(message: string | Buffer, signature: string | undefined, publicKey: KeyObject | string): boolean {
  if (typeof signature !== "string" || signature.length === 0 || signature.length % 4 !== 0 || !BASE64.test(signature)) {
    return false;
  }
  try {
    return verify("sha256", utf8(message), publicKey, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}

/** What goes into a request's `Authorization` header. `timestamp` and `nonce` default to now and a fresh nonce. */
export interface WechatAuthorizationInput {
  mchId: string;
  /** Serial number of the merchant API certificate whose private key signs. */
  serialNo: string;
  privateKey: KeyObject | string;
  method: string;
  /** The request target exactly as sent: path plus `?query` (no scheme or host). */
  pathWithQuery: string;
  /** The exact body text sent; `""` for GET. */
  body: string;
  timestamp?: string;
  nonce?: string;
}

/** Builds `WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",signature="..",timestamp="..",serial_no=".."`. */
export function buildAuthorization(input: WechatAuthorizationInput): string {
  const timestamp = input.timestamp ?? unixSeconds(new Date());
  const nonce = input.nonce ?? newWechatNonce();
  const message = buildRequestSignMessage(input.method.toUpperCase(), input.pathWithQuery, timestamp, nonce, input.body);
  const signature = signSha256WithRsa(message, input.privateKey);
  return (
    `${WECHATPAY_AUTH_SCHEMA} mchid="${input.mchId}",nonce_str="${nonce}",signature="${signature}",` +
    `timestamp="${timestamp}",serial_no="${input.serialNo}"`
  );
}

/** The parts of an `Authorization` header. */
export interface WechatAuthorization {
  mchid: string;
  nonceStr: string;
  signature: string;
  timestamp: string;
  serialNo: string;
}

/** Parses an `Authorization` header; undefined unless it has the v3 schema and all five parameters once each. */
export function parseAuthorization(header: string | undefined): WechatAuthorization | undefined {
  if (typeof header !== "string" || !header.startsWith(`${WECHATPAY_AUTH_SCHEMA} `)) return undefined;
  const params = new Map<string, string>();
  for (const part of header.slice(WECHATPAY_AUTH_SCHEMA.length + 1).split(",")) {
    const match = /^\s*([a-z_]+)="([^"]*)"\s*$/.exec(part);
    if (!match || params.has(match[1] as string)) return undefined;
    params.set(match[1] as string, match[2] as string);
  }
  const mchid = params.get("mchid");
  const nonceStr = params.get("nonce_str");
  const signature = params.get("signature");
  const timestamp = params.get("timestamp");
  const serialNo = params.get("serial_no");
  if (!mchid || !nonceStr || !signature || !timestamp || !serialNo) return undefined;
  return { mchid, nonceStr, signature, timestamp, serialNo };
}

/** Why a signature check failed. */
export type WechatSignatureFailure =
  | "missing_headers" // a signature header (or the Authorization header) is absent or malformed
  | "unknown_serial" // signed with a key other than the configured one
  | "stale_timestamp" // the signed timestamp is not a number or is more than 5 minutes off
  | "bad_signature"; // the signature does not verify over these bytes

export type WechatSignatureCheck = { ok: true } | { ok: false; reason: WechatSignatureFailure };

function isFresh(timestamp: string, now: Date, maxSkewSeconds: number): boolean {
  if (!/^\d{1,12}$/.test(timestamp)) return false;
  return Math.abs(Number(timestamp) - now.getTime() / 1000) <= maxSkewSeconds;
}

/** What {@link verifyWechatSignature} checks. */
export interface WechatSignatureInput {
  /** Response or callback headers with lower-cased names (as node:http delivers them). */
  headers: Readonly<Record<string, string | undefined>>;
  /** The raw body bytes (or text) exactly as received. */
  body: Buffer | string;
  /** The WeChat Pay public key. */
  publicKey: KeyObject | string;
  /** `PUB_KEY_ID_...`: the only `Wechatpay-Serial` accepted. */
  publicKeyId: string;
  /** The clock; injectable for tests. */
  now?: Date;
  maxSkewSeconds?: number;
}

/**
 * Verifies `Wechatpay-Signature` over `Wechatpay-Timestamp\nWechatpay-Nonce\nBODY\n`, after checking
 * `Wechatpay-Serial` is our public key id and the timestamp is within 5 minutes. Never throws.
 */
export function verifyWechatSignature(input: WechatSignatureInput): WechatSignatureCheck {
  const timestamp = input.headers["wechatpay-timestamp"];
  const nonce = input.headers["wechatpay-nonce"];
  const signature = input.headers["wechatpay-signature"];
  const serial = input.headers["wechatpay-serial"];
  const signatureType = input.headers["wechatpay-signature-type"];
  if (!timestamp || !nonce || !signature || !serial) return { ok: false, reason: "missing_headers" };
  if (signatureType !== undefined && signatureType !== WECHATPAY_AUTH_SCHEMA) return { ok: false, reason: "bad_signature" };
  if (serial !== input.publicKeyId) return { ok: false, reason: "unknown_serial" };
  if (!isFresh(timestamp, input.now ?? new Date(), input.maxSkewSeconds ?? WECHATPAY_MAX_CLOCK_SKEW_SECONDS)) {
    return { ok: false, reason: "stale_timestamp" };
  }
  const message = buildResponseSignMessage(timestamp, nonce, input.body);
  return verifySha256WithRsa(message, signature, input.publicKey) ? { ok: true } : { ok: false, reason: "bad_signature" };
}

/** What {@link verifyAuthorization} checks: WeChat's side of a request (the simulator's, here). */
export interface WechatAuthorizationCheckInput {
  header: string | undefined;
  method: string;
  pathWithQuery: string;
  body: string | Buffer;
  /** The merchant's public key (from the certificate with `serialNo`). */
  publicKey: KeyObject | string;
  /** When set, the header's `mchid` and `serial_no` must match. */
  mchId?: string;
  serialNo?: string;
  now?: Date;
  maxSkewSeconds?: number;
}

/** Verifies a request's `Authorization` header the way WeChat Pay does. Never throws. */
export function verifyAuthorization(
  input: WechatAuthorizationCheckInput,
): { ok: true; authorization: WechatAuthorization } | { ok: false; reason: WechatSignatureFailure | "mchid_mismatch" } {
  const authorization = parseAuthorization(input.header);
  if (!authorization) return { ok: false, reason: "missing_headers" };
  if (input.mchId !== undefined && authorization.mchid !== input.mchId) return { ok: false, reason: "mchid_mismatch" };
  if (input.serialNo !== undefined && authorization.serialNo !== input.serialNo) return { ok: false, reason: "unknown_serial" };
  if (!isFresh(authorization.timestamp, input.now ?? new Date(), input.maxSkewSeconds ?? WECHATPAY_MAX_CLOCK_SKEW_SECONDS)) {
    return { ok: false, reason: "stale_timestamp" };
  }
  const head = `${input.method.toUpperCase()}\n${input.pathWithQuery}\n${authorization.timestamp}\n${authorization.nonceStr}\n`;
  const message = Buffer.concat([Buffer.from(head, "utf8"), utf8(input.body), Buffer.from("\n", "utf8")]);
  return verifySha256WithRsa(message, authorization.signature, input.publicKey)
    ? { ok: true, authorization }
    : { ok: false, reason: "bad_signature" };
}

/** What {@link signWechatResponse} needs: WeChat's side of a response or callback (the simulator's, here). */
export interface WechatResponseSigningInput {
  body: string | Buffer;
  privateKey: KeyObject | string;
  /** Sent as `Wechatpay-Serial`: the public key id. */
  publicKeyId: string;
  timestamp?: string;
  nonce?: string;
}

/** The `Wechatpay-*` headers WeChat Pay puts on a response or callback with this body. */
export function signWechatResponse(input: WechatResponseSigningInput): Record<string, string> {
  const timestamp = input.timestamp ?? unixSeconds(new Date());
  const nonce = input.nonce ?? newWechatNonce();
  return {
    "Wechatpay-Timestamp": timestamp,
    "Wechatpay-Nonce": nonce,
    "Wechatpay-Signature": signSha256WithRsa(buildResponseSignMessage(timestamp, nonce, input.body), input.privateKey),
    "Wechatpay-Serial": input.publicKeyId,
    "Wechatpay-Signature-Type": WECHATPAY_AUTH_SCHEMA,
  };
}

/** An encrypted callback `resource` (or any AEAD_AES_256_GCM envelope of API v3). */
export interface WechatEncryptedResource {
  algorithm?: string;
  /** base64 of ciphertext followed by the 16-byte GCM tag. */
  ciphertext: string;
  /** The 12-character nonce, used as its UTF-8 bytes. */
  nonce: string;
  associated_data?: string;
  original_type?: string;
}

function apiV3KeyBytes(apiV3Key: string): Buffer {
  const key = Buffer.from(apiV3Key, "utf8");
  if (key.length !== 32) throw new RangeError("the APIv3 key must be exactly 32 bytes");
  return key;
}

/**
 * Decrypts a resource with the APIv3 key (AES-256-GCM, `associated_data` as AAD) and returns the
 * UTF-8 plaintext. Throws when the tag does not verify (wrong key, wrong AAD, tampered data).
 */
export function decryptResource(resource: Pick<WechatEncryptedResource, "ciphertext" | "nonce" | "associated_data">, apiV3Key: string): string {
  const key = apiV3KeyBytes(apiV3Key);
  if (typeof resource.ciphertext !== "string" || !BASE64.test(resource.ciphertext) || typeof resource.nonce !== "string" || resource.nonce === "") {
    throw new Error("encrypted resource is malformed");
  }
  const sealed = Buffer.from(resource.ciphertext, "base64");
  if (sealed.length < GCM_TAG_BYTES) throw new Error("encrypted resource is shorter than its authentication tag");
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(resource.nonce, "utf8"), { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(Buffer.from(resource.associated_data ?? "", "utf8"));
  decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch (error) {
    throw new Error("encrypted resource does not authenticate with the APIv3 key", { cause: error });
  }
}

/** Encrypts `plaintext` the way WeChat Pay encrypts callback resources; a fresh 12-character nonce unless given. */
export function encryptResource(
  plaintext: string,
  apiV3Key: string,
  options: { associatedData?: string; nonce?: string; originalType?: string } = {},
): Required<WechatEncryptedResource> {
  const key = apiV3KeyBytes(apiV3Key);
  let nonce = options.nonce;
  if (nonce === undefined) {
    nonce = "";
    for (let i = 0; i < 12; i++) nonce += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  }
  const associatedData = options.associatedData ?? "";
  const cipher = createCipheriv("aes-256-gcm", key, Buffer.from(nonce, "utf8"), { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, "utf8"));
  const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return {
    algorithm: WECHATPAY_RESOURCE_ALGORITHM,
    ciphertext: sealed.toString("base64"),
    nonce,
    associated_data: associatedData,
    original_type: options.originalType ?? "",
  };
}

/** A private key from PEM text, or from the bare base64 PKCS#8 body of `apiclient_key.pem`. */
export function loadWechatPrivateKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.includes("-----BEGIN")) return createPrivateKey(trimmed);
  return createPrivateKey({ key: Buffer.from(trimmed.replace(/\s+/g, ""), "base64"), format: "der", type: "pkcs8" });
}

/** The WeChat Pay public key from PEM text, or from the bare base64 SPKI body. */
export function loadWechatPublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.includes("-----BEGIN")) return createPublicKey(trimmed);
  return createPublicKey({ key: Buffer.from(trimmed.replace(/\s+/g, ""), "base64"), format: "der", type: "spki" });
}
