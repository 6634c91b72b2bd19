// The worker as a task of a batch's execution: BATCH_MANIFEST_URI names the manifest (a local file,
// or an object of the Cloud Storage double), and CLOUD_RUN_TASK_INDEX picks the task's entry, whose
// env the worker runs with. The manifest is made with core's own batchIdFor and read with its parser.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchIdFor, batchManifestName, type BatchManifest } from '@pipeline/core/messages';
import { startFakeGcs, type FakeGcs } from '../../../test/support/fake-gcs.ts';
import { runWorker, runWorkerInProcess } from '../../../test/support/run-worker.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../data/financial_statements.csv');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-batch-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A manifest of three jobs, task i reading `input` into `outputOf(i)`; `left` are the indexes of
 * jobs that left the batch (null entries).
 */
function manifestOf(
  input: string,
  outputOf: (index: number) => string,
  extraEnv: (index: number) => Record<string, string> = () => ({}),
  left: number[] = [],
): BatchManifest {
  const members = [0, 1, 2].map(() => ({ jobId: randomBytes(16).toString('hex'), attempt: 1 }));
  return {
    batchId: batchIdFor(members),
    tasks: members.map((m, index) =>
      left.includes(index)
        ? null
        : {
            ...m,
            env: {
              JOB_ID: m.jobId,
              ATTEMPT: String(m.attempt),
              INPUT_URI: input,
              OUTPUT_URI: outputOf(index),
              EXCLUDE_COLUMNS: 'fiscal_year',
              ...extraEnv(index),
            },
          },
    ),
  };
}

/** The execution's env for task `index` of the manifest at `uri`, as Cloud Run sets it. */
function taskEnv(manifest: BatchManifest, uri: string, index: string): Record<string, string> {
  return {
    BATCH_ID: manifest.batchId,
    BATCH_MANIFEST_URI: uri,
    CLOUD_RUN_TASK_INDEX: index,
    CLOUD_RUN_TASK_COUNT: String(manifest.tasks.length),
  };
}

/** Writes `manifest` to a local file and returns its path. */
function localManifest(manifest: BatchManifest | string): string {
  const file = path.join(dir, 'manifest.json');
  fs.writeFileSync(file, typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return file;
}

const localOutput = (index: number) => path.join(dir, `out-${index}`) + path.sep;

describe('pipeline-worker as a task of a batch, with a local manifest', () => {
  it("runs task 1's job: entry 1's input into entry 1's output, and nothing of the others", async () => {
    const manifest = manifestOf(SAMPLE, localOutput);
    const run = await runWorkerInProcess([], taskEnv(manifest, localManifest(manifest), '1'));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const success = JSON.parse(fs.readFileSync(path.join(localOutput(1), '_SUCCESS'), 'utf8'));
    expect(success).toMatchObject({ jobId: manifest.tasks[1]!.jobId, input: SAMPLE });
    const predictions = fs.readFileSync(path.join(localOutput(1), 'predictions.csv'), 'utf8');
    expect(predictions.trimEnd().split('\n')).toHaveLength(
      fs.readFileSync(SAMPLE, 'utf8').trimEnd().split('\n').length,
    );
    expect(fs.existsSync(localOutput(0))).toBe(false);
    expect(fs.existsSync(localOutput(2))).toBe(false);
    // Its log lines name the entry's job.
    expect(run.stdout).toContain(manifest.tasks[1]!.jobId);
  });

  it('does nothing and exits 0 for a job that left the batch, saying so in one line', async () => {
    const manifest = manifestOf(SAMPLE, localOutput, () => ({}), [1]);
    const run = await runWorkerInProcess([], taskEnv(manifest, localManifest(manifest), '1'));
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({
      message: "the task's job left the batch: nothing to do",
      batchId: manifest.batchId,
      task: 1,
    });
    expect(fs.readdirSync(dir)).toEqual(['manifest.json']);
  });

  it.each([
    ['an index past its end', (m: BatchManifest) => JSON.stringify(m), '3', 'names no task of batch'],
    ['no index at all', (m: BatchManifest) => JSON.stringify(m), undefined, 'names no task of batch'],
    ['a manifest that is not JSON', () => '{"batchId": ', '1', 'JSON'],
    [
      'a manifest without tasks',
      (m: BatchManifest) => JSON.stringify({ ...m, tasks: [] }),
      '1',
      'has no tasks',
    ],
    [
      "another batch's manifest",
      (m: BatchManifest) => JSON.stringify({ ...m, batchId: `batch-${'0'.repeat(24)}` }),
      '1',
      "'s, not batch-",
    ],
  ])('exits 2 for %s, with one line on stderr and no outputs', async (_, text, index, why) => {
    const manifest = manifestOf(SAMPLE, localOutput);
    const file = localManifest(text(manifest));
    const env = taskEnv(manifest, file, index ?? '');
    if (index === undefined) delete env.CLOUD_RUN_TASK_INDEX;
    const run = await runWorkerInProcess([], env);
    expect(run.code).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(`batch manifest ${file}`);
    expect(run.stderr).toContain(why);
    expect(fs.readdirSync(dir)).toEqual(['manifest.json']);
  });
});

describe('pipeline-worker as a task of a batch, with the manifest in Cloud Storage', () => {
  let gcs: FakeGcs;
  beforeEach(async () => {
    gcs = await startFakeGcs();
  });
  afterEach(async () => {
    await gcs.close();
  });

  const INPUT_NAME = 'data/financial_statements.csv';
  const outputOf = (index: number) => `gs://out-bucket/results/t${index}/`;
  const logsOf = (index: number) => ({ LOGS_URI: `gs://out-bucket/results/t${index}/logs/attempt-1.log` });
  /**
   * stderr without the MaxListenersExceededWarning @google-cloud/storage prints for an object of the
   * sample's size, batch or not (the README's "Bad input" says so): the library's, not the worker's.
   */
  const ownLines = (stderr: string) =>
    stderr
      .split('\n')
      .filter((line) => line !== '' && !/MaxListenersExceededWarning|node --trace-warnings/.test(line));
  const worker = (env: Record<string, string>) =>
    runWorker([], { STORAGE_EMULATOR_HOST: gcs.url, METADATA_SERVER_DETECTION: 'none', ...env });

  it("runs task 1's job from the manifest object, its log uploaded to entry 1's LOGS_URI", async () => {
    gcs.put('in-bucket', INPUT_NAME, fs.readFileSync(SAMPLE), { contentType: 'text/csv' });
    const manifest = manifestOf(`gs://in-bucket/${INPUT_NAME}`, outputOf, logsOf);
    const name = batchManifestName(manifest.batchId);
    gcs.put('out-bucket', name, JSON.stringify(manifest), { contentType: 'application/json' });

    const run = await worker(taskEnv(manifest, `gs://out-bucket/${name}`, '1'));
    expect(ownLines(run.stderr)).toEqual([]);
    expect(run.code).toBe(0);
    expect(gcs.list('out-bucket')).toEqual([
      name,
      'results/t1/_SUCCESS',
      'results/t1/logs/attempt-1.log',
      'results/t1/model.json',
      'results/t1/predictions.csv',
    ]);
    const success = JSON.parse(gcs.get('out-bucket', 'results/t1/_SUCCESS')!.body.toString('utf8'));
    expect(success).toMatchObject({ jobId: manifest.tasks[1]!.jobId, output: outputOf(1) });
    expect(gcs.get('out-bucket', 'results/t1/logs/attempt-1.log')!.body.toString('utf8')).toContain(
      manifest.tasks[1]!.jobId,
    );
  });

  it('exits 3 when the manifest cannot be read, naming its URI and the task index', async () => {
    const manifest = manifestOf(`gs://in-bucket/${INPUT_NAME}`, outputOf, logsOf);
    const uri = `gs://out-bucket/${batchManifestName(manifest.batchId)}`;
    const run = await worker(taskEnv(manifest, uri, '1'));
    expect(run.code).toBe(3);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(`task 1 of batch manifest ${uri}: cannot be read`);
    expect(gcs.list('out-bucket')).toEqual([]);
  });
});
