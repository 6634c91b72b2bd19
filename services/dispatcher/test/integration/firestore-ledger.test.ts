import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventsFor, newJob, transition, type Job } from '@pipeline/core';
import { FIRESTORE_INDEXES, FirestoreLedger } from '../../src/gcp/firestore-ledger.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { writeRuleHistory } from '../../../../test/support/rule-history.ts';
import { checkCapacityRecord, checkQueueOrder } from '../../../../test/support/queue-contract.ts';
import { checkIdPrefix, checkOutbox } from '../../../../test/support/ledger-contract.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';

const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };
const idOf = (n: number) => n.toString(16).padStart(32, '0');
const at = (ms: number) => new Date(Date.UTC(2026, 10, 22) + ms).toISOString();
const ids = (jobs: Job[]) => jobs.map((job) => Number.parseInt(job.id, 16));
const times = <T>(n: number, make: () => Promise<T>) => Promise.all(Array.from({ length: n }, make));

const HOSTILE_NAME = `in/"double" 'single' $(x) \`tick\` ;rm -rf /\nsecond line ünïcödé 日本語 ${'x'.repeat(1000)}`;

const FULL_JOB: Job = {
  id: idOf(0xf00),
  state: 'FAILED',
  version: 4,
  source: {
    kind: 'object',
    object: {
      bucket: 'acme-inbox',
      name: HOSTILE_NAME,
      generation: '1795319694996903123',
      size: 123_456_789,
      contentType: 'text/csv',
      // Keys Firestore refuses or reads specially, to exercise the key escaping.
      metadata: { 'pipeline-runtime': 'vm', __reserved__: 'r', 'a.b': 'dotted', '~tilde': 't', '': 'empty' },
      md5Hash: 'XrY7u+Ae7tCTyyK7j1rNww==',
      crc32c: 'yZRlqg==',
      timeCreated: at(0),
    },
  },
  reason: 'rule "big" matched (size >= 100 MB): vm n2-highmem-4',
  rule: 'big',
  target: 'vm',
  template: {
    task: 'logreg',
    image: 'europe-docker.pkg.dev/acme/pipeline/worker@sha256:abc',
    args: ['--input', HOSTILE_NAME, ''],
    env: { MODE: 'fast', QUOTED: `"$(x)"\n`, EMPTY: '' },
    cpu: 0.5,
    memoryBytes: 68_719_476_736,
    timeoutSeconds: 3600,
    machineType: 'n2-highmem-4',
    spot: true,
    accelerator: { type: 'nvidia-l4', count: 1 },
  },
  attempt: 2,
  execution: 'pipeline-job-abc-2',
  outputUri: 'gs://acme-outbox/run/',
  exitCode: 137,
  error: 'killed\nout of memory: 日本語',
  logsUri: 'gs://acme-logs/run/',
  createdAt: at(0),
  updatedAt: at(9),
  startedAt: at(3),
  finishedAt: at(9),
  attempts: [
    {
      attempt: 1,
      target: 'vm',
      spot: true,
      execution: 'zones/z/instances/pipeline-x-a1',
      launchedAt: at(1),
      startedAt: at(3),
      finishedAt: at(9),
      exitCode: 4,
      outcome: 'failed',
      error: 'bad data',
    },
  ],
  history: [
    { at: at(0), to: 'RECEIVED' },
    { at: at(1), from: 'RECEIVED', to: 'LAUNCHED', detail: 'vm n2-highmem-4' },
    { at: at(3), from: 'LAUNCHED', to: 'RUNNING' },
    { at: at(9), from: 'RUNNING', to: 'FAILED', detail: 'exit 137' },
  ],
};

describeWithEmulators(['firestore'], 'FirestoreLedger on the Firestore emulator', () => {
  let emulator: Emulator | undefined;
  let firestore: Firestore | undefined;
  let collections = 0;
  // A fresh collection per test keeps the tests apart without resetting the emulator.
  const ledger = () => new FirestoreLedger({ firestore: firestore!, collection: `jobs-${++collections}` });

  beforeAll(async () => {
    emulator = await startEmulator('firestore');
    // The variable would win over `host`, sending the client to some other emulator.
    delete process.env.FIRESTORE_EMULATOR_HOST;
    firestore = emulatorFirestore(emulator.host);
  }, 90_000);

  afterAll(async () => {
    await firestore?.terminate();
    await emulator?.stop();
  });

  it('lists QUEUED jobs earliest dueBy first (the third index)', () => checkQueueOrder(ledger(), 0x900));
  it('writes the capacity record with compare-and-set', () => checkCapacityRecord(ledger()));
  it('finds the jobs whose id starts with a prefix (a range of document ids), by id', () =>
    checkIdPrefix(ledger()));
  it("stores a job change's events in the same batched write, and only when the job is written", () =>
    checkOutbox(ledger()));

  it('stores events on every path of update: known update time, read first, and a claim', async () => {
    // A second ledger on the same collection knows no update times: its update reads the job first.
    const collection = `jobs-${++collections}`;
    const writer = new FirestoreLedger({ firestore: firestore!, collection });
    const stranger = new FirestoreLedger({ firestore: firestore!, collection });
    const job = newJob(idOf(0xe01), source, at(0));
    const queued = transition(job, 'QUEUED', at(1), { rule: 'r' });
    await writer.claim(queued, 60_000, eventsFor(undefined, queued));
    const cancelled = transition(queued, 'CANCELLED', at(2));
    expect(await stranger.update(cancelled, eventsFor(queued, cancelled))).toBe(true);
    expect((await writer.pendingEvents(10)).map((e) => e.state)).toEqual(['QUEUED', 'CANCELLED']);
  });

  it("reads a rule's SUCCEEDED jobs, newest first, at most as many as asked", async () => {
    const jobs = ledger();
    const wanted = await writeRuleHistory(jobs, 0x500);
    expect((await jobs.succeeded('a', 10)).map((j) => j.id)).toEqual(wanted);
    expect((await jobs.succeeded('a', 2)).map((j) => j.id)).toEqual(wanted.slice(0, 2));
    expect(await jobs.succeeded('nope', 10)).toEqual([]);
  });

  it('claims a job once; a second claim gets the stored job', async () => {
    const jobs = ledger();
    const first = await jobs.claim(newJob(idOf(1), source, at(0)), 60_000);
    const second = await jobs.claim(newJob(idOf(1), source, at(10)), 60_000);
    expect(first.claimed).toBe(true);
    expect(second).toEqual({ claimed: false, job: first.job });
  });

  it('gives one of 20 concurrent claims of an id the job', async () => {
    const jobs = ledger();
    const results = await times(20, () => jobs.claim(newJob(idOf(1), source, at(0)), 60_000));
    expect(results.filter((r) => r.claimed)).toHaveLength(1);
    const stored = await jobs.get(idOf(1));
    for (const result of results) expect(result.job).toEqual(stored);
  });

  it('lets exactly one of 10 concurrent callers take over a RECEIVED claim past its lease', async () => {
    const jobs = ledger();
    await jobs.claim(newJob(idOf(2), source, at(0)), 1000);
    expect((await jobs.claim(newJob(idOf(2), source, at(1000)), 1000)).claimed).toBe(false);
    const results = await times(10, () => jobs.claim(newJob(idOf(2), source, at(5000)), 1000));
    expect(results.filter((r) => r.claimed)).toHaveLength(1);
    const job = (await jobs.get(idOf(2)))!;
    expect(job).toMatchObject({ version: 2, updatedAt: at(5000), createdAt: at(0) });
    expect(job.history.at(-1)).toEqual({
      at: at(5000),
      to: 'RECEIVED',
      detail: 'claim taken over after its lease ran out',
    });
    for (const result of results) expect(result.job).toEqual(job);
  });

  it('never takes over a job that went past RECEIVED', async () => {
    const jobs = ledger();
    const { job } = await jobs.claim(newJob(idOf(3), source, at(0)), 1000);
    const launched = transition(job, 'QUEUED', at(1));
    expect(await jobs.update(launched)).toBe(true);
    expect(await jobs.claim(newJob(idOf(3), source, at(999_999)), 1000)).toEqual({
      claimed: false,
      job: launched,
    });
  });

  it('writes only over the version it read (compare-and-set)', async () => {
    const jobs = ledger();
    const { job } = await jobs.claim(newJob(idOf(4), source, at(0)), 1000);
    const launched = transition(job, 'QUEUED', at(1));
    expect(await jobs.update(launched)).toBe(true);
    expect(await jobs.update(transition(job, 'IGNORED', at(2)))).toBe(false);
    expect(await jobs.get(idOf(4))).toEqual(launched);
    expect(await jobs.update(transition(newJob(idOf(5), source, at(0)), 'IGNORED', at(1)))).toBe(false);
  });

  it('lets exactly one of 10 concurrent updaters from the same version win', async () => {
    const jobs = ledger();
    const { job } = await jobs.claim(newJob(idOf(6), source, at(0)), 1000);
    const attempts = Array.from({ length: 10 }, (_, n) =>
      transition(job, 'QUEUED', at(1), { execution: `e${n}` }),
    );
    const won = await Promise.all(attempts.map((next) => jobs.update(next)));
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(await jobs.get(idOf(6))).toEqual(attempts[won.indexOf(true)]);
  });

  it('lists newest first, by state, in pages', async () => {
    const jobs = ledger();
    for (let n = 1; n <= 7; n++) {
      const { job } = await jobs.claim(newJob(idOf(n), source, at(n)), 1000);
      if (n % 2 === 0) await jobs.update(transition(job, 'IGNORED', at(n)));
    }
    // Created in the same millisecond as 7: the larger id comes first.
    await jobs.claim(newJob(idOf(8), source, at(7)), 1000);
    const first = await jobs.list({ limit: 3 });
    expect(ids(first.jobs)).toEqual([8, 7, 6]);
    const second = await jobs.list({ limit: 3, pageToken: first.nextPageToken });
    expect(ids(second.jobs)).toEqual([5, 4, 3]);
    const third = await jobs.list({ limit: 3, pageToken: second.nextPageToken });
    expect(ids(third.jobs)).toEqual([2, 1]);
    expect(third.nextPageToken).toBeUndefined();
    const ignored = await jobs.list({ limit: 2, state: 'IGNORED' });
    expect(ids(ignored.jobs)).toEqual([6, 4]);
    const rest = await jobs.list({ limit: 2, state: 'IGNORED', pageToken: ignored.nextPageToken });
    expect(ids(rest.jobs)).toEqual([2]);
    expect(rest.nextPageToken).toBeUndefined();
    expect(await jobs.list({ limit: 3, state: 'RUNNING' })).toEqual({ jobs: [], nextPageToken: undefined });
  });

  it.each([
    'bogus',
    '',
    Buffer.from('{"createdAt":1,"id":"x"}').toString('base64url'),
    Buffer.from('{"createdAt":"x","id":"a/b"}').toString('base64url'),
  ])('refuses the pageToken %j with a RangeError', async (pageToken) => {
    await expect(ledger().list({ limit: 3, pageToken })).rejects.toThrow(
      new RangeError('pageToken is not one this server gave out'),
    );
  });

  it('reads back a fully populated job exactly as it was written, by claim and by update', async () => {
    const jobs = ledger();
    expect((await jobs.claim(FULL_JOB, 1000)).claimed).toBe(true);
    expect(await jobs.get(FULL_JOB.id)).toEqual(FULL_JOB);
    const retried = transition(FULL_JOB, 'RECEIVED', at(20), {
      attempt: 2,
      exitCode: undefined,
      error: undefined,
    });
    expect(await jobs.update(retried)).toBe(true);
    const stored = await jobs.get(FULL_JOB.id);
    expect(stored).toEqual(retried);
    expect(stored).not.toHaveProperty('exitCode');
    expect(stored).not.toHaveProperty('error');
  });

  it('names the composite index that listing by state needs', () => {
    expect(FIRESTORE_INDEXES.indexes).toContainEqual({
      collectionGroup: 'jobs',
      queryScope: 'COLLECTION',
      fields: [
        { fieldPath: 'state', order: 'ASCENDING' },
        { fieldPath: 'createdAt', order: 'DESCENDING' },
      ],
    });
  });
});
