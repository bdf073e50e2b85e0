/**
 * Ports for servers a test must know the port of before they start (a service process, a
 * publicBaseUrl built from the HTTP port, a NATS server to restart on the same port).
 *
 * Test files run in parallel worker processes, and a port that was free when probed can be taken
 * before the server binds it. So each worker takes ports from its own block, below the kernel's
 * ephemeral range (where port-0 binds and outgoing connections get theirs), and hands out each
 * port once: no other worker, and no port-0 bind anywhere, can take a port between the probe and
 * the bind.
 */
import { createServer } from "node:net";

/** Blocks of ports per worker, from FIRST_PORT up; far below the ephemeral range (32768 and up on Linux). */
const FIRST_PORT = 12_000;
const BLOCK_SIZE = 2_000;
const BLOCKS = 8;

// VITEST_POOL_ID is the worker's slot (1..maxWorkers), stable across the files it runs. A new
// file's process starts at a random place in the block, so it rarely retries ports the last file used.
const slot = (Number(process.env.VITEST_POOL_ID ?? "1") - 1) % BLOCKS;
const blockStart = FIRST_PORT + slot * BLOCK_SIZE;
let next = Math.floor(Math.random() * BLOCK_SIZE);

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** A port on 127.0.0.1 that was free just now and that no other test worker will be given. */
export async function freePort(): Promise<number> {
  for (let tried = 0; tried < BLOCK_SIZE; tried++) {
    const port = blockStart + (next++ % BLOCK_SIZE);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${blockStart}-${blockStart + BLOCK_SIZE - 1}`);
}
