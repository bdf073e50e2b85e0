#!/usr/bin/env node
/**
 * A durable JetStream consumer of the service's events (the relay's stream, EVENTS_NATS_URL set):
 * prints each event once and acknowledges it.
 *
 *   NATS_URL=nats://127.0.0.1:4222 node examples/nats-consumer.mjs
 *
 * Settings (environment): NATS_URL (may carry user:password@), NATS_STREAM (default
 * PAYMENT_EVENTS), NATS_SUBJECT (default payments.>; e.g. payments.refund.> for refunds only),
 * NATS_DURABLE (the consumer's name, default example-consumer: a second run resumes after the
 * last event acknowledged), IDLE_EXIT_MS (stop after that long without an event; default: run
 * until Ctrl-C).
 *
 * Each stored event arrives at least once: JetStream redelivers what was not acknowledged in time
 * (a consumer that crashed between its work and its ack). Deduplicate by the event id, which is
 * also the message's Nats-Msg-Id and the webhook's event id. A real consumer records handled ids in
 * the same transaction as its own effects; this example keeps the last ids in memory only.
 */
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";

const url = new URL(process.env.NATS_URL ?? "nats://127.0.0.1:4222");
const stream = process.env.NATS_STREAM ?? "PAYMENT_EVENTS";
const subject = process.env.NATS_SUBJECT ?? "payments.>";
const durable = process.env.NATS_DURABLE ?? "example-consumer";
const idleExitMs = process.env.IDLE_EXIT_MS ? Number(process.env.IDLE_EXIT_MS) : undefined;
/** Event ids remembered for deduplication, oldest dropped first. */
const REMEMBERED_IDS = 100_000;

const connection = await connect({
  servers: url.port ? url.host : `${url.host}:4222`,
  ...(url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
});
const manager = await jetstreamManager(connection);
try {
  await manager.consumers.info(stream, durable);
} catch (error) {
  if (!(error instanceof JetStreamApiError)) throw error;
  // First run: a durable consumer from the start of the stream; later runs resume where it stopped.
  await manager.consumers.add(stream, {
    durable_name: durable,
    filter_subject: subject,
    deliver_policy: DeliverPolicy.All,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(30_000),
    max_ack_pending: 1_000,
  });
}
const consumer = await jetstream(connection).consumers.get(stream, durable);

const seen = new Set();
let stopping = false;
process.once("SIGINT", () => {
  stopping = true;
});

while (!stopping) {
  let received = 0;
  const batch = await consumer.fetch({ max_messages: 100, expires: idleExitMs ?? 5_000 });
  for await (const message of batch) {
    received++;
    const event = message.json();
    if (!seen.has(event.id)) {
      console.log(`${event.created_at} ${event.type} ${event.object_id} merchant=${event.merchant_id} id=${event.id}`);
      seen.add(event.id);
      if (seen.size > REMEMBERED_IDS) seen.delete(seen.values().next().value);
    }
    message.ack();
  }
  if (received === 0 && idleExitMs !== undefined) break;
}
// Sends the acks still buffered before closing.
await connection.drain();
