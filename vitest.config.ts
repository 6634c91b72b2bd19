import { defineConfig } from 'vitest/config';

/**
 * Files that only compute: no servers, processes, timers, environment or globals of their own. They
 * share their workers' modules (`isolate: false`), so core's module graph is evaluated once per
 * worker instead of once per file.
 */
const PURE = [
  'packages/core/test/**/*.test.ts',
  'jobs/worker/test/csv/**/*.test.ts',
  'jobs/worker/test/logreg/**/*.test.ts',
];

export default defineConfig({
  test: {
    setupFiles: ['test/support/loopback-only.ts'],
    env: { METADATA_SERVER_DETECTION: 'none' },
    testTimeout: 30_000,
    pool: 'forks',
    // Most files wait, not compute: on emulators, the Docker engine, child processes, Pub/Sub's
    // redeliveries and tasks that last seconds. Vitest's default (one worker fewer than the cores,
    // so one file at a time on a 2-core machine) leaves the cores idle while they wait. Not more:
    // burst.test.ts's drain bound and the Docker suites' 30 s cases need CPU left over
    // (`--maxWorkers=1` runs one file at a time again).
    maxWorkers: 3,
    projects: [
      { extends: true, test: { name: 'pure', include: PURE, isolate: false } },
      {
        extends: true,
        test: {
          name: 'io',
          include: [
            'packages/*/test/**/*.test.ts',
            'services/*/test/**/*.test.ts',
            'jobs/*/test/**/*.test.ts',
            'test/infra/**/*.test.ts',
          ],
          exclude: PURE,
        },
      },
    ],
  },
});
