/**
 * Which URLs the service will post merchant notifications to. A notify URL is chosen by the
 * caller, so without rules it lets anyone make the service send requests into its own network
 * (cloud metadata at 169.254.169.254, databases on loopback, private hosts). Two checks:
 *
 * - {@link validateNotifyUrl} when a URL is accepted (CreateMerchant, CreatePayment): it must be
 *   an absolute http(s) URL, https unless allowed, without credentials, and its host must not be
 *   an internal name or address, however the address is spelled (WHATWG URL parsing turns
 *   `2130706433`, `0x7f.1` and `127.1` into `127.0.0.1` first, and IPv6 forms that embed an IPv4
 *   address are checked as that address).
 * - {@link resolveNotifyTarget} when a notification is sent: the host's DNS answers are checked
 *   too (a public name may resolve to an internal address), and the caller connects to the
 *   address returned, so a second lookup cannot give a different answer (DNS rebinding).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIPv4, isIPv6 } from "node:net";
import type { Violations } from "../errors.js";

/** `config.notifyUrls`: what an operator allows beyond public https URLs. */
export interface NotifyUrlPolicy {
  /** `NOTIFY_URL_ALLOW_HTTP`: accept http:// as well as https://. */
  allowHttp: boolean;
  /** `NOTIFY_URL_ALLOW_PRIVATE`: accept loopback, private, link-local and other internal hosts. */
  allowPrivateNetworks: boolean;
}

/** The policy when none is given: public https URLs only. */
export const STRICT_NOTIFY_URL_POLICY: Readonly<NotifyUrlPolicy> = Object.freeze({
  allowHttp: false,
  allowPrivateNetworks: false,
});

/** Longest notify URL accepted: the size of the `notify_url` columns. */
export const MAX_NOTIFY_URL_LENGTH = 512;

// Names that only mean something inside a network: RFC 6761/6762 special-use names, the ICANN
// private-use `.internal` (metadata.google.internal), home networks, and GCP's other metadata name.
// The metadata services' addresses (169.254.169.254, 100.100.100.200, fd00:ec2::254) fall in the
// ranges below.
const INTERNAL_NAME_SUFFIXES = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp"];
const INTERNAL_NAMES = new Set(["localhost", "metadata.goog"]);

/**
 * Adds a field violation for each problem with `value` as a notify URL under `policy`. The empty
 * string means "none" and is valid.
 */
export function validateNotifyUrl(violations: Violations, field: string, value: string, policy: NotifyUrlPolicy): void {
  const problem = notifyUrlProblem(value, policy);
  if (problem) violations.add(field, problem.reason, problem.description);
}

/** What is wrong with `value` as a notify URL, or undefined when nothing is. */
export function notifyUrlProblem(value: string, policy: NotifyUrlPolicy): { reason: string; description: string } | undefined {
  if (value === "") return undefined;
  if (value.length > MAX_NOTIFY_URL_LENGTH) {
    return { reason: "TOO_LONG", description: `must be at most ${MAX_NOTIFY_URL_LENGTH} characters` };
  }
  // The URL parser silently drops tabs and newlines and trims spaces; refuse them so the stored
  // text is exactly the URL that was checked.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
  if (/[\u0000-\u0020\u007f-\u009f]/.test(value)) {
    return { reason: "INVALID_URL", description: "must not contain spaces or control characters" };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { reason: "INVALID_URL", description: "must be an absolute http(s) URL" };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { reason: "INVALID_URL", description: "must be an absolute http(s) URL" };
  }
  if (url.username !== "" || url.password !== "") {
    return { reason: "CREDENTIALS_IN_URL", description: "must not contain a user name or password" };
  }
  if (url.port === "0") return { reason: "INVALID_URL", description: "must not use port 0" };
  if (!policy.allowPrivateNetworks) {
    const why = internalHostReason(url.hostname);
    if (why) {
      return {
        reason: "INTERNAL_ADDRESS",
        description: `must point to a public host, not ${why} (NOTIFY_URL_ALLOW_PRIVATE is off)`,
      };
    }
  }
  if (url.protocol === "http:" && !policy.allowHttp) {
    return { reason: "HTTPS_REQUIRED", description: "must be an https:// URL (NOTIFY_URL_ALLOW_HTTP is off)" };
  }
  return undefined;
}

/**
 * Why a URL host (as `URL.hostname` gives it: IPv6 in brackets, IPv4 in dotted form) is internal,
 * e.g. "a loopback address", or undefined for a public name or address. Names are judged by their
 * text only; what they resolve to is checked when sending.
 */
function internalHostReason(hostname: string): string | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[") && host.endsWith("]")) return internalAddressReason(host.slice(1, -1));
  if (isIPv4(host)) return internalAddressReason(host);
  if (host === "") return "an empty host";
  if (INTERNAL_NAMES.has(host) || INTERNAL_NAME_SUFFIXES.some((suffix) => host.endsWith(suffix))) {
    return `an internal name (${host})`;
  }
  // A single label resolves through the resolver's search domains, i.e. to a host of our own network.
  if (!host.includes(".")) return `a single-label name (${host})`;
  return undefined;
}

type Range = readonly [prefix: readonly number[], bits: number, what: string];

// IPv4 ranges that are not public unicast (RFC 6890 special-purpose registry).
const IPV4_RANGES: readonly Range[] = [
  [[0, 0, 0, 0], 8, "an unspecified or 'this network' address"],
  [[10, 0, 0, 0], 8, "a private address"],
  [[100, 64, 0, 0], 10, "a carrier-grade NAT address"],
  [[127, 0, 0, 0], 8, "a loopback address"],
  [[169, 254, 0, 0], 16, "a link-local or cloud metadata address"],
  [[172, 16, 0, 0], 12, "a private address"],
  [[192, 0, 0, 0], 24, "an IETF protocol address"],
  [[192, 0, 2, 0], 24, "a documentation address"],
  [[192, 88, 99, 0], 24, "a 6to4 relay address"],
  [[192, 168, 0, 0], 16, "a private address"],
  [[198, 18, 0, 0], 15, "a benchmarking address"],
  [[198, 51, 100, 0], 24, "a documentation address"],
  [[203, 0, 113, 0], 24, "a documentation address"],
  [[224, 0, 0, 0], 4, "a multicast address"],
  [[240, 0, 0, 0], 4, "a reserved or broadcast address"],
];

// IPv6 ranges as 16 bytes (RFC 6890, RFC 4291). Ranges that embed an IPv4 address are handled apart.
const IPV6_RANGES: readonly Range[] = [
  [[0x01, 0x00, 0, 0, 0, 0, 0, 0], 64, "a discard-only address"],
  [[0x20, 0x01, 0x00, 0x00], 32, "a Teredo tunnel address"],
  [[0x20, 0x01, 0x00, 0x02, 0, 0], 48, "a benchmarking address"],
  [[0x20, 0x01, 0x0d, 0xb8], 32, "a documentation address"],
  [[0xfc], 7, "a private (unique local) address"],
  [[0xfe, 0x80], 10, "a link-local address"],
  [[0xfe, 0xc0], 10, "a site-local address"],
  [[0xff], 8, "a multicast address"],
];

function inRange(bytes: readonly number[], [prefix, bits]: Range): boolean {
  for (let bit = 0; bit < bits; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((bytes[byte] ?? 0) & mask) !== ((prefix[byte] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Why an IP address (IPv4 dotted or IPv6 text, without brackets) is internal, or undefined for a
 * public unicast address. Text that is no IP address at all counts as internal: fail closed.
 */
export function internalAddressReason(address: string): string | undefined {
  if (isIPv4(address)) {
    const bytes = address.split(".").map(Number);
    return IPV4_RANGES.find((range) => inRange(bytes, range))?.[2];
  }
  const bytes = isIPv6(address) ? ipv6Bytes(address) : undefined;
  if (!bytes) return "not an IP address";
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 16)) return "the unspecified address";
  if (zeros(0, 15) && bytes[15] === 1) return "a loopback address";
  const embedded = (at: number) => bytes.slice(at, at + 4).join(".");
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and
  // 6to4 (2002:aabb:ccdd::) addresses reach the IPv4 address inside: judge that one.
  let inner: string | undefined;
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) inner = embedded(12);
  else if (zeros(0, 12)) inner = embedded(12);
  else if (inRange(bytes, [[0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96, ""])) inner = embedded(12);
  else if (bytes[0] === 0x20 && bytes[1] === 0x02) inner = embedded(2);
  if (inner !== undefined) {
    const why = internalAddressReason(inner);
    return why ? `${why} (${inner}, inside an IPv6 address)` : undefined;
  }
  return IPV6_RANGES.find((range) => inRange(bytes, range))?.[2];
}

/** The 16 bytes of an IPv6 address in text form (with `::` and an optional trailing dotted IPv4). */
function ipv6Bytes(address: string): number[] | undefined {
  let text = address.toLowerCase().replace(/%.*$/, "");
  let dotted: number[] = [];
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  if (last.includes(".")) {
    if (!isIPv4(last)) return undefined;
    dotted = last.split(".").map(Number);
    // Two placeholder groups where the dotted part was; its bytes replace them below.
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const groups = hextets(text);
  if (!groups) return undefined;
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  if (dotted.length === 4) bytes.splice(12, 4, ...dotted);
  return bytes;
}

function hextets(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const groups = [...head, ...new Array<number>(Math.max(0, missing)).fill(0), ...tail];
  return groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined;
}

/** A notify URL the sender may not post to: refused by the policy, or its host did not resolve. */
export class NotifyTargetRefusedError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where to send one notification: connect to `address` and send `hostname` as Host and TLS server name. */
export interface NotifyTarget {
  url: URL;
  hostname: string;
  address: string;
  family: 4 | 6;
  port: number;
}

/** `dns.promises.lookup` with `all: true`, replaceable in tests. */
export type LookupAll = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const lookupAll: LookupAll = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Checks a stored notify URL again just before sending (the rules may have changed since it was
 * accepted) and resolves its host: refused when any address it resolves to is internal and the
 * policy does not allow internal hosts. The sender must connect to the returned address (not look
 * the name up again), so the name cannot be re-pointed at an internal address in between.
 */
export async function resolveNotifyTarget(
  notifyUrl: string,
  policy: NotifyUrlPolicy,
  lookup: LookupAll = lookupAll,
): Promise<NotifyTarget> {
  if (notifyUrl === "") throw new NotifyTargetRefusedError("NO_NOTIFY_URL", "no notify URL");
  const problem = notifyUrlProblem(notifyUrl, policy);
  if (problem) throw new NotifyTargetRefusedError(problem.reason, `notify URL ${problem.description}`);
  const url = new URL(notifyUrl);
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  const bare = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  if (isIPv4(bare) || isIPv6(bare)) {
    return { url, hostname: bare, address: bare, family: isIPv4(bare) ? 4 : 6, port };
  }
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = await lookup(bare);
  } catch (error) {
    const code = (error as { code?: string }).code ?? "lookup failed";
    throw new NotifyTargetRefusedError("UNRESOLVABLE_HOST", `notify URL host ${bare} does not resolve (${code})`);
  }
  if (addresses.length === 0) {
    throw new NotifyTargetRefusedError("UNRESOLVABLE_HOST", `notify URL host ${bare} does not resolve`);
  }
  if (!policy.allowPrivateNetworks) {
    for (const { address } of addresses) {
      const why = internalAddressReason(address);
      if (why) {
        throw new NotifyTargetRefusedError(
          "INTERNAL_ADDRESS",
          `notify URL host ${bare} resolves to ${address}, ${why} (NOTIFY_URL_ALLOW_PRIVATE is off)`,
        );
      }
    }
  }
  const chosen = addresses[0]!;
  return { url, hostname: bare, address: chosen.address, family: chosen.family === 6 ? 6 : 4, port };
}
