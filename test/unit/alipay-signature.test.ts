import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  buildSignContent,
  buildSignedGatewayResponse,
  loadAlipayPrivateKey,
  loadAlipayPublicKey,
  rawObjectMembers,
  signNotifyParams,
  signRequestParams,
  signRsa2,
  splitGatewayResponse,
  verifyGatewayResponse,
  verifyNotifyParams,
  verifyRequestParams,
  verifyRsa2,
} from "../../src/channels/alipay/alipay-signature.js";
import { parseAlipayTime, toAlipayDate, toAlipayTime } from "../../src/channels/alipay/alipay-time.js";

// A throwaway 1024-bit key used only for these vectors; the expected signatures below were made
// with `openssl dgst -sha256 -sign`, independently of the code under test.
const VECTOR_PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAJ/o0KIaraYj55gq
OHqxQ4SX9y95vMwXiAB8ofZwWSmph4kmJvozJmJcJqqwjoVgr1OJ8ShwLntviKdY
kaaONqgudye0p0Br1ky/H6bmbDf/Wsu73hMUto/gsOR5TiOfIhZCKfcAvfkwYun7
jopLQouzoBwP1qzzOtxEQfh7kbydAgMBAAECgYEAgdgKqMYe4HvhDuahi8aqO10l
4o/oJJSq4zJQVQou7CxzGIM5PQoRjeajow/P+i9izeOBRUOqCqKrBK9fPS3W5HqQ
3Jgnc4BWwCtUio3uljSYJjVPYTnxutZs9suTykmK90hkMWjjLuw/uBUWM5EDPccq
HQqkuISe/d1bsb9XvoUCQQDNTzsRgGqqRpepqj4kStnxugvCHShZfcBzldDHtM6a
endUAFQx5s0s5r9Pe9SI3+uqWwULDnL6aNuf0EF8MuOPAkEAx2QIcCiI6VIDSSaV
AmopbuchieXU2dAt3SDJQDLtja0MUE7Ge8lD4wxiYDoFCcbNud2Mfd9sOPzJSzt9
CJcXEwJBAL9AwWuqTrLUE8/vUPgJ6kCt6Ooosz+6Tx7dPqHqolNxJdvQep4JvLPJ
OAnY9sGSpjwJkgccrKrsJzsWiwohda0CQGHMZfslVqoiiOwLWZE6oyH7ik7KBVHk
s2o/15Z+pFgWZfDKAr7apEqsW2BZdPkrouKkkXF38ewtyUn2Xsik2zMCQHjVef9H
hRDL1YRpfKfcYOFCVpWCIUBMKXH8rVCU0aJbaursuAW5edNTP8NIXtrZ6pAwKIi0
T1bwK4UQGgMnrhI=
-----END PRIVATE KEY-----`;

const VECTOR_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCf6NCiGq2mI+eYKjh6sUOEl/cv
ebzMF4gAfKH2cFkpqYeJJib6MyZiXCaqsI6FYK9TifEocC57b4inWJGmjjaoLncn
tKdAa9ZMvx+m5mw3/1rLu94TFLaP4LDkeU4jnyIWQin3AL35MGLp+46KS0KLs6Ac
D9as8zrcREH4e5G8nQIDAQAB
-----END PUBLIC KEY-----`;

const REQUEST_PARAMS = {
  app_id: "2014072300007148",
  method: "alipay.trade.precreate",
  format: "",
  charset: "utf-8",
  sign_type: "RSA2",
  timestamp: "2014-07-24 03:07:50",
  version: "1.0",
  notify_url: undefined,
  biz_content: '{"out_trade_no":"20150320010101001","total_amount":"88.88","subject":"Iphone6 16G"}',
};

const REQUEST_SIGN_CONTENT =
  'app_id=2014072300007148&biz_content={"out_trade_no":"20150320010101001","total_amount":"88.88","subject":"Iphone6 16G"}' +
  "&charset=utf-8&method=alipay.trade.precreate&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0";

const REQUEST_SIGNATURE =
  "TQ7x7nLrSMqSBXBJXqI8OGNHs1rrfXQfRfZULjK66rmKyd4h2Ftc1yOq5+kk/c79nQwblaJ/BJYrPcy3xcFXFqTWnXxSdXWr9jxSb8/xlOOgpfsP5p/wl7lXoCSwHCmtHZlIrgk+xc66f1tue3R61CMkdfO0KkZzLlyTaX8REPM=";

// Alipay escapes "/" in its JSON; re-serialising would drop the escapes and break the signature.
const RESPONSE_TEXT = '{"code":"10000","msg":"Success","out_trade_no":"6141161365682511","qr_code":"https:\\/\\/qr.alipay.com\\/bax03206ug0kulveltqc80a8"}';
const RESPONSE_SIGNATURE =
  "O4sp2F+My0RVUsk3uLV1evlEZf6YjHWmnMvLxnxjt5RPdSZqaa3hgQhe2B5N62hlqd1VQde4PJTml8K3ys+WxWsaF0Ryw46IkY1MR1EcFV52reXxD6WQNFGjaI7vo0BXahEbN8V9r3qv/U61qun2k24Aga6Kq04mD2wMGnvvEEo=";

describe("Alipay signing string", () => {
  it("sorts by key, drops empty values and sign, keeps sign_type, and does not URL-encode", () => {
    expect(buildSignContent({ ...REQUEST_PARAMS, sign: "ignored" })).toBe(REQUEST_SIGN_CONTENT);
  });

  it("sorts in ASCII order (upper case before lower case, shorter prefix first)", () => {
    expect(buildSignContent({ b: "2", a_b: "3", a: "1", B: "0" })).toBe("B=0&a=1&a_b=3&b=2");
  });

  it("leaves sign and sign_type out for notifies", () => {
    expect(buildSignContent({ sign: "x", sign_type: "RSA2", notify_id: "n1", app_id: "1" }, ["sign", "sign_type"])).toBe("app_id=1&notify_id=n1");
  });
});

describe("RSA2 request signatures", () => {
  it("matches a signature made by openssl for the same string (known vector)", () => {
    expect(signRequestParams(REQUEST_PARAMS, VECTOR_PRIVATE_KEY)).toBe(REQUEST_SIGNATURE);
    expect(signRsa2(REQUEST_SIGN_CONTENT, loadAlipayPrivateKey(VECTOR_PRIVATE_KEY))).toBe(REQUEST_SIGNATURE);
  });

  it("verifies its own signature and rejects a tampered parameter", () => {
    const signed = { ...REQUEST_PARAMS, sign: signRequestParams(REQUEST_PARAMS, VECTOR_PRIVATE_KEY) };
    expect(verifyRequestParams(signed, VECTOR_PUBLIC_KEY)).toBe(true);
    expect(verifyRequestParams({ ...signed, biz_content: signed.biz_content.replace("88.88", "0.01") }, VECTOR_PUBLIC_KEY)).toBe(false);
    expect(verifyRequestParams({ ...signed, sign_type: "RSA" }, VECTOR_PUBLIC_KEY)).toBe(false);
  });

  it("is not affected by adding empty parameters", () => {
    const signature = signRequestParams(REQUEST_PARAMS, VECTOR_PRIVATE_KEY);
    expect(verifyRequestParams({ ...REQUEST_PARAMS, app_auth_token: "", sign: signature }, VECTOR_PUBLIC_KEY)).toBe(true);
  });

  it("returns false, never throws, for garbage signatures", () => {
    for (const garbage of [undefined, null, "", "not base64!!", "abc", "====", "QUJD", "A".repeat(10_000)]) {
      expect(verifyRsa2(REQUEST_SIGN_CONTENT, garbage, VECTOR_PUBLIC_KEY)).toBe(false);
    }
  });

  it("rejects a valid signature made with another key", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const signature = signRsa2(REQUEST_SIGN_CONTENT, other.privateKey);
    expect(verifyRsa2(REQUEST_SIGN_CONTENT, signature, VECTOR_PUBLIC_KEY)).toBe(false);
    expect(verifyRsa2(REQUEST_SIGN_CONTENT, signature, other.publicKey)).toBe(true);
  });
});

describe("RSA2 notify signatures", () => {
  const notify = {
    notify_time: "2024-05-01 12:00:00",
    notify_type: "trade_status_sync",
    notify_id: "ac05099524730693a8b330c5ecf72da9786",
    app_id: "2014072300007148",
    trade_status: "TRADE_SUCCESS",
    total_amount: "88.88",
    subject: "测试 & test=1",
    sign_type: "RSA2",
  };

  it("verifies whatever sign_type says, because sign_type is not signed", () => {
    const sign = signNotifyParams(notify, VECTOR_PRIVATE_KEY);
    expect(verifyNotifyParams({ ...notify, sign }, VECTOR_PUBLIC_KEY)).toBe(true);
    expect(verifyNotifyParams({ ...notify, sign_type: "RSA", sign }, VECTOR_PUBLIC_KEY)).toBe(true);
    expect(verifyNotifyParams({ ...notify, sign }, VECTOR_PUBLIC_KEY)).toBe(verifyRsa2(buildSignContent(notify, ["sign_type"]), sign, VECTOR_PUBLIC_KEY));
  });

  it("fails when any signed field changes, including the amount", () => {
    const sign = signNotifyParams(notify, VECTOR_PRIVATE_KEY);
    expect(verifyNotifyParams({ ...notify, total_amount: "88.89", sign }, VECTOR_PUBLIC_KEY)).toBe(false);
    expect(verifyNotifyParams({ ...notify, extra: "1", sign }, VECTOR_PUBLIC_KEY)).toBe(false);
  });
});

describe("gateway response signatures", () => {
  const rawBody = `{"alipay_trade_precreate_response":${RESPONSE_TEXT},"sign":"${RESPONSE_SIGNATURE}"}`;

  it("verifies over the exact raw text of the *_response member (known vector with escaped slashes)", () => {
    const parts = splitGatewayResponse(rawBody, "alipay.trade.precreate");
    expect(parts).toEqual({ responseKey: "alipay_trade_precreate_response", responseText: RESPONSE_TEXT, sign: RESPONSE_SIGNATURE });
    expect(verifyGatewayResponse(parts!, VECTOR_PUBLIC_KEY)).toBe(true);
  });

  it("would fail over re-serialised JSON, which is why the raw substring is used", () => {
    const reserialised = JSON.stringify(JSON.parse(RESPONSE_TEXT));
    expect(reserialised).not.toBe(RESPONSE_TEXT);
    expect(verifyRsa2(reserialised, RESPONSE_SIGNATURE, VECTOR_PUBLIC_KEY)).toBe(false);
  });

  it("keeps whitespace and member order exactly, and finds the member whatever comes first", () => {
    const spaced = `{ "sign" : "${RESPONSE_SIGNATURE}" ,\n "alipay_trade_precreate_response" :  ${RESPONSE_TEXT} }`;
    const parts = splitGatewayResponse(spaced, "alipay.trade.precreate");
    expect(parts?.responseText).toBe(RESPONSE_TEXT);
    expect(verifyGatewayResponse(parts!, VECTOR_PUBLIC_KEY)).toBe(true);
  });

  it("rejects a tampered response text", () => {
    const tampered = rawBody.replace("6141161365682511", "6141161365682512");
    expect(verifyGatewayResponse(splitGatewayResponse(tampered, "alipay.trade.precreate")!, VECTOR_PUBLIC_KEY)).toBe(false);
  });

  it("handles braces and quotes inside strings when cutting the member out", () => {
    const content = '{"code":"40004","msg":"Business Failed","sub_msg":"a } b \\" { c","x":[1,{"y":"]"}]}';
    const body = buildSignedGatewayResponse("alipay_trade_query_response", JSON.parse(content), VECTOR_PRIVATE_KEY);
    const parts = splitGatewayResponse(body, "alipay.trade.query");
    expect(JSON.parse(parts!.responseText)).toEqual(JSON.parse(content));
    expect(verifyGatewayResponse(parts!, VECTOR_PUBLIC_KEY)).toBe(true);
  });

  it("falls back to error_response, and reports an unsigned answer without a sign", () => {
    const parts = splitGatewayResponse('{"error_response":{"code":"40002","msg":"Invalid Arguments"}}', "alipay.trade.query");
    expect(parts).toEqual({ responseKey: "error_response", responseText: '{"code":"40002","msg":"Invalid Arguments"}' });
    expect(verifyGatewayResponse(parts!, VECTOR_PUBLIC_KEY)).toBe(false);
  });

  it("returns undefined for bodies that are not an Alipay envelope", () => {
    for (const body of ["", "<html>502</html>", "[]", '{"other_response":{}}', '{"alipay_trade_query_response":{"a":1}', '{"a":1}x']) {
      expect(splitGatewayResponse(body, "alipay.trade.query")).toBeUndefined();
    }
    expect(rawObjectMembers('{"a":1,"b":"x"}')).toEqual(new Map([["a", "1"], ["b", '"x"']]));
  });
});

describe("keys", () => {
  it("accepts Alipay's bare base64 key bodies as well as PEM", () => {
    const bare = (pem: string) => pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    const signature = signRsa2("x", loadAlipayPrivateKey(bare(VECTOR_PRIVATE_KEY)));
    expect(verifyRsa2("x", signature, loadAlipayPublicKey(bare(VECTOR_PUBLIC_KEY)))).toBe(true);
  });
});

describe("Alipay time", () => {
  it("writes and reads China time (UTC+8) whatever the host time zone", () => {
    expect(toAlipayTime(new Date("2024-01-31T16:30:05.999Z"))).toBe("2024-02-01 00:30:05");
    expect(toAlipayDate(new Date("2024-01-31T16:30:05Z"))).toBe("2024-02-01");
    expect(parseAlipayTime("2024-02-01 00:30:05")?.toISOString()).toBe("2024-01-31T16:30:05.000Z");
  });

  it("rejects malformed and impossible times", () => {
    for (const text of ["2024-02-30 00:00:00", "2024-02-01T00:30:05", "2024-02-01 24:00:00", "", undefined]) {
      expect(parseAlipayTime(text)).toBeUndefined();
    }
  });
});
