// What every ledger must do, run against the sqlite and the Firestore ledger alike: name jobs by a
// short id (withIdPrefix answers exactly the jobs whose id starts with the prefix, by id), and keep
// the job events' outbox in the same atomic writes as the job changes.
import { expect } from 'vitest';
import { eventsFor, newJob, transition, type Ledger } from '@pipeline/core';

const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };
const id = (start: string, fill: string) => start + fill.repeat(32 - start.length);

/** Jobs whose ids start `abcdef`, and the ids right before and after that range, which must not match. */
export async function checkIdPrefix(ledger: Ledger): Promise<void> {
  const inside = [id('abcdef', '0'), id('abcdef', '7'), id('abcdef', 'f')];
  const before = id('abcdee', 'f');
  const after = id('abcdf', '0');
  // A prefix ending in 9 and one ending in a: the two sides of the gap between digits and letters.
  const nine = id('abcde9', '0');
  const a = id('abcdea', '0');
  for (const job of [after, ...inside, before, a, nine])
    await ledger.claim(newJob(job, source, '2026-12-01T09:00:00.000Z'), 60_000);

  const ids = async (prefix: string, limit: number) =>
    (await ledger.withIdPrefix(prefix, limit)).map((job) => job.id);
  expect(await ids('abcdef', 10)).toEqual(inside);
  expect(await ids('abcdef', 2)).toEqual(inside.slice(0, 2));
  expect(await ids('abcdef7', 10)).toEqual([inside[1]]);
  expect(await ids(inside[2], 10)).toEqual([inside[2]]);
  expect(await ids('abcde', 10)).toEqual([nine, a, before, ...inside]);
  expect(await ids('abcde9', 10)).toEqual([nine]);
  expect(await ids('abcdea', 10)).toEqual([a]);
  expect(await ids('abcdf', 10)).toEqual([after]);
  expect(await ids('abcd00', 10)).toEqual([]);
  expect(await ids('ffffff', 10)).toEqual([]);
  expect((await ledger.withIdPrefix('abcdef7', 1))[0]).toMatchObject({ id: inside[1], state: 'RECEIVED' });
}

/**
 * The outbox: a job change's events are stored with it, atomically, and only when it is stored (a
 * claim that finds the job, a compare-and-set that lost, store none); pendingEvents gives them oldest
 * first, as they were given; markPublished removes them, and ids it no longer has are no error.
 */
export async function checkOutbox(ledger: Ledger): Promise<void> {
  const time = (s: number) => new Date(Date.UTC(2026, 11, 1, 9, 0, s)).toISOString();
  const job = newJob(id('0ee0', '1'), { kind: 'object', object: OUTBOX_OBJECT }, time(0));
  const queued = transition(job, 'QUEUED', time(1), { rule: 'csv', reason: 'rule "csv"' });
  expect(await ledger.pendingEvents(10)).toEqual([]);

  const claimed = eventsFor(undefined, queued);
  expect((await ledger.claim(queued, 60_000, claimed)).claimed).toBe(true);
  // The same job claimed again (a redelivered push): not created, so nothing stored.
  const again = transition(job, 'QUEUED', time(2));
  expect((await ledger.claim(again, 60_000, eventsFor(undefined, again))).claimed).toBe(false);
  expect(await ledger.pendingEvents(10)).toEqual(claimed);

  const launched = transition(queued, 'LAUNCHED', time(3));
  const launchEvents = eventsFor(queued, launched);
  expect(await ledger.update(launched, launchEvents)).toBe(true);
  // A writer that read the job at QUEUED too loses, and so do its events.
  const lost = transition(queued, 'CANCELLED', time(4));
  expect(await ledger.update(lost, eventsFor(queued, lost))).toBe(false);
  const succeeded = transition(launched, 'SUCCEEDED', time(5), { exitCode: 0 });
  const successEvents = eventsFor(launched, succeeded);
  expect(await ledger.update(succeeded, successEvents)).toBe(true);

  const all = [...claimed, ...launchEvents, ...successEvents];
  expect(all.map((e) => e.state)).toEqual(['QUEUED', 'LAUNCHED', 'SUCCEEDED']);
  expect(await ledger.pendingEvents(10)).toEqual(all);
  expect(await ledger.pendingEvents(2)).toEqual(all.slice(0, 2));

  await ledger.markPublished([all[0]!.eventId, 'f'.repeat(32)]);
  expect(await ledger.pendingEvents(10)).toEqual(all.slice(1));
  await ledger.markPublished([all[0]!.eventId]); // published twice (two drains): no error
  await ledger.markPublished(all.slice(1).map((e) => e.eventId));
  expect(await ledger.pendingEvents(10)).toEqual([]);
  expect((await ledger.get(job.id))?.state).toBe('SUCCEEDED');
}

/** An object whose name needs escaping everywhere: quotes, a newline, non-ASCII letters. */
const OUTBOX_OBJECT = {
  bucket: 'input',
  name: 'in/"q3" ünï\ncode.csv',
  generation: '1796145352714612292',
  size: 10,
  metadata: { __reserved__: 'r', '': 'empty' },
};
