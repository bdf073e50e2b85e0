/**
 * One POST of a webhook to an address already checked by resolveNotifyTarget: the connection goes
 * to that address (the `lookup` given to the request returns it, so no second DNS answer is
 * used), with the URL's name as Host and TLS server name. Redirects are not followed (a 3xx is
 * a failed attempt like any non-2xx) and at most {@link MAX_EXCERPT_BYTES} of the answer are read.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { NotifyTarget } from "../notifications/notify-url.js";

/** Bytes of an answer's body read and kept. */
export const MAX_EXCERPT_BYTES = 256;

/** What an attempt got: an HTTP status (0 when none), the first bytes of the answer, or why there was no answer. */
export interface SendResult {
  httpStatus: number;
  excerpt: string;
  error: string;
}

/** Posts `body` to `target` within `timeoutMs` (connecting, sending and reading the answer's first bytes). */
export function postWebhook(target: NotifyTarget, headers: Record<string, string>, body: Buffer, timeoutMs: number): Promise<SendResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const pinned: LookupFunction = (_hostname, options, callback) => {
      if (options.all) callback(null, [{ address: target.address, family: target.family }]);
      else callback(null, target.address, target.family);
    };
    const send = target.url.protocol === "https:" ? httpsRequest : httpRequest;
    const request = send({
      protocol: target.url.protocol,
      host: target.hostname,
      port: target.port,
      path: `${target.url.pathname}${target.url.search}`,
      method: "POST",
      headers: { ...headers, host: target.url.host, "content-length": String(body.length) },
      lookup: pinned,
      servername: isIpAddress(target.hostname) ? undefined : target.hostname,
      agent: false,
    });
    const timer = setTimeout(() => finish({ httpStatus: 0, excerpt: "", error: "timeout" }), timeoutMs);
    request.on("error", (error) => finish({ httpStatus: 0, excerpt: "", error: transportError(error) }));
    request.on("response", (response) => {
      const httpStatus = response.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let received = 0;
      const done = () => finish({ httpStatus, excerpt: Buffer.concat(chunks).toString("utf8"), error: "" });
      response.on("data", (chunk: Buffer) => {
        const room = MAX_EXCERPT_BYTES - received;
        if (room > 0) chunks.push(chunk.subarray(0, room));
        received += chunk.length;
        // Enough read: the rest of a large or endless answer is not waited for.
        if (received >= MAX_EXCERPT_BYTES) done();
      });
      response.on("end", done);
      response.on("error", done);
    });
    request.end(body);
  });
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

/** A short, log-safe description of a transport failure. */
function transportError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET") return "connection reset";
  if (code === "ETIMEDOUT") return "timeout";
  return (code ?? error.message).slice(0, 255);
}
