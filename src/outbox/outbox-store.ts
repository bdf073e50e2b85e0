/**
 * The outbox store: every statement on `outbox_event`. Events are appended (unsequenced) in the
 * transaction of the change they describe; the sequencer numbers them once committed; readers of
 * the feed walk them by that number.
 */
import { rawDate } from "../db/raw-sql.js";
import { findRow, insertRow, isMysqlExecutor, queryChanges, queryRows, runStatement } from "../db/rows.js";
import { entityManager, rowExecutor, toBigInt } from "../db/store-access.js";
import type { RowScope, Session, Tx } from "../db/unit-of-work.js";
import { newId } from "../ids.js";
import { activeTraceParent } from "../observability/tracing.js";
import { OutboxEvent, type OutboxEventRow } from "./outbox-entity.js";

/** What an event is about and says; the store adds id and time. */
export interface NewOutboxEvent {
  merchantId: string;
  aggregateId: string;
  eventType: string;
  payload: Record<string, unknown>;
}

/** A sequenced event, as readers of the feed see it. */
export type SequencedEvent = OutboxEventRow & { seq: bigint };

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
let lastEventId = "";

/** The ULID after `id` (its random part plus one). */
function nextUlid(id: string): string {
  const chars = id.split("");
  for (let i = chars.length - 1; i >= 0; i--) {
    const digit = CROCKFORD.indexOf(chars[i]!);
    if (digit < CROCKFORD.length - 1) {
      chars[i] = CROCKFORD[digit + 1]!;
      return chars.join("");
    }
    chars[i] = "0";
  }
  throw new RangeError(`no ULID after ${id}`);
}

/**
 * A new event id, above every one this process made before. The sequencer numbers committed events
 * in id order, and a ULID's random part orders events of the same millisecond by chance: two
 * events of one transaction (a refund's, then its payment's) must keep the order they were written in.
 */
function nextEventId(now: Date): string {
  const id = newId(now.getTime());
  lastEventId = id > lastEventId ? id : nextUlid(lastEventId);
  return lastEventId;
}

/** Appends an event, not yet sequenced, in the caller's transaction (either kind). */
export function appendEvent(tx: RowScope, event: NewOutboxEvent, now: Date = new Date()): Promise<void> {
  return insertRow<OutboxEventRow>(rowExecutor(tx), OutboxEvent, {
    id: nextEventId(now),
    merchantId: event.merchantId,
    aggregateId: event.aggregateId,
    eventType: event.eventType,
    payload: event.payload,
    createdAt: now,
    seq: null,
    traceParent: activeTraceParent(),
  });
}

/**
 * The ids of up to `limit` committed events without a place yet, oldest id first. Run in the
 * sequencer's transaction after it locked the `sequence` cursor.
 */
export async function unsequencedEventIds(tx: Tx, limit: number): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(rowExecutor(tx), `select id from outbox_event where seq is null order by id limit ${Math.floor(limit)}`);
  return rows.map((row) => row.id);
}

/**
 * Gives the events `ids` the places `first`, `first + 1`, ... in order, each only if it has none
 * yet; resolves with how many it numbered (fewer when another sequencer numbered some first).
 */
export async function assignSequence(tx: Tx, ids: readonly string[], first: bigint): Promise<number> {
  if (ids.length === 0) return 0;
  // One statement: seq = first + (position of the id in the list), for the rows still unnumbered.
  // Not a prepared statement: its text changes with the batch size.
  const params: unknown[] = [];
  for (const [index, id] of ids.entries()) params.push(id, (first + BigInt(index)).toString());
  const list = ids.map(() => "?").join(", ");
  return queryChanges(
    rowExecutor(tx),
    `update outbox_event set seq = case id ${ids.map(() => "when ? then ?").join(" ")} end where seq is null and id in (${list})`,
    [...params, ...ids],
  );
}

/** Which events a reader wants: all, one merchant's, or one object's (a payment and its refunds, a payout, ...). */
export interface EventFilter {
  merchantId?: string;
  aggregateId?: string;
  /** Only events at or before this place (a stream's backfill stops where its live part starts). */
  throughSeq?: bigint;
}

/** Up to `limit` sequenced events after `afterSeq` in feed order, filtered. */
export async function eventsAfter(session: Session, afterSeq: bigint, limit: number, filter: EventFilter = {}): Promise<SequencedEvent[]> {
  const { throughSeq, ...columns } = filter;
  const seq = throughSeq === undefined ? { $gt: afterSeq } : { $gt: afterSeq, $lte: throughSeq };
  const rows = await entityManager(session).find(
    OutboxEvent,
    { ...columns, seq },
    { orderBy: { seq: "asc" }, limit: Math.floor(limit), disableIdentityMap: true },
  );
  return rows as SequencedEvent[];
}

/** What the webhook fan-out needs of an event to plan its deliveries: no payload. */
export type SequencedEventHead = Pick<OutboxEventRow, "id" | "merchantId" | "aggregateId" | "eventType"> & { seq: bigint };

/**
 * Up to `limit` sequenced events after `afterSeq` in feed order, without their payloads: a plain
 * read instead of {@link eventsAfter}'s entities, since the fan-out reads every event and most
 * have no delivery to plan (hydrating each, its JSON payload included, was about 60 µs of CPU per
 * event in the callback benchmark).
 */
export async function eventHeadsAfter(session: Session, afterSeq: bigint, limit: number): Promise<SequencedEventHead[]> {
  const rows = await queryRows(
    rowExecutor(session),
    `select id, merchant_id, aggregate_id, event_type, seq from outbox_event where seq > ? order by seq limit ${Math.floor(limit)}`,
    [afterSeq.toString()],
  );
  return rows.map((row) => ({
    id: String(row.id),
    merchantId: String(row.merchant_id),
    aggregateId: String(row.aggregate_id),
    eventType: String(row.event_type),
    seq: toBigInt(row.seq),
  }));
}

/** The ids of up to `limit` events about `aggregateId` committed so far, sequenced or not. */
export async function eventIdsOf(session: Session, aggregateId: string, limit: number): Promise<string[]> {
  const rows: Array<{ id: string }> = await entityManager(session).execute(
    `select id from outbox_event where aggregate_id = ? limit ${Math.floor(limit)}`,
    [aggregateId],
  );
  return rows.map((row) => row.id);
}

/** The event with this id, sequenced or not. */
export function findEvent(session: Session, id: string): Promise<OutboxEventRow | undefined> {
  return findRow<OutboxEventRow>(rowExecutor(session), OutboxEvent, { id });
}

/** The highest place given so far (0 before any). */
export async function lastSequenced(session: Session): Promise<bigint> {
  const rows = await queryRows(rowExecutor(session), "select max(seq) as seq from outbox_event");
  return toBigInt(rows[0]?.seq);
}

/**
 * Deletes up to `limit` sequenced events created before `before` whose place is at or below
 * `upToSeq` (what every reader of the feed has passed); resolves with how many went.
 */
export async function deleteEventsBefore(session: Session, before: Date, upToSeq: bigint, limit: number): Promise<number> {
  const executor = rowExecutor(session);
  const at = entityManager(session).getPlatform().processDateProperty(before);
  const sql = isMysqlExecutor(executor)
    ? `delete from outbox_event where created_at < ? and seq <= ? order by created_at limit ${Math.floor(limit)}`
    : `delete from outbox_event where id in (select id from outbox_event where created_at < ? and seq <= ? order by created_at limit ${Math.floor(limit)})`;
  return runStatement(executor, sql, [at, upToSeq.toString()]);
}

/**
 * The committed events not yet numbered: how many, and when the oldest was written. For the backlog
 * metrics. The count and the first id come from the `seq IS NULL` range of `outbox_seq_unique`
 * (MySQL: the index holds the primary key, so this reads the index alone); ids are time-ordered and
 * made with the event's `created_at`, so the first id is the oldest event, whose time is then one
 * primary-key read.
 */
export async function unsequencedBacklog(session: Session): Promise<{ count: number; oldestCreatedAt: Date | undefined }> {
  const em = entityManager(session);
  const rows: Array<Record<string, unknown>> = await em.execute("select count(*) as n, min(id) as first from outbox_event where seq is null");
  const count = Number(rows[0]?.n ?? 0);
  const first = rows[0]?.first;
  if (count === 0 || first === null || first === undefined) return { count, oldestCreatedAt: undefined };
  const oldest: Array<Record<string, unknown>> = await em.execute("select created_at from outbox_event where id = ?", [String(first)]);
  // Numbered and deleted in between: nothing older is waiting than what the next scrape finds.
  const createdAt = oldest[0]?.created_at;
  return { count, oldestCreatedAt: createdAt === null || createdAt === undefined ? undefined : rawDate(createdAt) };
}
