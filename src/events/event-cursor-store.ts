/**
 * The event cursor store: every statement on `event_cursor`. A cursor is created at position 0 the
 * first time it is used (the events migration starts the cursors of an upgraded database after the
 * events that already existed).
 */
import { findRow, isMysqlExecutor, queryRows, runStatement } from "../db/rows.js";
import { entityManager, isMysql, rowExecutor } from "../db/store-access.js";
import type { Session, Tx } from "../db/unit-of-work.js";
import { EventCursor, type EventCursorRow } from "./event-cursor-entity.js";

/** The readers of the feed that keep a cursor. */
export type CursorName = "sequence" | "webhooks" | "nats";

function at(session: Session, date: Date): unknown {
  return entityManager(session).getPlatform().processDateProperty(date);
}

async function ensureCursor(session: Session, name: CursorName): Promise<void> {
  const rows = rowExecutor(session);
  const values = "event_cursor (name, position, holder, lease_until, updated_at) values (?, 0, null, ?, ?)";
  await runStatement(rows, isMysqlExecutor(rows) ? `insert ignore into ${values}` : `insert into ${values} on conflict do nothing`, [
    name,
    at(session, new Date(0)),
    at(session, new Date()),
  ]);
}

/** The cursor, created at 0 when absent. */
async function readCursor(session: Session, name: CursorName): Promise<EventCursorRow> {
  await ensureCursor(session, name);
  return (await findRow<EventCursorRow>(rowExecutor(session), EventCursor, { name }))!;
}

/**
 * The cursor's position, read with a row lock held to the end of `tx` (MySQL `FOR UPDATE`; the
 * embedded database runs one writing transaction at a time anyway): transactions that lock the
 * same cursor run one after the other.
 */
export async function lockCursor(tx: Tx, name: CursorName): Promise<bigint> {
  const lock = isMysql(tx) ? " for update" : "";
  const select = () => queryRows(rowExecutor(tx), `select position from event_cursor where name = ?${lock}`, [name]);
  // The row exists after the first use: create it only then, not on every pass of the loops that lock it.
  let rows = await select();
  if (rows.length === 0) {
    await ensureCursor(tx, name);
    rows = await select();
  }
  return BigInt(String(rows[0]!.position));
}

/** Moves the cursor to `position` (in the transaction that locked it, or as the lease holder). */
export async function moveCursor(session: Session, name: CursorName, position: bigint, holder?: string): Promise<boolean> {
  const guard = holder === undefined ? "" : " and holder = ?";
  const params: unknown[] = [position.toString(), at(session, new Date()), name];
  if (holder !== undefined) params.push(holder);
  return (await runStatement(rowExecutor(session), `update event_cursor set position = ?, updated_at = ? where name = ?${guard}`, params)) === 1;
}

/**
 * Takes the cursor's lease for `holder` until `until` when it is free, expired at `now`, or already
 * this holder's; resolves with the cursor when taken, undefined when another replica holds it.
 */
export async function takeCursorLease(session: Session, name: CursorName, holder: string, now: Date, until: Date): Promise<EventCursorRow | undefined> {
  await ensureCursor(session, name);
  const taken = await runStatement(
    rowExecutor(session),
    "update event_cursor set holder = ?, lease_until = ? where name = ? and (lease_until < ? or holder = ?)",
    [holder, at(session, until), name, at(session, now), holder],
  );
  if (taken !== 1) return undefined;
  return findRow<EventCursorRow>(rowExecutor(session), EventCursor, { name });
}

/** Frees the holder's lease at once (a clean stop), if it still holds it. */
export async function releaseCursorLease(session: Session, name: CursorName, holder: string): Promise<void> {
  await runStatement(rowExecutor(session), "update event_cursor set holder = null, lease_until = ? where name = ? and holder = ?", [
    at(session, new Date(0)),
    name,
    holder,
  ]);
}

/** The lowest position of the given cursors: every one of those readers has passed it. */
export async function lowestPosition(session: Session, names: readonly CursorName[]): Promise<bigint> {
  let lowest: bigint | undefined;
  for (const name of names) {
    const cursor = await readCursor(session, name);
    if (lowest === undefined || cursor.position < lowest) lowest = cursor.position;
  }
  return lowest ?? 0n;
}
