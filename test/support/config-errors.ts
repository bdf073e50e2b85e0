import { ConfigError, loadConfig } from "../../src/config.js";
import { thrown } from "./thrown.js";

/** The ConfigError loadConfig throws for `env`; fails the test when it throws none or another error. */
export function configError(env: Record<string, string>): ConfigError {
  return thrown(ConfigError, () => loadConfig(env));
}
