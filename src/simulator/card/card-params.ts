/**
 * Request parsing for the card side: Stripe's form encoding (`name=v`, `name[key]=v`,
 * `name[]=v` / `name[0]=v`), typed readers with Stripe's error answers, and list pages.
 */
import { invalidRequest, type Json, noSuch } from "./card-errors.js";

/** Parsed form or query parameters: plain values, `name[key]` hashes and `name[]` lists. */
export interface Params {
  values: Map<string, string>;
  hashes: Map<string, Map<string, string>>;
  lists: Map<string, string[]>;
  /** Sorted `k=v` text, compared for idempotent replays. */
  canonical(): string;
}

const METADATA_MAX_KEYS = 50;
const METADATA_KEY_MAX_CHARS = 40;
const METADATA_VALUE_MAX_CHARS = 500;
const PARAM_KEY = /^([a-z_]+)(?:\[([^\]]*)\])?$/;
/** One search clause, `metadata['key']:'value'`, with `\'` escapes. */
export const METADATA_CLAUSE = /^\s*metadata\['((?:[^'\\]|\\.)*)'\]\s*:\s*'((?:[^'\\]|\\.)*)'\s*$/;

/** Removes the `\` of `\'` escapes in search clauses. */
export function unquote(text: string): string {
  return text.replace(/\\(.)/g, "$1");
}

/** Parses a form body or query string; deeper nesting than one level is refused as an unknown parameter. */
export function parseParams(text: string): Params {
  const values = new Map<string, string>();
  const hashes = new Map<string, Map<string, string>>();
  const lists = new Map<string, string[]>();
  const pairs: string[] = [];
  for (const [key, value] of new URLSearchParams(text)) {
    pairs.push(`${key}=${value}`);
    const match = PARAM_KEY.exec(key);
    if (!match) throw invalidRequest(`Received unknown parameter: ${key}`, { code: "parameter_unknown", param: key });
    const [, name, inner] = match as unknown as [string, string, string | undefined];
    if (inner === undefined) values.set(name, value);
    else if (inner === "" || /^\d+$/.test(inner)) {
      const list = lists.get(name);
      if (list) list.push(value);
      else lists.set(name, [value]);
    } else {
      const hash = hashes.get(name) ?? new Map<string, string>();
      hashes.set(name, hash);
      hash.set(inner, value);
    }
  }
  return { values, hashes, lists, canonical: () => pairs.sort().join("&") };
}

/** Refuses any parameter not in `allowed`, as Stripe does (`parameter_unknown`). */
export function onlyParams(params: Params, allowed: ReadonlySet<string>): void {
  for (const names of [params.values.keys(), params.hashes.keys(), params.lists.keys()]) {
    for (const name of names) {
      if (!allowed.has(name)) throw invalidRequest(`Received unknown parameter: ${name}`, { code: "parameter_unknown", param: name });
    }
  }
}

/** A non-negative integer of at most 18 digits, or undefined when absent or empty. */
export function integerParam(params: Params, name: string): bigint | undefined {
  const text = params.values.get(name);
  if (text === undefined || text === "") return undefined;
  if (!/^\d{1,18}$/.test(text)) throw invalidRequest(`Invalid integer: ${text}`, { code: "parameter_invalid_integer", param: name });
  return BigInt(text);
}

/** `true`/`false`; absent or empty is false. */
export function booleanParam(params: Params, name: string): boolean {
  const text = params.values.get(name);
  if (text === undefined || text === "" || text === "false") return false;
  if (text === "true") return true;
  throw invalidRequest(`Invalid boolean: ${text}`, { code: "parameter_invalid_empty", param: name });
}

/** One of `allowed`, or null when absent or empty. */
export function enumParam(params: Params, name: string, allowed: readonly string[]): string | null {
  const text = params.values.get(name);
  if (text === undefined || text === "") return null;
  if (!allowed.includes(text)) {
    throw invalidRequest(`Invalid ${name}: must be one of ${allowed.join(", ")}`, { code: "parameter_invalid_string", param: name });
  }
  return text;
}

/** `metadata[key]=value` pairs with Stripe's limits; an empty value leaves the key out. */
export function metadataParam(params: Params): Record<string, string> {
  const metadata: Record<string, string> = {};
  const hash = params.hashes.get("metadata");
  if (!hash) return metadata;
  if (hash.size > METADATA_MAX_KEYS) throw invalidRequest(`Metadata can have at most ${METADATA_MAX_KEYS} keys.`, { param: "metadata" });
  for (const [key, value] of hash) {
    if (key.length > METADATA_KEY_MAX_CHARS) {
      throw invalidRequest(`Metadata keys can have up to ${METADATA_KEY_MAX_CHARS} characters.`, { param: `metadata[${key}]` });
    }
    if (value.length > METADATA_VALUE_MAX_CHARS) {
      throw invalidRequest(`Metadata values can have up to ${METADATA_VALUE_MAX_CHARS} characters.`, { param: `metadata[${key}]` });
    }
    if (value !== "") metadata[key] = value;
  }
  return metadata;
}

/** `limit`, 1 to 100, default 10. */
export function listLimit(params: Params): number {
  const limit = integerParam(params, "limit") ?? 10n;
  if (limit < 1n || limit > 100n) throw invalidRequest("This value must be between 1 and 100.", { param: "limit" });
  return Number(limit);
}

/** One page of a list, newest first, continued with Stripe's `starting_after` cursor. */
export function listPage<T>(params: Params, url: string, items: T[], idOf: (item: T) => string, render: (item: T) => Json): Json {
  const limit = listLimit(params);
  const after = params.values.get("starting_after");
  let start = 0;
  if (after) {
    const index = items.findIndex((item) => idOf(item) === after);
    if (index < 0) throw noSuch("object", after, "starting_after");
    start = index + 1;
  }
  return { object: "list", data: items.slice(start, start + limit).map(render), has_more: start + limit < items.length, url };
}
