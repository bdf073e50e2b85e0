/**
 * The one call pipeline every channel adapter uses for its API calls:
 *
 *   send → classify → verify → business error → decode
 *
 * - send: one HTTP exchange through `http-client.ts` with the channel's deadline; a transport
 *   failure (refused, reset, DNS, TLS, deadline) is {@link ChannelUnavailableError} with the
 *   {@link HttpTransportError} as `cause` (TIMEOUT / UNREACHABLE at the RPC edge).
 * - classify: HTTP 5xx and 429 are "unavailable" on every channel, before anything in the answer
 *   is read; a channel may refuse other statuses outright (Alipay answers 200 or nothing useful).
 * - verify: the channel's signature check over the raw answer (Alipay RSA2 over the response member,
 *   WeChat Pay's `Wechatpay-Signature`; the card acquirer signs nothing). A failed check is
 *   {@link ChannelAnswerUntrustedError} `RESPONSE_SIGNATURE_INVALID`; an answer in no envelope of
 *   the channel's (a proxy's HTML page) is unavailable; a verified answer that is not a JSON object
 *   is `UNEXPECTED_RESPONSE`.
 * - business error: the channel's "no" (Alipay `sub_code`, WeChat `code`, the acquirer's
 *   `error.code`). Busy codes (Alipay 20000 / ACQ.SYSTEM_ERROR, the acquirer's
 *   `idempotency_key_in_use`) are unavailable; every other one goes to the operation, which either
 *   turns it into a result (e.g. "no such trade" → `not_found`) or throws {@link ChannelRejectedError}
 *   with the channel's code.
 * - decode: the operation's typed decoder reads the verified answer through a {@link WireReader};
 *   a missing or malformed field is `UNEXPECTED_RESPONSE` naming the field.
 *
 * Every error names the {@link PaymentChannel} method it happened in (`queryPayment`), on every
 * channel, followed by the channel's own name for the request (`alipay.trade.query`).
 */
import {
  ChannelAnswerUntrustedError,
  type ChannelName,
  ChannelRejectedError,
  ChannelUnavailableError,
  type PaymentChannel,
  type PayoutOperations,
} from "./channel.js";
import { type HttpRequest, type HttpResponse, HttpTransportError, sendHttpRequest } from "./http-client.js";
import { type WireObject, WireFieldError, WireReader } from "./wire-fields.js";

/**
 * The {@link PaymentChannel} methods that call the channel, and those of its {@link PayoutOperations}
 * (`sendPayout`): the operation names in every error and log line.
 */
export type ChannelOperation =
  | Exclude<keyof PaymentChannel, "name" | "parseCallback" | "acceptAnswer" | "rejectAnswer" | "payouts">
  | Exclude<keyof PayoutOperations, "validatePayee">;

/** One kind of wire call: the interface method it serves and the channel's own name for the request. */
export interface ChannelCallName {
  operation: ChannelOperation;
  /** `alipay.trade.query`, `GET /v3/pay/transactions/out-trade-no/{out_trade_no}`, `payment_intents.retrieve`. */
  wireMethod?: string;
}

/** Why a channel gave no usable answer, as callers, logs and metrics name it. */
export type ChannelFailure = "TIMEOUT" | "UNREACHABLE" | "CHANNEL_ERROR" | "RESPONSE_SIGNATURE_INVALID" | "UNEXPECTED_RESPONSE";

export function channelFailureKind(error: ChannelUnavailableError): ChannelFailure {
  if (error instanceof ChannelAnswerUntrustedError) return error.code;
  if (error.cause instanceof HttpTransportError) return error.cause.kind === "timeout" ? "TIMEOUT" : "UNREACHABLE";
  // Answered, but with 5xx/429, "system busy", "try again", an answer in no known envelope, a bill not ready.
  return "CHANNEL_ERROR";
}

/** `queryPayment (alipay.trade.query)`: how errors name a call. */
export function callLabel(name: ChannelCallName): string {
  return name.wireMethod ? `${name.operation} (${name.wireMethod})` : name.operation;
}

/** A channel's business "no", decoded from a verified answer. `code` becomes {@link ChannelRejectedError.code}. */
export interface ChannelBusinessFailure {
  code: string;
  /** The channel's own text for it, safe to keep in logs and status reasons. */
  message: string;
}

/** What the verify step made of an answer that passed the 5xx/429 rule. */
export type AnswerCheck =
  /** Verified (or from a channel that signs nothing) and a JSON object. */
  | { kind: "trusted"; fields: WireObject }
  /** Not in the channel's envelope at all, so not the channel's answer: unavailable. */
  | { kind: "not_channel_answer"; why: string }
  /** In the envelope, but its signature does not verify with the configured key. */
  | { kind: "signature_invalid"; why: string }
  /** Verified, but not a JSON object. */
  | { kind: "unreadable"; why: string };

/** The channel-specific parts of the pipeline: one object per adapter. */
export interface ChannelProtocol<Failure extends ChannelBusinessFailure> {
  readonly channel: ChannelName;
  /** Deadline for calls that do not set their own. */
  readonly timeoutMs: number;
  /** The code an answer claims before it is verified, for error details only (`none` when none). */
  unverifiedCode(response: HttpResponse, name: ChannelCallName): string;
  /** Statuses other than 5xx/429 that are refused before verification (Alipay: anything but 200). */
  refusedStatus?(response: HttpResponse): ChannelBusinessFailure | undefined;
  /** Signature check and envelope: see {@link AnswerCheck}. */
  verify(response: HttpResponse, name: ChannelCallName): AnswerCheck;
  /** The business failure in a verified answer, or undefined when it reports success. */
  failureOf(answer: WireObject, status: number): Failure | undefined;
  /** Failures that mean "busy, ask again with the same parameters": unavailable, never a rejection. */
  isBusy(failure: Failure): boolean;
}

/** One wire call. */
export interface ChannelCall<T> extends ChannelCallName {
  /** The signed request; `timeoutMs` defaults to the channel's. */
  request: Omit<HttpRequest, "timeoutMs"> & { timeoutMs?: number };
  /** The typed decoder for a successful answer. */
  decode(answer: WireReader): T;
}

/** A call's result: the decoded answer, or the channel's business failure for the operation to judge. */
export type ChannelCallOutcome<T, Failure> = { ok: true; value: T } | { ok: false; failure: Failure };

/** The pipeline bound to one channel. */
export interface ChannelCaller<Failure extends ChannelBusinessFailure> {
  readonly channel: ChannelName;
  /** Runs every step; a business failure comes back as `{ ok: false }` for the operation to judge. */
  call<T>(call: ChannelCall<T>): Promise<ChannelCallOutcome<T, Failure>>;
  /** Like {@link call}, with every business failure thrown as {@link ChannelRejectedError}. */
  callOrReject<T>(call: ChannelCall<T>): Promise<T>;
  /** The send step alone (transport errors → unavailable), for files the channel does not sign (bills). */
  send(name: ChannelCallName, request: Omit<HttpRequest, "timeoutMs"> & { timeoutMs?: number }): Promise<HttpResponse>;
  /** Decodes a wire object that arrived inside another answer (a list item, an error's object). */
  decode<T>(name: ChannelCallName, fields: WireObject, decoder: (answer: WireReader) => T): T;
  /** The {@link ChannelRejectedError} for a business failure the operation does not turn into a result. */
  rejected(name: ChannelCallName, failure: ChannelBusinessFailure): ChannelRejectedError;
  unavailable(name: ChannelCallName, detail: string, options?: { cause?: unknown }): ChannelUnavailableError;
  unexpected(name: ChannelCallName, detail: string): ChannelAnswerUntrustedError;
}

/** Binds the pipeline to one channel's protocol. */
export function createChannelCaller<Failure extends ChannelBusinessFailure>(protocol: ChannelProtocol<Failure>): ChannelCaller<Failure> {
  const { channel } = protocol;

  const rejected = (name: ChannelCallName, failure: ChannelBusinessFailure) =>
    new ChannelRejectedError(channel, failure.code, `${callLabel(name)}: ${failure.message}`);
  const unavailable = (name: ChannelCallName, detail: string, options?: { cause?: unknown }) =>
    new ChannelUnavailableError(channel, `${callLabel(name)}: ${detail}`, options);
  const unexpected = (name: ChannelCallName, detail: string) =>
    new ChannelAnswerUntrustedError(channel, "UNEXPECTED_RESPONSE", `${callLabel(name)}: ${detail}`);

  function decode<T>(name: ChannelCallName, fields: WireObject, decoder: (answer: WireReader) => T): T {
    try {
      return decoder(new WireReader(fields));
    } catch (error) {
      if (error instanceof WireFieldError) throw unexpected(name, error.message);
      throw error;
    }
  }

  function send(name: ChannelCallName, request: Omit<HttpRequest, "timeoutMs"> & { timeoutMs?: number }): Promise<HttpResponse> {
    return sendHttpRequest({ ...request, timeoutMs: request.timeoutMs ?? protocol.timeoutMs }).catch((error: unknown) => {
      if (error instanceof HttpTransportError) throw unavailable(name, error.message, { cause: error });
      throw error;
    });
  }

  // A promise chain, not an async function: every channel call passes here.
  function call<T>(spec: ChannelCall<T>): Promise<ChannelCallOutcome<T, Failure>> {
    return send(spec, spec.request).then((response) => judge(spec, response));
  }

  /** The steps after send: the 5xx/429 rule, refused statuses, verification, business failure, decoding. */
  function judge<T>(spec: ChannelCall<T>, response: HttpResponse): ChannelCallOutcome<T, Failure> {
    // Nothing in a 5xx/429 is acted upon, so it need not be verified: asking again is always safe.
    if (response.status >= 500 || response.status === 429) {
      throw unavailable(spec, `HTTP ${response.status} (unverified code ${protocol.unverifiedCode(response, spec)})`);
    }
    const refusal = protocol.refusedStatus?.(response);
    if (refusal) throw rejected(spec, refusal);

    const check = protocol.verify(response, spec);
    switch (check.kind) {
      case "not_channel_answer":
        throw unavailable(spec, check.why);
      case "signature_invalid":
        throw new ChannelAnswerUntrustedError(
          channel,
          "RESPONSE_SIGNATURE_INVALID",
          `${callLabel(spec)}: ${check.why} (unverified content claims code ${protocol.unverifiedCode(response, spec)})`,
        );
      case "unreadable":
        throw unexpected(spec, check.why);
    }

    const failure = protocol.failureOf(check.fields, response.status);
    if (failure) {
      if (protocol.isBusy(failure)) throw unavailable(spec, failure.message);
      return { ok: false, failure };
    }
    return { ok: true, value: decode(spec, check.fields, spec.decode) };
  }

  return {
    channel,
    call,
    callOrReject<T>(spec: ChannelCall<T>): Promise<T> {
      return call(spec).then((outcome) => {
        if (!outcome.ok) throw rejected(spec, outcome.failure);
        return outcome.value;
      });
    },
    send,
    decode,
    rejected,
    unavailable,
    unexpected,
  };
}
