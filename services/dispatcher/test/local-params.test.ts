// Per-job parameters end to end on the local pipeline with the shipped routing rules: `pipeline
// submit --param` puts them in the object's metadata, `pipeline run --input --param` in the request,
// the rule's allow-list decides, and the worker gets them as its environment. The synthetic wine data
// has its class first: without TARGET_COLUMN the worker refuses to guess the last column.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, jobIdFor, type Job } from '@pipeline/core';
import { putObject } from '../src/local/put-object.ts';
import { cliRun, jobWhen, startTestPipeline } from '../../../packages/cli/test/cli-support.ts';

const WINE = path.resolve(import.meta.dirname, '../../../jobs/worker/data/wine.csv');

let pipeline: Awaited<ReturnType<typeof startTestPipeline>>;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  pipeline = await startTestPipeline();
  env = { PIPELINE_URL: pipeline.url };
});
afterAll(async () => {
  await pipeline?.removeAll();
});

/** `pipeline submit` into this pipeline's input folder; the job it made, once it has ended. */
async function submitted(name: string, ...params: string[]): Promise<Job> {
  const args = ['submit', WINE, '--name', name, '--dir', pipeline.blobs.root, '--json'];
  for (const p of params) args.push('--param', p);
  const run = await cliRun(args, env);
  expect(run.code, run.stderr).toBe(0);
  const { job } = JSON.parse(run.stdout) as { job: string };
  return jobWhen(pipeline, job, (j) => FINAL_STATES.includes(j.state));
}

const model = (job: Job) => JSON.parse(fs.readFileSync(path.join(job.outputUri!, 'model.json'), 'utf8'));

describe('per-job parameters on the local pipeline', () => {
  it("fits the wine data's three cultivars when the upload names its target", async () => {
    const job = await submitted('wine-named.csv', 'TARGET_COLUMN=cultivar');
    expect(job.state, job.error).toBe('SUCCEEDED');
    expect(job.params).toEqual({ TARGET_COLUMN: 'cultivar' });
    const fitted = model(job);
    expect(fitted.target).toBe('cultivar');
    expect(fitted.targetChosenBy).toBe('TARGET_COLUMN');
    expect(fitted.classes).toEqual(['1', '2', '3']);
    const shown = await cliRun(['job', job.id], env);
    expect(shown.stdout).toContain('TARGET_COLUMN=cultivar');
  });

  it('refuses with exit 4, naming TARGET_COLUMN, when nothing names the target', async () => {
    const job = await submitted('wine-guessed.csv');
    expect(job).toMatchObject({ state: 'FAILED', exitCode: 4 });
    expect(job.error).toContain('the last column "proline" looks continuous');
    expect(job.error).toContain('TARGET_COLUMN');
    expect(fs.existsSync(path.join(job.outputUri!, '_SUCCESS'))).toBe(false);
  });

  it('refuses a parameter the rule does not allow before anything runs, saying which and why', async () => {
    // The CLI refuses it itself (exit 2); an uploader with gcloud sets the metadata all the same.
    const cli = await cliRun(
      ['submit', WINE, '--param', 'LD_PRELOAD=/tmp/evil.so', '--dir', pipeline.blobs.root],
      env,
    );
    expect(cli.code).toBe(2);
    const generation = putObject(pipeline.blobs, 'wine-preload.csv', WINE, {
      'pipeline-param-TARGET_COLUMN': 'cultivar',
      'pipeline-param-LD_PRELOAD': '/tmp/evil.so',
    });
    const job = await jobWhen(pipeline, jobIdFor('input', 'wine-preload.csv', generation), (j) =>
      FINAL_STATES.includes(j.state),
    );
    expect(job.state).toBe('FAILED');
    expect(job.attempts).toEqual([]);
    expect(job.error).toContain(
      'parameter "LD_PRELOAD" (object metadata) is not one rule "csv" lets a job set (it allows TARGET_COLUMN, EXCLUDE_COLUMNS, REGULARIZATION_C, DELIMITER',
    );
  });

  it('runs an object already in the bucket again with a parameter, as a job of its own', async () => {
    const guessed = (await pipeline.ledger.list({ limit: 50 })).jobs.find(
      (j) => j.source.kind === 'object' && j.source.object.name === 'wine-guessed.csv',
    )!;
    const run = await cliRun(
      ['run', '--input', 'gs://input/wine-guessed.csv', '--param', 'TARGET_COLUMN=cultivar', '--json'],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    const { id } = JSON.parse(run.stdout) as { id: string };
    expect(id).not.toBe(guessed.id);
    const job = await jobWhen(pipeline, id, (j) => FINAL_STATES.includes(j.state));
    expect(job.state, job.error).toBe('SUCCEEDED');
    expect(model(job).classes).toHaveLength(3);
    expect(job.outputUri).toBe(`${path.join(pipeline.blobs.folder('output'), 'runs', id)}/`);

    const refused = await cliRun(['run', '--input', 'gs://input/wine-guessed.csv', '--param', 'C=2'], env);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('parameter "C" (the request) is not one rule "csv" lets a job set');
  });
});
