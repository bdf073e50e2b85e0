/**
 * A typed promise client over plain grpc-js for any protobuf-es service: the kind of client an
 * internal Node service would use, independent of connect-es.
 */
import { type DescMessage, type DescService, fromBinary, type MessageInitShape, type MessageShape, create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

type UnaryMethods<S extends DescService> = {
  [K in keyof S["method"] as S["method"][K] extends { methodKind: "unary" } ? K : never]: S["method"][K] extends {
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
  }
    ? (request: MessageInitShape<I>, metadata?: Record<string, string>) => Promise<MessageShape<O>>
    : never;
};

export type GrpcJsClient<S extends DescService> = UnaryMethods<S> & { close(): void };

export function createGrpcJsClient<S extends DescService>(service: S, address: string): GrpcJsClient<S> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const methods: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue;
    methods[method.localName] = (request: MessageInitShape<DescMessage>, headers: Record<string, string> = {}) => {
      const metadata = new grpc.Metadata();
      for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          `/${service.typeName}/${method.name}`,
          (message: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, message)),
          (bytes: Buffer) => fromBinary(method.output, bytes),
          create(method.input, request),
          metadata,
          (error, response) => (error ? reject(error) : resolve(response)),
        );
      });
    };
  }
  return methods as GrpcJsClient<S>;
}
