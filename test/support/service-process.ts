/**
 * The service as a real child process (`node --import tsx src/main.ts`), configured only by
 * environment variables, for tests that stop it the hard way. The child is node itself (no npm
 * or tsx wrapper in between) and leads its own process group, so SIGKILL reaches everything it runs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DevChannelKeys } from "../../src/channels/dev-keys.js";

/** Most recent output kept per process: enough to see why a start failed, bounded for long runs. */
const OUTPUT_LIMIT = 256 * 1024;

/** A running (or exited) service process. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last 256 KiB of stdout and stderr, interleaved. */
  output(): string;
  /** Resolves when the process has exited, with its code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once `GET /healthz` answers 2xx; rejects with the output if it exits or the time is up first. */
  waitForHealth(httpPort: number, timeoutMs?: number): Promise<void>;
  /** SIGKILL to the whole process group (no drain, no cleanup); resolves once it is gone. */
  killHard(): Promise<void>;
}

/** Starts `src/main.ts` with exactly `env` (plus PATH), from the repository root. */
export function spawnServiceProcess(env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  if (child.pid === undefined) throw new Error("the service process did not start");
  const pid = child.pid;
  let output = "";
  const append = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));

  return {
    child,
    pid,
    output: () => output,
    exited,
    async waitForHealth(httpPort, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (gone) throw new Error(`the service process exited before it was healthy:\n${output}`);
        const healthy = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then(
          (response) => response.ok,
          () => false,
        );
        if (healthy) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`the service process was not healthy within ${timeoutMs} ms:\n${output}`);
    },
    async killHard() {
      if (gone) return;
      try {
        process.kill(-pid, "SIGKILL");
      } catch (error) {
        // ESRCH: the group is already gone.
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
      await exited;
    },
  };
}

/**
 * The channel variables (`ALIPAY_*`, `WECHATPAY_*`, `CARD_*`) that point the service at a
 * simulator with the given development keys, as an operator would configure real channels.
 * The PEM keys are written as files under `keyDir` (the variables accept a path or PEM text).
 */
export function channelEnvironment(simulatorUrl: string, keys: DevChannelKeys, keyDir: string): Record<string, string> {
  const keyFile = (name: string, pem: string) => {
    const path = join(keyDir, name);
    writeFileSync(path, pem, { mode: 0o600 });
    return path;
  };
  return {
    ALIPAY_GATEWAY_URL: `${simulatorUrl}/alipay/gateway.do`,
    ALIPAY_APP_ID: keys.alipay.appId,
    ALIPAY_APP_PRIVATE_KEY: keyFile("alipay-app-private.pem", keys.alipay.appPrivateKeyPem),
    ALIPAY_PUBLIC_KEY: keyFile("alipay-public.pem", keys.alipay.alipayPublicKeyPem),
    ALIPAY_SELLER_ID: keys.alipay.sellerId,
    WECHATPAY_BASE_URL: `${simulatorUrl}/wechatpay`,
    WECHATPAY_MCH_ID: keys.wechatpay.mchId,
    WECHATPAY_APP_ID: keys.wechatpay.appId,
    WECHATPAY_MCH_SERIAL_NO: keys.wechatpay.mchSerialNo,
    WECHATPAY_MCH_PRIVATE_KEY: keyFile("wechatpay-mch-private.pem", keys.wechatpay.mchPrivateKeyPem),
    WECHATPAY_PUBLIC_KEY: keyFile("wechatpay-platform-public.pem", keys.wechatpay.platformPublicKeyPem),
    WECHATPAY_PUBLIC_KEY_ID: keys.wechatpay.publicKeyId,
    WECHATPAY_APIV3_KEY: keys.wechatpay.apiV3Key,
    CARD_BASE_URL: `${simulatorUrl}/card`,
    CARD_SECRET_KEY: keys.card.secretKey,
    CARD_WEBHOOK_SECRET: keys.card.webhookSecret,
  };
}
