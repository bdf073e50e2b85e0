/**
 * The job lease store: every statement on `job_lease`. A lease is taken by one conditional UPDATE
 * (free or expired, and the work not completed), so one replica at a time runs a job; a replica
 * that dies lets its lease expire and another takes it over.
 */
import { findRow, isMysqlExecutor, runStatement } from "../db/rows.js";
import { entityManager, rowExecutor } from "../db/store-access.js";
import type { Session } from "../db/unit-of-work.js";
import { JobLease, type JobLeaseRow } from "./job-lease-entity.js";

function at(session: Session, date: Date): unknown {
  return entityManager(session).getPlatform().processDateProperty(date);
}

/** The job's lease row, if it was ever taken. */
export function findLease(session: Session, name: string): Promise<JobLeaseRow | undefined> {
  return findRow<JobLeaseRow>(rowExecutor(session), JobLease, { name });
}

/**
 * Takes the job's lease until `until` for `holder` when it is free or expired at `now` and its
 * completed key is below `key` (the row is inserted first if absent). Resolves with whether this
 * holder got it.
 */
export async function takeLease(session: Session, name: string, holder: string, key: string, now: Date, until: Date): Promise<boolean> {
  const rows = rowExecutor(session);
  const values = "job_lease (name, holder, lease_until, completed_key) values (?, null, ?, null)";
  await runStatement(rows, isMysqlExecutor(rows) ? `insert ignore into ${values}` : `insert into ${values} on conflict do nothing`, [
    name,
    at(session, new Date(0)),
  ]);
  const taken = await runStatement(
    rows,
    `update job_lease set holder = ?, lease_until = ?
     where name = ? and lease_until < ? and (completed_key is null or completed_key < ?)`,
    [holder, at(session, until), name, at(session, now), key],
  );
  return taken === 1;
}

/** Extends the holder's lease; resolves with false when the holder lost it (expired and taken over). */
export async function renewLease(session: Session, name: string, holder: string, until: Date): Promise<boolean> {
  return (
    (await runStatement(rowExecutor(session), "update job_lease set lease_until = ? where name = ? and holder = ?", [at(session, until), name, holder])) === 1
  );
}

/** Records `key` as completed and frees the lease (`lease_until` = `freeFrom`), if the holder still holds it. */
export async function completeLease(session: Session, name: string, holder: string, key: string, freeFrom: Date): Promise<boolean> {
  return (
    (await runStatement(
      rowExecutor(session),
      "update job_lease set completed_key = ?, holder = null, lease_until = ? where name = ? and holder = ?",
      [key, at(session, freeFrom), name, holder],
    )) === 1
  );
}

/** Frees the holder's lease (`lease_until` = `freeFrom`) without completing (the run failed or stopped). */
export async function releaseLease(session: Session, name: string, holder: string, freeFrom: Date): Promise<void> {
  await runStatement(rowExecutor(session), "update job_lease set holder = null, lease_until = ? where name = ? and holder = ?", [
    at(session, freeFrom),
    name,
    holder,
  ]);
}
