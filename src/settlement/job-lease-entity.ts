import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/**
 * A named background job shared by every replica: the replica whose conditional UPDATE took the
 * lease (`lease_until` in the past) runs it; `completed_key` says what was done last (for the daily
 * settlement: the last settlement date completed).
 */
export const JobLease = defineEntity({
  name: "JobLease",
  tableName: "job_lease",
  properties: {
    name: p.string().length(64).primary(),
    holder: p.string().length(64).nullable(),
    leaseUntil: p.datetime(3),
    completedKey: p.string().length(64).nullable(),
  },
});
export type JobLeaseRow = InferEntity<typeof JobLease>;
