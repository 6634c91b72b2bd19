// Backfills end to end on the dispatcher: the real @google-cloud/storage client listing the loopback
// Cloud Storage double a page at a time (GcsBlobStore.listPage), the sqlite ledger and backfill
// store, the dispatcher's intake and launch queue with a small capacity, and the HTTP API.
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  jobIdFor,
  type Backfill,
  type BackfillStore,
  type Job,
  type JobState,
  type ObjectLister,
} from '@pipeline/core';
import { buildApp } from '../../src/app.ts';
import { Backfiller } from '../../src/backfill.ts';
import { Dispatcher } from '../../src/dispatcher.ts';
import { GcsBlobStore } from '../../src/gcp/gcs-blob-store.ts';
import { localCapacity } from '../../src/local/pipeline.ts';
import { SqliteBackfillStore } from '../../src/local/sqlite-backfill-store.ts';
import { SqliteLedger } from '../../src/local/sqlite-ledger.ts';
import { createLogger } from '../../src/logger.ts';
import { RecordingLauncher, reconcilerBeside, TEST_ROUTING } from '../support.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';

const BUCKET = 'acme-input';
const SLOTS = 5;
const PAGE_SIZE = 100;
/** The double gives fewer than asked, as the real service may: the backfill must follow the token. */
const PAGE_ITEMS = 70;

interface World {
  gcs: FakeGcs;
  ledger: SqliteLedger;
  store: SqliteBackfillStore;
  launchers: { 'cloud-run-job': RecordingLauncher; vm: RecordingLauncher };
  dispatcher: Dispatcher;
  backfiller: Backfiller;
  app: ReturnType<typeof buildApp>;
  clock: { now: number };
  backfillerWith(ports: { store?: BackfillStore; lister?: ObjectLister }): Backfiller;
}

let world: World;

beforeEach(async () => {
  const gcs = await startFakeGcs({ maxPageItems: PAGE_ITEMS });
  vi.stubEnv('STORAGE_EMULATOR_HOST', gcs.url);
  // No retries of the client's own: a 503 the test asks for reaches the backfill at once.
  const blobs = new GcsBlobStore({ retryOptions: { autoRetry: false } });
  const ledger = new SqliteLedger(':memory:');
  const store = new SqliteBackfillStore(':memory:');
  const launchers = { 'cloud-run-job': new RecordingLauncher(), vm: new RecordingLauncher() };
  const logger = createLogger(new Writable({ write: (_c, _e, done) => done() }), 'silent');
  const clock = { now: Date.parse('2026-12-02T10:00:00.000Z') };
  const dispatcher = new Dispatcher({
    ledger,
    blobs,
    launchers,
    routing: TEST_ROUTING,
    outputBucket: 'acme-output',
    logger,
    capacity: localCapacity(SLOTS),
    now: () => new Date(clock.now),
  });
  const backfillerWith = (ports: { store?: BackfillStore; lister?: ObjectLister }) =>
    new Backfiller({
      store: ports.store ?? store,
      lister: ports.lister ?? blobs,
      dispatcher,
      logger,
      pageSize: PAGE_SIZE,
    });
  const backfiller = backfillerWith({});
  const app = buildApp({
    dispatcher,
    reconciler: reconcilerBeside(dispatcher),
    ledger,
    logger,
    backfills: backfiller,
  });
  world = { gcs, ledger, store, launchers, dispatcher, backfiller, app, clock, backfillerWith };
});

afterEach(async () => {
  vi.unstubAllEnvs();
  world.ledger.close();
  world.store.close();
  await world.gcs.close();
});

function putObjects(names: string[]): void {
  for (const name of names)
    world.gcs.put(BUCKET, name, `a,label\n${name.length},1\n`, { contentType: 'text/csv' });
}

const names = (from: number, to: number, dir = 'year') =>
  Array.from({ length: to - from }, (_, i) => `${dir}/obj-${String(from + i).padStart(5, '0')}.csv`);

/** Every job in the ledger, page by page. */
async function allJobs(): Promise<Job[]> {
  const jobs: Job[] = [];
  let pageToken: string | undefined;
  do {
    const page = await world.ledger.list({ limit: 200, pageToken });
    jobs.push(...page.jobs);
    pageToken = page.nextPageToken;
  } while (pageToken !== undefined);
  return jobs;
}

function byState(jobs: Job[]): Partial<Record<JobState, number>> {
  const counts: Partial<Record<JobState, number>> = {};
  for (const job of jobs) counts[job.state] = (counts[job.state] ?? 0) + 1;
  return counts;
}

/** Every object version the double ever had under the bucket, as the job ids it should have. */
const versionIds = () =>
  world.gcs.created.filter((o) => o.bucket === BUCKET).map((o) => jobIdFor(o.bucket, o.name, o.generation));

/** POST /reconcile until the backfill has ended, within a deadline. */
async function reconcileUntilEnded(id: string): Promise<Backfill> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { body } = await request(world.app).get(`/backfills/${id}`).expect(200);
    if (body.state !== 'RUNNING') return body as Backfill;
    if (Date.now() > deadline) throw new Error(`backfill ${id} still RUNNING: ${JSON.stringify(body)}`);
    const pass = await request(world.app).post('/reconcile').expect(200);
    expect(pass.body.backfills.errors).toEqual([]);
  }
}

const launchedCount = () =>
  world.launchers['cloud-run-job'].launched.length + world.launchers.vm.launched.length;

describe('a backfill of 1,000 objects, twice, with new objects in between', () => {
  it('makes exactly one job per object version, QUEUED beyond the capacity', async () => {
    putObjects(names(0, 1000));
    const started = await request(world.app)
      .post('/backfill')
      .send({ source: `gs://${BUCKET}/year/` })
      .expect(202);
    expect(started.body).toMatchObject({ state: expect.any(String), bucket: BUCKET, prefix: 'year/' });
    const first = await reconcileUntilEnded(started.body.id);
    expect(first).toMatchObject({
      state: 'DONE',
      counts: { listed: 1000, matched: 1000, submitted: 1000, skipped: 0, retried: 0, errors: 0 },
      pages: Math.ceil(1000 / PAGE_ITEMS),
    });
    let jobs = await allJobs();
    expect(jobs).toHaveLength(1000);
    expect(new Set(jobs.map((j) => j.id))).toEqual(new Set(versionIds()));
    // The queue's limit holds: SLOTS launched (their runs never end here), the rest wait QUEUED.
    expect(byState(jobs)).toEqual({ LAUNCHED: SLOTS, QUEUED: 1000 - SLOTS });
    expect(launchedCount()).toBe(SLOTS);
    expect((await world.ledger.readCapacity()).holders).toHaveLength(SLOTS);

    // In between: 150 new objects, and 20 of the old ones written again (a new generation each).
    putObjects(names(1000, 1150));
    putObjects(names(0, 20));
    const again = await request(world.app)
      .post('/backfill')
      .send({ bucket: BUCKET, prefix: 'year/' })
      .expect(202);
    const second = await reconcileUntilEnded(again.body.id);
    expect(second).toMatchObject({
      state: 'DONE',
      counts: { listed: 1150, matched: 1150, submitted: 170, skipped: 980, errors: 0 },
    });
    jobs = await allJobs();
    expect(jobs).toHaveLength(1170);
    expect(new Set(jobs.map((j) => j.id))).toEqual(new Set(versionIds()));
    expect(byState(jobs)).toEqual({ LAUNCHED: SLOTS, QUEUED: 1170 - SLOTS });
    expect(launchedCount()).toBe(SLOTS);

    // A third is a no-op.
    const third = await request(world.app)
      .post('/backfill')
      .send({ source: `gs://${BUCKET}/year/` })
      .expect(202);
    expect((await reconcileUntilEnded(third.body.id)).counts).toMatchObject({ submitted: 0, skipped: 1150 });
    expect(await allJobs()).toHaveLength(1170);

    // Both are listed, newest first, with their progress.
    const { body } = await request(world.app).get('/backfills').expect(200);
    expect(body.backfills.map((b: Backfill) => b.id)).toEqual([
      third.body.id,
      again.body.id,
      started.body.id,
    ]);
  }, 300_000);
});

describe('the listing', () => {
  it('is paged: each request asks for a page and passes the last answer’s token back', async () => {
    putObjects(names(0, 250));
    putObjects(['elsewhere/a.csv']);
    const record = await world.backfiller.start(
      { bucket: BUCKET, prefix: 'year/', failedOnly: false },
      60_000,
    );
    expect(record).toMatchObject({ state: 'DONE', pages: 4, counts: { listed: 250, submitted: 250 } });
    const listings = world.gcs.listings();
    expect(listings).toHaveLength(4); // 70 + 70 + 70 + 40
    for (const query of listings) {
      expect(query.get('prefix')).toBe('year/');
      expect(query.get('maxResults')).toBe(String(PAGE_SIZE));
    }
    expect(listings[0].get('pageToken')).toBeNull();
    for (const query of listings.slice(1)) expect(query.get('pageToken')).toMatch(/^[\w-]+$/);
    expect(new Set(listings.map((q) => q.get('pageToken'))).size).toBe(4);
  });

  it('keeps the cursor through a page that failed for now, and goes on from it next pass', async () => {
    putObjects(names(0, 200));
    const started = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: false }, 0);
    const real = new GcsBlobStore({ retryOptions: { autoRetry: false } });
    // The first page lists; the request for the second answers 503; the pass stops there.
    const failingSecond = world.backfillerWith({
      lister: {
        async listPage(bucket, prefix, size, token) {
          const page = await real.listPage(bucket, prefix, size, token);
          world.gcs.failListings(1);
          return page;
        },
      },
    });
    expect((await failingSecond.continueRunning(60_000)).errors).toEqual([]);
    let record = (await world.store.get(started.id))!;
    expect(record).toMatchObject({ state: 'RUNNING', pages: 1, counts: { listed: PAGE_ITEMS } });
    expect(record.lastError?.message).toMatch(/failed for now/);
    expect(record.cursor).toBeDefined();
    expect(world.gcs.listings().at(-1)?.get('pageToken')).toBe(record.cursor); // what the failed request asked
    await world.backfiller.continueRunning(60_000);
    record = (await world.store.get(started.id))!;
    expect(record).toMatchObject({ state: 'DONE', counts: { listed: 200, submitted: 200, errors: 0 } });
    expect(record.lastError).toBeUndefined();
    expect(await allJobs()).toHaveLength(200);
  });

  it('ends FAILED, with the reason, when the listing is refused for good (403)', async () => {
    putObjects(names(0, 10));
    world.gcs.failListings(1, 403);
    const record = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: false }, 60_000);
    expect(record.state).toBe('FAILED');
    expect(record.reason).toMatch(/listing gs:\/\/acme-input\//);
    expect(await allJobs()).toHaveLength(0);
  });
});

describe('--failed-only', () => {
  it('makes a new attempt of each FAILED job, and of nothing else', async () => {
    putObjects(names(0, 5));
    await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: false }, 60_000);
    const ids = names(0, 5).map((n) => jobIdFor(BUCKET, n, world.gcs.get(BUCKET, n)!.generation));
    const end = (id: string, exitCode: number) =>
      world.dispatcher.onCompletion({
        jobId: id,
        attempt: 1,
        exitCode,
        finishedAt: new Date(world.clock.now).toISOString(),
      });
    await end(ids[0], 4); // bad data: FAILED, not retried by its rule
    await end(ids[1], 4);
    await end(ids[2], 0); // SUCCEEDED
    putObjects(names(5, 6)); // no job yet
    const before = await Promise.all(ids.map((id) => world.ledger.get(id)));
    expect(before.map((j) => j?.state)).toEqual(['FAILED', 'FAILED', 'SUCCEEDED', 'LAUNCHED', 'LAUNCHED']);

    const dry = await request(world.app)
      .post('/backfill')
      .send({ source: `gs://${BUCKET}`, failedOnly: true, dryRun: true })
      .expect(200);
    expect(dry.body).toMatchObject({
      dryRun: true,
      state: 'DONE',
      counts: { listed: 6, retried: 2, skipped: 4, submitted: 0 },
    });
    expect((await world.ledger.get(ids[0]))?.attempt).toBe(1); // a dry run changes nothing

    const launchesBefore = launchedCount();
    const record = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: true }, 60_000);
    expect(record).toMatchObject({
      state: 'DONE',
      counts: { listed: 6, matched: 6, retried: 2, skipped: 4, submitted: 0 },
    });
    const after = await Promise.all(ids.map((id) => world.ledger.get(id)));
    expect(after.slice(0, 2).map((j) => [j?.attempt, j?.state])).toEqual([
      [2, 'LAUNCHED'],
      [2, 'LAUNCHED'],
    ]);
    // The others are as they were, to the version; the new object got no job.
    expect(after.slice(2)).toEqual(before.slice(2));
    const fresh = world.gcs.get(BUCKET, names(5, 6)[0])!;
    expect(await world.ledger.get(jobIdFor(BUCKET, names(5, 6)[0], fresh.generation))).toBeUndefined();
    expect(launchedCount()).toBe(launchesBefore + 2);

    // Again: nothing is FAILED any more.
    const again = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: true }, 60_000);
    expect(again.counts).toMatchObject({ retried: 0, skipped: 6 });
  });
});

describe('cancel', () => {
  it('stops a RUNNING backfill: no page after it', async () => {
    putObjects(names(0, 300));
    const started = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: false }, 0);
    expect(started).toMatchObject({ state: 'RUNNING', pages: 0 });
    const cancelled = await request(world.app).post(`/backfills/${started.id}/cancel`).expect(200);
    expect(cancelled.body).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
    const pass = await request(world.app).post('/reconcile').expect(200);
    expect(pass.body.backfills).toEqual({ pages: 0, ended: [], errors: [] });
    expect(await allJobs()).toHaveLength(0);
    expect(world.gcs.listings()).toHaveLength(0);
    await request(world.app).post(`/backfills/${started.id}/cancel`).expect(409);
    await request(world.app).post('/backfills/0123456789abcdef/cancel').expect(404);
  });

  it('lets the page under way finish, counted, and does no more', async () => {
    putObjects(names(0, 300));
    const started = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: false }, 0);
    const real = new GcsBlobStore({ retryOptions: { autoRetry: false } });
    let pages = 0;
    const cancelling = world.backfillerWith({
      lister: {
        async listPage(bucket, prefix, size, token) {
          // The second page's listing is where the person cancels.
          if (++pages === 2) await world.backfiller.cancel(started.id);
          return real.listPage(bucket, prefix, size, token);
        },
      },
    });
    await cancelling.continueRunning(60_000);
    const record = (await world.store.get(started.id))!;
    expect(record).toMatchObject({ state: 'CANCELLED', pages: 2, counts: { submitted: 2 * PAGE_ITEMS } });
    expect(pages).toBe(2);
    expect(await allJobs()).toHaveLength(2 * PAGE_ITEMS);
  });
});

describe('two steppers in one instance (POST /backfill beside a reconcile pass)', () => {
  it('take turns: the page is listed and counted once, by the one that holds the step', async () => {
    putObjects(names(0, 50));
    const started = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: false }, 0);
    const real = new GcsBlobStore({ retryOptions: { autoRetry: false } });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let listings = 0;
    // One Backfiller, as one instance has: the first stepper's listing waits until the second has tried.
    const backfiller = world.backfillerWith({
      lister: {
        async listPage(bucket, prefix, size, token) {
          if (++listings === 1) await held;
          return real.listPage(bucket, prefix, size, token);
        },
      },
    });
    const first = backfiller.continueRunning(60_000);
    while (listings === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await backfiller.continueRunning(60_000);
    expect(second.pages).toBe(0); // the step is held: it did nothing
    release();
    expect((await first).pages).toBe(1);
    expect(listings).toBe(1);
    const record = (await world.store.get(started.id))!;
    expect(record).toMatchObject({ state: 'DONE', counts: { listed: 50, submitted: 50, skipped: 0 } });
    expect(await allJobs()).toHaveLength(50);
  });
});

describe('a stepper that dies between submitting a page and saving the cursor', () => {
  it('costs only a second submission of that page: each job once, counted as skipped', async () => {
    putObjects(names(0, 150));
    const started = await world.backfiller.start({ bucket: BUCKET, prefix: '', failedOnly: false }, 0);
    // A store whose write of the first page's end never happens: the instance went away.
    let crashed = false;
    const dying: BackfillStore = {
      create: (b) => world.store.create(b),
      get: (id) => world.store.get(id),
      list: (limit) => world.store.list(limit),
      running: (limit) => world.store.running(limit),
      async update(next) {
        if (!crashed && next.pages === 1) {
          crashed = true;
          throw new Error('the instance went away');
        }
        return world.store.update(next);
      },
    };
    const report = await world.backfillerWith({ store: dying }).continueRunning(60_000);
    expect(report.errors).toEqual([{ id: started.id, error: 'the instance went away' }]);
    expect(await allJobs()).toHaveLength(PAGE_ITEMS); // submitted, cursor not saved
    const stranded = (await world.store.get(started.id))!;
    expect(stranded).toMatchObject({ state: 'RUNNING', pages: 0 });
    expect(stranded.lease).toBeDefined();

    // Another instance: it waits out the dead one's lease, then lists that page again.
    const other = world.backfillerWith({});
    expect((await other.continueRunning(60_000)).pages).toBe(0);
    world.clock.now += 121_000;
    await other.continueRunning(60_000);
    const record = (await world.store.get(started.id))!;
    expect(record).toMatchObject({
      state: 'DONE',
      counts: { listed: 150, submitted: 150 - PAGE_ITEMS, skipped: PAGE_ITEMS, errors: 0 },
    });
    const jobs = await allJobs();
    expect(jobs).toHaveLength(150);
    expect(new Set(jobs.map((j) => j.id))).toEqual(new Set(versionIds()));
  });
});

describe('POST /backfill', () => {
  it.each([
    [{}, /give source/],
    [{ source: 'input/raw' }, /source must look like gs:\/\/bucket/],
    [{ source: 'gs://Not_A_Bucket/x' }, /is not a bucket name/],
    [{ source: `gs://${BUCKET}/`, bucket: BUCKET }, /not both/],
    [{ source: `gs://${BUCKET}/`, match: '[z-a]' }, /match: .*not a valid glob/],
    [{ source: `gs://${BUCKET}/`, since: 'yesterday' }, /since must be an ISO 8601 time/],
    [{ source: `gs://${BUCKET}/`, failedOnly: 'yes' }, /failedOnly must be true or false/],
    [{ source: `gs://${BUCKET}/`, extra: 1 }, /unknown field "extra"/],
    [{ source: `gs://${BUCKET}/${'x'.repeat(1025)}` }, /at most 1,024 bytes/],
    [{ source: 'gs://acme-output/' }, /output bucket never start work/],
  ])('refuses %j with 400', async (body, error) => {
    const { body: answer } = await request(world.app).post('/backfill').send(body).expect(400);
    expect(answer.error).toMatch(error);
  });

  it('takes only what match and since take, with hostile names as data', async () => {
    const hostile = `year/"q" $(touch x) \`t\`\nünï 日本.csv`;
    putObjects(['year/a.csv', 'year/b.json', hostile]);
    const { body } = await request(world.app)
      .post('/backfill')
      .send({ source: `gs://${BUCKET}/year/`, match: 'year/*.csv', since: '2000-01-01T00:00:00Z' })
      .expect(202);
    const record = await reconcileUntilEnded(body.id);
    expect(record.counts).toMatchObject({ listed: 3, matched: 2, submitted: 2 });
    const sources = (await allJobs()).map((j) => (j.source.kind === 'object' ? j.source.object.name : ''));
    expect(sources.sort()).toEqual([hostile, 'year/a.csv'].sort());
    // Nothing is newer than a time to come.
    const later = await request(world.app)
      .post('/backfill')
      .send({ source: `gs://${BUCKET}/`, since: '2999-01-01T00:00:00Z', dryRun: true })
      .expect(200);
    expect(later.body.counts).toMatchObject({ listed: 3, matched: 0 });
  });

  it('answers 404 for an unknown or malformed backfill id', async () => {
    await request(world.app).get('/backfills/0123456789abcdef').expect(404);
    await request(world.app).get('/backfills/..%2f..').expect(404);
  });
});
