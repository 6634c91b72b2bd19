// What every ledger must do to name jobs by a short id, run against the sqlite and the Firestore
// ledger alike: withIdPrefix answers exactly the jobs whose id starts with the prefix, by id.
import { expect } from 'vitest';
import { newJob, type Ledger } from '@pipeline/core';

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
