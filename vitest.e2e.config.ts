// The cloud in a box (test/box): both routes end to end with the real images, on the Docker engine,
// the emulators and the doubles. Apart from `npm test`: it needs the engine and takes minutes
// (`npm run e2e:cloud`; .ci/run runs it after the images are built).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/box/**/*.e2e.test.ts'],
    setupFiles: ['test/support/loopback-only.ts'],
    env: { METADATA_SERVER_DETECTION: 'none' },
    testTimeout: 900_000,
    hookTimeout: 1_200_000,
    pool: 'forks',
  },
});
