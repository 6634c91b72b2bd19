// What a batch's launch does at each answer, with the real Run client against its loopback double
// and a sqlite ledger: a lost RunJob answer (the execution is looked for by BATCH_ID and adopted by
// every job of the batch), a 429 (every job back to the queue at its place, one slot given back),
// a manifest Cloud Storage will not write (403: FAILED, naming the grant; 503: queued again), and a
// cancel of one job of a running batch (its task runs on; the others are untouched).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import {
  batchManifestName,
  currentBatchTask,
  parseBatchManifest,
  parseRoutingConfig,
  type BlobStore,
  type Job,
  type StorageEvent,
} from '@pipeline/core';
import { Dispatcher } from '../../src/dispatcher.ts';
import { RetryLaterError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { SqliteLedger } from '../../src/local/sqlite-ledger.ts';
import { FolderBlobStore } from '../../src/local/folder-blob-store.ts';
import { googleError, isRunJob, startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { testRunLauncher } from './test-launchers.ts';

const ROUTING = parseRoutingConfig({
  rules: [
    {
      name: 'small',
      match: { path: '**' },
      target: 'cloud-run-job',
      job: { task: 'logreg', timeout: '10m' },
      // Closed by maxFiles only, within a test.
      batch: { maxFiles: 3, maxWait: '1h' },
    },
  ],
});

let run: FakeRun;
let dir: string;
const authClient = new OAuth2Client();
authClient.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
const logger = createLogger(new Writable({ write: (_chunk, _encoding, done) => done() }));

beforeAll(async () => {
  run = await startFakeRun();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-outcomes-'));
});

afterAll(async () => {
  await run?.close();
});

/** A dispatcher on its own ledger; `blobs` may change how the output bucket answers. */
function dispatcher(name: string, blobs?: (store: BlobStore) => BlobStore, now?: () => Date) {
  const store = new FolderBlobStore(dir, { input: path.join(dir, 'in'), output: path.join(dir, 'out') });
  return new Dispatcher({
    ledger: new SqliteLedger(path.join(dir, `${name}.db`)),
    blobs: blobs === undefined ? store : blobs(store),
    routing: ROUTING,
    outputBucket: 'output',
    logger,
    ...(now === undefined ? {} : { now }),
    launchers: {
      'cloud-run-job': testRunLauncher(run.endpoint, authClient),
      vm: { launch: unused, find: unused, inspect: unused, cancel: unused },
    },
  });
}
const unused = () => {
  throw new Error('no VM in these tests');
};

let n = 0;
/** Three uploads: the third closes the batch (maxFiles 3) and its push launches it. */
async function threeUploads(d: Dispatcher): Promise<Job[]> {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    n++;
    const event: StorageEvent = {
      eventType: 'OBJECT_FINALIZE',
      object: { bucket: 'input', name: `small/${n}.csv`, generation: String(n), size: 100, metadata: {} },
    };
    const intake = await d.onStorageEvent(event);
    if (intake.outcome !== 'created') throw new Error(intake.outcome);
    ids.push(intake.job.id);
  }
  return Promise.all(ids.map(async (id) => (await d.ports.ledger.get(id))!));
}

describe('a batch launch', () => {
  it('is one execution of three tasks, each reading its own manifest entry', async () => {
    const d = dispatcher('plain');
    const jobs = await threeUploads(d);
    const execution = jobs[0]!.execution!;
    expect(jobs.map((job) => [job.state, job.execution])).toEqual(jobs.map(() => ['LAUNCHED', execution]));
    expect(jobs.map((job) => currentBatchTask(job)?.index)).toEqual([0, 1, 2]);
    const batchId = currentBatchTask(jobs[0]!)!.id;
    const manifest = parseBatchManifest(
      JSON.parse(fs.readFileSync(path.join(dir, 'out', batchManifestName(batchId)), 'utf8')),
    );
    expect(manifest.tasks.map((task) => [task?.jobId, task?.env.JOB_ID, task?.env.LOGS_URI])).toEqual(
      jobs.map((job) => [job.id, job.id, job.logsUri]),
    );
    // One slot for the three.
    const { holders } = await d.ports.ledger.readCapacity();
    expect(holders).toEqual([expect.objectContaining({ jobId: batchId, members: jobs.map((j) => j.id) })]);
  });

  it('whose RunJob answer was lost is found by its BATCH_ID and adopted by all three, never run twice', async () => {
    const d = dispatcher('lost');
    const before = run.executions.length;
    run.dropNextAnswers(1, isRunJob);
    const jobs = await threeUploads(d);
    expect(run.executions.length - before).toBe(1);
    const execution = run.executions.at(-1)!;
    expect(jobs.map((job) => [job.state, job.execution])).toEqual(jobs.map(() => ['LAUNCHED', execution]));
  });

  it('refused with a 429 puts all three back at their place, gives the one slot back, and relaunches them together', async () => {
    let clock = Date.now();
    const d = dispatcher('refused', undefined, () => new Date(clock));
    run.failNext(
      1,
      googleError(429, 'Resource exhausted: too many running executions', { status: 'RESOURCE_EXHAUSTED' }),
      isRunJob,
    );
    const before = run.executions.length;
    let jobs = await threeUploads(d);
    expect(jobs.map((job) => [job.state, job.attempt, job.queue?.refusals])).toEqual(
      jobs.map(() => ['QUEUED', 1, 1]),
    );
    expect(jobs[0]!.queue?.reason).toContain('429');
    expect(run.executions.length).toBe(before);
    // A ceiling was learned for the Cloud Run pool, and no slot is held.
    expect((await d.ports.ledger.readCapacity()).holders).toEqual([]);
    // After the backoff (and the ceiling's hold), the next drain launches the same batch.
    clock += 120_000;
    await d.queue.kick(10_000);
    jobs = await Promise.all(jobs.map(async (job) => (await d.ports.ledger.get(job.id))!));
    expect(new Set(jobs.map((job) => job.execution)).size).toBe(1);
    expect(jobs.map((job) => job.state)).toEqual(['LAUNCHED', 'LAUNCHED', 'LAUNCHED']);
    expect(run.executions.length).toBe(before + 1);
  });

  it('whose manifest Cloud Storage refuses for good (403) fails its jobs with the grant to add', async () => {
    const denied = Object.assign(new Error('does not have storage.objects.create access'), { code: 403 });
    const d = dispatcher('denied', (store) => withPutIf(store, () => Promise.reject(denied)));
    const before = run.executions.length;
    const jobs = await threeUploads(d);
    expect(jobs.map((job) => job.state)).toEqual(['FAILED', 'FAILED', 'FAILED']);
    expect(jobs[0]!.error).toContain('storage.objects.create on _pipeline/batches/ in the output bucket');
    expect(run.executions.length).toBe(before);
    expect((await d.ports.ledger.readCapacity()).holders).toEqual([]);
  });

  it('whose manifest Cloud Storage refuses for now (503) is queued again, and launched once it writes', async () => {
    let clock = Date.now();
    let failing = true;
    const d = dispatcher(
      'unavailable',
      (store) =>
        withPutIf(store, (...args) =>
          failing
            ? Promise.reject(new RetryLaterError('Cloud Storage failed for now: 503'))
            : store.putIf(...args),
        ),
      () => new Date(clock),
    );
    let jobs = await threeUploads(d);
    expect(jobs.map((job) => job.state)).toEqual(['QUEUED', 'QUEUED', 'QUEUED']);
    expect(jobs[0]!.queue?.reason).toContain('503');
    failing = false;
    clock += 120_000;
    await d.queue.kick(10_000);
    jobs = await Promise.all(jobs.map(async (job) => (await d.ports.ledger.get(job.id))!));
    expect(jobs.map((job) => job.state)).toEqual(['LAUNCHED', 'LAUNCHED', 'LAUNCHED']);
  });

  it("cancels one job without stopping the batch's execution; its late end is not recorded", async () => {
    const d = dispatcher('cancel');
    const jobs = await threeUploads(d);
    const execution = jobs[0]!.execution!;
    const cancelled = await d.cancel(jobs[1]!.id);
    expect(cancelled.state).toBe('CANCELLED');
    expect(cancelled.history.at(-1)?.detail).toContain('runs on with the batch');
    expect(run.running()).toBeGreaterThanOrEqual(1);
    expect(run.executions).toContain(execution);
    const others = await Promise.all(
      [jobs[0]!, jobs[2]!].map(async (job) => (await d.ports.ledger.get(job.id))!),
    );
    expect(others.map((job) => job.state)).toEqual(['LAUNCHED', 'LAUNCHED']);
    // Its task ends later and reports: the job stays CANCELLED.
    await d.onCompletion({
      jobId: jobs[1]!.id,
      attempt: 1,
      exitCode: 0,
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      preempted: false,
    });
    expect((await d.ports.ledger.get(jobs[1]!.id))!.state).toBe('CANCELLED');
    // Its membership was given back; the batch's slot stays for the two that run.
    const { holders } = await d.ports.ledger.readCapacity();
    expect(holders.map((h) => h.members)).toEqual([[jobs[0]!.id, jobs[2]!.id]]);
  });
});

/** `store` with its putIf replaced. */
function withPutIf(store: BlobStore, putIf: BlobStore['putIf']): BlobStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'putIf') return putIf;
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
