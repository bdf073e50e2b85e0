/** Small helpers shared by the integration tests. */
import { ConnectError } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";

/**
 * Reads until `done` holds or the time is up, and returns the last value read: the assertion
 * after it fails with the real value when the condition never came true.
 */
export async function eventually<T>(read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The error a gRPC call fails with; fails the test when it succeeds. */
export async function grpcError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error("expected the call to fail");
}

/** The error a Connect call fails with; fails the test when it succeeds. */
export async function connectError(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

/** The error (anything thrown) a call rejects with; fails the test when it succeeds. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail");
}
