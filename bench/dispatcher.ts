// Dispatcher benchmarks, each against a baseline measured in the same run:
// - cold start: process start to the first 200 from /healthz, for the cloud dispatcher and for a bare
//   express app started the same way; the ratio is the figure (target <= 1.3x);
// - push handling: distinct OBJECT_FINALIZE pushes through the whole intake (parse, claim in a sqlite
//   ledger, route, launch with the real Run client against a loopback double), 32 at a time, against
//   a bare express handler that parses the same bodies; throughput and p50/p99 latency.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { OAuth2Client } from 'google-auth-library';
import { parseRoutingConfig } from '@pipeline/core';
import { buildApp } from '../services/dispatcher/src/app.ts';
import { Dispatcher } from '../services/dispatcher/src/dispatcher.ts';
import { createLogger } from '../services/dispatcher/src/logger.ts';
import { executionsClient, jobsClient, tasksClient } from '../services/dispatcher/src/gcp/clients.ts';
import { CloudRunJobLauncher } from '../services/dispatcher/src/gcp/run-launcher.ts';
import { GcsBlobStore } from '../services/dispatcher/src/gcp/gcs-blob-store.ts';
import { SqliteLedger } from '../services/dispatcher/src/local/sqlite-ledger.ts';
import { freePort } from '../test/support/emulators.ts';
import { startFakeRun } from '../test/support/fake-run.ts';

const root = path.resolve(import.meta.dirname, '..');
const COLD_RUNS = 7;
const PUSHES = 3000;
const CONCURRENCY = 32;

const CLOUD_ENV = {
  GOOGLE_CLOUD_PROJECT: 'acme-prod',
  REGION: 'us-central1',
  ZONE: 'us-central1-a',
  OUTPUT_BUCKET: 'acme-pipeline-output',
  WORKER_JOB: 'pipeline-worker',
  WORKER_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/worker:1',
  WORKER_SERVICE_ACCOUNT: 'worker@acme-prod.iam.gserviceaccount.com',
  COMPLETIONS_TOPIC: 'pipeline-completions',
  PUSH_AUDIENCE: 'https://dispatcher.example.run.app',
  PUSH_SERVICE_ACCOUNT: 'push@acme-prod.iam.gserviceaccount.com',
  HOST: '127.0.0.1',
  METADATA_SERVER_DETECTION: 'none',
};

/** Milliseconds from spawning `node script` to its first 200 on /healthz; `cache`: a NODE_COMPILE_CACHE folder. */
async function coldStart(script: string, cache?: string): Promise<number> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    ...CLOUD_ENV,
    PORT: String(port),
    ...(cache === undefined ? {} : { NODE_COMPILE_CACHE: cache }),
  };
  const started = performance.now();
  const child = spawn(process.execPath, [script], { env, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return performance.now() - started;
      } catch {
        // not listening yet
      }
      if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    child.kill('SIGTERM');
    await exited; // a clean exit writes the compile cache, and the next run starts on a quiet machine
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];

async function listen(app: express.Express): Promise<{ url: string; server: Server }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }),
    );
  });
}

function pushBody(i: number): string {
  const resource = {
    bucket: 'acme-pipeline-input',
    name: `bench/file-${i}.csv`,
    generation: String(1_000_000 + i),
    size: '2048',
    contentType: 'text/csv',
    metadata: {},
  };
  return JSON.stringify({
    message: {
      data: Buffer.from(JSON.stringify(resource)).toString('base64'),
      attributes: {
        bucketId: resource.bucket,
        objectId: resource.name,
        objectGeneration: resource.generation,
        eventType: 'OBJECT_FINALIZE',
        payloadFormat: 'JSON_API_V1',
      },
      messageId: String(i),
    },
    subscription: 'projects/acme-prod/subscriptions/uploads-push',
  });
}

/** PUSHES distinct pushes, CONCURRENCY at a time; returns per-request latencies (ms) and the wall time. */
async function load(url: string): Promise<{ latencies: number[]; seconds: number }> {
  const bodies = Array.from({ length: PUSHES }, (_, i) => pushBody(i));
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const t = performance.now();
        const response = await fetch(`${url}/pubsub/push`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
        });
        await response.arrayBuffer();
        if (response.status >= 300) throw new Error(`push answered ${response.status}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

export async function benchDispatcher(): Promise<boolean> {
  const dispatcherScript = path.join(root, 'services/dispatcher/src/index.ts');
  const bareScript = path.join(root, 'bench/bare-express.ts');
  // As deployed, the image carries a compile cache made at build time (see the Dockerfile); the bare
  // app gets one too, so the comparison stays fair. Without caches, the figures are reported as well.
  const caches = fs.mkdtempSync(path.join(os.tmpdir(), 'compile-cache-'));
  const cold = async (cache: boolean) => {
    const [bareCache, dispatcherCache] = cache
      ? [path.join(caches, 'bare'), path.join(caches, 'dispatcher')]
      : [];
    await coldStart(bareScript, bareCache); // warms the page cache, and the compile caches
    await coldStart(dispatcherScript, dispatcherCache);
    const bare: number[] = [];
    const dispatcher: number[] = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      bare.push(await coldStart(bareScript, bareCache));
      dispatcher.push(await coldStart(dispatcherScript, dispatcherCache));
    }
    return { bare: median(bare), dispatcher: median(dispatcher), ratio: median(dispatcher) / median(bare) };
  };
  const cached = await cold(true);
  const uncached = await cold(false);
  fs.rmSync(caches, { recursive: true, force: true });

  const run = await startFakeRun();
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'bench', expiry_date: Date.now() + 3_600_000 });
  const ledger = new SqliteLedger(':memory:');
  const logger = createLogger(fs.createWriteStream('/dev/null'));
  const launcher = new CloudRunJobLauncher({
    project: 'acme-prod',
    region: 'us-central1',
    job: 'pipeline-worker',
    client: () => jobsClient({ endpoint: run.endpoint, authClient: auth }),
    executions: () => executionsClient({ endpoint: run.endpoint, authClient: auth }),
    tasks: () => tasksClient({ endpoint: run.endpoint, authClient: auth }),
  });
  const routing = parseRoutingConfig({
    rules: [{ name: 'csv', match: { path: '**' }, target: 'cloud-run-job', job: { task: 'logreg' } }],
  });
  const intake = new Dispatcher({
    ledger,
    blobs: new GcsBlobStore(),
    launchers: { 'cloud-run-job': launcher, vm: launcher },
    routing,
    outputBucket: 'acme-pipeline-output',
    logger,
  });
  const full = await listen(buildApp({ dispatcher: intake, ledger, logger }));
  const minimal = express();
  minimal.post('/pubsub/push', express.json(), (_req, res) => {
    res.status(204).end();
  });
  const baseline = await listen(minimal);

  const base = await load(baseline.url);
  const measured = await load(full.url);
  if (run.requests.length !== PUSHES)
    throw new Error(`expected ${PUSHES} runJob calls, saw ${run.requests.length}`);
  for (const { server } of [full, baseline]) server.close();
  await run.close();
  ledger.close();

  const coldOk = cached.ratio <= 1.3;
  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  process.stdout.write(
    [
      'dispatcher',
      `  cold start      ${fmt(cached.dispatcher)} to the first /healthz vs ${fmt(cached.bare)} for a bare express app, both with a compile cache as deployed (medians of ${COLD_RUNS}) = ${cached.ratio.toFixed(2)}x (target <= 1.3x) ${coldOk ? 'ok' : 'MISSED'}`,
      `  without caches  ${fmt(uncached.dispatcher)} vs ${fmt(uncached.bare)} = ${uncached.ratio.toFixed(2)}x`,
      `  push intake     ${Math.round(PUSHES / measured.seconds)} pushes/s, p50 ${fmt(percentile(measured.latencies, 0.5))}, p99 ${fmt(percentile(measured.latencies, 0.99))} (${PUSHES} distinct objects, ${CONCURRENCY} at a time, sqlite ledger, real Run client to a loopback double)`,
      `  baseline        ${Math.round(PUSHES / base.seconds)} pushes/s, p50 ${fmt(percentile(base.latencies, 0.5))}, p99 ${fmt(percentile(base.latencies, 0.99))} (express, parse and 204); intake costs ${(base.seconds > 0 ? measured.seconds / base.seconds : 0).toFixed(1)}x its time`,
      '',
    ].join('\n'),
  );
  return coldOk;
}
