// Local mode never reaches Google: a task's gs:// URIs become paths in the local bucket folders, or
// the task is refused naming the URI; and a local run given one (`pipeline run --arg gs://...`) runs
// on the local file, or ends FAILED at once instead of hanging on the real Cloud Storage.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, parseRoutingConfig, type Job } from '@pipeline/core';
import { localizeTask, localizeValue, NotLocalError } from '../src/local/gs-uris.ts';
import { startLocalPipeline, type LocalPipeline } from '../src/local/pipeline.ts';
import { createLogger } from '../src/logger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const BUCKETS = { input: '/l/input', output: '/l/output', shared: '/l/shared' };

describe('localizeValue', () => {
  it.each([
    ['gs://input/data.csv', '/l/input/data.csv'],
    ['gs://input/a b/Zürich "q".csv', '/l/input/a b/Zürich "q".csv'],
    ['gs://output/runs/x/', '/l/output/runs/x/'],
    ['gs://shared', '/l/shared'],
    ['gs://shared/', '/l/shared/'],
    ['--input=gs://input/d.csv', '--input=/l/input/d.csv'],
    ['-i=gs://input/d.csv', '-i=/l/input/d.csv'],
    ['MODEL_URI=gs://shared/m.json', 'MODEL_URI=/l/shared/m.json'],
    ['no URI at all', 'no URI at all'],
    ['/already/a/path.csv', '/already/a/path.csv'],
  ])('maps %j to %j', (value, local) => {
    expect(localizeValue(value, BUCKETS, 'argument 1')).toBe(local);
  });

  it.each([
    [
      'gs://my-project-data/x.csv',
      'argument 1 names gs://my-project-data/x.csv, and "my-project-data" is not a local bucket (local buckets: input, output, shared)',
    ],
    ['--input=gs://elsewhere/x.csv', 'names gs://elsewhere/x.csv'],
    [
      'gs://input/../pipeline.db',
      'names gs://input/../pipeline.db: object name "../pipeline.db" cannot be stored in a local folder',
    ],
    ['copy from gs://input/x.csv', 'holds a gs:// URI inside a longer value ("copy from gs://input/x.csv")'],
    ['a,gs://input/x.csv', 'inside a longer value'],
    ['--in=gs://input/a.csv,gs://input/b.csv', 'holds more than one gs:// URI'],
    ['gs://input/a.csv gs://elsewhere/b.csv', 'holds more than one gs:// URI'],
  ])('refuses %j', (value, reason) => {
    expect(() => localizeValue(value, BUCKETS, 'argument 1')).toThrow(NotLocalError);
    expect(() => localizeValue(value, BUCKETS, 'argument 1')).toThrow(reason);
  });

  it('names the variable whose URI it refuses, and refuses everything when there is no local bucket', () => {
    const task = { args: ['--input', 'gs://input/x.csv'], env: { MODEL: 'gs://models/m.json' } };
    expect(() => localizeTask(task, BUCKETS)).toThrow('variable MODEL names gs://models/m.json');
    expect(() => localizeTask(task, {})).toThrow(
      'argument 2 names gs://input/x.csv, and "input" is not a local bucket (local buckets: none)',
    );
  });
});

describe('a local run given gs:// URIs', () => {
  let dir: string;
  let pipeline: LocalPipeline;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-gs-uris-'));
    pipeline = await startLocalPipeline({
      root: dir,
      routing: parseRoutingConfig({
        rules: [{ name: 'runs', target: 'cloud-run-job', job: { task: 'logreg' } }],
      }),
      port: 0,
      logger: createLogger(undefined, 'silent'),
      nodeOptions: ['--import', LOOPBACK_GUARD],
      reconcileIntervalMs: 0,
    });
    const rows = Array.from({ length: 60 }, (_, i) => `${i % 7},${(i * 13) % 11},${i % 2}`);
    fs.writeFileSync(path.join(dir, 'input', 'data.csv'), `a,b,label\n${rows.join('\n')}\n`);
  });

  afterAll(async () => {
    await pipeline?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the worker's task with `args` and `env`, as `pipeline run --task logreg --arg ...` does. */
  async function run(args: string[], env: Record<string, string> = {}): Promise<Job> {
    const intake = await pipeline.dispatcher.submitContainer({ task: 'logreg', args, env, declared: {} });
    if (intake.outcome !== 'created') throw new Error(`not created: ${intake.outcome}`);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const job = await pipeline.ledger.get(intake.job.id);
      if (job !== undefined && FINAL_STATES.includes(job.state)) return job;
      if (Date.now() > deadline) throw new Error(`job ${intake.job.id} did not end within 15 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('reads a gs:// input of a local bucket from its folder', async () => {
    const job = await run(['--input', 'gs://input/data.csv']);
    expect(job).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(fs.existsSync(path.join(job.outputUri!, '_SUCCESS'))).toBe(true);
  });

  it('ends FAILED, naming the URI, when a gs:// URI names no local bucket: nothing is started', async () => {
    const job = await run(['--input', 'gs://my-project-data/data.csv']);
    expect(job.state).toBe('FAILED');
    expect(job.error).toContain('argument 2 names gs://my-project-data/data.csv');
    expect(job.attempts).toMatchObject([{ outcome: 'failed' }]);
    expect(job.attempts[0].startedAt).toBeUndefined();
  });

  it('ends FAILED as well for such a URI in the environment', async () => {
    const job = await run(['--input', 'gs://input/data.csv'], { EXTRA: 'gs://my-project-data/more.csv' });
    expect(job.state).toBe('FAILED');
    expect(job.error).toContain('variable EXTRA names gs://my-project-data/more.csv');
  });
});
