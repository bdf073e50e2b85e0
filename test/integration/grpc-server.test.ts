import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  create,
  createFileRegistry,
  type DescMessage,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  Int32ValueSchema,
  type Timestamp,
  timestampFromDate,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { MerchantSchema, MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { createGrpcServer, listenGrpc, setGrpcServing, shutdownGrpc } from "../../src/rpc/grpc-server.js";
import { readGrpcErrorDetails } from "../support/grpc-errors.js";
import { grpcError } from "../support/waiting.js";

const createdAt: Timestamp = timestampFromDate(new Date("2025-01-02T03:04:05Z"));

const merchantImpl: Partial<ServiceImpl<typeof MerchantService>> = {
  async getMerchant(request, ctx) {
    if (request.merchantId === "missing") {
      throw new ConnectError(`merchant ${request.merchantId} not found`, Code.NotFound, undefined, [
        { desc: ErrorInfoSchema, value: { reason: "MERCHANT_NOT_FOUND", domain: "payments.v1" } },
      ]);
    }
    if (request.merchantId === "boom") {
      throw new Error("connection to db-primary refused, password=hunter2");
    }
    ctx.responseHeader.set("x-request-id", ctx.requestHeader.get("x-request-id") ?? "");
    ctx.responseTrailer.set("x-has-timeout", String(ctx.timeoutMs() !== undefined));
    ctx.responseTrailer.set("x-trace-bin", ctx.requestHeader.get("x-trace-bin") ?? "");
    return {
      merchant: { id: request.merchantId, name: "Acme", apiKeyPrefix: "sk_live_ab", createdAt },
    };
  },
  async createMerchant(request) {
    if (request.name === "") {
      throw new ConnectError("invalid merchant", Code.InvalidArgument, undefined, [
        {
          desc: BadRequestSchema,
          value: { fieldViolations: [{ field: "name", description: "must not be empty" }] },
        },
        { desc: ErrorInfoSchema, value: { reason: "INVALID_ARGUMENT", domain: "payments.v1" } },
      ]);
    }
    return { merchant: { id: "m_1", name: request.name }, apiKey: "sk_live_abc", webhookSecret: "whsec" };
  },
  // rotateApiKey is left out on purpose: it must answer UNIMPLEMENTED.
};

// gen/ has no streaming RPC yet, so a test-only service over Int32Value covers the streaming handlers.
const countFile = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "test/v1/count_service.proto",
    package: "test.v1",
    dependency: ["google/protobuf/wrappers.proto"],
    syntax: "proto3",
    service: [
      {
        name: "CountService",
        method: [
          { name: "Count", inputType: ".google.protobuf.Int32Value", outputType: ".google.protobuf.Int32Value", serverStreaming: true },
          { name: "Sum", inputType: ".google.protobuf.Int32Value", outputType: ".google.protobuf.Int32Value", clientStreaming: true },
          {
            name: "Double",
            inputType: ".google.protobuf.Int32Value",
            outputType: ".google.protobuf.Int32Value",
            clientStreaming: true,
            serverStreaming: true,
          },
        ],
      },
    ],
  }),
  (name) => (name === file_google_protobuf_wrappers.proto.name ? file_google_protobuf_wrappers : undefined),
);
const CountService = countFile.getService("test.v1.CountService") as GenService<{
  count: { methodKind: "server_streaming"; input: typeof Int32ValueSchema; output: typeof Int32ValueSchema };
  sum: { methodKind: "client_streaming"; input: typeof Int32ValueSchema; output: typeof Int32ValueSchema };
  double: { methodKind: "bidi_streaming"; input: typeof Int32ValueSchema; output: typeof Int32ValueSchema };
}>;

let countAborted = false;
const countImpl: ServiceImpl<typeof CountService> = {
  // Counts 1..value; value 0 counts forever until the call is cancelled; value -1 fails after one message.
  async *count(request, ctx) {
    for (let n = 1; request.value <= 0 || n <= request.value; n++) {
      if (request.value === -1 && n === 2) {
        throw new ConnectError("count failed", Code.FailedPrecondition, undefined, [
          { desc: ErrorInfoSchema, value: { reason: "COUNT_FAILED" } },
        ]);
      }
      if (ctx.signal.aborted) {
        countAborted = true;
        return;
      }
      yield { value: n };
      await new Promise((resolve) => setTimeout(resolve, request.value === 0 ? 10 : 0));
    }
  },
  async sum(requests) {
    let total = 0;
    for await (const request of requests) total += request.value;
    return { value: total };
  },
  async *double(requests) {
    for await (const request of requests) yield { value: request.value * 2 };
  },
};

const interceptedBy: Interceptor = (next) => async (request) => {
  const response = await next(request);
  response.header.set("x-intercepted", request.method.name);
  return response;
};

let server: grpc.Server;
let port: number;
let address: string;
let client: grpc.Client;

beforeAll(async () => {
  server = createGrpcServer({
    services: [
      { service: MerchantService, impl: merchantImpl },
      { service: CountService, impl: countImpl },
    ],
    interceptors: [interceptedBy],
  });
  port = await listenGrpc(server, "127.0.0.1", 0);
  address = `127.0.0.1:${port}`;
  client = new grpc.Client(address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  if (server) await shutdownGrpc(server, 1_000);
});

interface UnaryResult<O extends DescMessage> {
  response: MessageShape<O>;
  header: grpc.Metadata;
  trailer: grpc.Metadata;
}

/** Calls a unary method with a plain grpc-js client, as a polyglot gRPC client would. */
function callUnary<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<UnaryResult<O>> {
  return new Promise((resolve, reject) => {
    let header = new grpc.Metadata();
    let outcome: { error: grpc.ServiceError } | { response: MessageShape<O> } | undefined;
    const call = client.makeUnaryRequest(
      `/${method.parent.typeName}/${method.name}`,
      (message: MessageShape<I>) => Buffer.from(toBinary(method.input, message)),
      (bytes: Buffer) => fromBinary(method.output, bytes),
      create(method.input, request),
      metadata,
      options,
      (error, response) => {
        outcome = error ? { error } : { response: response as MessageShape<O> };
      },
    );
    call.on("metadata", (received) => {
      header = received;
    });
    // grpc-js reports the status (with trailers) after the callback.
    call.on("status", (status) => {
      if (outcome && "response" in outcome) resolve({ response: outcome.response, header, trailer: status.metadata });
      else reject(outcome?.error ?? new Error("no outcome"));
    });
  });
}

function readAll<T>(call: grpc.ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const messages: T[] = [];
    call.on("data", (message: T) => messages.push(message));
    call.on("error", reject);
    call.on("end", () => resolve(messages));
  });
}

const int32 = {
  serialize: (message: { value: number }) => Buffer.from(toBinary(Int32ValueSchema, create(Int32ValueSchema, message))),
  deserialize: (bytes: Buffer) => fromBinary(Int32ValueSchema, bytes),
};

describe("grpc-js client", () => {
  it("gets a response with request metadata in the context and response headers and trailers back", async () => {
    const metadata = new grpc.Metadata();
    metadata.set("x-request-id", "req-42");
    metadata.set("x-trace-bin", Buffer.from([0, 1, 2, 255]));

    const { response, header, trailer } = await callUnary(
      MerchantService.method.getMerchant,
      { merchantId: "m_1" },
      metadata,
      { deadline: Date.now() + 10_000 },
    );

    expect(response.merchant).toEqual(
      create(MerchantSchema, { id: "m_1", name: "Acme", apiKeyPrefix: "sk_live_ab", createdAt }),
    );
    expect(header.get("x-request-id")).toEqual(["req-42"]);
    expect(header.get("x-intercepted")).toEqual(["GetMerchant"]);
    expect(trailer.get("x-has-timeout")).toEqual(["true"]);
    expect(trailer.get("x-trace-bin")).toEqual([Buffer.from([0, 1, 2, 255])]);
  });

  it("keeps each call's own context through the interceptor chain, which is built once per method", async () => {
    const ids = Array.from({ length: 20 }, (_, index) => `req-${index}`);
    const answers = await Promise.all(
      ids.map((id) => {
        const metadata = new grpc.Metadata();
        metadata.set("x-request-id", id);
        return callUnary(MerchantService.method.getMerchant, { merchantId: id }, metadata);
      }),
    );
    expect(answers.map(({ response, header }) => [response.merchant?.id, header.get("x-request-id")[0]])).toEqual(ids.map((id) => [id, id]));
  });

  it("receives a ConnectError as its status code, message and google.rpc.Status details", async () => {
    const error = await grpcError(callUnary(MerchantService.method.getMerchant, { merchantId: "missing" }));

    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(error.details).toBe("merchant missing not found");
    const details = readGrpcErrorDetails(error);
    expect(details.status?.code).toBe(grpc.status.NOT_FOUND);
    expect(details.errorInfo?.reason).toBe("MERCHANT_NOT_FOUND");
    expect(details.errorInfo?.domain).toBe("payments.v1");
  });

  it("receives field violations as google.rpc.BadRequest", async () => {
    const error = await grpcError(callUnary(MerchantService.method.createMerchant, { name: "" }));

    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    const { badRequest, errorInfo } = readGrpcErrorDetails(error);
    expect(badRequest?.fieldViolations.map(({ field, description }) => ({ field, description }))).toEqual([
      { field: "name", description: "must not be empty" },
    ]);
    expect(errorInfo?.reason).toBe("INVALID_ARGUMENT");
  });

  it("gets INTERNAL without the cause for an unexpected error, and the cause is logged once", async () => {
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const error = await grpcError(callUnary(MerchantService.method.getMerchant, { merchantId: "boom" }));

      expect(error.code).toBe(grpc.status.INTERNAL);
      expect(error.details).toBe("internal error");
      expect(JSON.stringify(error.metadata.toJSON())).not.toContain("hunter2");
      expect(readGrpcErrorDetails(error)).toEqual({});
      expect(log).toHaveBeenCalledTimes(1);
      expect(String(log.mock.calls[0]?.[1])).toContain("hunter2");
    } finally {
      log.mockRestore();
    }
  });

  it("gets UNIMPLEMENTED for a method the implementation leaves out", async () => {
    const error = await grpcError(callUnary(MerchantService.method.rotateApiKey, { merchantId: "m_1" }));
    expect(error.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("streams server responses in order", async () => {
    const call = client.makeServerStreamRequest(
      "/test.v1.CountService/Count",
      int32.serialize,
      int32.deserialize,
      { value: 3 },
    );
    expect((await readAll(call)).map(({ value }) => value)).toEqual([1, 2, 3]);
  });

  it("ends a server stream with the error status and details after the messages sent", async () => {
    const call = client.makeServerStreamRequest(
      "/test.v1.CountService/Count",
      int32.serialize,
      int32.deserialize,
      { value: -1 },
    );
    const received: number[] = [];
    call.on("data", ({ value }: { value: number }) => received.push(value));
    const error = await grpcError(readAll(call));

    expect(received).toEqual([1]);
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(readGrpcErrorDetails(error).errorInfo?.reason).toBe("COUNT_FAILED");
  });

  it("aborts the context signal when the client cancels a stream", async () => {
    countAborted = false;
    const call = client.makeServerStreamRequest(
      "/test.v1.CountService/Count",
      int32.serialize,
      int32.deserialize,
      { value: 0 },
    );
    call.on("error", () => {});
    await new Promise<void>((resolve) => {
      let count = 0;
      call.on("data", () => {
        if (++count === 2) {
          call.cancel();
          resolve();
        }
      });
    });
    await vi.waitFor(() => expect(countAborted).toBe(true));
  });

  it("reads a client stream", async () => {
    const total = await new Promise<number>((resolve, reject) => {
      const call = client.makeClientStreamRequest(
        "/test.v1.CountService/Sum",
        int32.serialize,
        int32.deserialize,
        (error, response) => (error ? reject(error) : resolve(response?.value ?? Number.NaN)),
      );
      for (const value of [1, 2, 3, 4]) call.write({ value });
      call.end();
    });
    expect(total).toBe(10);
  });

  it("answers a bidi stream message by message", async () => {
    const call = client.makeBidiStreamRequest("/test.v1.CountService/Double", int32.serialize, int32.deserialize);
    const all = readAll(call);
    for (const value of [1, 2, 3]) call.write({ value });
    call.end();
    expect((await all).map(({ value }) => value)).toEqual([2, 4, 6]);
  });

  it("rejects a request above maxReceiveMessageLength with RESOURCE_EXHAUSTED", async () => {
    const small = createGrpcServer({
      services: [{ service: MerchantService, impl: merchantImpl }],
      maxReceiveMessageLength: 1_024,
    });
    const smallPort = await listenGrpc(small, "127.0.0.1", 0);
    const smallClient = new grpc.Client(`127.0.0.1:${smallPort}`, grpc.credentials.createInsecure());
    try {
      const method = MerchantService.method.createMerchant;
      const error = await grpcError(
        new Promise((resolve, reject) =>
          smallClient.makeUnaryRequest(
            `/${MerchantService.typeName}/${method.name}`,
            (message: MessageShape<typeof method.input>) => Buffer.from(toBinary(method.input, message)),
            (bytes: Buffer) => fromBinary(method.output, bytes),
            create(method.input, { name: "x".repeat(2_000) }),
            (callError, response) => (callError ? reject(callError) : resolve(response)),
          ),
        ),
      );
      expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      smallClient.close();
      await shutdownGrpc(small, 1_000);
    }
  });

  it("reports SERVING on grpc.health.v1.Health, then NOT_SERVING once shutting down", async () => {
    const other = createGrpcServer({ services: [{ service: MerchantService, impl: merchantImpl }] });
    const otherPort = await listenGrpc(other, "127.0.0.1", 0);
    const Health = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, "Health");
    const health = new Health(`127.0.0.1:${otherPort}`, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<unknown>((resolve, reject) =>
        health["Check"]!({ service }, (error: grpc.ServiceError | null, response: unknown) =>
          error ? reject(error) : resolve(response),
        ),
      );
    try {
      expect(await check("")).toEqual({ status: "SERVING" });
      expect(await check("payments.v1.MerchantService")).toEqual({ status: "SERVING" });
      setGrpcServing(other, false);
      expect(await check("")).toEqual({ status: "NOT_SERVING" });
      expect(await check("payments.v1.MerchantService")).toEqual({ status: "NOT_SERVING" });
    } finally {
      health.close();
      await shutdownGrpc(other, 1_000);
    }
  });
});

describe("connect-es client over the gRPC protocol", () => {
  const transport = () => createGrpcTransport({ baseUrl: `http://${address}` });

  it("gets a response", async () => {
    const merchants = createClient(MerchantService, transport());
    const response = await merchants.getMerchant({ merchantId: "m_1" });
    expect(response.merchant?.name).toBe("Acme");
  });

  it("reads the error code and typed details", async () => {
    const merchants = createClient(MerchantService, transport());
    const error = ConnectError.from(await grpcError(merchants.getMerchant({ merchantId: "missing" })));

    expect(error.code).toBe(Code.NotFound);
    expect(error.rawMessage).toBe("merchant missing not found");
    expect(error.findDetails(ErrorInfoSchema).map(({ reason }) => reason)).toEqual(["MERCHANT_NOT_FOUND"]);

    const invalid = ConnectError.from(await grpcError(merchants.createMerchant({ name: "" })));
    expect(invalid.code).toBe(Code.InvalidArgument);
    expect(invalid.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("name");
  });

  it("streams server responses", async () => {
    const counter = createClient(CountService, transport());
    const values: number[] = [];
    for await (const { value } of counter.count({ value: 4 })) values.push(value);
    expect(values).toEqual([1, 2, 3, 4]);
  });
});

describe("server reflection", () => {
  it("lists the services over grpc.reflection.v1", async () => {
    // ServerReflectionRequest { list_services = 7 } → ServerReflectionResponse { list_services_response = 6 { service = 1 { name = 1 } } }
    const call = client.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      (listServices: string) => Buffer.from(new BinaryWriter().uint32((7 << 3) | 2).string(listServices).finish()),
      (bytes: Buffer) => decodeServiceNames(bytes),
    );
    const responses = readAll(call);
    call.write("*");
    call.end();

    expect((await responses).flat().sort()).toEqual(["grpc.health.v1.Health", "payments.v1.MerchantService", "test.v1.CountService"]);
  });

  it("lets buf curl list the methods and call them, grpc.health.v1.Health included, without the proto files", async () => {
    const run = promisify(execFile);
    const base = `http://${address}`;
    const curl = (...args: string[]) =>
      run("npx", ["--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
        timeout: 60_000,
      });

    const { stdout: methods } = await curl("--list-methods", base);
    expect(methods.split("\n").filter(Boolean).sort()).toEqual([
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/List",
      "grpc.health.v1.Health/Watch",
      "payments.v1.MerchantService/CreateMerchant",
      "payments.v1.MerchantService/GetMerchant",
      "payments.v1.MerchantService/ListMerchantWebhookDeliveries",
      "payments.v1.MerchantService/RedeliverMerchantWebhook",
      "payments.v1.MerchantService/RotateApiKey",
      "payments.v1.MerchantService/RotateWebhookSecret",
      "payments.v1.MerchantService/SetFeeRule",
      "test.v1.CountService/Count",
      "test.v1.CountService/Double",
      "test.v1.CountService/Sum",
    ]);

    const { stdout: reply } = await curl("-d", '{"merchantId":"m_7"}', `${base}/payments.v1.MerchantService/GetMerchant`);
    expect(JSON.parse(reply)).toEqual({
      merchant: { id: "m_7", name: "Acme", apiKeyPrefix: "sk_live_ab", createdAt: "2025-01-02T03:04:05Z" },
    });

    // Before health was described by reflection: "failed to find service named grpc.health.v1.Health".
    const { stdout: health } = await curl(`${base}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(health)).toEqual({ status: "SERVING" });
    const { stdout: merchantHealth } = await curl("-d", '{"service":"payments.v1.MerchantService"}', `${base}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(merchantHealth)).toEqual({ status: "SERVING" });
  });
});

function decodeServiceNames(bytes: Uint8Array): string[] {
  const names: string[] = [];
  const response = new BinaryReader(bytes);
  while (response.pos < response.len) {
    const [field, wireType] = response.tag();
    if (field !== 6) {
      response.skip(wireType);
      continue;
    }
    const list = new BinaryReader(response.bytes());
    while (list.pos < list.len) {
      const [listField, listWireType] = list.tag();
      if (listField !== 1) {
        list.skip(listWireType);
        continue;
      }
      const service = new BinaryReader(list.bytes());
      while (service.pos < service.len) {
        const [serviceField, serviceWireType] = service.tag();
        if (serviceField === 1) names.push(service.string());
        else service.skip(serviceWireType);
      }
    }
  }
  return names;
}

describe("interceptors that replace the unary request", () => {
  // One adds a header to a copy of the request (its call context travels along); one builds a
  // request from scratch, leaving the call's context behind: a wiring mistake, answered INTERNAL.
  const addsHeader: Interceptor = (next) => (request) => {
    const header = new Headers(request.header);
    header.set("x-request-id", "set-by-interceptor");
    return next({ ...request, header });
  };
  const rebuilds: Interceptor = (next) => (request) =>
    request.method.name === "CreateMerchant"
      ? next({
          stream: false,
          message: request.message,
          method: request.method,
          service: request.service,
          requestMethod: request.requestMethod,
          url: request.url,
          header: request.header,
          contextValues: request.contextValues,
          signal: new AbortController().signal,
        } as Parameters<typeof next>[0])
      : next(request);
  let replacing: grpc.Server;
  let replacingClient: grpc.Client;

  beforeAll(async () => {
    replacing = createGrpcServer({ services: [{ service: MerchantService, impl: merchantImpl }], interceptors: [addsHeader, rebuilds] });
    const replacingPort = await listenGrpc(replacing, "127.0.0.1", 0);
    replacingClient = new grpc.Client(`127.0.0.1:${replacingPort}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    replacingClient?.close();
    if (replacing) await shutdownGrpc(replacing, 1_000);
  });

  function call(method: "GetMerchant" | "CreateMerchant", bytes: Buffer): Promise<{ error?: grpc.ServiceError; header: grpc.Metadata }> {
    return new Promise((resolve) => {
      let header = new grpc.Metadata();
      const unary = replacingClient.makeUnaryRequest(
        `/${MerchantService.typeName}/${method}`,
        (message: Buffer) => message,
        (answer: Buffer) => answer,
        bytes,
        (error) => resolve({ error: error ?? undefined, header }),
      );
      unary.on("metadata", (received) => {
        header = received;
      });
    });
  }

  it("gives the implementation the replaced request's headers", async () => {
    const { error, header } = await call("GetMerchant", Buffer.from(toBinary(MerchantService.method.getMerchant.input, create(MerchantService.method.getMerchant.input, { merchantId: "m_1" }))));
    expect(error).toBeUndefined();
    expect(header.get("x-request-id")).toEqual(["set-by-interceptor"]);
  });

  it("answers INTERNAL when an interceptor drops the call's context", async () => {
    const { error } = await call("CreateMerchant", Buffer.from(toBinary(MerchantService.method.createMerchant.input, create(MerchantService.method.createMerchant.input, { name: "Shop" }))));
    expect(error?.code).toBe(grpc.status.INTERNAL);
    // Named as the wiring mistake it is, not a TypeError from a missing context.
    expect(error?.details).toBe("an interceptor dropped the call's context");
  });
});
