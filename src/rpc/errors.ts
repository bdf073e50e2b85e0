/**
 * The one mapping from domain errors to RPC status codes, with a `google.rpc.ErrorInfo` reason
 * (and `google.rpc.BadRequest` field violations for invalid input) on every error. Unexpected
 * errors become INTERNAL: the cause is logged here, never sent.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

type OutgoingDetail = Extract<ConnectError["details"][number], { desc: unknown }>;
import {
  CHANNEL_NAMES,
  ChannelAnswerUntrustedError,
  ChannelRejectedError,
  ChannelTradePaidError,
  ChannelUnavailableError,
} from "../channels/channel.js";
import { type ChannelFailure, channelFailureKind } from "../channels/channel-call.js";
import { echoable } from "../input-text.js";
import {
  ConflictError,
  DomainError,
  NotFoundError,
  PermissionDeniedError,
  PreconditionError,
  RateLimitedError,
  UnauthenticatedError,
  ValidationError,
} from "../errors.js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { promiseOf } from "../promise-of.js";

const DOMAIN = "payments.v1";

function errorInfo(reason: string, metadata: Readonly<Record<string, string>> = {}): OutgoingDetail {
  return { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: DOMAIN, metadata }) };
}

function codeOf(error: DomainError): Code {
  if (error instanceof NotFoundError) return Code.NotFound;
  if (error instanceof ValidationError) return Code.InvalidArgument;
  if (error instanceof PreconditionError) return Code.FailedPrecondition;
  if (error instanceof ConflictError) return Code.AlreadyExists;
  if (error instanceof UnauthenticatedError) return Code.Unauthenticated;
  if (error instanceof PermissionDeniedError) return Code.PermissionDenied;
  if (error instanceof RateLimitedError) return Code.ResourceExhausted;
  return Code.Internal;
}

/**
 * The status for an error thrown by an implementation of `method` (e.g. `createPayment`, which
 * chooses the advice in a channel error's message). Causes that callers must not see are logged.
 */
export function toConnectError(error: unknown, log: (message: string, error: unknown) => void, method?: string): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof DomainError) {
    const details: OutgoingDetail[] = [errorInfo(error.reason, error.metadata)];
    if (error instanceof ValidationError) {
      details.push({
        desc: BadRequestSchema,
        value: create(BadRequestSchema, { fieldViolations: error.violations }),
      });
    }
    if (error instanceof RateLimitedError) {
      const ms = BigInt(Math.max(0, Math.ceil(error.retryAfterMs)));
      details.push({
        desc: RetryInfoSchema,
        value: create(RetryInfoSchema, { retryDelay: { seconds: ms / 1000n, nanos: Number(ms % 1000n) * 1_000_000 } }),
      });
    }
    return new ConnectError(boundedMessage(error.message), codeOf(error), undefined, details);
  }
  // Channel errors carry the channel's URL, host, port and raw answer text: those go to the log
  // only. The caller gets a fixed message per kind of failure, the channel and the kind.
  if (error instanceof ChannelUnavailableError) {
    const failure = channelFailureKind(error);
    log(`${method ?? "call"}: ${error.channel} channel unavailable (${failure})`, error);
    const metadata: Record<string, string> = { channel: error.channel, failure };
    if (error instanceof ChannelAnswerUntrustedError) metadata.channel_code = error.code;
    const message = `${CHANNEL_FAILURE_MESSAGES[failure](channelTitle(error.channel))}; ${RETRY_ADVICE.get(method ?? "") ?? DEFAULT_RETRY_ADVICE}`;
    return new ConnectError(message, Code.Unavailable, undefined, [errorInfo(error.reason, metadata)]);
  }
  if (error instanceof ChannelRejectedError) {
    log(`${method ?? "call"}: ${error.channel} channel rejected the request`, error);
    const code = CHANNEL_CODE.test(error.code) ? error.code : "UNRECOGNIZED";
    return new ConnectError(`the ${channelTitle(error.channel)} channel declined the request (${code})`, Code.FailedPrecondition, undefined, [
      errorInfo(error.reason, { channel: error.channel, channel_code: code }),
    ]);
  }
  if (error instanceof ChannelTradePaidError) {
    return new ConnectError(`the ${channelTitle(error.channel)} channel reports the trade as paid`, Code.FailedPrecondition, undefined, [
      errorInfo("INVALID_TRANSITION", { channel: error.channel }),
    ]);
  }
  log("internal error", error);
  return new ConnectError("internal error", Code.Internal, undefined, [errorInfo("INTERNAL")]);
}

/**
 * Longest message sent, in characters. A domain message may quote the caller's input (an id, a
 * number); a megabyte of it in `grpc-message` is more than gRPC clients accept, and they then never
 * see an answer at all. Validation messages are bounded by VALIDATION_ERROR_LIMITS already.
 */
const MAX_MESSAGE_CHARS = 1024;

function boundedMessage(message: string): string {
  return echoable(message, MAX_MESSAGE_CHARS);
}

const CHANNEL_FAILURE_MESSAGES: Record<ChannelFailure, (channel: string) => string> = {
  TIMEOUT: (channel) => `the ${channel} channel did not answer in time`,
  UNREACHABLE: (channel) => `the ${channel} channel could not be reached`,
  CHANNEL_ERROR: (channel) => `the ${channel} channel is temporarily unavailable`,
  RESPONSE_SIGNATURE_INVALID: (channel) => `the ${channel} channel's answer failed signature verification and was not used`,
  UNEXPECTED_RESPONSE: (channel) => `the ${channel} channel's answer could not be read and was not used`,
};

/** What a caller should know when the channel gave no usable answer, by RPC method. */
const RETRY_ADVICE = new Map<string, string>([
  ["createPayment", "the payment is stored; send the same request again to continue"],
  ["queryPayment", "nothing was changed; try again"],
  ["closePayment", "the payment is unchanged; try again"],
]);
const DEFAULT_RETRY_ADVICE = "try again";

/** The channel's name as sent to callers: one of ours, never anything else. */
function channelTitle(channel: string): string {
  return (CHANNEL_NAMES as readonly string[]).includes(channel) ? channel : "payment";
}

/** A channel's business code (ACQ.TRADE_HAS_SUCCESS, ORDERPAID, card_declined) is passed on; other text is not. */
const CHANNEL_CODE = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Maps whatever an implementation (or an interceptor inside this one, such as authentication)
 * throws to its status with {@link toConnectError}: thrown from a unary call, before a stream's
 * first message or in the middle of a stream, the caller gets the same code, message and details.
 * Put it first among the interceptors, so it sees every error the others raise.
 */
export function createErrorInterceptor(log: (message: string, error: unknown) => void): Interceptor {
  // A promise chain, not an async function: one layer and its microtasks less on every call. An
  // interceptor inside may also throw before returning its promise (authentication does).
  return (next) => (req) => {
    const map = (error: unknown) => toConnectError(error, log, req.method.localName);
    return promiseOf(() => next(req)).then(
      (res) => (res.stream ? { ...res, message: mapStreamErrors(res.message, map) } : res),
      (error: unknown) => {
        throw map(error);
      },
    );
  };
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, map: (error: unknown) => ConnectError): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw map(error);
  }
}
