/**
 * A test-only service with server-streaming RPCs, served by the app next to its own services and
 * behind the same interceptors (`AppOptions.extraServices`), to prove that streams get the same
 * authentication and error mapping as unary calls. It is built from a descriptor here rather than
 * from proto/, so the public API does not grow a method only tests call.
 *
 * `Watch` (merchant) reads its request as `<messages>:<failure>[:<argument>]`: it streams
 * `<merchant id>#<n>` for n = 1..messages, then fails as `<failure>` says ("none" ends the stream).
 */
import { create, createFileRegistry, type DescMethod, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema, file_google_protobuf_wrappers, StringValueSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import type { ExtraService } from "../../src/app.js";
import { ChannelUnavailableError } from "../../src/channels/channel.js";
import { NotFoundError, ValidationError } from "../../src/errors.js";
import { type Access, merchantOf } from "../../src/rpc/auth.js";

const streaming = { inputType: ".google.protobuf.StringValue", outputType: ".google.protobuf.StringValue", serverStreaming: true };
const unary = { inputType: ".google.protobuf.StringValue", outputType: ".google.protobuf.StringValue" };

const probeFile = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "test/v1/stream_probe_service.proto",
    package: "test.v1",
    dependency: ["google/protobuf/wrappers.proto"],
    syntax: "proto3",
    service: [
      {
        name: "StreamProbeService",
        method: [
          { name: "Watch", ...streaming },
          { name: "AdminWatch", ...streaming },
          { name: "UnlistedWatch", ...streaming },
          { name: "UnlistedGet", ...unary },
        ],
      },
    ],
  }),
  (name) => (name === file_google_protobuf_wrappers.proto.name ? file_google_protobuf_wrappers : undefined),
);

type StringStream = { methodKind: "server_streaming"; input: typeof StringValueSchema; output: typeof StringValueSchema };

/** The test service's descriptor, typed for connect-es clients. */
export const StreamProbeService = probeFile.getService("test.v1.StreamProbeService") as GenService<{
  watch: StringStream;
  adminWatch: StringStream;
  unlistedWatch: StringStream;
  unlistedGet: { methodKind: "unary"; input: typeof StringValueSchema; output: typeof StringValueSchema };
}>;

/** Calls that reached an implementation, by method; the refused ones must never get there. */
export const probeCalls: Record<string, number> = {};

function count(method: string): void {
  probeCalls[method] = (probeCalls[method] ?? 0) + 1;
}

/** The error `Watch` throws for a `<failure>` of its request. */
function failure(kind: string, argument: string): Error | undefined {
  switch (kind) {
    case "none":
      return undefined;
    case "payment_not_found":
      return new NotFoundError("PAYMENT_NOT_FOUND", `payment ${argument} not found`);
    case "invalid":
      return new ValidationError([{ field: "payment_id", reason: "REQUIRED", description: "is required" }]);
    case "channel_down":
      return new ChannelUnavailableError("alipay", "alipay.trade.query: connect ECONNREFUSED 10.1.2.3:443");
    case "unexpected":
      return new Error("connection to db-primary refused, password=hunter2");
    default:
      throw new Error(`unknown failure ${kind}`);
  }
}

const impl: ServiceImpl<typeof StreamProbeService> = {
  async *watch(request, ctx) {
    count("watch");
    const [messages = "0", kind = "none", argument = ""] = request.value.split(":");
    const merchant = merchantOf(ctx);
    for (let n = 1; n <= Number(messages); n++) yield { value: `${merchant.id}#${n}` };
    const error = failure(kind, argument);
    if (error) throw error;
  },
  async *adminWatch() {
    count("adminWatch");
    yield { value: "admin" };
  },
  async *unlistedWatch() {
    count("unlistedWatch");
    yield { value: "should never be sent" };
  },
  async unlistedGet() {
    count("unlistedGet");
    return { value: "should never be sent" };
  },
};

const access: Array<readonly [DescMethod, Access]> = [
  [StreamProbeService.method.watch, "merchant"],
  [StreamProbeService.method.adminWatch, "admin"],
  // unlistedWatch and unlistedGet are left out of the access table on purpose.
];

/** For `startTestApp({ extraServices: [streamProbe] })`. */
export const streamProbe: ExtraService = { service: StreamProbeService, impl, access };

/** What a server stream delivered before it ended: its messages, and the error it ended with, if any. */
export interface StreamOutcome<E> {
  messages: string[];
  error?: E;
}

/** Calls a server-streaming probe method with a plain grpc-js client. */
export function grpcStream(
  address: string,
  method: "Watch" | "AdminWatch" | "UnlistedWatch",
  value: string,
  headers: Record<string, string>,
): Promise<StreamOutcome<grpc.ServiceError>> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  for (const [key, text] of Object.entries(headers)) metadata.set(key, text);
  const call = client.makeServerStreamRequest(
    `/${StreamProbeService.typeName}/${method}`,
    (message: { value: string }) => Buffer.from(toBinary(StringValueSchema, create(StringValueSchema, message))),
    (bytes: Buffer) => fromBinary(StringValueSchema, bytes),
    { value },
    metadata,
  );
  return new Promise((resolve) => {
    const messages: string[] = [];
    call.on("data", (message: { value: string }) => messages.push(message.value));
    call.on("error", (error: grpc.ServiceError) => {
      client.close();
      resolve({ messages, error });
    });
    call.on("end", () => {
      client.close();
      resolve({ messages });
    });
  });
}
