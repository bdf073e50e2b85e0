/**
 * Publishes the event feed to NATS JetStream. PLACEHOLDER: the interface app.ts wires.
 */
import type { NatsConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";

export interface NatsRelay {
  /** One pass now (when this replica holds the relay's lease): publish the events after the cursor. */
  runOnce(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface NatsRelayOptions {
  uow: UnitOfWork;
  config: NatsConfig;
  log: (message: string) => void;
  logError: (message: string, error: unknown) => void;
}

export function createNatsRelay(_options: NatsRelayOptions): NatsRelay {
  return {
    async runOnce() {},
    start() {},
    async stop() {},
  };
}
