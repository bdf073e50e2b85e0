/** The backlog gauges' reads (metrics.ts `Backlogs`), through the stores. IN PROGRESS: metrics helper. */
import type { UnitOfWork } from "../db/unit-of-work.js";
import type { Backlogs } from "./metrics.js";

export async function readBacklogs(_uow: UnitOfWork): Promise<Backlogs> {
  throw new Error("backlog metrics are not implemented yet");
}
