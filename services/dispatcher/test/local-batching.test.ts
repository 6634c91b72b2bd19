// Local mode and a rule that batches: its processes cannot be tasks of one execution, so each file
// runs on its own at once, not after the batch's maxWait, and its attempt names no batch.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseRoutingConfig, type Job } from '@pipeline/core';
import { startLocalPipeline, type LocalPipeline } from '../src/local/pipeline.ts';
import { createLogger } from '../src/logger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';
import { until } from '../../../test/support/until.ts';

let dir: string;
let pipeline: LocalPipeline;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-batching-'));
  pipeline = await startLocalPipeline({
    root: dir,
    routing: parseRoutingConfig({
      rules: [
        {
          name: 'small',
          match: { path: '**.csv' },
          target: 'cloud-run-job',
          job: { task: 'logreg' },
          // An hour: a file that waited for its batch would not finish within this test.
          batch: { maxFiles: 50, maxWait: '1h' },
        },
      ],
    }),
    port: 0,
    logger: createLogger(undefined, 'silent'),
    nodeOptions: ['--import', LOOPBACK_GUARD],
    scanIntervalMs: 50,
    quietMs: 100,
  });
});

afterAll(async () => {
  await pipeline?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("runs each file of a batching rule on its own, without waiting for the batch's maxWait", async () => {
  const rows = ['x1,x2,label', ...Array.from({ length: 40 }, (_, i) => `${i % 7},${(i * 3) % 5},${i % 2}`)];
  for (let i = 0; i < 3; i++)
    fs.writeFileSync(path.join(dir, 'input', `small-${i}.csv`), `${rows.join('\n')}\n`);
  const jobs = await until(
    async () => {
      const listed: Job[] = (await pipeline.ledger.list({ limit: 10 })).jobs;
      return listed.length === 3 && listed.every((job) => job.state === 'SUCCEEDED') ? listed : undefined;
    },
    60_000,
    'three SUCCEEDED jobs',
  );
  expect(new Set(jobs.map((job) => job.execution)).size).toBe(3);
  for (const job of jobs) expect(job.attempts[0]!.batch).toBeUndefined();
}, 90_000);
