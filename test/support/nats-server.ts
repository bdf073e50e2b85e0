/**
 * A private nats-server with JetStream for one test file (`nats-server -a 127.0.0.1 -p <port> -js
 * -sd <tmpdir>`), a reader of a stream's messages, and a TCP proxy that can hold the server's
 * answers back (PubAcks that never arrive). Like mysql-server.ts, it starts the Debian binary when
 * it exists; without it the tests fail with the install command (CI installs it), they do not skip.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants as fsConstants, rmSync } from "node:fs";
import { access, mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NodeConnectionOptions } from "@nats-io/transport-node";
import { freePort } from "./ports.js";

const INSTALL_HINT = "apt-get install -y nats-server";
const START_TIMEOUT_MS = 20_000;

export interface NatsServer {
  /** `nats://[user:pass@]127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Stops the server and removes its storage directory. */
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** The port to listen on (default a free one): a test can point the relay at it before the server runs. */
  port?: number;
  /** Require this user and password (the URL carries them). */
  user?: string;
  pass?: string;
}

/** Starts a nats-server with JetStream on 127.0.0.1 and resolves once JetStream answers. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = await findExecutable("nats-server", ["/usr/sbin", "/usr/local/bin"]);
  if (!binary) {
    throw new Error(`The NATS relay tests need nats-server with JetStream on PATH or in /usr/sbin: install it (${INSTALL_HINT}); CI's .ci/run does.`);
  }
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), "payments-nats-"));
  const auth = options.user !== undefined ? ["--user", options.user, "--pass", options.pass ?? ""] : [];
  let output = "";
  const child = spawn(binary, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir, ...auth], { stdio: ["ignore", "pipe", "pipe"] });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-8_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const killOnExit = () => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  // Never leave a server behind if the test runner exits without calling stop().
  process.once("exit", killOnExit);
  const credentials = options.user !== undefined ? `${encodeURIComponent(options.user)}:${encodeURIComponent(options.pass ?? "")}@` : "";
  const url = `nats://${credentials}127.0.0.1:${port}`;
  try {
    await waitForJetStream(url, child, () => output);
  } catch (error) {
    process.off("exit", killOnExit);
    await terminate(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    async stop() {
      process.off("exit", killOnExit);
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Client options for a `nats://user:pass@host:port` URL (the client takes credentials as options, not in the URL). */
export function clientOptions(url: string): NodeConnectionOptions {
  const parsed = new URL(url);
  const options: NodeConnectionOptions = { servers: parsed.host, timeout: 2_000 };
  if (parsed.username) Object.assign(options, { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) });
  return options;
}

async function waitForJetStream(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nats-server exited early (${child.exitCode ?? child.signalCode}):\n${output()}`);
    }
    try {
      const connection = await connect({ ...clientOptions(url), reconnect: false });
      try {
        await (await jetstreamManager(connection)).getAccountInfo();
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await sleep(100);
    }
  }
  throw new Error(`nats-server did not answer with JetStream within ${START_TIMEOUT_MS / 1000}s (${String(lastError)}):\n${output()}`);
}

/** One message as stored in a stream. */
export interface StoredEvent {
  seq: number;
  subject: string;
  /** The `Nats-Msg-Id` header. */
  msgId: string | undefined;
  data: Buffer;
}

/** Every message in `stream`, in stream order (an ordered consumer from the first). */
export async function readStream(url: string, stream: string): Promise<StoredEvent[]> {
  const connection = await connect({ ...clientOptions(url), reconnect: false });
  try {
    const count = (await (await jetstreamManager(connection)).streams.info(stream)).state.messages;
    const stored: StoredEvent[] = [];
    if (count === 0) return stored;
    const consumer = await jetstream(connection).consumers.get(stream);
    const messages = await consumer.consume();
    const timeout = setTimeout(() => messages.stop(), 20_000);
    for await (const message of messages) {
      stored.push({ seq: message.seq, subject: message.subject, msgId: message.headers?.get("Nats-Msg-Id"), data: Buffer.from(message.data) });
      if (stored.length >= count) break;
    }
    clearTimeout(timeout);
    return stored;
  } finally {
    await connection.close();
  }
}

/** How many messages `stream` holds (0 when it does not exist yet). */
export async function streamMessageCount(url: string, stream: string): Promise<number> {
  const connection = await connect({ ...clientOptions(url), reconnect: false });
  try {
    return (await (await jetstreamManager(connection)).streams.info(stream)).state.messages;
  } catch (error) {
    if (String(error).includes("stream not found")) return 0;
    throw error;
  } finally {
    await connection.close();
  }
}

/** A TCP proxy in front of a nats-server that counts the client's publishes and can hold back what the server sends. */
export interface NatsProxy {
  url: string;
  /** Publishes (`HPUB`/`PUB` lines) on subjects starting with the proxy's prefix that clients sent through it. */
  publishes(): number;
  /** From now on, the server's bytes (PubAcks included) are kept, not forwarded. */
  holdReplies(): void;
  /** Forwards what was kept, and everything after it. */
  releaseReplies(): void;
  close(): Promise<void>;
}

export async function startNatsProxy(target: { port: number }, subjectPrefix: string): Promise<NatsProxy> {
  const publish = new RegExp(`(^|\\r\\n)H?PUB ${subjectPrefix.replaceAll(".", "\\.")}\\.`, "g");
  let holding = false;
  let publishes = 0;
  const held: Array<{ socket: Socket; chunk: Buffer }> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: target.port });
    sockets.add(client).add(upstream);
    let tail = "";
    client.on("data", (chunk: Buffer) => {
      // Protocol lines start a line; payloads (JSON events) never hold "\r\nHPUB <prefix>.".
      const text = tail + chunk.toString("latin1");
      publishes += (text.match(publish) ?? []).length - (tail.match(publish) ?? []).length;
      tail = text.slice(-(subjectPrefix.length + 8));
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (holding) held.push({ socket: client, chunk });
      else client.write(chunk);
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", closeBoth).on("error", closeBoth);
    upstream.on("close", closeBoth).on("error", closeBoth);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
  return {
    url: `nats://127.0.0.1:${port}`,
    publishes: () => publishes,
    holdReplies() {
      holding = true;
    },
    releaseReplies() {
      holding = false;
      for (const { socket, chunk } of held.splice(0)) if (!socket.destroyed) socket.write(chunk);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function findExecutable(name: string, extraDirs: string[]): Promise<string | undefined> {
  for (const dir of [...(process.env["PATH"] ?? "").split(delimiter).filter(Boolean), ...extraDirs]) {
    try {
      await access(join(dir, name), fsConstants.X_OK);
      return join(dir, name);
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
