import { describe, expect, it } from 'vitest';
import {
  formatLatestPointer,
  latestPointerName,
  legacyOutputPrefix,
  writtenOutputPrefix,
  latestPointerOf,
  outputPrefix,
  parseLatestPointer,
  supersedes,
  type LatestPointer,
} from '../src/index.ts';
import { newJob, type Job } from '../src/job.ts';
import { jobIdFor, occurrenceId, paramsRunId } from '../src/job-id.ts';

const object = (generation: string) => ({
  bucket: 'in',
  name: 'a/iris.csv',
  generation,
  size: 1,
  metadata: {},
});
const uploadJob = (generation: string): Job =>
  newJob(jobIdFor('in', 'a/iris.csv', generation), { kind: 'object', object: object(generation) }, 't0');

describe('output prefixes', () => {
  it("gives an upload's job <object>/<generation>/ and every other job runs/<id>/", () => {
    expect(outputPrefix(uploadJob('1700000000000001'))).toBe('a/iris.csv/1700000000000001/');
    const rerunId = paramsRunId(jobIdFor('in', 'a/iris.csv', '5'), { TARGET_COLUMN: 'species' });
    const rerun = newJob(
      rerunId,
      { kind: 'object', object: object('5'), params: { TARGET_COLUMN: 'species' } },
      't0',
    );
    expect(outputPrefix(rerun)).toBe(`runs/${rerunId}/`);
    const occurrence = newJob(
      occurrenceId('s'.repeat(32), 't1'),
      { kind: 'object', object: object('5') },
      't0',
    );
    expect(outputPrefix(occurrence)).toBe(`runs/${occurrence.id}/`);
    const container = newJob('c'.repeat(32), { kind: 'request', task: 'logreg', args: [], env: {} }, 't0');
    expect(outputPrefix(container)).toBe(`runs/${'c'.repeat(32)}/`);
  });

  it('never lets two jobs of one object share a prefix or nest one in another', () => {
    const prefixes = [uploadJob('9'), uploadJob('10'), uploadJob('100')].map(outputPrefix);
    for (const a of prefixes) for (const b of prefixes) if (a !== b) expect(b.startsWith(a)).toBe(false);
  });
});

describe('the prefix a job wrote under', () => {
  const uriOf = (prefix: string) => `gs://out/${prefix}`;
  it('is the per-job prefix, or for a job routed before them, the layout it wrote then', () => {
    const routed = { ...uploadJob('42'), outputUri: 'gs://out/a/iris.csv/42/' };
    expect(writtenOutputPrefix(routed, uriOf)).toBe('a/iris.csv/42/');
    expect(writtenOutputPrefix({ ...routed, outputUri: 'gs://out/a/iris.csv/' }, uriOf)).toBe('a/iris.csv/');
    expect(writtenOutputPrefix(uploadJob('42'), uriOf)).toBe('a/iris.csv/42/'); // not routed yet
    const container = newJob('c'.repeat(32), { kind: 'request', task: 'logreg', args: [], env: {} }, 't0');
    expect(writtenOutputPrefix({ ...container, outputUri: `gs://out/jobs/${'c'.repeat(32)}/` }, uriOf)).toBe(
      `jobs/${'c'.repeat(32)}/`,
    );
    expect(legacyOutputPrefix(container)).toBe(`jobs/${'c'.repeat(32)}/`);
  });
});

describe('the _LATEST pointer', () => {
  const at = '2026-12-01T10:00:00.000Z';

  it("is written for an upload's job only, naming its prefix, job and generation", () => {
    expect(latestPointerOf(uploadJob('42'), at)).toEqual({
      name: 'a/iris.csv/_LATEST',
      pointer: {
        prefix: 'a/iris.csv/42/',
        jobId: jobIdFor('in', 'a/iris.csv', '42'),
        bucket: 'in',
        object: 'a/iris.csv',
        generation: '42',
        succeededAt: at,
      },
    });
    const container = newJob('c'.repeat(32), { kind: 'request', task: 'logreg', args: [], env: {} }, 't0');
    expect(latestPointerOf(container, at)).toBeUndefined();
    expect(latestPointerName('x')).toBe('x/_LATEST');
  });

  it('moves forward only, comparing generations as the big integers they are', () => {
    const p = (generation: string) => latestPointerOf(uploadJob(generation), at)!.pointer;
    expect(supersedes(p('2'), undefined)).toBe(true);
    expect(supersedes(p('10'), p('9'))).toBe(true); // not as strings
    expect(supersedes(p('9'), p('10'))).toBe(false);
    expect(supersedes(p('10'), p('10'))).toBe(false);
    expect(supersedes(p('18446744073709551615'), p('18446744073709551614'))).toBe(true); // past 2^53
  });

  it('reads back what it writes and treats anything else as no pointer', () => {
    const pointer: LatestPointer = latestPointerOf(uploadJob('42'), at)!.pointer;
    expect(parseLatestPointer(formatLatestPointer(pointer))).toEqual(pointer);
    for (const text of [
      '',
      'not json',
      '[]',
      '{"prefix":"x"}',
      JSON.stringify({ ...pointer, generation: '4.2' }),
    ])
      expect(parseLatestPointer(text)).toBeUndefined();
  });
});
