/**
 * Reads V8 `.cpuprofile` files (from `node --cpu-prof`) and lists where the CPU went: the
 * functions with the most self time, and the same time grouped by package (MikroORM, knex, mysql2,
 * grpc-js, ...) or by our own source file. Only samples inside the given windows count, so start-up
 * and idle gaps between runs do not dilute the figures.
 *
 * `tsx bench/profile-summary.ts file.cpuprofile...` prints the summary of whole files.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  selfPercent: number;
  totalPercent?: number;
}

export interface ProfileSummary {
  /** Busy milliseconds counted (samples outside the windows and idle samples excluded). */
  busyMs: number;
  functions: ProfileEntry[];
  groups: ProfileEntry[];
  text: string;
}

/** Where a frame's code comes from: a package, a file of ours, Node's internals or V8 itself. */
export function groupOf(url: string, functionName: string): string {
  if (url === "") {
    if (functionName === "(garbage collector)") return "V8: garbage collector";
    if (functionName === "(program)") return "V8: (program)";
    return "V8/native";
  }
  if (url.startsWith("node:")) return `node: ${url.slice(5).split("/")[0]}`;
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const parts = url.slice(modules + "node_modules/".length).split("/");
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const src = url.search(/\/(src|gen|bench)\//);
  return src >= 0 ? url.slice(src + 1) : url;
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url === "" ? "" : ` ${shortUrl(url)}:${lineNumber + 1}`;
  return `${functionName || "(anonymous)"}${where}`;
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) return url.slice(modules + "node_modules/".length);
  const src = url.search(/\/(src|gen|bench)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, "");
}

/**
 * Summarizes profiles; `windows` are [start, end] in microseconds of the monotonic clock the
 * profiles use. No windows (or an empty list) means whole profiles.
 */
export function summarizeProfiles(files: string[], windows: Array<[number, number]> = [], top = 25): ProfileSummary {
  const selfByFunction = new Map<string, number>();
  const totalByFunction = new Map<string, number>();
  const selfByGroup = new Map<string, number>();
  let busyUs = 0;
  const inWindow = (t: number) => windows.length === 0 || windows.some(([start, end]) => t >= start && t <= end);

  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    let time = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      time += profile.timeDeltas[i] ?? 0;
      // A sample stands for the time until the next one.
      const duration = profile.timeDeltas[i + 1] ?? 0;
      if (!inWindow(time)) continue;
      const node = byId.get(profile.samples[i]!);
      if (!node || node.callFrame.functionName === "(idle)") continue;
      busyUs += duration;
      const name = frameName(node);
      selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + duration);
      const group = groupOf(node.callFrame.url, node.callFrame.functionName);
      selfByGroup.set(group, (selfByGroup.get(group) ?? 0) + duration);
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const frame = byId.get(id)!;
        if (frame.callFrame.functionName === "(root)") break;
        const frameKey = frameName(frame);
        if (seen.has(frameKey)) continue;
        seen.add(frameKey);
        totalByFunction.set(frameKey, (totalByFunction.get(frameKey) ?? 0) + duration);
      }
    }
  }

  const percent = (us: number) => (busyUs > 0 ? (us / busyUs) * 100 : 0);
  const entries = (map: Map<string, number>, withTotal: boolean): ProfileEntry[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({
        name,
        selfMs: us / 1000,
        selfPercent: percent(us),
        ...(withTotal ? { totalPercent: percent(totalByFunction.get(name) ?? 0) } : {}),
      }));
  const functions = entries(selfByFunction, true);
  const groups = entries(selfByGroup, false);
  const lines = [
    `busy CPU counted: ${(busyUs / 1e6).toFixed(2)} s`,
    "",
    "by package / file (self time):",
    ...groups.map((g) => `  ${g.selfPercent.toFixed(1).padStart(5)}%  ${g.name}`),
    "",
    "top functions (self %, total %):",
    ...functions.map((f) => `  ${f.selfPercent.toFixed(1).padStart(5)}%  ${f.totalPercent!.toFixed(1).padStart(5)}%  ${f.name}`),
  ];
  return { busyMs: busyUs / 1000, functions, groups, text: lines.join("\n") };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: tsx bench/profile-summary.ts file.cpuprofile...");
    process.exit(2);
  }
  console.log(summarizeProfiles(files).text);
}
