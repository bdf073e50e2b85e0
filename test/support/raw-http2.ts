/**
 * A deliberately misbehaving HTTP/2 client for listener tests: it writes frames by hand over a TCP
 * socket, so it can ignore the server's SETTINGS (open more streams than allowed) and leave requests
 * unfinished, as an attacker would. Node's own http2 client obeys the limits and cannot do that.
 */
import { connect, type Socket } from "node:net";

export const FRAME = { data: 0, headers: 1, rstStream: 3, settings: 4, ping: 6, goaway: 7 } as const;
export const H2_ERROR = { noError: 0, refusedStream: 7, enhanceYourCalm: 11 } as const;

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export interface RawHttp2Connection {
  socket: Socket;
  frames: ReceivedFrame[];
  closed: Promise<void>;
  isClosed(): boolean;
  /** Opens a gRPC POST stream (HEADERS without END_STREAM) to `path`. */
  openStream(streamId: number, path: string): void;
  /** Sends DATA on a stream, without END_STREAM unless `end`. */
  sendData(streamId: number, data: Buffer, end?: boolean): void;
  ping(): void;
  /** The RST_STREAM error code the server sent for a stream, if any. */
  resetCode(streamId: number): number | undefined;
  goaway(): { lastStreamId: number; errorCode: number; debug: string } | undefined;
  close(): void;
}

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman: enough for short ASCII headers. */
function encodeHeaders(headers: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    parts.push(Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value));
  }
  return Buffer.concat(parts);
}

/**
 * Connects and sends the preface and an empty SETTINGS frame. It never acknowledges the server's
 * SETTINGS, so the server's limits stay "pending" and streams above them get RST_STREAM REFUSED_STREAM
 * (after an acknowledgement nghttp2 would end the whole connection instead).
 */
export async function connectRawHttp2(port: number): Promise<RawHttp2Connection> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const frames: ReceivedFrame[] = [];
  let buffered = Buffer.alloc(0);
  let closed = false;
  const closedPromise = new Promise<void>((resolve) =>
    socket.once("close", () => {
      closed = true;
      resolve();
    }),
  );
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) break;
      frames.push({
        type: buffered.readUInt8(3),
        flags: buffered.readUInt8(4),
        streamId: buffered.readUInt32BE(5) & 0x7fffffff,
        payload: buffered.subarray(9, 9 + length),
      });
      buffered = buffered.subarray(9 + length);
    }
  });
  socket.write(Buffer.concat([preface, frame(FRAME.settings, 0, 0)]));
  const write = (data: Buffer) => {
    if (!closed && !socket.destroyed) socket.write(data);
  };

  return {
    socket,
    frames,
    closed: closedPromise,
    isClosed: () => closed,
    openStream(streamId, path) {
      const block = encodeHeaders([
        [":method", "POST"],
        [":scheme", "http"],
        [":path", path],
        [":authority", `127.0.0.1:${port}`],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
      ]);
      write(frame(FRAME.headers, 0x4, streamId, block));
    },
    sendData(streamId, data, end = false) {
      write(frame(FRAME.data, end ? 0x1 : 0, streamId, data));
    },
    ping() {
      write(frame(FRAME.ping, 0, 0, Buffer.alloc(8)));
    },
    resetCode(streamId) {
      const reset = frames.find((f) => f.type === FRAME.rstStream && f.streamId === streamId);
      return reset?.payload.readUInt32BE(0);
    },
    goaway() {
      const f = frames.find((received) => received.type === FRAME.goaway);
      if (!f) return undefined;
      return {
        lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
        errorCode: f.payload.readUInt32BE(4),
        debug: f.payload.subarray(8).toString(),
      };
    },
    close() {
      socket.destroy();
    },
  };
}

/** The 5-byte gRPC message prefix declaring a message of `length` bytes. */
export function grpcMessagePrefix(length: number): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(length, 1);
  return prefix;
}
