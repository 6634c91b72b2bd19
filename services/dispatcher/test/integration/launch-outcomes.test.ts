// What the dispatcher does with launches whose outcome it cannot simply read, with the real Run and
// Compute clients against their loopback doubles and a sqlite ledger shared by two dispatchers:
// - Cloud Run accepts a runJob and the connection drops before the answer: the launch is looked for
//   (ListExecutions, matched by JOB_ID and ATTEMPT) and adopted, never made twice;
// - a dispatcher dies between writing LAUNCHED and calling runJob: the next one's reconcile pass,
//   on the shipped schedule, finds nothing launched and launches the same attempt, within a minute;
// - a zone out of capacity: the VM runs in the next zone, and the attempt records both.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { parseRoutingConfig, type Launcher, type RoutingConfig, type StorageEvent } from '@pipeline/core';
import { Dispatcher } from '../../src/dispatcher.ts';
import { reconcilerBeside } from '../support.ts';
import { createLogger } from '../../src/logger.ts';
import { SqliteLedger } from '../../src/local/sqlite-ledger.ts';
import { FolderBlobStore } from '../../src/local/folder-blob-store.ts';
import { ComputeEngineLauncher } from '../../src/gcp/compute-launcher.ts';
import { isRunJob, startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { testComputeSettings, testRunLauncher } from './test-launchers.ts';

const ROUTING = parseRoutingConfig({
  rules: [
    {
      name: 'big',
      match: { minSize: '1GiB' },
      target: 'vm',
      job: { task: 'logreg', machineType: 'e2-standard-2' },
    },
    { name: 'csv', match: { path: '**' }, target: 'cloud-run-job', job: { task: 'logreg' } },
  ],
});

let run: FakeRun;
let compute: FakeCompute;
let dir: string;
const authClient = new OAuth2Client();
authClient.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });

beforeAll(async () => {
  [run, compute] = await Promise.all([startFakeRun(), startFakeCompute()]);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'launch-outcomes-'));
});

afterAll(async () => {
  await Promise.all([run?.close(), compute?.close()]);
});

const errors: unknown[] = [];
const logger = createLogger(
  new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) {
        if (line === '') continue;
        const entry = JSON.parse(line);
        if (entry.severity === 'CRITICAL') errors.push(entry);
      }
      done();
    },
  }),
);

/** A dispatcher on the ledger file `ledgerFile`, with the given launchers (the real ones by default). */
function dispatcher(
  ledgerFile: string,
  launchers: Partial<Record<'cloud-run-job' | 'vm', Launcher>> = {},
  now?: () => Date,
) {
  const ledger = new SqliteLedger(ledgerFile);
  const blobs = new FolderBlobStore(dir, { input: path.join(dir, 'in'), output: path.join(dir, 'out') });
  const routing: RoutingConfig = ROUTING;
  return new Dispatcher({
    ledger,
    blobs,
    routing,
    outputBucket: 'output',
    logger,
    ...(now === undefined ? {} : { now }),
    launchers: {
      'cloud-run-job': launchers['cloud-run-job'] ?? testRunLauncher(run.endpoint, authClient),
      vm:
        launchers.vm ??
        new ComputeEngineLauncher(
          testComputeSettings(compute.endpoint, authClient, { zones: ['europe-west1-b', 'europe-west1-c'] }),
        ),
    },
  });
}

let n = 0;
function upload(size = 100): StorageEvent {
  n++;
  return {
    eventType: 'OBJECT_FINALIZE',
    object: { bucket: 'input', name: `data/${n}.csv`, generation: String(n), size, metadata: {} },
  };
}

const executionsOf = (jobId: string) => run.executionJobIds().filter((id) => id === jobId);

describe('a launch whose answer is lost', () => {
  it('adopts the execution Cloud Run made when the connection dropped before its answer', async () => {
    const d = dispatcher(path.join(dir, 'dropped.db'));
    run.dropNextAnswers(1, isRunJob);
    const event = upload();
    const intake = await d.onStorageEvent(event);
    if (intake.outcome !== 'created') throw new Error(intake.outcome);
    const job = await d.ports.ledger.get(intake.job.id);
    expect(executionsOf(intake.job.id)).toHaveLength(1);
    expect(job).toMatchObject({ state: 'LAUNCHED', attempt: 1 });
    expect(job!.execution).toBe(run.executions.at(-1));
    expect(job!.attempts).toHaveLength(1);
    // A redelivery of the same upload changes nothing, and a reconcile pass launches nothing more.
    expect((await d.onStorageEvent(event)).outcome).toBe('duplicate');
    await reconcilerBeside(d).pass();
    expect(executionsOf(intake.job.id)).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('launches again when the dropped request never reached Cloud Run, and only once', async () => {
    const d = dispatcher(path.join(dir, 'unsent.db'));
    // The connection drops, and the double made nothing: as if the request died on the way.
    run.failNext(1, {
      status: 503,
      body: { error: { code: 503, message: 'upstream connect error', status: 'UNAVAILABLE' } },
    });
    const intake = await d.onStorageEvent(upload());
    if (intake.outcome !== 'created') throw new Error(intake.outcome);
    let job = await d.ports.ledger.get(intake.job.id);
    // Looked for, found absent: queued again as the same attempt, with no failure counted.
    expect(job).toMatchObject({ state: 'QUEUED', attempt: 1 });
    expect(executionsOf(intake.job.id)).toHaveLength(0);
    await reconcilerBeside(d).pass();
    job = await d.ports.ledger.get(intake.job.id);
    expect(job).toMatchObject({ state: 'LAUNCHED', attempt: 1 });
    expect(executionsOf(intake.job.id)).toHaveLength(1);
  });
});

describe('a dispatcher killed between writing LAUNCHED and runJob', () => {
  it('is recovered by the next reconcile pass within a minute: one execution, the same attempt', async () => {
    const file = path.join(dir, 'killed.db');
    // The dispatchers' clock runs five times as fast as the wall's: the shipped settings (a launch is
    // looked for 30 s after it began) are kept, and the minute is the dispatchers' minute.
    const start = Date.now();
    const now = () => new Date(start + (Date.now() - start) * 5);
    // The first dispatcher's launch never comes back: it died right after writing LAUNCHED.
    const dead = dispatcher(
      file,
      {
        'cloud-run-job': {
          launch: () => new Promise(() => {}),
          find: async () => ({ kind: 'absent' }),
          inspect: async () => ({ kind: 'running' }),
          cancel: async () => {},
        },
      },
      now,
    );
    const killedAt = now().getTime();
    void dead.onStorageEvent(upload());
    const ledger = new SqliteLedger(file);
    let launched;
    const deadline = Date.now() + 10_000;
    for (;;) {
      launched = (await ledger.list({ state: 'LAUNCHED', limit: 1 })).jobs[0];
      if (launched !== undefined) break;
      if (Date.now() > deadline) throw new Error('the first dispatcher wrote no LAUNCHED job within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(launched.execution).toBeUndefined();
    // The next dispatcher's first reconcile pass comes at once (the worst time: the launch is too
    // young to look for), and waits within the pass until it may.
    const next = dispatcher(file, {}, now);
    const report = await reconcilerBeside(next).pass();
    const job = await next.ports.ledger.get(launched.id);
    expect(report.relaunched).toEqual([launched.id]);
    expect(job).toMatchObject({ state: 'LAUNCHED', attempt: 1 });
    expect(job!.attempts.map((a) => a.outcome)).toEqual([undefined]);
    expect(executionsOf(launched.id)).toHaveLength(1);
    // Not before the launch could be looked for, and within the minute.
    expect(now().getTime() - killedAt).toBeGreaterThanOrEqual(30_000);
    expect(now().getTime() - killedAt).toBeLessThan(60_000);
  }, 90_000);
});

describe('a zone out of capacity', () => {
  it('runs the VM in the next zone, and the attempt records where it was refused', async () => {
    compute.stockout = (zone) => zone === 'europe-west1-b';
    try {
      const d = dispatcher(path.join(dir, 'zones.db'));
      const intake = await d.onStorageEvent(upload(2 * 2 ** 30));
      if (intake.outcome !== 'created') throw new Error(intake.outcome);
      const job = (await d.ports.ledger.get(intake.job.id))!;
      expect(job.state).toBe('LAUNCHED');
      expect(job.execution).toMatch(/^zones\/europe-west1-c\/instances\/pipeline-/);
      expect(job.attempts[0].execution).toBe(job.execution);
      expect(job.attempts[0].refusals).toEqual([
        expect.stringMatching(/^europe-west1-b: ZONE_RESOURCE_POOL_EXHAUSTED/),
      ]);
    } finally {
      compute.stockout = undefined;
    }
  });
});
