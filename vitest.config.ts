import { defineConfig } from "vitest/config";
import { SummaryReporter } from "./test/support/summary-reporter.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Two files at a time even on 2 cores (vitest's default would be 1 there): most of the suite waits on
    // MariaDB, child processes and sockets rather than on the CPU, and nothing shares state across files
    // (each makes its own database, and takes ports from its worker's own block: test/support/ports.ts).
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", new SummaryReporter()],
  },
});
