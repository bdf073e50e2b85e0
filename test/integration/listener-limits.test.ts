/**
 * Connection limits of both listeners against clients that misbehave on purpose: too many streams or
 * connections, requests never finished or trickled, idle and old connections, ping floods, slow-loris
 * headers. Limits are set small; assertions are "eventually closed", never "closed within X ms".
 */
import { connect as connectTcp, type Socket } from "node:net";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import type { CallbackService } from "../../src/callbacks/callback-service.js";
import type { GrpcLimits, HttpLimits } from "../../src/config.js";
import { createGrpcServer, listenGrpc, shutdownGrpc } from "../../src/rpc/grpc-server.js";
import { createHttpServer, type HttpListener } from "../../src/rpc/http-server.js";
import { connectRawHttp2, FRAME, grpcMessagePrefix, H2_ERROR, type RawHttp2Connection } from "../support/raw-http2.js";

const eventually = { timeout: 10_000, interval: 25 };
const createMerchantPath = "/payments.v1.MerchantService/CreateMerchant";

const merchantImpl: Partial<ServiceImpl<typeof MerchantService>> = {
  async getMerchant(request) {
    return { merchant: { id: request.merchantId, name: "Acme" } };
  },
  async createMerchant(request) {
    return { merchant: { id: "m_1", name: request.name }, apiKey: "sk", webhookSecret: "wh" };
  },
};

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGrpc(limits: Partial<GrpcLimits>): Promise<number> {
  const server = createGrpcServer({ services: [{ service: MerchantService, impl: merchantImpl }], limits });
  const port = await listenGrpc(server, "127.0.0.1", 0);
  cleanups.push(() => shutdownGrpc(server, 100));
  return port;
}

/** A well-behaved client: grpc.health.v1.Health/Check over its own connection. */
function healthClient(port: number): () => Promise<unknown> {
  const Health = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, "Health");
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  return () =>
    new Promise((resolve, reject) =>
      client["Check"]!({ service: "" }, { deadline: Date.now() + 5_000 }, (error: Error | null, response: unknown) =>
        error ? reject(error) : resolve(response),
      ),
    );
}

async function rawConnection(port: number): Promise<RawHttp2Connection> {
  const connection = await connectRawHttp2(port);
  cleanups.push(() => connection.close());
  return connection;
}

async function http2Session(port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  cleanups.push(() => session.destroy());
  await new Promise((resolve) => session.once("remoteSettings", resolve));
  return session;
}

/** Starts a CreateMerchant call whose request message (declared `declared` bytes) is never finished. */
function unfinishedCall(session: http2.ClientHttp2Session, declared: number, sent: number) {
  const stream = session.request({ ":method": "POST", ":path": createMerchantPath, "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => {});
  let grpcStatus: string | undefined;
  stream.on("response", (headers) => {
    grpcStatus ??= headers["grpc-status"] as string | undefined;
  });
  stream.on("trailers", (trailers) => {
    grpcStatus ??= trailers["grpc-status"] as string | undefined;
  });
  stream.resume();
  stream.write(Buffer.concat([grpcMessagePrefix(declared), Buffer.alloc(sent, 0x0a)]));
  return { stream, status: () => grpcStatus };
}

describe("gRPC listener", () => {
  it("advertises maxConcurrentStreams and refuses the streams above it on one connection", async () => {
    const port = await startGrpc({ maxConcurrentStreams: 3, requestTimeoutMs: 60_000 });
    const check = healthClient(port);
    const attacker = await rawConnection(port);
    const streamIds = [1, 3, 5, 7, 9, 11];
    for (const id of streamIds) {
      attacker.openStream(id, createMerchantPath);
      attacker.sendData(id, Buffer.concat([grpcMessagePrefix(1_000_000), Buffer.alloc(16_000)]));
    }

    const settings = await vi.waitFor(() => {
      const frame = attacker.frames.find((f) => f.type === FRAME.settings && (f.flags & 1) === 0);
      expect(frame).toBeDefined();
      return frame!.payload;
    }, eventually);
    const advertised = new Map<number, number>();
    for (let at = 0; at + 6 <= settings.length; at += 6) advertised.set(settings.readUInt16BE(at), settings.readUInt32BE(at + 2));
    expect(advertised.get(0x3)).toBe(3); // SETTINGS_MAX_CONCURRENT_STREAMS

    await vi.waitFor(() => {
      for (const id of streamIds.slice(3)) expect(attacker.resetCode(id)).toBe(H2_ERROR.refusedStream);
    }, eventually);
    for (const id of streamIds.slice(0, 3)) expect(attacker.resetCode(id)).toBeUndefined();
    expect(await check()).toEqual({ status: "SERVING" });
  });

  it("answers a request that is never finished with DEADLINE_EXCEEDED and resets its stream, trickled or not", async () => {
    const port = await startGrpc({ requestTimeoutMs: 300 });
    const check = healthClient(port);
    const session = await http2Session(port);
    const calls = Array.from({ length: 5 }, () => unfinishedCall(session, 1024 * 1024, 512 * 1024));
    const trickled = unfinishedCall(session, 100, 1);
    const trickle = setInterval(() => trickled.stream.write(Buffer.from([0x0a])), 50);
    cleanups.push(() => clearInterval(trickle));
    // The whole message, but never the end of the request.
    const unended = unfinishedCall(session, 2, 0);
    unended.stream.write(Buffer.from([0x0a, 0x00]));

    expect(await check()).toEqual({ status: "SERVING" });
    for (const call of [...calls, trickled, unended]) {
      await vi.waitFor(() => expect(call.stream.closed).toBe(true), eventually);
      expect(call.status()).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(call.stream.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    }
    expect(session.closed).toBe(false);
    expect(await check()).toEqual({ status: "SERVING" });
  });

  it("still answers a request that arrives in pieces within the timeout", async () => {
    const port = await startGrpc({ requestTimeoutMs: 5_000 });
    const session = await http2Session(port);
    const call = unfinishedCall(session, 2, 0);
    setTimeout(() => call.stream.end(Buffer.from([0x0a, 0x00])), 100);
    await vi.waitFor(() => expect(call.stream.closed).toBe(true), eventually);
    expect(call.status()).toBe(String(grpc.status.OK));
  });

  it("closes a connection left idle past idleTimeoutMs", async () => {
    const port = await startGrpc({ idleTimeoutMs: 300 });
    const session = await http2Session(port);
    let goawayCode: number | undefined;
    session.on("goaway", (code) => {
      goawayCode = code;
    });
    await vi.waitFor(() => expect(session.closed || session.destroyed).toBe(true), eventually);
    expect(goawayCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });

  it("closes a connection that does not send the HTTP/2 preface within requestTimeoutMs", async () => {
    const port = await startGrpc({ requestTimeoutMs: 300 });
    const socket = connectTcp(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.resume();
    cleanups.push(() => socket.destroy());
    await vi.waitFor(() => expect(socket.closed || socket.readableEnded).toBe(true), eventually);
  });

  it("asks a connection to go away after maxConnectionAgeMs and cuts it after the grace time, calls in flight or not", async () => {
    const port = await startGrpc({ maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 300, requestTimeoutMs: 60_000 });
    const session = await http2Session(port);
    let goaway = false;
    session.on("goaway", () => {
      goaway = true;
    });
    // Keeps the connection busy so that only the age limit can end it.
    unfinishedCall(session, 1024, 10);
    await vi.waitFor(() => expect(goaway).toBe(true), eventually);
    await vi.waitFor(() => expect(session.destroyed).toBe(true), eventually);
  });

  it("refuses connections above maxConnections while those already open keep working", async () => {
    const port = await startGrpc({ maxConnections: 3 });
    const check = healthClient(port);
    expect(await check()).toEqual({ status: "SERVING" });
    const holders = [await rawConnection(port), await rawConnection(port)];
    const refused = await rawConnection(port);

    await refused.closed;
    expect(refused.frames).toEqual([]);
    expect(holders.map((holder) => holder.isClosed())).toEqual([false, false]);
    expect(await check()).toEqual({ status: "SERVING" });

    // Once one closes (and the server has noticed), there is room again.
    holders[0]!.close();
    await vi.waitFor(async () => {
      const next = await rawConnection(port);
      await Promise.race([next.closed, new Promise((resolve) => setTimeout(resolve, 100))]);
      expect(next.frames.some((f) => f.type === FRAME.settings)).toBe(true);
    }, eventually);
  });

  it("ends with GOAWAY ENHANCE_YOUR_CALM a connection that pings more often than keepaliveMinIntervalMs", async () => {
    const port = await startGrpc({ keepaliveMinIntervalMs: 60_000 });
    const check = healthClient(port);
    const attacker = await rawConnection(port);
    for (let i = 0; i < 5; i++) attacker.ping();

    await attacker.closed;
    expect(attacker.goaway()).toMatchObject({ errorCode: H2_ERROR.enhanceYourCalm, debug: "too_many_pings" });
    expect(await check()).toEqual({ status: "SERVING" });
  });

  it("accepts pings as often as the client likes while answers are flowing", async () => {
    const port = await startGrpc({ keepaliveMinIntervalMs: 60_000 });
    const session = await http2Session(port);
    for (let i = 0; i < 6; i++) {
      const call = unfinishedCall(session, 2, 0);
      call.stream.end(Buffer.from([0x0a, 0x00]));
      await new Promise((resolve) => call.stream.once("close", resolve));
      expect(call.status()).toBe(String(grpc.status.OK));
      await new Promise((resolve) => session.ping(resolve));
    }
    expect(session.closed || session.destroyed).toBe(false);
  });
});

describe("HTTP listener", () => {
  const callbacks = {} as CallbackService;

  async function startHttp(limits: Partial<HttpLimits>): Promise<{ server: HttpListener; port: number }> {
    const server = createHttpServer({ services: [], callbacks, maxRequestBytes: 1024, isHealthy: async () => true, limits });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return { server, port: (server.address() as AddressInfo).port };
  }

  async function socketTo(port: number): Promise<{ socket: Socket; received: () => string }> {
    const socket = connectTcp(port, "127.0.0.1");
    socket.on("error", () => {});
    cleanups.push(() => socket.destroy());
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString();
    });
    await new Promise((resolve) => socket.once("connect", resolve));
    return { socket, received: () => received };
  }

  const healthz = async (port: number) => (await fetch(`http://127.0.0.1:${port}/healthz`)).status;

  it("cuts a client that trickles its headers past headersTimeoutMs", async () => {
    const { port } = await startHttp({ headersTimeoutMs: 300, requestTimeoutMs: 60_000 });
    const { socket, received } = await socketTo(port);
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const trickle = setInterval(() => socket.writable && socket.write("X-Slow: 1\r\n"), 50);
    cleanups.push(() => clearInterval(trickle));

    await vi.waitFor(() => expect(socket.closed || socket.readableEnded).toBe(true), eventually);
    expect(received()).toMatch(/^HTTP\/1\.1 408/);
    expect(await healthz(port)).toBe(200);
  });

  it("cuts a client that trickles its body past requestTimeoutMs", async () => {
    const { port } = await startHttp({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const { socket, received } = await socketTo(port);
    socket.write("POST /callbacks/card HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    const trickle = setInterval(() => socket.writable && socket.write("a"), 50);
    cleanups.push(() => clearInterval(trickle));

    await vi.waitFor(() => expect(socket.closed || socket.readableEnded).toBe(true), eventually);
    expect(received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it("answers a callback body past 64 KiB with 413 and closes the connection instead of reading the rest", async () => {
    const { port } = await startHttp({ headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    const { socket, received } = await socketTo(port);
    socket.write(`POST /callbacks/card HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`);
    socket.write(Buffer.alloc(64 * 1024 + 1, "a"));
    // The client keeps sending what it declared; the server must not keep taking it.
    const trickle = setInterval(() => socket.writable && socket.write(Buffer.alloc(1024, "a")), 20);
    cleanups.push(() => clearInterval(trickle));

    await vi.waitFor(() => expect(socket.closed || socket.readableEnded).toBe(true), eventually);
    expect(received()).toMatch(/^HTTP\/1\.1 413/);
    expect(received()).toMatch(/callback too large$/);
    expect(await healthz(port)).toBe(200);
  });

  it("refuses connections above maxConnections", async () => {
    const { port } = await startHttp({ maxConnections: 2, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    const holders = [await socketTo(port), await socketTo(port)];
    const refused = await socketTo(port);
    refused.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");

    await vi.waitFor(() => expect(refused.socket.closed || refused.socket.readableEnded).toBe(true), eventually);
    expect(refused.received()).toBe("");
    expect(holders.map(({ socket }) => socket.closed)).toEqual([false, false]);
  });

  it("closes an idle keep-alive connection after keepAliveTimeoutMs", async () => {
    const { port } = await startHttp({ keepAliveTimeoutMs: 300 });
    const { socket, received } = await socketTo(port);
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    await vi.waitFor(() => expect(received()).toMatch(/^HTTP\/1\.1 200/), eventually);
    await vi.waitFor(() => expect(socket.closed || socket.readableEnded).toBe(true), eventually);
  });
});
