import { describe, expect, it } from 'vitest';
import { gatherBatches, readBatchPolicy, type BatchPolicy } from '../../src/cost/batching.ts';
import type { Fail } from '../../src/readers.ts';

const POLICY: BatchPolicy = { maxFiles: 3, maxWaitSeconds: 30, maxBytes: 100 };
const file = (id: string, arrival: number, inputBytes = 10) => ({ id, arrival, inputBytes });
const fail: Fail = (field, detail) => {
  throw new Error(`${field}: ${detail}`);
};

describe('gatherBatches', () => {
  it.each([
    {
      what: 'closes a batch when it holds maxFiles, at the last file',
      files: [file('a', 0), file('b', 1), file('c', 2), file('d', 3)],
      batches: [
        { ids: ['a', 'b', 'c'], openedAt: 0, closedAt: 2, closedBy: 'maxFiles', inputBytes: 30 },
        { ids: ['d'], openedAt: 3, closedAt: 33, closedBy: 'maxWait', inputBytes: 10 },
      ],
    },
    {
      what: 'closes a batch maxWait after its first file; a file at that moment opens the next',
      files: [file('a', 0), file('b', 29), file('c', 30)],
      batches: [
        { ids: ['a', 'b'], openedAt: 0, closedAt: 30, closedBy: 'maxWait', inputBytes: 20 },
        { ids: ['c'], openedAt: 30, closedAt: 60, closedBy: 'maxWait', inputBytes: 10 },
      ],
    },
    {
      what: 'closes a batch before a file that would take it past maxBytes',
      files: [file('a', 0, 60), file('b', 5, 50)],
      batches: [
        { ids: ['a'], openedAt: 0, closedAt: 5, closedBy: 'maxBytes', inputBytes: 60 },
        { ids: ['b'], openedAt: 5, closedAt: 35, closedBy: 'maxWait', inputBytes: 50 },
      ],
    },
    {
      what: 'closes a batch that reaches maxBytes exactly, at once',
      files: [file('a', 0, 40), file('b', 1, 60), file('c', 2)],
      batches: [
        { ids: ['a', 'b'], openedAt: 0, closedAt: 1, closedBy: 'maxBytes', inputBytes: 100 },
        { ids: ['c'], openedAt: 2, closedAt: 32, closedBy: 'maxWait', inputBytes: 10 },
      ],
    },
    {
      what: 'gives a file larger than maxBytes a batch of its own, launched when it arrives',
      files: [file('a', 0), file('huge', 1, 500), file('c', 2)],
      batches: [
        { ids: ['a'], openedAt: 0, closedAt: 1, closedBy: 'maxBytes', inputBytes: 10 },
        { ids: ['huge'], openedAt: 1, closedAt: 1, closedBy: 'maxBytes', inputBytes: 500 },
        { ids: ['c'], openedAt: 2, closedAt: 32, closedBy: 'maxWait', inputBytes: 10 },
      ],
    },
    {
      what: 'takes the files in arrival order, whatever order they come in',
      files: [file('c', 2), file('a', 0), file('b', 1)],
      batches: [{ ids: ['a', 'b', 'c'], openedAt: 0, closedAt: 2, closedBy: 'maxFiles', inputBytes: 30 }],
    },
    { what: 'makes no batch of no files', files: [], batches: [] },
  ])('$what', ({ files, batches }) => {
    expect(gatherBatches(files, POLICY)).toEqual(batches);
  });

  it('puts every file in exactly one batch, none over its limits or closed past its wait', () => {
    const files = Array.from({ length: 500 }, (_, i) => file(`f${i}`, (i * 7919) % 3600, (i * 31) % 90));
    const batches = gatherBatches(files, POLICY);
    expect(batches.flatMap((batch) => batch.ids).sort()).toEqual(files.map((f) => f.id).sort());
    for (const batch of batches) {
      expect(batch.ids.length).toBeLessThanOrEqual(POLICY.maxFiles);
      expect(batch.closedAt - batch.openedAt).toBeLessThanOrEqual(POLICY.maxWaitSeconds);
      if (batch.ids.length > 1) expect(batch.inputBytes).toBeLessThanOrEqual(POLICY.maxBytes);
    }
  });
});

describe('readBatchPolicy', () => {
  it('reads files, wait and bytes; no maxBytes is no limit', () => {
    expect(readBatchPolicy({ maxFiles: 50, maxWait: '30s', maxBytes: '1GiB' }, 'batch', fail)).toEqual({
      maxFiles: 50,
      maxWaitSeconds: 30,
      maxBytes: 1024 ** 3,
    });
    expect(readBatchPolicy({ maxFiles: 2, maxWait: '2m' }, 'batch', fail).maxBytes).toBe(Infinity);
  });

  it.each([
    [[], 'batch: must be an object like { "maxFiles": 50, "maxWait": "30s" }, got a list'],
    [{ maxFiles: 1, maxWait: '30s' }, 'batch.maxFiles: must be a whole number from 2 to 10000'],
    [{ maxFiles: 10_001, maxWait: '30s' }, 'batch.maxFiles: must be a whole number from 2 to 10000'],
    [{ maxFiles: 2.5, maxWait: '30s' }, 'batch.maxFiles: must be a whole number'],
    [{ maxFiles: 5 }, 'batch.maxWait: is required'],
    [{ maxFiles: 5, maxWait: '0s' }, 'batch.maxWait: must be more than zero'],
    [{ maxFiles: 5, maxWait: '30s', maxBytes: 'lots' }, 'batch.maxBytes:'],
    [{ maxFiles: 5, maxWait: '30s', every: 1 }, 'unknown'],
  ])('refuses %j, naming the field', (raw, message) => {
    expect(() => readBatchPolicy(raw, 'batch', fail)).toThrow(message);
  });
});
