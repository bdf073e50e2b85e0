/**
 * TLS on both listeners, wired by startApp from the configuration: a throwaway CA, server and client
 * certificates made with the openssl CLI; grpc-js and Connect clients over TLS, mTLS on gRPC, and
 * certificate rotation without a restart.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MerchantService } from "../../gen/payments/v1/merchant_service_pb.js";
import { type App, startApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { grpcError } from "../support/waiting.js";
import { testLogger } from "../support/test-app.js";

const eventually = { timeout: 10_000, interval: 50 };
const adminToken = "tls-test-admin-token-0123456789";

interface Certificates {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** Issues `${name}.crt`/`${name}.key` signed by the CA in `dir`; returns the certificate's serial number. */
function issue(dir: string, name: string, subject: string, extensions: string): string {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-subj", subject, "-out", `${name}.csr`);
  openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`);
  return execFileSync("openssl", ["x509", "-in", `${name}.crt`, "-noout", "-serial"], { cwd: dir }).toString().trim().replace("serial=", "");
}

function createCertificates(): Certificates & { serverSerial: string } {
  const dir = mkdtempSync(join(tmpdir(), "payments-tls-"));
  openssl(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-subj", "/CN=Test CA", "-days", "2", "-out", "ca.crt");
  const serverSerial = issue(dir, "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  issue(dir, "client", "/CN=internal-client", "extendedKeyUsage=clientAuth\n");
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
    serverSerial,
  };
}

async function startTlsApp(
  certs: Certificates,
  env: Record<string, string> = {},
  tlsReloadIntervalMs = 0,
): Promise<App> {
  // Each app gets its own copies, so that rotating one app's files leaves the others alone.
  const dir = mkdtempSync(join(tmpdir(), "payments-tls-app-"));
  copyFileSync(certs.serverCert, join(dir, "server.crt"));
  copyFileSync(certs.serverKey, join(dir, "server.key"));
  const config = loadConfig({
    DATA_DIR: dir,
    GRPC_PORT: "0",
    HTTP_PORT: "0",
    SIMULATED_CHANNELS: "none",
    TLS_CERT_FILE: join(dir, "server.crt"),
    TLS_KEY_FILE: join(dir, "server.key"),
    ...env,
  });
  const app = await startApp({
    config: { ...config, adminToken, dataEncryptionKey: "tls-test-data-encryption-key-0123456789ab" },
    runSweeper: false,
    logger: testLogger(),
    tlsReloadIntervalMs,
  });
  tlsFilesByApp.set(app, { cert: join(dir, "server.crt"), key: join(dir, "server.key") });
  return app;
}

const tlsFilesByApp = new WeakMap<App, { cert: string; key: string }>();

function healthCheck(port: number, credentials: grpc.ChannelCredentials): Promise<unknown> {
  const Health = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, "Health");
  const client = new Health(`127.0.0.1:${port}`, credentials);
  return new Promise<unknown>((resolve, reject) =>
    client["Check"]!({ service: "" }, { deadline: Date.now() + 5_000 }, (error: Error | null, response: unknown) =>
      error ? reject(error) : resolve(response),
    ),
  ).finally(() => client.close());
}

/** The serial number of the certificate a new TLS connection to `port` is served with. */
function servedSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: "127.0.0.1", servername: "localhost", port, ca, ALPNProtocols: ["h2", "http/1.1"] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

let certs: Certificates & { serverSerial: string };
let ca: Buffer;
beforeAll(() => {
  certs = createCertificates();
  ca = readFileSync(certs.caCert);
});

describe("TLS without client certificates", () => {
  let app: App;
  beforeAll(async () => {
    app = await startTlsApp(certs, { GRPC_MAX_CONCURRENT_STREAMS: "7" });
  });
  afterAll(() => app?.stop());

  it("serves gRPC over TLS to a client that trusts the CA, with the configured limits", async () => {
    expect(await healthCheck(app.grpcPort, grpc.credentials.createSsl(ca))).toEqual({ status: "SERVING" });

    const session = http2.connect(`https://127.0.0.1:${app.grpcPort}`, { ca });
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
      expect(settings.maxConcurrentStreams).toBe(7);
    } finally {
      session.destroy();
    }
  });

  it("does not answer a cleartext gRPC client", async () => {
    const error = await grpcError(healthCheck(app.grpcPort, grpc.credentials.createInsecure()));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
  });

  it("serves Connect over HTTPS, and httpUrl says https", async () => {
    expect(app.httpUrl).toMatch(/^https:\/\//);
    const transport = createConnectTransport({ baseUrl: app.httpUrl, httpVersion: "1.1", nodeOptions: { ca } });
    const merchants = createClient(MerchantService, transport);
    const error = ConnectError.from(
      await merchants.getMerchant({ merchantId: "missing" }, { headers: { authorization: `Bearer ${adminToken}` } }).catch((e) => e),
    );
    expect(error.code).toBe(Code.NotFound);
  });
});

describe("mTLS on gRPC (TLS_CLIENT_CA_FILE)", () => {
  let app: App;
  beforeAll(async () => {
    app = await startTlsApp(certs, { TLS_CLIENT_CA_FILE: certs.caCert });
  });
  afterAll(() => app?.stop());

  it("refuses a gRPC client without a certificate", async () => {
    const error = await grpcError(healthCheck(app.grpcPort, grpc.credentials.createSsl(ca)));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
  });

  it("answers a gRPC client whose certificate the CA signed", async () => {
    const credentials = grpc.credentials.createSsl(ca, readFileSync(certs.clientKey), readFileSync(certs.clientCert));
    expect(await healthCheck(app.grpcPort, credentials)).toEqual({ status: "SERVING" });
  });

  it("does not ask HTTPS clients (browsers, channel callbacks) for a certificate", async () => {
    const transport = createConnectTransport({ baseUrl: app.httpUrl, httpVersion: "1.1", nodeOptions: { ca } });
    const error = ConnectError.from(
      await createClient(MerchantService, transport)
        .getMerchant({ merchantId: "missing" }, { headers: { authorization: `Bearer ${adminToken}` } })
        .catch((e) => e),
    );
    expect(error.code).toBe(Code.NotFound);
  });
});

describe("certificate rotation without a restart", () => {
  it("serves new connections on both listeners with a certificate written over the files", async () => {
    const app = await startTlsApp(certs, {}, 100);
    try {
      const files = tlsFilesByApp.get(app)!;
      expect(await servedSerial(app.grpcPort, ca)).toBe(certs.serverSerial);
      expect(await servedSerial(app.httpPort, ca)).toBe(certs.serverSerial);

      const newSerial = issue(certs.dir, "rotated", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
      expect(newSerial).not.toBe(certs.serverSerial);
      // Half-way through a rotation (new certificate, old key) nothing changes.
      copyFileSync(join(certs.dir, "rotated.crt"), files.cert);
      expect(app.reloadTls()).toBe(false);
      expect(await servedSerial(app.httpPort, ca)).toBe(certs.serverSerial);

      copyFileSync(join(certs.dir, "rotated.key"), files.key);
      // The periodic check picks it up; no reloadTls() call.
      await vi.waitFor(async () => expect(await servedSerial(app.grpcPort, ca)).toBe(newSerial), eventually);
      await vi.waitFor(async () => expect(await servedSerial(app.httpPort, ca)).toBe(newSerial), eventually);
      expect(await healthCheck(app.grpcPort, grpc.credentials.createSsl(ca))).toEqual({ status: "SERVING" });
    } finally {
      await app.stop();
    }
  });
});
