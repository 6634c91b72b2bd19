// What every ledger must do for the launch queue, run against the sqlite and the Firestore ledger
// alike: the head of the queue in its order, and the capacity record's compare-and-set.
import { expect } from 'vitest';
import { EMPTY_CAPACITY, newJob, transition, type Job, type Ledger } from '@pipeline/core';

const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };

/** QUEUED jobs come earliest dueBy first, whatever their creation order; others are not in it. */
export async function checkQueueOrder(ledger: Ledger, idBase: number): Promise<void> {
  const id = (n: number) => (idBase + n).toString(16).padStart(32, '0');
  const dueBy = ['2026-12-01T10:00:03.000Z', '2026-12-01T10:00:01.000Z', '2026-12-01T10:00:02.000Z'];
  for (const [n, due] of dueBy.entries()) {
    const job = newJob(id(n), source, '2026-12-01T09:00:00.000Z');
    const queued: Job = transition(job, 'QUEUED', '2026-12-01T09:00:00.000Z', {
      queue: { queuedAt: job.createdAt, dueBy: due, expiresAt: due, refusals: 0 },
    });
    await ledger.claim(queued, 60_000);
  }
  await ledger.claim(newJob(id(9), source, '2026-12-01T09:00:00.000Z'), 60_000); // RECEIVED: not queued
  expect((await ledger.queued(10)).map((job) => job.id)).toEqual([id(1), id(2), id(0)]);
  expect((await ledger.queued(2)).map((job) => job.id)).toEqual([id(1), id(2)]);
}

/** The record starts empty; of writers from one version exactly one wins; a stale write loses. */
export async function checkCapacityRecord(ledger: Ledger): Promise<void> {
  expect(await ledger.readCapacity()).toEqual(EMPTY_CAPACITY);
  const holder = (jobId: string) => ({ jobId, target: 'cloud-run-job' as const, cpus: 1, at: 't' });
  const firsts = Array.from({ length: 5 }, (_, n) => ({
    ...EMPTY_CAPACITY,
    version: 1,
    holders: [holder(`first-${n}`)],
  }));
  const won = await Promise.all(firsts.map((record) => ledger.writeCapacity(record)));
  expect(won.filter(Boolean)).toHaveLength(1);
  const stored = await ledger.readCapacity();
  expect(stored).toEqual(firsts[won.indexOf(true)]);
  const nexts = Array.from({ length: 5 }, (_, n) => ({
    ...stored,
    version: 2,
    holders: [...stored.holders, holder(`second-${n}`)],
    ceilings: [{ pool: 'run', limit: 10, until: '2026-12-01T10:01:00.000Z', reason: '429' }],
  }));
  const wonAgain = await Promise.all(nexts.map((record) => ledger.writeCapacity(record)));
  expect(wonAgain.filter(Boolean)).toHaveLength(1);
  expect(await ledger.readCapacity()).toEqual(nexts[wonAgain.indexOf(true)]);
  expect(await ledger.writeCapacity({ ...stored, version: 2 })).toBe(false);
}
