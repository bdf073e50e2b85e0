/**
 * Readers of the PaymentService server streams (StreamEvents, WatchPayment) for the event tests:
 * one over plain grpc-js, one over a connect-es Connect client, both collecting messages as they
 * arrive so a test can wait for some, act, and wait for more.
 */
import { create, type DescMethodServerStreaming, fromBinary, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { type Client, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import type { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";

/** What a stream delivered so far, and how it ended. */
export interface StreamReader<T> {
  messages: T[];
  /** Resolves when the stream ends: with the error it ended with, if any (a gRPC status code in `code`). */
  ended: Promise<{ code?: number; error?: unknown }>;
  /** Whether it has ended. */
  readonly done: boolean;
  /** Cancels the call from the client. */
  cancel(): void;
}

/** Opens a server stream with a grpc-js client (its own channel, closed when the stream ends). */
export function grpcServerStream<M extends DescMethodServerStreaming>(
  address: string,
  method: M,
  request: MessageInitShape<M["input"]>,
  headers: Record<string, string>,
): StreamReader<MessageShape<M["output"]>> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
  const call = client.makeServerStreamRequest(
    `/${method.parent.typeName}/${method.name}`,
    (message: MessageShape<M["input"]>) => Buffer.from(toBinary(method.input, message)),
    (bytes: Buffer) => fromBinary(method.output, bytes),
    create(method.input, request) as MessageShape<M["input"]>,
    metadata,
  );
  const messages: Array<MessageShape<M["output"]>> = [];
  let done = false;
  const ended = new Promise<{ code?: number; error?: unknown }>((resolve) => {
    call.on("data", (message: MessageShape<M["output"]>) => messages.push(message));
    call.on("error", (error: grpc.ServiceError) => {
      done = true;
      client.close();
      resolve({ code: error.code, error });
    });
    call.on("end", () => {
      done = true;
      client.close();
      resolve({});
    });
  });
  return {
    messages,
    ended,
    get done() {
      return done;
    },
    cancel: () => call.cancel(),
  };
}

type PaymentClient = Client<typeof PaymentService>;

/** Opens a server stream with a Connect client; `code` is the Connect code (numbered as gRPC's). */
export function connectServerStream<T>(
  open: (client: PaymentClient, options: { headers: Record<string, string>; signal: AbortSignal }) => AsyncIterable<T>,
  client: PaymentClient,
  headers: Record<string, string>,
): StreamReader<T> {
  const abort = new AbortController();
  const messages: T[] = [];
  let done = false;
  const ended = (async () => {
    try {
      for await (const message of open(client, { headers, signal: abort.signal })) messages.push(message);
      return {};
    } catch (error) {
      return { code: ConnectError.from(error).code as number, error: ConnectError.from(error) };
    } finally {
      done = true;
    }
  })();
  return {
    messages,
    ended,
    get done() {
      return done;
    },
    cancel: () => abort.abort(),
  };
}
