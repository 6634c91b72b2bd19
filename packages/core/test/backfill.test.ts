import { describe, expect, it } from 'vitest';
import {
  backfillAction,
  backfillFilter,
  backfillProgress,
  cancelBackfill,
  MAX_FAILURES,
  newBackfill,
  NO_COUNTS,
  pageDone,
  pageFailed,
  takeStep,
  type Backfill,
  type BackfillRequest,
} from '../src/backfill.ts';
import { newJob, type Job, type JobState } from '../src/job.ts';
import type { StorageObject } from '../src/events.ts';

const AT = '2026-12-02T10:00:00.000Z';
const later = (ms: number) => new Date(Date.parse(AT) + ms).toISOString();
const REQUEST: BackfillRequest = { bucket: 'in', prefix: 'raw/', failedOnly: false };

function object(name: string, timeCreated?: string): StorageObject {
  return { bucket: 'in', name, generation: '1', size: 1, metadata: {}, ...(timeCreated && { timeCreated }) };
}

function job(state: JobState): Job {
  return { ...newJob('a'.repeat(32), { kind: 'object', object: object('raw/a.csv') }, AT), state };
}

describe('backfillFilter', () => {
  const HOSTILE = 'raw/"q" $(x) `t`\nline ünï 日本.csv';
  // [what, request filters, object, taken]
  const cases: [string, Partial<BackfillRequest>, StorageObject, boolean][] = [
    ['under the prefix', {}, object('raw/a.csv'), true],
    ['outside the prefix (a listing that gave more)', {}, object('other/a.csv'), false],
    ['matching the glob', { match: '**/*.csv' }, object('raw/x/a.csv'), true],
    ['not matching the glob', { match: '**/*.csv' }, object('raw/a.json'), false],
    ['the glob is of the whole name', { match: '*.csv' }, object('raw/a.csv'), false],
    ['a hostile name is data', { match: 'raw/*.csv' }, object(HOSTILE), true],
    ['created at since', { since: AT }, object('raw/a', AT), true],
    ['created after since', { since: AT }, object('raw/a', later(1)), true],
    ['created before since', { since: AT }, object('raw/a', later(-1)), false],
    ['no creation time, with since', { since: AT }, object('raw/a'), false],
    ['no creation time, without since', {}, object('raw/a'), true],
    ['glob and since both', { match: '**.csv', since: AT }, object('raw/a.csv', later(5)), true],
    ['glob but not since', { match: '**.csv', since: AT }, object('raw/a.csv', later(-5)), false],
  ];
  it.each(cases)('%s', (_what, filters, listed, taken) => {
    expect(backfillFilter({ ...REQUEST, ...filters })(listed)).toBe(taken);
  });

  it('refuses a glob that is not one, naming it', () => {
    expect(() => backfillFilter({ ...REQUEST, match: '[z-a]' })).toThrow(/"\[z-a\]" is not a valid glob/);
  });
});

describe('backfillAction', () => {
  // [existing job's state (none: no job), failedOnly, action]
  const cases: [JobState | undefined, boolean, string][] = [
    [undefined, false, 'create'],
    ['QUEUED', false, 'skip'],
    ['SUCCEEDED', false, 'skip'],
    ['FAILED', false, 'skip'],
    [undefined, true, 'skip'],
    ['FAILED', true, 'retry'],
    ['CANCELLED', true, 'skip'],
    ['SUCCEEDED', true, 'skip'],
    ['RUNNING', true, 'skip'],
    ['SCHEDULED', true, 'skip'],
  ];
  it.each(cases)('job %s, failedOnly %s: %s', (state, failedOnly, action) => {
    expect(backfillAction(state === undefined ? undefined : job(state), failedOnly)).toBe(action);
  });
});

describe('the backfill record', () => {
  const fresh = () => newBackfill('0123456789abcdef', REQUEST, AT);
  const counts = { ...NO_COUNTS, listed: 3, matched: 2, submitted: 2 };

  it('starts RUNNING at version 1 with no counts and no cursor', () => {
    const record = fresh();
    expect(record).toMatchObject({ state: 'RUNNING', version: 1, pages: 0, counts: NO_COUNTS });
    expect(record.cursor).toBeUndefined();
  });

  it('gives the step to one owner while its lease lasts, then to another', () => {
    const mine = takeStep(fresh(), 'a', AT, 1000)!;
    expect(mine).toMatchObject({ version: 2, lease: { owner: 'a', until: later(1000) } });
    expect(takeStep(mine, 'b', later(999), 1000)).toBeUndefined();
    expect(takeStep(mine, 'a', later(999), 1000)?.lease?.owner).toBe('a');
    expect(takeStep(mine, 'b', later(1001), 1000)?.lease?.owner).toBe('b');
  });

  it('takes no step of a record that is not RUNNING', () => {
    for (const record of [cancelBackfill(fresh(), AT)!, { ...fresh(), state: 'DONE' as const }])
      expect(takeStep(record, 'a', AT, 1000)).toBeUndefined();
  });

  it('adds a page: counts, cursor, pages; the lease given back', () => {
    const done = pageDone(
      takeStep(fresh(), 'a', AT, 1000)!,
      'a',
      { counts, failures: [], nextCursor: 'p2' },
      later(5),
    )!;
    expect(done).toMatchObject({
      state: 'RUNNING',
      cursor: 'p2',
      pages: 1,
      counts,
      version: 3,
      updatedAt: later(5),
    });
    expect(done.lease).toBeUndefined();
    const again = pageDone(takeStep(done, 'b', later(6), 1000)!, 'b', { counts, failures: [] }, later(9))!;
    expect(again).toMatchObject({ state: 'DONE', pages: 2, finishedAt: later(9) });
    expect(again.counts).toEqual({ ...counts, listed: 6, matched: 4, submitted: 4 });
    expect(again.cursor).toBeUndefined();
  });

  it('drops a page of an owner whose lease another took (that one lists the page again)', () => {
    const taken = takeStep(takeStep(fresh(), 'a', AT, 1000)!, 'b', later(2000), 1000)!;
    expect(pageDone(taken, 'a', { counts, failures: [] }, later(2001))).toBeUndefined();
    expect(pageFailed(taken, 'a', 'x', true, later(2001))).toBeUndefined();
  });

  it('keeps CANCELLED when cancelled during a page, with the page counted', () => {
    const stepping = takeStep(fresh(), 'a', AT, 1000)!;
    const cancelled = cancelBackfill(stepping, later(1))!;
    const done = pageDone(cancelled, 'a', { counts, failures: [], nextCursor: 'p2' }, later(2))!;
    expect(done).toMatchObject({ state: 'CANCELLED', counts, cursor: 'p2', reason: 'cancelled' });
    expect(done.lease).toBeUndefined();
  });

  it('keeps the newest failures, at most MAX_FAILURES', () => {
    const failures = Array.from({ length: 12 }, (_, i) => ({
      name: `raw/${i}`,
      generation: '1',
      error: 'x',
    }));
    const done = pageDone(takeStep(fresh(), 'a', AT, 1000)!, 'a', { counts, failures }, later(1))!;
    expect(done.failures?.map((f) => f.name)).toEqual(failures.slice(-MAX_FAILURES).map((f) => f.name));
  });

  it('keeps the cursor and RUNNING on a page failed for now; FAILED on one that will not pass', () => {
    const first = pageDone(
      takeStep(fresh(), 'a', AT, 1000)!,
      'a',
      { counts, failures: [], nextCursor: 'p2' },
      AT,
    )!;
    const forNow = pageFailed(takeStep(first, 'a', later(1), 1000)!, 'a', '503 backend', true, later(2))!;
    expect(forNow).toMatchObject({
      state: 'RUNNING',
      cursor: 'p2',
      lastError: { at: later(2), message: '503 backend' },
    });
    expect(forNow.lease).toBeUndefined();
    // The next page that works clears the error.
    const next = pageDone(takeStep(forNow, 'a', later(3), 1000)!, 'a', { counts, failures: [] }, later(4))!;
    expect(next.lastError).toBeUndefined();
    const forGood = pageFailed(takeStep(first, 'a', later(1), 1000)!, 'a', '403 forbidden', false, later(2))!;
    expect(forGood).toMatchObject({
      state: 'FAILED',
      reason: '403 forbidden',
      finishedAt: later(2),
      cursor: 'p2',
    });
  });

  it('cancels only a RUNNING record', () => {
    const cancelled = cancelBackfill(fresh(), later(1))!;
    expect(cancelled).toMatchObject({ state: 'CANCELLED', version: 2, finishedAt: later(1) });
    expect(cancelBackfill(cancelled, later(2))).toBeUndefined();
    expect(cancelBackfill({ ...fresh(), state: 'DONE' }, later(2))).toBeUndefined();
  });

  it('says its progress on one line', () => {
    const record: Backfill = { ...fresh(), pages: 2, counts: { ...counts, skipped: 1, errors: 1 } };
    expect(backfillProgress(record)).toBe(
      'RUNNING: 2 pages, 3 listed, 2 matched, 2 new jobs, 1 skipped, 1 errors',
    );
    expect(backfillProgress({ ...record, failedOnly: true, pages: 1 })).toMatch(
      /^RUNNING: 1 page, .* 0 retried/,
    );
  });
});
