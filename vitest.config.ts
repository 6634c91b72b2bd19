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

/**
 * Files whose claim is a rate: burst.test.ts drains 200 jobs within 1.5 times the ideal, which the
 * dispatcher's CPU decides. They run after the others, one at a time, with the cores to themselves.
 */
const ALONE = ['services/dispatcher/test/integration/burst.test.ts'];

export default defineConfig({
  test: {
    setupFiles: ['test/support/loopback-only.ts'],
    env: { METADATA_SERVER_DETECTION: 'none' },
    testTimeout: 30_000,
    pool: 'forks',
    // Most files wait, not compute: on emulators, the Docker engine, child processes, Pub/Sub's
    // redeliveries and tasks that last seconds. Vitest's default (one worker fewer than the cores,
    // so one file at a time on a 2-core machine) leaves the cores idle while they wait. Not more:
    // the Docker suites' 30 s cases need CPU left over (`--maxWorkers=1` runs one file at a time).
    maxWorkers: 3,
    projects: [
      { extends: true, test: { name: 'pure', include: PURE, isolate: false } },
      {
        extends: true,
        test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
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
          exclude: [...PURE, ...ALONE],
        },
      },
    ],
  },
});
