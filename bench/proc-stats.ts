/**
 * CPU time and memory of a process on this machine, read from /proc (Linux only): the figures
 * the harness reports per server process. Other platforms get zeros rather than a failed run.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

/** Clock ticks per second for /proc/<pid>/stat times; 100 on every Linux the harness targets. */
const TICKS_PER_SECOND = 100;

/** User and system (kernel) CPU seconds in a `/proc/.../stat` file (a process's or one thread's). */
function statTimes(path: string): { user: number; system: number } {
  try {
    const stat = readFileSync(path, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** User and system (kernel) CPU seconds the process has used since it started. */
export function cpuTimes(pid: number): { user: number; system: number } {
  return statTimes(`/proc/${pid}/stat`);
}

/**
 * User + system CPU seconds of the process's main thread (the JavaScript thread, whose task id is
 * the pid): the rest of the process's CPU is V8's helper threads (parallel scavenges, concurrent
 * marking and compilation) and libuv's pool.
 */
export function mainThreadCpuSeconds(pid: number): number {
  const { user, system } = statTimes(`/proc/${pid}/task/${pid}/stat`);
  return user + system;
}

/**
 * Read and write system calls the process has made since it started, and the bytes they moved
 * (`/proc/<pid>/io`: sockets, pipes and files alike); zeros where it cannot be read.
 */
export function ioCounts(pid: number): { reads: number; writes: number; bytesRead: number; bytesWritten: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(io)?.[1] ?? 0);
    return { reads: field("syscr"), writes: field("syscw"), bytesRead: field("rchar"), bytesWritten: field("wchar") };
  } catch {
    return { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0 };
  }
}

/** User + system CPU seconds the process has used since it started. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** Peak resident set size in bytes (VmHWM): since start, or since the last {@link resetPeakRss}. */
export function peakRssBytes(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Resets the process's VmHWM to its current RSS (`5` to /proc/<pid>/clear_refs, Linux 4.0+), so
 * the next reading is the peak of one measurement. Returns false where that is not allowed, in
 * which case the peak is the one since the process started.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * The pid of the MySQL/MariaDB server listening on `port` on this machine, found by its command
 * line (`--port=N`, or no port option for the default 3306); undefined when it cannot be told.
 */
export function mysqlServerPid(port: number): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const candidates: number[] = [];
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      if (comm !== "mariadbd" && comm !== "mysqld") continue;
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const portArg = args.find((arg) => arg.startsWith("--port="));
      if (portArg ? Number(portArg.slice(7)) === port : port === 3306) candidates.push(Number(pid));
    } catch {
      // gone, or not ours to read
    }
  }
  return candidates.length === 1 ? candidates[0] : undefined;
}
