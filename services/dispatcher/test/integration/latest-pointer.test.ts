// The _LATEST pointer through both blob stores: Cloud Storage (the client against the loopback double,
// whose ifGenerationMatch answers 412 as the API does) and the local folders. It moves forward only,
// also when an older generation's job finishes last or two jobs finish at once; and through the
// dispatcher, the pointer follows completions in whatever order they come.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  jobIdFor,
  newJob,
  parseLatestPointer,
  type BlobStore,
  type Job,
  type StorageObject,
} from '@pipeline/core';
import { GcsBlobStore } from '../../src/gcp/gcs-blob-store.ts';
import { FolderBlobStore } from '../../src/local/folder-blob-store.ts';
import { moveLatestPointer } from '../../src/latest-pointer.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { testApp } from '../support.ts';
import { Dispatcher, RetryLaterError } from '../../src/dispatcher.ts';

const NAME = 'data/q1 "x".csv';
const object = (generation: string): StorageObject => ({
  bucket: 'in',
  name: NAME,
  generation,
  size: 10,
  metadata: {},
});
const uploadJob = (generation: string): Job =>
  newJob(jobIdFor('in', NAME, generation), { kind: 'object', object: object(generation) }, 't0');

let gcs: FakeGcs;
let folder: string;
beforeAll(async () => {
  gcs = await startFakeGcs();
  vi.stubEnv('STORAGE_EMULATOR_HOST', gcs.url);
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'latest-'));
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await gcs.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

const stores: { store: string; make: () => BlobStore }[] = [
  { store: 'Cloud Storage', make: () => new GcsBlobStore() },
  { store: 'local folders', make: () => new FolderBlobStore(folder, { out: path.join(folder, 'out') }) },
];

describe.each(stores)('the _LATEST pointer in $store', ({ make }) => {
  const pointer = async (blobs: BlobStore) => {
    const stored = await blobs.get('out', `${NAME}/_LATEST`);
    return stored === undefined ? undefined : parseLatestPointer(stored.data.toString('utf8'));
  };

  it('moves to a newer generation only, and a stale compare-and-set is refused', async () => {
    const blobs = make();
    expect(await moveLatestPointer(blobs, 'out', uploadJob('10'), 't1')).toBeUndefined();
    expect(await pointer(blobs)).toMatchObject({ generation: '10', prefix: `${NAME}/10/` });
    // An older generation's job that finishes later leaves it alone.
    expect(await moveLatestPointer(blobs, 'out', uploadJob('9'), 't2')).toBeUndefined();
    expect(await pointer(blobs)).toMatchObject({ generation: '10', jobId: jobIdFor('in', NAME, '10') });
    await moveLatestPointer(blobs, 'out', uploadJob('11'), 't3');
    expect(await pointer(blobs)).toMatchObject({ generation: '11' });

    const current = (await blobs.get('out', `${NAME}/_LATEST`))!;
    expect(await blobs.putIf('out', `${NAME}/_LATEST`, Buffer.from('x'), 'text/plain', '0')).toBe(false);
    expect(
      await blobs.putIf('out', `${NAME}/_LATEST`, current.data, 'application/json', current.generation),
    ).toBe(true);
    expect(
      await blobs.putIf('out', `${NAME}/_LATEST`, current.data, 'application/json', current.generation),
    ).toBe(false);
  });

  it('ends at the newest when several finish at once, whatever the order of their writes', async () => {
    const blobs = make();
    const generations = ['20', '23', '21', '22'];
    const problems = await Promise.all(
      generations.map((g) => moveLatestPointer(blobs, 'out', uploadJob(g), 't')),
    );
    expect(problems).toEqual([undefined, undefined, undefined, undefined]);
    expect(await pointer(blobs)).toMatchObject({ generation: '23' });
  });

  it('lists a prefix with whole names and sizes, in name order', async () => {
    const blobs = make();
    for (const name of [
      `${NAME}/30/b.csv`,
      `${NAME}/30/a.json`,
      `${NAME}/30/logs/attempt-1.log`,
      `${NAME}/31/a.json`,
    ])
      expect(await blobs.putIf('out', name, Buffer.from(name), 'text/plain', '0')).toBe(true);
    const listed = await blobs.list('out', `${NAME}/30/`, 10);
    expect(listed.map((o) => o.name)).toEqual([
      `${NAME}/30/a.json`,
      `${NAME}/30/b.csv`,
      `${NAME}/30/logs/attempt-1.log`,
    ]);
    expect(listed[0].size).toBe(Buffer.byteLength(`${NAME}/30/a.json`));
    expect(await blobs.list('out', `${NAME}/30/`, 2)).toHaveLength(2);
    expect(await blobs.list('out', 'nothing/here/', 10)).toEqual([]);
  });
});

describe('a pointer Cloud Storage does not take', () => {
  it('is given up after the deadline, with the reason, so a completion is never held for minutes', async () => {
    const silent: BlobStore = {
      get: () => new Promise(() => {}), // an answer that never comes (the client retrying a 503)
      stat: async () => undefined,
      uri: (bucket, name) => `${bucket}/${name}`,
      read: async () => undefined,
      list: async () => [],
      putIf: () => new Promise(() => {}),
    };
    expect(await moveLatestPointer(silent, 'out', uploadJob('7'), 't', 50)).toEqual({
      problem: `${NAME}/_LATEST was not moved: Cloud Storage did not take it within 0.05 s`,
      passing: true,
    });
  });
});

describe('the dispatcher and the _LATEST pointer', () => {
  it("keeps the newest generation when an older generation's job succeeds last", async () => {
    const t = testApp('out');
    try {
      const event = (generation: string) => ({
        eventType: 'OBJECT_FINALIZE' as const,
        object: { ...object(generation), bucket: 'acme-pipeline-input', name: 'iris.csv' },
      });
      const older = await t.dispatcher.onStorageEvent(event('100'));
      const newer = await t.dispatcher.onStorageEvent(event('200'));
      if (!('job' in older) || !('job' in newer)) throw new Error('no jobs');
      const done = (job: Job) =>
        t.dispatcher.onCompletion({
          jobId: job.id,
          attempt: 1,
          exitCode: 0,
          finishedAt: new Date().toISOString(),
        });
      await done(newer.job);
      await done(older.job);
      const stored = await t.blobs.get('out', 'iris.csv/_LATEST');
      expect(parseLatestPointer(stored!.data.toString('utf8'))).toMatchObject({
        generation: '200',
        jobId: newer.job.id,
        prefix: 'iris.csv/200/',
      });
      expect((await t.ledger.get(older.job.id))?.state).toBe('SUCCEEDED');
      expect(older.job.outputUri).not.toBe(newer.job.outputUri);

      // GET /latest follows the pointer, for the CLI and the dashboard.
      const latest = await request(t.app).get('/latest').query({ object: 'iris.csv' }).expect(200);
      expect(latest.body).toMatchObject({
        generation: '200',
        jobId: newer.job.id,
        outputUri: newer.job.outputUri,
      });
      const none = await request(t.app).get('/latest').query({ object: 'never.csv' }).expect(404);
      expect(none.body.error).toContain('no job of "never.csv" has succeeded yet');
      await request(t.app).get('/latest').expect(400);
    } finally {
      t.cleanup();
    }
  });

  it('answers a completion 503 while Cloud Storage refuses for now, and moves the pointer when it is delivered again', async () => {
    const t = testApp('out');
    try {
      let refusals = 1;
      const folders = t.blobs;
      const flaky: BlobStore = {
        stat: (b, n) => folders.stat(b, n),
        uri: (b, n) => folders.uri(b, n),
        read: (u, o, m) => folders.read(u, o, m),
        list: (b, p, l) => folders.list(b, p, l),
        get: (b, n) => folders.get(b, n),
        putIf: async (...args) => {
          if (refusals-- > 0)
            throw new RetryLaterError('Cloud Storage, writing the pointer, failed for now: 503');
          return folders.putIf(...args);
        },
      };
      const dispatcher = new Dispatcher({ ...t.dispatcher.ports, blobs: flaky });
      const intake = await dispatcher.onStorageEvent({
        eventType: 'OBJECT_FINALIZE',
        object: { ...object('9'), bucket: 'acme-pipeline-input', name: 'flaky.csv' },
      });
      if (!('job' in intake)) throw new Error('no job');
      const completion = {
        jobId: intake.job.id,
        attempt: 1,
        exitCode: 0,
        finishedAt: new Date().toISOString(),
      };
      await expect(dispatcher.onCompletion(completion)).rejects.toBeInstanceOf(RetryLaterError);
      const recorded = (await t.ledger.get(intake.job.id))!;
      expect(recorded.state).toBe('SUCCEEDED');
      expect(recorded.history.at(-1)?.detail).toContain('flaky.csv/_LATEST was not moved');
      expect(await t.blobs.get('out', 'flaky.csv/_LATEST')).toBeUndefined();

      // Pub/Sub delivers it again: a repeated report, which moves the pointer.
      expect((await dispatcher.onCompletion(completion))?.state).toBe('SUCCEEDED');
      const stored = await t.blobs.get('out', 'flaky.csv/_LATEST');
      expect(parseLatestPointer(stored!.data.toString('utf8'))).toMatchObject({ jobId: intake.job.id });
    } finally {
      t.cleanup();
    }
  });

  it('records SUCCEEDED with the reason when the pointer cannot be written', async () => {
    const t = testApp('out');
    try {
      const intake = await t.dispatcher.onStorageEvent({
        eventType: 'OBJECT_FINALIZE',
        object: { ...object('5'), bucket: 'acme-pipeline-input', name: 'blocked.csv' },
      });
      if (!('job' in intake)) throw new Error('no job');
      // A file where the pointer's folder would be: the local store cannot write under it.
      fs.mkdirSync(path.join(t.dir, 'out'), { recursive: true });
      fs.writeFileSync(path.join(t.dir, 'out', 'blocked.csv'), 'in the way');
      const job = await t.dispatcher.onCompletion({
        jobId: intake.job.id,
        attempt: 1,
        exitCode: 0,
        finishedAt: new Date().toISOString(),
      });
      expect(job?.state).toBe('SUCCEEDED');
      expect(job?.history.at(-1)?.detail).toContain('blocked.csv/_LATEST was not moved');
    } finally {
      t.cleanup();
    }
  });
});
