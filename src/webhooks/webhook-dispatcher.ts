/**
 * Webhook deliveries to merchants, on every replica at once; the database decides who does what.
 *
 * - Fan-out: in one transaction that locks the `webhooks` cursor, the events after it become
 *   deliveries (one per event, to the payment's own notify URL for payment and refund events when
 *   it has one, else the merchant's; none when both are empty) and the cursor moves past them.
 * - Dispatch: due deliveries are claimed by a conditional UPDATE of their lease, which outlives an
 *   attempt's timeout. Each claim has its own holder token, and an outcome is recorded only while
 *   that token still holds the delivery: a replica that stalled past its lease records nothing over
 *   the replica that took over. Attempts run side by side, never awaited as one batch; a replica
 *   has at most `maxInFlight` open, `maxPerEndpoint` per endpoint (scheme, host, port), and does
 *   not claim deliveries of an endpoint at its cap, so a slow or hanging endpoint only ever holds
 *   its own slots.
 * - Every attempt resolves and checks the URL again (resolveNotifyTarget): a refused URL is an
 *   attempt with the refusal's reason as error, retried on schedule, never connected to.
 * - Finished deliveries older than the event retention are deleted in bounded batches.
 */
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { EventsConfig, WebhooksConfig } from "../config.js";
import type { UnitOfWork } from "../db/unit-of-work.js";
import { lockCursor, moveCursor } from "../events/event-cursor-store.js";
import { eventBody } from "../events/event-envelope.js";
import { newId } from "../ids.js";
import type { SecretBox } from "../merchants/credentials.js";
import type { MerchantRow } from "../merchants/merchant-entity.js";
import {
  type LookupAll,
  type NotifyTarget,
  NotifyTargetRefusedError,
  type NotifyUrlPolicy,
  resolveNotifyTarget,
} from "../notifications/notify-url.js";
import type { Telemetry } from "../observability/telemetry.js";
import { SpanKind } from "../observability/tracing.js";
import type { OutboxEventRow } from "../outbox/outbox-entity.js";
import { eventHeadsAfter } from "../outbox/outbox-store.js";
import type { WebhookAttemptRow, WebhookDeliveryRow } from "./webhook-entities.js";
import { postWebhook, type SendResult } from "./webhook-sender.js";
import { signatureHeader } from "./webhook-signature.js";
import {
  claimDeliveries,
  type DeliveryOutcome,
  deleteFinishedBefore,
  dueDeliveries,
  eventsByIds,
  insertDeliveries,
  merchantNotifyUrls,
  merchantsByIds,
  paymentNotifyUrls,
  recordAttempt,
} from "./webhook-store.js";

export interface WebhookDispatcher {
  /**
   * One pass now: fan new events out to deliveries, start the attempts that are due; resolves once
   * the attempts in flight have finished (tests; the loop does not wait for them).
   */
  runOnce(): Promise<void>;
  /** Starts the loop (a pass every `events.pollIntervalMs`). */
  start(): void;
  /** Stops taking work and waits (up to the attempt timeout) for attempts in flight. */
  stop(): Promise<void>;
}

export interface WebhookDispatcherOptions {
  uow: UnitOfWork;
  secrets: SecretBox;
  config: WebhooksConfig;
  /** `pollIntervalMs` (the loop's pace) and `retentionDays` (how long finished deliveries are kept). */
  events: Pick<EventsConfig, "pollIntervalMs" | "retentionDays">;
  notifyUrls: NotifyUrlPolicy;
  log: (message: string) => void;
  logError: (message: string, error: unknown) => void;
  /** DNS lookup of notify URL hosts (tests: a name that resolves to an internal address). */
  lookup?: LookupAll;
  /** A span, a log line and the webhook metrics per attempt. */
  telemetry?: Telemetry;
}

/** Events fanned out per transaction, and transactions per pass. */
const FANOUT_BATCH = 500;
const FANOUT_BATCHES_PER_PASS = 10;
/** Claim rounds per pass: each round leaves out the endpoints that reached their cap in the last. */
const CLAIM_ROUNDS_PER_PASS = 8;
/** Finished deliveries deleted per statement, statements per retention run, and how often it runs. */
const RETENTION_BATCH = 500;
const RETENTION_BATCHES_PER_RUN = 20;
const RETENTION_INTERVAL_MS = 60_000;
const USER_AGENT = "payments-webhooks/1";
/** Events whose object is a payment, whose own notify URL (when set) comes before the merchant's. */
const PAYMENT_EVENT = /^(payment|refund)\./;

export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { uow, config } = options;
  // Outlives an attempt (its whole deadline) plus the reads and the write around it.
  const leaseMs = config.timeoutMs * 2 + 1000;
  // Claim tokens start with the replica (pid@host), so an operator can see who holds a delivery.
  const replica = `${process.pid}@${hostname().slice(0, 24)}`;
  const inFlight = new Set<Promise<void>>();
  const perEndpoint = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  // Set by stop(): no new claims, no rescheduled pass.
  let stopped = false;
  let nextRetentionAt = 0;

  async function fanOut(): Promise<void> {
    for (let batch = 0; batch < FANOUT_BATCHES_PER_PASS; batch++) {
      const read = await uow.transaction(
        uow.session(),
        async (tx) => {
          const position = await lockCursor(tx, "webhooks");
          const events = await eventHeadsAfter(tx, position, FANOUT_BATCH);
          if (events.length === 0) return 0;
          const paymentIds = unique(events.filter((event) => PAYMENT_EVENT.test(event.eventType)).map((event) => event.aggregateId));
          const paymentUrls = await paymentNotifyUrls(tx, paymentIds);
          const merchantUrls = await merchantNotifyUrls(tx, unique(events.map((event) => event.merchantId)));
          const now = new Date();
          const deliveries: WebhookDeliveryRow[] = [];
          for (const event of events) {
            const own = PAYMENT_EVENT.test(event.eventType) ? paymentUrls.get(event.aggregateId) : undefined;
            const url = own || merchantUrls.get(event.merchantId) || "";
            if (url === "") continue;
            deliveries.push(newDelivery(event, url, now));
          }
          await insertDeliveries(tx, deliveries);
          await moveCursor(tx, "webhooks", events[events.length - 1]!.seq);
          return events.length;
        },
        { deadlockAttempts: 3 },
      );
      if (read < FANOUT_BATCH) return;
    }
  }

  async function claimAndStart(): Promise<void> {
    const session = uow.session();
    const now = new Date();
    const until = new Date(now.getTime() + leaseMs);
    const skip = new Set([...perEndpoint].filter(([, count]) => count >= config.maxPerEndpoint).map(([endpoint]) => endpoint));
    for (let round = 0; round < CLAIM_ROUNDS_PER_PASS; round++) {
      const free = config.maxInFlight - inFlight.size;
      if (free <= 0 || stopped) return;
      const limit = free * 2;
      const candidates = await dueDeliveries(session, now, [...skip], limit);
      const chosen: string[] = [];
      const planned = new Map<string, number>();
      for (const candidate of candidates) {
        if (chosen.length >= free) break;
        const open = (perEndpoint.get(candidate.endpoint) ?? 0) + (planned.get(candidate.endpoint) ?? 0);
        if (open >= config.maxPerEndpoint) {
          skip.add(candidate.endpoint);
          continue;
        }
        chosen.push(candidate.id);
        planned.set(candidate.endpoint, (planned.get(candidate.endpoint) ?? 0) + 1);
        if (open + 1 >= config.maxPerEndpoint) skip.add(candidate.endpoint);
      }
      if (chosen.length === 0) return;
      const holder = `${replica}/${newId()}`;
      const claimed = await uow.transaction(session, (tx) => claimDeliveries(tx, chosen, holder, now, until), { deadlockAttempts: 3 });
      // What the attempts send and sign with, read once for the batch.
      const [events, merchants] = await Promise.all([
        eventsByIds(session, unique(claimed.map((delivery) => delivery.eventId))),
        merchantsByIds(session, unique(claimed.map((delivery) => delivery.merchantId))),
      ]);
      for (const delivery of claimed) begin(delivery, holder, events.get(delivery.eventId), merchants.get(delivery.merchantId));
      if (candidates.length < limit) return;
    }
  }

  function begin(delivery: WebhookDeliveryRow, holder: string, event?: OutboxEventRow, merchant?: MerchantRow): void {
    perEndpoint.set(delivery.endpoint, (perEndpoint.get(delivery.endpoint) ?? 0) + 1);
    const attempt = deliver(delivery, holder, event, merchant)
      .catch((error) => options.logError(`webhook delivery ${delivery.id} attempt failed to run`, error))
      .finally(() => {
        const left = (perEndpoint.get(delivery.endpoint) ?? 1) - 1;
        if (left > 0) perEndpoint.set(delivery.endpoint, left);
        else perEndpoint.delete(delivery.endpoint);
        inFlight.delete(attempt);
      });
    inFlight.add(attempt);
  }

  async function deliver(delivery: WebhookDeliveryRow, holder: string, event?: OutboxEventRow, merchant?: MerchantRow): Promise<void> {
    const telemetry = options.telemetry;
    if (!telemetry) {
      await attempt(delivery, holder, event, merchant);
      return;
    }
    const attributes = { "payments.webhook.delivery_id": delivery.id, "payments.event_id": delivery.eventId, "payments.merchant_id": delivery.merchantId };
    // A trace of its own, linked to the span that wrote the event (the RPC or callback that caused it).
    await telemetry.tracing.span("webhook delivery", { kind: SpanKind.CLIENT, attributes, links: [event?.traceParent] }, async (span) => {
      const { outcome, attempt: made, recorded } = await attempt(delivery, holder, event, merchant);
      const result = outcome.status === "SUCCEEDED" ? "delivered" : outcome.status === "FAILED" ? "failed" : "retry";
      telemetry.metrics.webhookAttempts.inc({ outcome: result });
      telemetry.metrics.webhookAttemptDuration.observe(made.latencyMs / 1000);
      span.setAttributes({ "http.response.status_code": made.httpStatus, "payments.webhook.outcome": result });
      const line = {
        delivery: delivery.id,
        event_id: delivery.eventId,
        event_type: event?.eventType,
        merchant_id: delivery.merchantId,
        attempt: made.number,
        outcome: result,
        http_status: made.httpStatus || undefined,
        error: made.error ?? undefined,
        next_attempt_at: outcome.nextAttemptAt?.toISOString(),
        recorded,
        latency_ms: made.latencyMs,
        trace_id: span.traceId,
      };
      if (result === "delivered") telemetry.logger.info(line, "webhook delivery");
      else telemetry.logger.warn(line, "webhook delivery");
    });
  }

  /** One attempt: send, then record it with the delivery's next state (unless the lease was lost). */
  async function attempt(
    delivery: WebhookDeliveryRow,
    holder: string,
    event?: OutboxEventRow,
    merchant?: MerchantRow,
  ): Promise<{ outcome: DeliveryOutcome; attempt: WebhookAttemptRow; recorded: boolean }> {
    const startedAt = new Date();
    const started = performance.now();
    const deadline = started + config.timeoutMs;
    let result: SendResult;
    let final = false;
    if (!event || !merchant) {
      // Deleted by retention (or never there): nothing can be sent, now or later.
      result = { httpStatus: 0, excerpt: "", error: event ? "MERCHANT_NOT_FOUND" : "EVENT_NOT_FOUND" };
      final = true;
    } else {
      const target = await resolveTarget(delivery.url, deadline);
      if ("error" in target) {
        result = target;
      } else {
        const body = eventBody(event);
        const headers = {
          "content-type": "application/json",
          "user-agent": USER_AGENT,
          "payments-event-id": event.id,
          "payments-event-type": event.eventType,
          "payments-signature": signatureHeader(body, signingSecrets(merchant, new Date()), Date.now() / 1000),
        };
        result = await postWebhook(target, headers, body, Math.max(1, deadline - performance.now()));
      }
    }
    const attempt: WebhookAttemptRow = {
      id: newId(),
      deliveryId: delivery.id,
      number: delivery.attemptCount + 1,
      startedAt,
      httpStatus: result.httpStatus,
      latencyMs: Math.round(performance.now() - started),
      responseExcerpt: result.excerpt,
      error: result.error,
    };
    const outcome = nextState(delivery, result, final, new Date());
    const recorded = await uow.rowTransaction(uow.session(), (tx) => recordAttempt(tx, holder, attempt, outcome), { deadlockAttempts: 3 });
    if (!recorded) {
      options.log(`webhook delivery ${delivery.id}: attempt ${attempt.number} not recorded (lease expired and taken over, or redelivered meanwhile)`);
    }
    return { outcome, attempt, recorded };
  }

  /** The address to connect to, or the refusal (or timeout) as an attempt result. */
  async function resolveTarget(url: string, deadline: number): Promise<NotifyTarget | SendResult> {
    let timeout: NodeJS.Timeout | undefined;
    const expired = new Promise<SendResult>((resolve) => {
      timeout = setTimeout(() => resolve({ httpStatus: 0, excerpt: "", error: "timeout" }), Math.max(1, deadline - performance.now()));
    });
    try {
      return await Promise.race([resolveNotifyTarget(url, options.notifyUrls, options.lookup), expired]);
    } catch (error) {
      if (error instanceof NotifyTargetRefusedError) return { httpStatus: 0, excerpt: "", error: error.reason };
      throw error;
    } finally {
      clearTimeout(timeout);
    }
  }

  /** The secrets that sign now: the current one, then the previous one during a rotation's overlap. */
  function signingSecrets(merchant: MerchantRow, now: Date): string[] {
    const secrets = [options.secrets.open(merchant.webhookSecretSealed)];
    if (merchant.previousWebhookSecretSealed && merchant.previousWebhookSecretExpiresAt && merchant.previousWebhookSecretExpiresAt > now) {
      secrets.push(options.secrets.open(merchant.previousWebhookSecretSealed));
    }
    return secrets;
  }

  /** Where the delivery stands after an attempt: SUCCEEDED on 2xx, else the next wait of the schedule, FAILED after the last. */
  function nextState(delivery: WebhookDeliveryRow, result: SendResult, final: boolean, now: Date): DeliveryOutcome {
    const roundAttempts = delivery.roundAttempts + 1;
    const common = { attemptCount: delivery.attemptCount + 1, roundAttempts, lastHttpStatus: result.httpStatus || null };
    if (result.httpStatus >= 200 && result.httpStatus < 300) {
      return { ...common, status: "SUCCEEDED", nextAttemptAt: null, deliveredAt: now };
    }
    const wait = final ? undefined : config.retryScheduleMs[roundAttempts - 1];
    if (wait === undefined) return { ...common, status: "FAILED", nextAttemptAt: null, deliveredAt: null };
    return { ...common, status: "PENDING", nextAttemptAt: new Date(now.getTime() + wait), deliveredAt: null };
  }

  async function retainIfDue(): Promise<void> {
    if (Date.now() < nextRetentionAt) return;
    nextRetentionAt = Date.now() + RETENTION_INTERVAL_MS;
    const before = new Date(Date.now() - options.events.retentionDays * 86_400_000);
    let deleted = 0;
    for (let batch = 0; batch < RETENTION_BATCHES_PER_RUN && !stopped; batch++) {
      const count = await uow.transaction(uow.session(), (tx) => deleteFinishedBefore(tx, before, RETENTION_BATCH));
      deleted += count;
      if (count < RETENTION_BATCH) break;
    }
    if (deleted > 0) options.log(`webhooks: deleted ${deleted} finished deliveries older than ${options.events.retentionDays} days`);
  }

  async function pass(): Promise<void> {
    await fanOut();
    await claimAndStart();
    await retainIfDue();
  }

  const tick = () => {
    running = pass()
      .catch((error) => options.logError("webhook pass failed", error))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, options.events.pollIntervalMs);
      });
  };

  return {
    async runOnce() {
      await pass();
      await Promise.allSettled([...inFlight]);
    },
    start() {
      stopped = false;
      timer = setTimeout(tick, options.events.pollIntervalMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await Promise.allSettled([...inFlight]);
    },
  };
}

function newDelivery(event: { id: string; merchantId: string; aggregateId: string; eventType: string }, url: string, now: Date): WebhookDeliveryRow {
  return {
    id: newId(now.getTime()),
    eventId: event.id,
    merchantId: event.merchantId,
    objectId: event.aggregateId,
    eventType: event.eventType,
    url,
    endpoint: endpointOf(url),
    status: "PENDING",
    attemptCount: 0,
    roundAttempts: 0,
    nextAttemptAt: now,
    leaseUntil: null,
    leaseHolder: null,
    createdAt: now,
    deliveredAt: null,
    lastHttpStatus: null,
  };
}

/** `scheme://host:port` of a URL (the default port spelled out), or the text itself when it is no URL. */
export function endpointOf(url: string): string {
  try {
    const parsed = new URL(url);
    const port = parsed.port || (parsed.protocol === "https:" ? "443" : "80");
    return `${parsed.protocol}//${parsed.hostname}:${port}`.slice(0, 512);
  } catch {
    return url.slice(0, 512);
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
