/**
 * The one mapping from domain errors to RPC status codes, with a `google.rpc.ErrorInfo` reason
 * (and `google.rpc.BadRequest` field violations for invalid input) on every error. Unexpected
 * errors become INTERNAL: the cause is logged here, never sent.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

type OutgoingDetail = Extract<ConnectError["details"][number], { desc: unknown }>;
import {
  ChannelAnswerUntrustedError,
  ChannelRejectedError,
  ChannelTradePaidError,
  ChannelUnavailableError,
} from "../channels/channel.js";
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

export function toConnectError(error: unknown, log: (message: string, error: unknown) => void): ConnectError {
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
    return new ConnectError(error.message, codeOf(error), undefined, details);
  }
  if (error instanceof ChannelUnavailableError) {
    const metadata: Record<string, string> = { channel: error.channel };
    if (error instanceof ChannelAnswerUntrustedError) metadata.channel_code = error.code;
    return new ConnectError(error.message, Code.Unavailable, undefined, [errorInfo(error.reason, metadata)]);
  }
  if (error instanceof ChannelRejectedError) {
    return new ConnectError(error.message, Code.FailedPrecondition, undefined, [
      errorInfo(error.reason, { channel: error.channel, channel_code: error.code }),
    ]);
  }
  if (error instanceof ChannelTradePaidError) {
    return new ConnectError(error.message, Code.FailedPrecondition, undefined, [errorInfo("INVALID_TRANSITION")]);
  }
  log("internal error", error);
  return new ConnectError("internal error", Code.Internal, undefined, [errorInfo("INTERNAL")]);
}

/** Wraps every method of a service implementation so that thrown errors are mapped here. */
export function mapErrors<T extends object>(impl: T, log: (message: string, error: unknown) => void): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(impl)) {
    if (typeof method !== "function") continue;
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await method.apply(impl, args);
      } catch (error) {
        throw toConnectError(error, log);
      }
    };
  }
  return wrapped as T;
}
