// What every BackfillStore must do, run against the sqlite and the Firestore adapter alike: create
// once, compare-and-set on the version (of concurrent writers of one version exactly one wins), the
// newest first, and the RUNNING ones oldest first. Prefixes and globs are data.
import { expect } from 'vitest';
import { cancelBackfill, newBackfill, takeStep, type BackfillStore } from '@pipeline/core';

const at = (s: number) => new Date(Date.UTC(2026, 11, 2, 10) + s * 1000).toISOString();
const id = (n: number) => n.toString(16).padStart(16, '0');
const HOSTILE_PREFIX = `raw/"q" $(x) \`t\`\nünï 日本/${'x'.repeat(500)}`;

export async function checkBackfillStore(store: BackfillStore): Promise<void> {
  const first = newBackfill(
    id(1),
    { bucket: 'in', prefix: HOSTILE_PREFIX, match: '**/*.{csv,tsv}', failedOnly: false },
    at(0),
  );
  expect(await store.create(first)).toBe(true);
  expect(await store.create(first)).toBe(false);
  expect(await store.get(id(1))).toEqual(first);
  expect(await store.get(id(99))).toBeUndefined();

  // Compare-and-set: ten writers of version 2, one wins.
  const writers = Array.from({ length: 10 }, (_, i) => takeStep(first, `owner-${i}`, at(1), 60_000)!);
  const won = await Promise.all(writers.map((next) => store.update(next)));
  expect(won.filter(Boolean)).toHaveLength(1);
  const stored = (await store.get(id(1)))!;
  expect(stored).toEqual(writers[won.indexOf(true)]);
  expect(await store.update(takeStep(first, 'late', at(2), 60_000)!)).toBe(false); // version 2 again
  expect(await store.update({ ...stored, id: id(98), version: 2 })).toBe(false); // no such record

  const second = newBackfill(id(2), { bucket: 'in', prefix: '', failedOnly: true }, at(10));
  const third = newBackfill(id(3), { bucket: 'in', prefix: 'b/', since: at(0), failedOnly: false }, at(20));
  await store.create(second);
  await store.create(third);
  expect(await store.update(cancelBackfill(second, at(11))!)).toBe(true);

  expect((await store.list(10)).map((b) => b.id)).toEqual([id(3), id(2), id(1)]);
  expect((await store.list(2)).map((b) => b.id)).toEqual([id(3), id(2)]);
  expect((await store.running(10)).map((b) => b.id)).toEqual([id(1), id(3)]);
  expect((await store.get(id(2)))?.state).toBe('CANCELLED');
}
