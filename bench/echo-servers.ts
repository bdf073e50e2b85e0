/**
 * The framework floor: an echo RPC on each server stack the service uses, in its own process so
 * its CPU and memory can be read alone. `tsx bench/echo-servers.ts grpc-js|connect [port]` prints
 * `{"port":N}` once listening.
 *
 * - `grpc-js`: a `@grpc/grpc-js` server, messages (de)serialized with protobuf-es as the service's
 *   adapter does.
 * - `connect`: connect-node's gRPC handler (`connectNodeAdapter`) on a cleartext HTTP/2 server.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { ECHO_PATH, EchoMessageSchema, EchoService } from "./echo-service.js";

async function startGrpcJs(port: number): Promise<number> {
  const server = new grpc.Server();
  const definition: grpc.ServiceDefinition = {
    Echo: {
      path: ECHO_PATH,
      originalName: "echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: (message: Message) => Buffer.from(toBinary(EchoMessageSchema, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(EchoMessageSchema, bytes),
      responseSerialize: (message: Message) => Buffer.from(toBinary(EchoMessageSchema, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(EchoMessageSchema, bytes),
    },
  };
  const echo: grpc.handleUnaryCall<Message, Message> = (call, callback) => callback(null, call.request);
  server.addService(definition, { Echo: echo });
  return new Promise((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
}

async function startConnect(port: number): Promise<number> {
  const handler = connectNodeAdapter({
    routes(router: ConnectRouter) {
      router.service(EchoService, { echo: (request: Message) => request } as never);
    },
  });
  const server = http2.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

const kind = process.argv[2];
const port = Number(process.argv[3] ?? 0);
if (kind !== "grpc-js" && kind !== "connect") {
  console.error("usage: echo-servers.ts grpc-js|connect [port]");
  process.exit(2);
}
const bound = kind === "grpc-js" ? await startGrpcJs(port) : await startConnect(port);
console.log(JSON.stringify({ port: bound }));
process.on("SIGTERM", () => process.exit(0));
