/**
 * Webhook deliveries to merchants. PLACEHOLDER: the interface app.ts wires; nothing is delivered yet.
 */
import type { NotifyUrlPolicy } from "../notifications/notify-url.js";
import type { WebhooksConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import type { SecretBox } from "../merchants/credentials.js";

export interface WebhookDispatcher {
  /** One pass now: fan new events out to deliveries, start the attempts that are due. */
  runOnce(): Promise<void>;
  start(): void;
  /** Stops taking work and waits (up to the attempt timeout) for attempts in flight. */
  stop(): Promise<void>;
}

export interface WebhookDispatcherOptions {
  uow: UnitOfWork;
  secrets: SecretBox;
  config: WebhooksConfig;
  notifyUrls: NotifyUrlPolicy;
  log: (message: string) => void;
  logError: (message: string, error: unknown) => void;
}

export function createWebhookDispatcher(_options: WebhookDispatcherOptions): WebhookDispatcher {
  return {
    async runOnce() {},
    start() {},
    async stop() {},
  };
}
