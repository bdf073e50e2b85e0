/**
 * Reading a service process's output, which is JSON lines (pino) when stdout is not a terminal:
 * the messages as text, one per line, for tests that look for a banner line or a message.
 */
import type { LogLevel } from "../../src/config.js";
import { createLogger, type Logger } from "../../src/observability/logger.js";

/** Each line's `msg` (a line that is not JSON is kept as it is), joined by newlines. */
export function logMessages(output: string): string {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      if (!line.startsWith("{")) return line;
      try {
        const parsed = JSON.parse(line) as { msg?: unknown };
        return typeof parsed.msg === "string" ? parsed.msg : line;
      } catch {
        return line;
      }
    })
    .join("\n");
}

/** The output's JSON lines, parsed; throws naming the first line that is not JSON. */
export function logRecords(output: string): Array<Record<string, unknown>> {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

/** A logger (the service's own, with its redaction) whose lines are kept in memory for the test to read. */
export function capturingLogger(level: LogLevel = "trace", redact: readonly string[] = []): { logger: Logger; text(): string; records(): Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const logger = createLogger({ level, format: "json", redact, destination: { write: (chunk: string) => void chunks.push(chunk) } });
  return { logger, text: () => chunks.join(""), records: () => logRecords(chunks.join("")) };
}
