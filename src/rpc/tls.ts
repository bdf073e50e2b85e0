/**
 * TLS material for both listeners, read from files and reloaded without a restart: a new certificate and
 * key (and client CA) written over the old files are picked up by the next check, and new connections
 * get them; connections already open keep the certificate they were made with.
 */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { TlsConfig } from "../config.js";

/** The PEM contents of the configured files. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** CA that gRPC client certificates must chain to (mTLS); absent = no client certificates. */
  clientCa?: Buffer;
}

/** Reloadable TLS material; see {@link createTlsSource}. */
export interface TlsSource {
  readonly files: TlsConfig;
  /** The material in use now (always a valid certificate and matching key). */
  current(): TlsMaterial;
  /**
   * Reads the files again; when they changed and form a valid certificate and key, switches to them
   * and tells every listener. Returns whether it switched. Invalid or half-written files are reported
   * to `onError` and the previous material stays in use.
   */
  reload(): boolean;
  /** Calls `listener` after each switch. */
  onChange(listener: (material: TlsMaterial) => void): () => void;
  /** gRPC server credentials that follow this source; with a client CA they require client certificates. */
  grpcCredentials(): grpc.ServerCredentials;
  /** Stops the periodic check. */
  close(): void;
}

export interface TlsSourceOptions {
  /** How often the files are read to see whether they changed; 0 = only on `reload()`. Default 10 s. */
  reloadIntervalMs?: number;
  /** Told when changed files cannot be used (the previous material stays). */
  onError?: (error: Error) => void;
  /** Told after a switch to new material. */
  onReload?: (material: TlsMaterial) => void;
}

/** A TLS file that cannot be read or used; the message names the setting and the file. */
export class TlsFileError extends Error {}

const defaultReloadIntervalMs = 10_000;

/**
 * Reads and checks the configured certificate, key and client CA (throwing {@link TlsFileError} when
 * they are unreadable, not PEM, or the key does not match the certificate), then checks the files
 * every `reloadIntervalMs` for a rotation.
 */
export function createTlsSource(files: TlsConfig, options: TlsSourceOptions = {}): TlsSource {
  let material = readTlsMaterial(files);
  const listeners = new Set<(material: TlsMaterial) => void>();
  const onError = options.onError ?? ((error) => console.error(error.message));

  function reload(): boolean {
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(files);
    } catch (error) {
      onError(error as Error);
      return false;
    }
    if (sameMaterial(next, material)) return false;
    material = next;
    options.onReload?.(material);
    for (const listener of listeners) listener(material);
    return true;
  }

  const intervalMs = options.reloadIntervalMs ?? defaultReloadIntervalMs;
  const timer = intervalMs > 0 ? setInterval(reload, intervalMs) : undefined;
  timer?.unref();

  const source: TlsSource = {
    files,
    current: () => material,
    reload,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    grpcCredentials: () => createGrpcCredentials(source),
    close: () => clearInterval(timer),
  };
  return source;
}

function readTlsMaterial(files: TlsConfig): TlsMaterial {
  const read = (variable: string, path: string) => {
    let contents: Buffer;
    try {
      contents = readFileSync(path);
    } catch (error) {
      throw new TlsFileError(`${variable}: cannot read ${path}: ${(error as Error).message}`);
    }
    if (!contents.includes("-----BEGIN")) throw new TlsFileError(`${variable}: ${path} holds no PEM data`);
    return contents;
  };
  const material: TlsMaterial = {
    cert: read("TLS_CERT_FILE", files.certFile),
    key: read("TLS_KEY_FILE", files.keyFile),
    clientCa: files.clientCaFile === undefined ? undefined : read("TLS_CLIENT_CA_FILE", files.clientCaFile),
  };
  try {
    // Throws on a key that does not match the certificate, e.g. when a rotation has written one file but not yet the other.
    createSecureContext({ cert: material.cert, key: material.key, ca: material.clientCa });
  } catch (error) {
    throw new TlsFileError(
      `TLS_CERT_FILE/TLS_KEY_FILE: ${files.certFile} and ${files.keyFile} are not a usable certificate and key: ${(error as Error).message}`,
    );
  }
  return material;
}

function sameMaterial(a: TlsMaterial, b: TlsMaterial): boolean {
  const same = (x: Buffer | undefined, y: Buffer | undefined) => (x === undefined ? y === undefined : y !== undefined && x.equals(y));
  return same(a.cert, b.cert) && same(a.key, b.key) && same(a.clientCa, b.clientCa);
}

/**
 * grpc-js reloads server credentials through its (experimental) certificate providers: it calls
 * `setSecureContext` on its TLS server whenever a provider reports new material. These two providers
 * report the source's identity (certificate and key) and client CA.
 */
function createGrpcCredentials(source: TlsSource): grpc.ServerCredentials {
  const identity = new Listeners<grpc.experimental.IdentityCertificateUpdateListener>((listener) => {
    const { cert, key } = source.current();
    listener({ certificate: cert, privateKey: key });
  });
  const clientCa = new Listeners<grpc.experimental.CaCertificateUpdateListener>((listener) => {
    const { clientCa: ca } = source.current();
    listener(ca === undefined ? null : { caCertificate: ca });
  });
  source.onChange(() => {
    identity.notifyAll();
    clientCa.notifyAll();
  });
  const unused = () => {
    throw new Error("not a provider of this kind of certificate");
  };
  const identityProvider: grpc.experimental.CertificateProvider = {
    addIdentityCertificateListener: (listener) => identity.add(listener),
    removeIdentityCertificateListener: (listener) => identity.remove(listener),
    addCaCertificateListener: unused,
    removeCaCertificateListener: unused,
  };
  const caProvider: grpc.experimental.CertificateProvider = {
    addIdentityCertificateListener: unused,
    removeIdentityCertificateListener: unused,
    addCaCertificateListener: (listener) => clientCa.add(listener),
    removeCaCertificateListener: (listener) => clientCa.remove(listener),
  };
  const requireClientCertificate = source.files.clientCaFile !== undefined;
  // grpc-js names the first parameter caCertificateProvider but uses it as the identity provider.
  return grpc.experimental.createCertificateProviderServerCredentials(
    identityProvider,
    requireClientCertificate ? caProvider : null,
    requireClientCertificate,
  );
}

class Listeners<L> {
  private readonly listeners = new Set<L>();
  constructor(private readonly notify: (listener: L) => void) {}

  add(listener: L): void {
    this.listeners.add(listener);
    // grpc-js registers its watcher only after adding the listener, so the first report must come later.
    process.nextTick(() => {
      if (this.listeners.has(listener)) this.notify(listener);
    });
  }

  remove(listener: L): void {
    this.listeners.delete(listener);
  }

  notifyAll(): void {
    for (const listener of this.listeners) this.notify(listener);
  }
}
