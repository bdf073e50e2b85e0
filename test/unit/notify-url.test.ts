import { describe, expect, it } from "vitest";
import { Violations } from "../../src/errors.js";
import {
  internalAddressReason,
  MAX_NOTIFY_URL_LENGTH,
  type NotifyUrlPolicy,
  notifyUrlProblem,
  resolveNotifyTarget,
  STRICT_NOTIFY_URL_POLICY,
  validateNotifyUrl,
} from "../../src/notifications/notify-url.js";

const strict = STRICT_NOTIFY_URL_POLICY;
const httpAllowed: NotifyUrlPolicy = { allowHttp: true, allowPrivateNetworks: false };
const everything: NotifyUrlPolicy = { allowHttp: true, allowPrivateNetworks: true };

const reasonOf = (url: string, policy: NotifyUrlPolicy = httpAllowed) => notifyUrlProblem(url, policy)?.reason;

describe("notify URL validation", () => {
  it("accepts public https URLs, and none at all", () => {
    for (const url of ["https://shop.example/notify", "https://pay.example.com:8443/hooks/pay?x=1", "https://93.184.216.34/n", "https://[2606:4700::1111]/n", ""]) {
      expect(notifyUrlProblem(url, strict), url).toBeUndefined();
    }
  });

  it("requires https unless NOTIFY_URL_ALLOW_HTTP", () => {
    expect(reasonOf("http://shop.example/notify", strict)).toBe("HTTPS_REQUIRED");
    expect(reasonOf("http://shop.example/notify", httpAllowed)).toBeUndefined();
  });

  it("refuses what is not an absolute http(s) URL", () => {
    for (const url of ["shop.example/notify", "/notify", "ftp://shop.example/", "javascript:alert(1)", "file:///etc/passwd", "https://", "https://exa mple.com/"]) {
      expect(reasonOf(url, everything), url).toBe("INVALID_URL");
    }
  });

  it("refuses control characters the URL parser would silently drop", () => {
    expect(reasonOf("https://shop.exa\tmple/notify", everything)).toBe("INVALID_URL");
    expect(reasonOf("https://shop.example/no\ntify", everything)).toBe("INVALID_URL");
    expect(reasonOf(" https://shop.example/notify", everything)).toBe("INVALID_URL");
  });

  it("refuses credentials in the URL, even when private networks are allowed", () => {
    expect(reasonOf("http://admin:pw@127.0.0.1:3306/", everything)).toBe("CREDENTIALS_IN_URL");
    expect(reasonOf("https://user@shop.example/", everything)).toBe("CREDENTIALS_IN_URL");
    expect(reasonOf("https://:secret@shop.example/", everything)).toBe("CREDENTIALS_IN_URL");
  });

  it("refuses URLs longer than the column", () => {
    const url = `https://shop.example/${"a".repeat(MAX_NOTIFY_URL_LENGTH)}`;
    expect(reasonOf(url)).toBe("TOO_LONG");
    expect(reasonOf(url.slice(0, MAX_NOTIFY_URL_LENGTH))).toBeUndefined();
  });

  it("refuses internal addresses in every spelling", () => {
    const internal = [
      "http://169.254.169.254/latest/meta-data/",
      "http://127.0.0.1/",
      "http://127.8.9.10/",
      "http://2130706433/",
      "http://0x7f.1/",
      "http://127.1/",
      "http://0177.0.0.1/",
      "http://0x7f000001/",
      "http://%31%32%37.0.0.1/",
      "http://１２７.0.0.1/",
      "http://0.0.0.0/",
      "http://0/",
      "http://10.1.2.3/",
      "http://172.16.0.1/",
      "http://172.31.255.255/",
      "http://192.168.1.1/",
      "http://100.64.0.1/",
      "http://100.100.100.200/",
      "http://192.0.0.192/",
      "http://198.18.0.1/",
      "http://224.0.0.1/",
      "http://255.255.255.255/",
      "http://240.0.0.1/",
      "http://[::1]/",
      "http://[::]/",
      "http://[0:0:0:0:0:0:0:1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:7f00:1]/",
      "http://[::ffff:a9fe:a9fe]/",
      "http://[::127.0.0.1]/",
      "http://[64:ff9b::a9fe:a9fe]/",
      "http://[2002:7f00:1::]/",
      "http://[fc00::1]/",
      "http://[fd00:ec2::254]/",
      "http://[fe80::1]/",
      "http://[ff02::1]/",
      "http://localhost/",
      "http://LOCALHOST./",
      "http://foo.localhost/",
      "http://metadata.google.internal/computeMetadata/v1/",
      "http://metadata.google.internal./",
      "http://metadata.goog/",
      "http://printer.local/",
      "http://router.home.arpa/",
      "http://db/",
    ];
    for (const url of internal) expect(reasonOf(url), url).toBe("INTERNAL_ADDRESS");
  });

  it("accepts public addresses next to the internal ranges", () => {
    for (const url of ["http://172.32.0.1/", "http://100.128.0.1/", "http://11.0.0.1/", "http://[::ffff:8.8.8.8]/", "http://[2001:4860:4860::8888]/", "http://169.255.0.1/"]) {
      expect(reasonOf(url), url).toBeUndefined();
    }
  });

  it("accepts internal hosts when NOTIFY_URL_ALLOW_PRIVATE is on", () => {
    expect(reasonOf("http://127.0.0.1:8080/notify", everything)).toBeUndefined();
    expect(reasonOf("http://localhost/notify", everything)).toBeUndefined();
  });

  it("reports the problem as a field violation", () => {
    const violations = new Violations();
    validateNotifyUrl(violations, "notify_url", "http://169.254.169.254/latest/meta-data/", httpAllowed);
    expect(() => violations.throwIfAny()).toThrow(/notify_url: must point to a public host, not a link-local or cloud metadata address/);
  });

  it("treats text that is no IP address as internal (fail closed)", () => {
    expect(internalAddressReason("not-an-ip")).toBeDefined();
    expect(internalAddressReason("8.8.8.8")).toBeUndefined();
  });
});

describe("resolveNotifyTarget", () => {
  it("refuses a name when any one of its addresses is internal", async () => {
    // A public-looking name whose answers include an internal address is refused.
    const lookup = async () => [
      { address: "93.184.216.34", family: 4 },
      { address: "10.0.0.5", family: 4 },
    ];
    await expect(resolveNotifyTarget("https://shop.example/notify", strict, lookup)).rejects.toMatchObject({
      reason: "INTERNAL_ADDRESS",
      message: expect.stringContaining("10.0.0.5"),
    });
  });

  it("resolves localhost through the system resolver and refuses it without NOTIFY_URL_ALLOW_PRIVATE", async () => {
    // localhost is refused by name before any lookup; *.localhost names too.
    await expect(resolveNotifyTarget("https://localhost/n", strict)).rejects.toMatchObject({ reason: "INTERNAL_ADDRESS" });
    const target = await resolveNotifyTarget("http://localhost:9999/n", everything);
    expect(["127.0.0.1", "::1"]).toContain(target.address);
    expect(target.port).toBe(9999);
  });

  it("refuses a public name that the resolver maps to an internal address (IPv4-mapped IPv6 too)", async () => {
    for (const address of ["127.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1", "fd00::1"]) {
      const lookup = async () => [{ address, family: address.includes(":") ? 6 : 4 }];
      await expect(resolveNotifyTarget("https://rebind.example/n", strict, lookup), address).rejects.toMatchObject({ reason: "INTERNAL_ADDRESS" });
    }
  });

  it("returns the resolved address to connect to, so the name is not looked up twice", async () => {
    let lookups = 0;
    const lookup = async () => {
      lookups++;
      return [{ address: "93.184.216.34", family: 4 }];
    };
    const target = await resolveNotifyTarget("https://shop.example/notify", strict, lookup);
    expect(target).toMatchObject({ hostname: "shop.example", address: "93.184.216.34", family: 4, port: 443 });
    expect(lookups).toBe(1);
  });

  it("re-checks the URL itself, and refuses names that do not resolve", async () => {
    await expect(resolveNotifyTarget("http://shop.example/n", strict)).rejects.toMatchObject({ reason: "HTTPS_REQUIRED" });
    await expect(resolveNotifyTarget("https://10.0.0.1/n", strict)).rejects.toMatchObject({ reason: "INTERNAL_ADDRESS" });
    await expect(resolveNotifyTarget("", strict)).rejects.toMatchObject({ reason: "NO_NOTIFY_URL" });
    const failing = async () => {
      throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
    };
    await expect(resolveNotifyTarget("https://nowhere.example/n", strict, failing)).rejects.toMatchObject({ reason: "UNRESOLVABLE_HOST" });
  });

  it("takes IP literals as they are, without a lookup", async () => {
    const lookup = async () => {
      throw new Error("no lookup expected");
    };
    await expect(resolveNotifyTarget("https://93.184.216.34/n", strict, lookup)).resolves.toMatchObject({ address: "93.184.216.34", family: 4 });
    await expect(resolveNotifyTarget("https://[2606:4700::1111]:8443/n", strict, lookup)).resolves.toMatchObject({
      address: "2606:4700::1111",
      family: 6,
      port: 8443,
    });
  });
});
