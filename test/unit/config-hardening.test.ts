import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { configError } from "../support/config-errors.js";

// loadConfig only checks that TLS files are readable; their contents are checked when the listeners start.
const dir = mkdtempSync(join(tmpdir(), "config-hardening-"));
const certFile = join(dir, "server.crt");
const keyFile = join(dir, "server.key");
const caFile = join(dir, "ca.crt");
for (const file of [certFile, keyFile, caFile]) writeFileSync(file, "-----BEGIN PLACEHOLDER-----\n");

describe("HOST and TLS", () => {
  it("refuses a non-loopback HOST without TLS, naming HOST and the ways out", () => {
    for (const host of ["0.0.0.0", "::", "10.1.2.3", "payments.internal"]) {
      const error = configError({ HOST: host });
      expect(error.variable).toBe("HOST");
      expect(error.message).toContain("TLS_CERT_FILE");
      expect(error.message).toContain("ALLOW_PLAINTEXT=true");
    }
  });

  it("accepts a non-loopback HOST without TLS when ALLOW_PLAINTEXT=true (a TLS proxy in front)", () => {
    const config = loadConfig({ HOST: "0.0.0.0", ALLOW_PLAINTEXT: "true" });
    expect(config.tls).toBeUndefined();
    expect(config.allowPlaintext).toBe(true);
  });

  it("accepts loopback hosts in cleartext, as the quick start runs", () => {
    for (const host of ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]) {
      expect(loadConfig({ HOST: host }).tls).toBeUndefined();
    }
    expect(loadConfig({}).host).toBe("127.0.0.1");
  });

  it("accepts a non-loopback HOST with TLS files", () => {
    const config = loadConfig({ HOST: "0.0.0.0", TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, TLS_CLIENT_CA_FILE: caFile });
    expect(config.tls).toEqual({ certFile, keyFile, clientCaFile: caFile });
  });

  it("needs the certificate and key together, and both for a client CA", () => {
    expect(configError({ TLS_CERT_FILE: certFile }).variable).toBe("TLS_KEY_FILE");
    expect(configError({ TLS_KEY_FILE: keyFile }).variable).toBe("TLS_CERT_FILE");
    expect(configError({ TLS_CLIENT_CA_FILE: caFile }).variable).toBe("TLS_CLIENT_CA_FILE");
  });

  it("names a TLS file that cannot be read", () => {
    const error = configError({ TLS_CERT_FILE: join(dir, "missing.crt"), TLS_KEY_FILE: keyFile });
    expect(error.variable).toBe("TLS_CERT_FILE");
    expect(error.message).toContain("missing.crt");
  });

  it("rejects a malformed ALLOW_PLAINTEXT instead of guessing", () => {
    expect(configError({ HOST: "0.0.0.0", ALLOW_PLAINTEXT: "yes" }).variable).toBe("ALLOW_PLAINTEXT");
  });
});

describe("listener limits", () => {
  it("has documented defaults", () => {
    const config = loadConfig({});
    expect(config.grpcLimits).toEqual({
      maxConnections: 1000,
      maxConcurrentStreams: 100,
      idleTimeoutMs: 300_000,
      maxConnectionAgeMs: 1_800_000,
      maxConnectionAgeGraceMs: 60_000,
      keepaliveMinIntervalMs: 60_000,
      maxSessionMemoryMb: 10,
      requestTimeoutMs: 30_000,
    });
    expect(config.httpLimits).toEqual({
      maxConnections: 1000,
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
    });
  });

  it("reads each limit from its variable", () => {
    const config = loadConfig({
      GRPC_MAX_CONNECTIONS: "5",
      GRPC_MAX_CONCURRENT_STREAMS: "6",
      GRPC_IDLE_TIMEOUT_MS: "7",
      GRPC_MAX_CONNECTION_AGE_MS: "8",
      GRPC_MAX_CONNECTION_AGE_GRACE_MS: "9",
      GRPC_KEEPALIVE_MIN_INTERVAL_MS: "10",
      GRPC_MAX_SESSION_MEMORY_MB: "11",
      GRPC_REQUEST_TIMEOUT_MS: "12",
      HTTP_MAX_CONNECTIONS: "13",
      HTTP_REQUEST_TIMEOUT_MS: "14",
      HTTP_HEADERS_TIMEOUT_MS: "15",
      HTTP_KEEPALIVE_TIMEOUT_MS: "16",
    });
    expect(Object.values(config.grpcLimits)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(Object.values(config.httpLimits)).toEqual([13, 14, 15, 16]);
  });

  it("refuses a limit that is not a positive whole number, naming the variable", () => {
    for (const [variable, value] of [
      ["GRPC_MAX_CONCURRENT_STREAMS", "0"],
      ["GRPC_REQUEST_TIMEOUT_MS", "-1"],
      ["HTTP_MAX_CONNECTIONS", "lots"],
      ["HTTP_HEADERS_TIMEOUT_MS", "1.5"],
    ] as const) {
      const error = configError({ [variable]: value });
      expect(error.variable).toBe(variable);
      expect(error.message).toContain("positive integer");
    }
  });
});
