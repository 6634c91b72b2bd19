import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { newBackfill } from '@pipeline/core';
import { SqliteBackfillStore } from '../src/local/sqlite-backfill-store.ts';
import { checkBackfillStore } from '../../../test/support/backfill-store-contract.ts';

it('keeps backfill records with compare-and-set, newest first, RUNNING oldest first', async () => {
  const store = new SqliteBackfillStore(':memory:');
  await checkBackfillStore(store);
  store.close();
});

it('keeps them across a restart, in its own file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backfills-'));
  const file = path.join(dir, 'backfills.db');
  const record = newBackfill(
    '00000000000000aa',
    { bucket: 'input', prefix: '', failedOnly: false },
    new Date().toISOString(),
  );
  const before = new SqliteBackfillStore(file);
  await before.create(record);
  before.close();
  const after = new SqliteBackfillStore(file);
  expect(await after.get(record.id)).toEqual(record);
  after.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
