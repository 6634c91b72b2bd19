import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it, vi } from 'vitest';
import { eventsFor, newJob, transition, type Job } from '@pipeline/core';
import { SqliteLedger } from '../src/local/sqlite-ledger.ts';
import { writeRuleHistory } from '../../../test/support/rule-history.ts';
import { checkCapacityRecord, checkQueueOrder } from '../../../test/support/queue-contract.ts';
import { checkIdPrefix, checkOutbox } from '../../../test/support/ledger-contract.ts';

const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };
const idOf = (n: number) => n.toString(16).padStart(32, '0');
const at = (ms: number) => new Date(Date.UTC(2026, 10, 22) + ms).toISOString();

describe('SqliteLedger', () => {
  it("reads a rule's SUCCEEDED jobs, newest first, at most as many as asked", async () => {
    const ledger = new SqliteLedger(':memory:');
    const wanted = await writeRuleHistory(ledger, 0x500);
    expect((await ledger.succeeded('a', 10)).map((j) => j.id)).toEqual(wanted);
    expect((await ledger.succeeded('a', 2)).map((j) => j.id)).toEqual(wanted.slice(0, 2));
    expect(await ledger.succeeded('nope', 10)).toEqual([]);
  });

  it('finds the jobs whose id starts with a prefix, by id, and none beside them', () =>
    checkIdPrefix(new SqliteLedger(':memory:')));

  it("stores a job change's events in the same transaction, and only when the job is written", () =>
    checkOutbox(new SqliteLedger(':memory:')));

  it('keeps events stored but not published across a restart (the file is the outbox)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-'));
    const file = path.join(dir, 'pipeline.db');
    const first = new SqliteLedger(file);
    const queued = transition(newJob(idOf(0xe1), source, at(0)), 'QUEUED', at(1));
    await first.claim(queued, 60_000, eventsFor(undefined, queued));
    first.close();
    const second = new SqliteLedger(file);
    expect((await second.pendingEvents(10)).map((e) => [e.jobId, e.state])).toEqual([[idOf(0xe1), 'QUEUED']]);
    second.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('claims a job once; a second claim gets the stored job', async () => {
    const ledger = new SqliteLedger(':memory:');
    const first = await ledger.claim(newJob(idOf(1), source, at(0)), 60_000);
    const second = await ledger.claim(newJob(idOf(1), source, at(10)), 60_000);
    expect(first.claimed).toBe(true);
    expect(second).toEqual({ claimed: false, job: first.job });
  });

  it('lets exactly one caller take over a RECEIVED claim past its lease', async () => {
    const ledger = new SqliteLedger(':memory:');
    await ledger.claim(newJob(idOf(2), source, at(0)), 1000);
    expect((await ledger.claim(newJob(idOf(2), source, at(500)), 1000)).claimed).toBe(false);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => ledger.claim(newJob(idOf(2), source, at(5000)), 1000)),
    );
    expect(results.filter((r) => r.claimed)).toHaveLength(1);
    const job = (await ledger.get(idOf(2)))!;
    expect(job.history.at(-1)?.detail).toBe('claim taken over after its lease ran out');
  });

  it('never takes over a job that went past RECEIVED', async () => {
    const ledger = new SqliteLedger(':memory:');
    const { job } = await ledger.claim(newJob(idOf(3), source, at(0)), 1000);
    await ledger.update(transition(job, 'QUEUED', at(1)));
    expect((await ledger.claim(newJob(idOf(3), source, at(999_999)), 1000)).claimed).toBe(false);
  });

  it('writes only over the version it read (compare-and-set)', async () => {
    const ledger = new SqliteLedger(':memory:');
    const { job } = await ledger.claim(newJob(idOf(4), source, at(0)), 1000);
    const queued = transition(job, 'QUEUED', at(1));
    expect(await ledger.update(queued)).toBe(true);
    expect(await ledger.update(transition(job, 'IGNORED', at(2)))).toBe(false);
    expect((await ledger.get(idOf(4)))!.state).toBe('QUEUED');
  });

  it('lists newest first, by state, in pages', async () => {
    const ledger = new SqliteLedger(':memory:');
    for (let n = 1; n <= 7; n++) {
      const { job } = await ledger.claim(newJob(idOf(n), source, at(n)), 1000);
      if (n % 2 === 0) await ledger.update(transition(job, 'IGNORED', at(n)));
    }
    const ids = (jobs: Job[]) => jobs.map((j) => Number.parseInt(j.id, 16));
    const first = await ledger.list({ limit: 3 });
    expect(ids(first.jobs)).toEqual([7, 6, 5]);
    const second = await ledger.list({ limit: 3, pageToken: first.nextPageToken });
    expect(ids(second.jobs)).toEqual([4, 3, 2]);
    const third = await ledger.list({ limit: 3, pageToken: second.nextPageToken });
    expect(ids(third.jobs)).toEqual([1]);
    expect(third.nextPageToken).toBeUndefined();
    expect(ids((await ledger.list({ limit: 10, state: 'IGNORED' })).jobs)).toEqual([6, 4, 2]);
    await expect(ledger.list({ limit: 3, pageToken: 'bogus' })).rejects.toThrow(RangeError);
  });
});

describe('SqliteLedger in a file', () => {
  const inTempDir = (test: (file: string) => Promise<void>) => async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-ledger-'));
    try {
      await test(path.join(dir, 'pipeline.db'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  const stored = (file: string) => {
    const other = new DatabaseSync(file);
    try {
      return (other.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
    } finally {
      other.close();
    }
  };

  it(
    'commits the writes of one turn together, and answers none of them before',
    inTempDir(async (file) => {
      const ledger = new SqliteLedger(file);
      const claims = Array.from({ length: 10 }, (_, n) =>
        ledger.claim(newJob(idOf(0x100 + n), source, at(n)), 1000),
      );
      expect(stored(file)).toBe(0); // not committed yet: another connection sees nothing
      const seenAtFirstAnswer = await claims[0].then(() => stored(file));
      expect(seenAtFirstAnswer).toBe(10);
      expect((await Promise.all(claims)).every((c) => c.claimed)).toBe(true);
      ledger.close();
    }),
  );

  it(
    'checkpoints the WAL into the file while open, off the event loop; closed, it leaves no WAL',
    inTempDir(async (file) => {
      const ledger = new SqliteLedger(file);
      const empty = fs.statSync(file).size;
      for (let n = 0; n < 50; n++) await ledger.claim(newJob(idOf(0x300 + n), source, at(n)), 1000);
      await vi.waitFor(() => expect(fs.statSync(file).size).toBeGreaterThan(empty), { timeout: 5000 });
      ledger.close();
      // The checkpointer closed its connection first: this one was the last, and removed the WAL.
      expect(fs.existsSync(`${file}-wal`)).toBe(false);
      expect(stored(file)).toBe(50);
    }),
  );

  it(
    'keeps what was written when closed before the turn ends, and reads it back',
    inTempDir(async (file) => {
      const first = new SqliteLedger(file);
      void first.claim(newJob(idOf(0x200), source, at(0)), 1000);
      first.close();
      const again = new SqliteLedger(file);
      expect((await again.get(idOf(0x200)))?.state).toBe('RECEIVED');
      again.close();
    }),
  );
});

describe('SqliteLedger and the launch queue', () => {
  it('lists QUEUED jobs earliest dueBy first', () => checkQueueOrder(new SqliteLedger(':memory:'), 0x900));
  it('writes the capacity record with compare-and-set', () =>
    checkCapacityRecord(new SqliteLedger(':memory:')));
});
