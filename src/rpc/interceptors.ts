/**
 * The interceptors every RPC runs through, on the gRPC listener and the HTTP (Connect, gRPC-Web)
 * listener alike, in this order: error mapping outermost, so it also maps what authentication
 * raises, then authentication. Handlers only decode, call the domain and encode.
 */
import type { Interceptor } from "@connectrpc/connect";
import { type AuthInterceptorOptions, createAuthInterceptor } from "./auth.js";
import { createErrorInterceptor } from "./errors.js";

/** What {@link createRpcInterceptors} needs. */
export interface RpcInterceptorOptions extends AuthInterceptorOptions {
  /** Logs the causes of errors callers are not told about (INTERNAL, channel failures). */
  logError: (message: string, error: unknown) => void;
}

/** Error mapping, then authentication; pass the same list to both listeners. */
export function createRpcInterceptors(options: RpcInterceptorOptions): Interceptor[] {
  return [createErrorInterceptor(options.logError), createAuthInterceptor(options)];
}
