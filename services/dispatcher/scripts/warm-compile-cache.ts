// Run at image build time with NODE_COMPILE_CACHE set: loads every module the dispatcher loads at
// start-up and on its first requests (the Google clients), so that a cold start on Cloud Run finds
// them compiled (and their TypeScript stripped) in the image. It starts no server.
import { flushCompileCache, getCompileCacheDir } from 'node:module';

await import('../src/gcp/wiring.ts');
await import('../src/config.ts');
await import('../src/gcp/firestore-ledger.ts');
// Loaded on first use, not at start: warmed all the same, so that first use is quick too.
await import('../src/reconciler.ts');
await import('../src/job-logs.ts');
await import('../src/dashboard/router.ts');
await import('../src/gcp/dead-letters.ts');
await import('@google-cloud/storage');
await import('google-auth-library');
await import('@google-cloud/run');
await import('@google-cloud/compute/build/src/v1/instances_client.js');
await import('@google-cloud/compute/build/src/v1/zone_operations_client.js');
flushCompileCache();
process.stdout.write(
  `compile cache written to ${getCompileCacheDir() ?? '(none: NODE_COMPILE_CACHE is not set)'}\n`,
);
