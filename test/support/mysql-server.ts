import { type ChildProcess, spawn } from "node:child_process";
import { constants as fsConstants, rmSync } from "node:fs";
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { freePort } from "./ports.js";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createConnection } from "mysql2/promise";

/** A MySQL-compatible server that tests may create databases on. */
export interface MysqlServer {
  /** `mysql://user[:pass]@host:port` of an account allowed to create and drop databases. */
  url: string;
  /** Stops the server if this process started it (and removes its data); otherwise does nothing. */
  stop(): Promise<void>;
}

const defaultUrl = "mysql://root@127.0.0.1:3306";
const installHint = "apt-get install -y mariadb-server";
const startTimeoutMs = 60_000;

/**
 * Finds a MySQL/MariaDB server for tests and benchmarks, in this order:
 * `MYSQL_URL` when set; else root with an empty password on 127.0.0.1:3306 when that answers;
 * else a private MariaDB started in a temporary directory on a free port (stopped and removed by `stop`).
 * `TEST_MYSQL_PRIVATE=1` skips the 3306 probe to exercise the private path.
 * Throws, naming the install command, when none of these is possible.
 */
export async function ensureMysqlServer(): Promise<MysqlServer> {
  const configured = process.env["MYSQL_URL"];
  if (configured) {
    return { url: configured, stop: async () => {} };
  }
  if (process.env["TEST_MYSQL_PRIVATE"] !== "1" && (await answers(defaultUrl))) {
    return { url: defaultUrl, stop: async () => {} };
  }
  return startPrivateMariadb();
}

async function answers(url: string): Promise<boolean> {
  try {
    const connection = await createConnection({ uri: url, connectTimeout: 2_000 });
    try {
      await connection.query("SELECT 1");
      return true;
    } finally {
      await connection.end();
    }
  } catch {
    return false;
  }
}

async function startPrivateMariadb(): Promise<MysqlServer> {
  const server = await findExecutable(["mariadbd", "mysqld"], ["/usr/sbin"]);
  const installDb = await findExecutable(["mariadb-install-db", "mysql_install_db"], ["/usr/bin"]);
  if (!server || !installDb) {
    throw new Error(
      "Integration tests need MySQL or MariaDB: set MYSQL_URL, run a server on 127.0.0.1:3306 " +
        `accepting root without a password, or install MariaDB so tests can start their own (${installHint}).`,
    );
  }

  const dir = await mkdtemp(join(tmpdir(), "payments-mariadb-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  // mariadbd refuses to run as root unless told to.
  const asRoot = process.getuid?.() === 0 ? ["--user=root"] : [];
  const dataDir = join(dir, "data");
  const errorLog = join(dir, "error.log");

  let child: ChildProcess | undefined;
  const killOnExit = () => {
    child?.kill("SIGKILL");
    removeDir();
  };
  try {
    await run(installDb, [
      "--no-defaults",
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      `--datadir=${dataDir}`,
      ...asRoot,
    ]);
    const port = await freePort();
    child = spawn(
      server,
      [
        "--no-defaults",
        `--datadir=${dataDir}`,
        `--socket=${join(dir, "sock")}`,
        `--pid-file=${join(dir, "mariadbd.pid")}`,
        `--log-error=${errorLog}`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        // Test data is disposable: trade durability for speed.
        "--innodb-flush-log-at-trx-commit=2",
        "--innodb-doublewrite=0",
        ...asRoot,
      ],
      { stdio: "ignore" },
    );
    // Never leave a server behind if the test runner exits without calling stop().
    process.once("exit", killOnExit);
    const url = `mysql://root@127.0.0.1:${port}`;
    await waitUntilAnswers(url, child, errorLog);

    const running = child;
    return {
      url,
      async stop() {
        process.off("exit", killOnExit);
        await terminate(running);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    process.off("exit", killOnExit);
    if (child) await terminate(child);
    removeDir();
    throw error;
  }
}

async function findExecutable(names: string[], extraDirs: string[]): Promise<string | undefined> {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter).filter(Boolean), ...extraDirs];
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        await access(candidate, fsConstants.X_OK);
        return candidate;
      } catch {
        // not here; keep looking
      }
    }
  }
  return undefined;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output.slice(-4_000)}`));
    });
  });
}


async function waitUntilAnswers(url: string, child: ChildProcess, errorLog: string): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`mariadbd exited early (${child.exitCode ?? child.signalCode}):\n${await tail(errorLog)}`);
    }
    if (await answers(url)) return;
    await sleep(200);
  }
  throw new Error(`mariadbd did not answer within ${startTimeoutMs / 1000}s:\n${await tail(errorLog)}`);
}

async function tail(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).slice(-4_000);
  } catch {
    return "(no error log)";
  }
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}
