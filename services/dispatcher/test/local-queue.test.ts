// Local mode has the launch queue too: files dropped at once wait QUEUED for one of LOCAL_CAPACITY
// slots, so a burst never starts a process per file at once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseRoutingConfig, type Job } from '@pipeline/core';
import { startLocalPipeline, type LocalPipeline } from '../src/local/pipeline.ts';
import { createLogger } from '../src/logger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const FILES = 8;
const SLOTS = 2;
let dir: string;
let pipeline: LocalPipeline;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-queue-'));
  pipeline = await startLocalPipeline({
    root: dir,
    routing: parseRoutingConfig({
      rules: [{ name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } }],
    }),
    port: 0,
    logger: createLogger(undefined, 'silent'),
    nodeOptions: ['--import', LOOPBACK_GUARD],
    scanIntervalMs: 50,
    quietMs: 100,
    capacity: SLOTS,
  });
});

afterAll(async () => {
  await pipeline?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The most intervals open at one time. */
function peakOverlap(intervals: [number, number][]): number {
  const edges = intervals.flatMap(([start, end]) => [
    [start, 1],
    [end, -1],
  ]);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let peak = 0;
  for (const [, change] of edges) peak = Math.max(peak, (open += change));
  return peak;
}

it(`runs ${FILES} files dropped at once ${SLOTS} at a time, the others QUEUED until a slot frees`, async () => {
  const rows = ['x1,x2,label', ...Array.from({ length: 80 }, (_, i) => `${i % 7},${(i * 3) % 5},${i % 2}`)];
  for (let i = 0; i < FILES; i++)
    fs.writeFileSync(path.join(dir, 'input', `burst-${i}.csv`), `${rows.join('\n')}\n`);
  let jobs: Job[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    jobs = (await pipeline.ledger.list({ limit: 50 })).jobs;
    if (jobs.length === FILES && jobs.every((job) => job.state === 'SUCCEEDED')) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(jobs.map((job) => job.state)).toEqual(Array(FILES).fill('SUCCEEDED'));
  const runs = jobs.map((job): [number, number] => {
    const [attempt] = job.attempts;
    return [Date.parse(attempt.launchedAt), Date.parse(attempt.finishedAt!)];
  });
  expect(peakOverlap(runs)).toBe(SLOTS);
  // Some waited: their launch came after another's end.
  const waited = jobs.filter(
    (job) => Date.parse(job.attempts[0].launchedAt) > Date.parse(job.queue!.queuedAt) + 200,
  );
  expect(waited.length).toBeGreaterThan(0);
  expect(jobs.every((job) => job.history.some((h) => h.to === 'QUEUED'))).toBe(true);
}, 90_000);
