import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'packages/*/test/**/*.test.ts',
      'services/*/test/**/*.test.ts',
      'jobs/*/test/**/*.test.ts',
      'test/infra/**/*.test.ts',
    ],
    setupFiles: ['test/support/loopback-only.ts'],
    env: { METADATA_SERVER_DETECTION: 'none' },
    testTimeout: 30_000,
    pool: 'forks',
  },
});
