/**
 * The simulator's control token when none is configured: generated once into the data directory
 * (mode 0600), read back on later starts, shared by `npm start` and `npm run simulator`.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { MIN_CONTROL_TOKEN_LENGTH } from "./simulator.js";

/** File name of the generated control token inside the data directory. */
const CONTROL_TOKEN_FILE_NAME = "simulator-control-token";

/** Reads `${dataDir}/simulator-control-token`, generating it first if it does not exist. */
export function loadOrCreateControlToken(dataDir: string): { token: string; file: string } {
  const file = path.join(dataDir, CONTROL_TOKEN_FILE_NAME);
  if (existsSync(file)) {
    const token = readFileSync(file, "utf8").trim();
    if (token.length < MIN_CONTROL_TOKEN_LENGTH) {
      throw new Error(`${file} holds fewer than ${MIN_CONTROL_TOKEN_LENGTH} characters; delete it to generate a new token`);
    }
    return { token, file };
  }
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(24).toString("base64url");
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, file };
}
