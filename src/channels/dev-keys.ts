/**
 * Development identities and keys for every channel, shared by the service (as its channel
 * configuration) and the simulator (as the channels' side), so `npm start` needs no setup.
 * Generated once into `${dir}/dev-channel-keys.json` (mode 0600); never used in production.
 */
import { generateKeyPairSync, randomBytes, randomInt } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/** Both sides of the Alipay open-platform key exchange, plus the account ids. */
export interface AlipayDevKeys {
  appId: string;
  sellerId: string;
  appPrivateKeyPem: string;
  appPublicKeyPem: string;
  alipayPrivateKeyPem: string;
  alipayPublicKeyPem: string;
}

/** The merchant's API key pair and certificate serial, and the platform's public-key-mode key pair. */
export interface WechatPayDevKeys {
  mchId: string;
  appId: string;
  mchSerialNo: string;
  mchPrivateKeyPem: string;
  mchPublicKeyPem: string;
  platformPrivateKeyPem: string;
  platformPublicKeyPem: string;
  /** `PUB_KEY_ID_...`: sent as `Wechatpay-Serial` with platform signatures. */
  publicKeyId: string;
  /** 32 ASCII characters: the AES-256-GCM key for callback resources. */
  apiV3Key: string;
}

/** The acquirer's API secret key and the webhook endpoint's signing secret. */
export interface CardDevKeys {
  secretKey: string;
  webhookSecret: string;
}

/** Everything `dev-channel-keys.json` holds. */
export interface DevChannelKeys {
  alipay: AlipayDevKeys;
  wechatpay: WechatPayDevKeys;
  card: CardDevKeys;
}

/** The file name inside the data directory. */
export const DEV_KEYS_FILE_NAME = "dev-channel-keys.json";

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomString(length: number, alphabet: string): string {
  let result = "";
  for (let i = 0; i < length; i++) result += alphabet[randomInt(alphabet.length)];
  return result;
}

function rsaKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** Fresh development keys (four RSA-2048 key pairs; takes a fraction of a second). */
export function generateDevChannelKeys(): DevChannelKeys {
  const alipayApp = rsaKeyPair();
  const alipayPlatform = rsaKeyPair();
  const merchant = rsaKeyPair();
  const platform = rsaKeyPair();
  return {
    alipay: {
      appId: `2021${randomString(12, "0123456789")}`,
      sellerId: `2088${randomString(12, "0123456789")}`,
      appPrivateKeyPem: alipayApp.privateKeyPem,
      appPublicKeyPem: alipayApp.publicKeyPem,
      alipayPrivateKeyPem: alipayPlatform.privateKeyPem,
      alipayPublicKeyPem: alipayPlatform.publicKeyPem,
    },
    wechatpay: {
      mchId: `19${randomString(8, "0123456789")}`,
      appId: `wx${randomBytes(8).toString("hex")}`,
      mchSerialNo: randomBytes(20).toString("hex").toUpperCase(),
      mchPrivateKeyPem: merchant.privateKeyPem,
      mchPublicKeyPem: merchant.publicKeyPem,
      platformPrivateKeyPem: platform.privateKeyPem,
      platformPublicKeyPem: platform.publicKeyPem,
      publicKeyId: `PUB_KEY_ID_${randomString(28, "0123456789")}`,
      apiV3Key: randomString(32, ALPHANUMERIC),
    },
    card: {
      secretKey: `sk_test_${randomString(24, ALPHANUMERIC)}`,
      webhookSecret: `whsec_${randomString(32, ALPHANUMERIC)}`,
    },
  };
}

const REQUIRED_FIELDS: { readonly [K in keyof DevChannelKeys]: readonly (keyof DevChannelKeys[K])[] } = {
  alipay: ["appId", "sellerId", "appPrivateKeyPem", "appPublicKeyPem", "alipayPrivateKeyPem", "alipayPublicKeyPem"],
  wechatpay: [
    "mchId",
    "appId",
    "mchSerialNo",
    "mchPrivateKeyPem",
    "mchPublicKeyPem",
    "platformPrivateKeyPem",
    "platformPublicKeyPem",
    "publicKeyId",
    "apiV3Key",
  ],
  card: ["secretKey", "webhookSecret"],
};

function parseDevChannelKeys(json: string, file: string): DevChannelKeys {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error(`${file} is not valid JSON; delete it to generate new development keys`, { cause: error });
  }
  for (const [channel, fields] of Object.entries(REQUIRED_FIELDS)) {
    const section = (parsed as Record<string, unknown> | null)?.[channel] as Record<string, unknown> | undefined;
    for (const field of fields as readonly string[]) {
      if (typeof section?.[field] !== "string" || section[field] === "") {
        throw new Error(`${file} lacks ${channel}.${field}; delete it to generate new development keys`);
      }
    }
  }
  return parsed as DevChannelKeys;
}

/**
 * Reads `${dir}/dev-channel-keys.json`, or generates and stores it when absent. Safe when several
 * processes start at once: the file appears atomically (hard link of a complete temp file, which
 * fails if another process won the race), and a loser reads the winner's keys.
 */
export function loadOrCreateDevChannelKeys(dir: string): DevChannelKeys {
  const file = path.join(dir, DEV_KEYS_FILE_NAME);
  const existing = readIfPresent(file);
  if (existing !== undefined) return parseDevChannelKeys(existing, file);

  fs.mkdirSync(dir, { recursive: true });
  const keys = generateDevChannelKeys();
  const temp = path.join(dir, `.${DEV_KEYS_FILE_NAME}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  fs.writeFileSync(temp, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  try {
    fs.linkSync(temp, file);
    return keys;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return parseDevChannelKeys(fs.readFileSync(file, "utf8"), file);
    // Some file systems have no hard links: fall back to rename, which is atomic but last-writer-wins.
    if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS") {
      const raced = readIfPresent(file);
      if (raced !== undefined) return parseDevChannelKeys(raced, file);
      fs.renameSync(temp, file);
      return keys;
    }
    throw error;
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function readIfPresent(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
