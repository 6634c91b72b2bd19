// Short ids wherever the CLI takes a job id, against a real local pipeline (its API and sqlite
// ledger): a unique prefix of 6 or more names its job, an ambiguous one is refused with what it
// could be, an unknown one says so; cancel and retry take several ids, a line for each.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, jobIdFor, newScheduledJob, type Job } from '@pipeline/core';
import { putObject } from '../../../services/dispatcher/src/local/put-object.ts';
import { cliRun, jobWhen, SAMPLE, startTestPipeline } from './cli-support.ts';

let pipeline: Awaited<ReturnType<typeof startTestPipeline>>;
beforeAll(async () => {
  pipeline = await startTestPipeline();
});
afterAll(async () => {
  await pipeline?.removeAll();
});

const pipelineCommand = (args: string[]) => cliRun(args, { PIPELINE_URL: pipeline.url });

/** A container run due in a day, with an id of our choosing: `start`, then zeros. */
async function scheduledJob(start: string): Promise<string> {
  const id = start.padEnd(32, '0');
  const now = new Date().toISOString();
  const runAt = new Date(Date.now() + 86_400_000).toISOString();
  const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };
  await pipeline.ledger.claim(newScheduledJob(id, source, now, runAt), 60_000);
  return id;
}

describe('a job id prefix', () => {
  it('names its job in job and logs, in either case, as the whole id does', async () => {
    const generation = putObject(pipeline.blobs, 'prefix/data.csv', SAMPLE, {});
    const id = jobIdFor('input', 'prefix/data.csv', generation);
    await jobWhen(pipeline, id, (job) => FINAL_STATES.includes(job.state));
    const short = id.slice(0, 10); // as the dashboard shows it

    const whole = await pipelineCommand(['job', id, '--json']);
    for (const given of [short, short.toUpperCase(), id.slice(0, 6)]) {
      const named = await pipelineCommand(['job', given, '--json']);
      expect([named.code, named.stderr]).toEqual([0, '']);
      expect(JSON.parse(named.stdout)).toEqual(JSON.parse(whole.stdout));
    }
    const log = await pipelineCommand(['logs', short]);
    expect(log.code).toBe(0);
    const job = (await pipeline.ledger.get(id))!;
    expect(log.stdout).toBe(fs.readFileSync(path.join(job.outputUri!, 'logs/attempt-1.log'), 'utf8'));
  });

  it('that several ids start with is refused with each of them, its state and source, exit 1', async () => {
    const first = await scheduledJob('abcdef01');
    const second = await scheduledJob('abcdef02');
    for (const command of ['job', 'logs', 'cancel', 'retry']) {
      const refused = await pipelineCommand([command, 'abcdef']);
      expect(refused.stderr).toBe(
        [
          'pipeline: abcdef starts the ids of 2 jobs; give more of it:',
          `  ${first}  SCHEDULED  task logreg`,
          `  ${second}  SCHEDULED  task logreg`,
          '',
        ].join('\n'),
      );
      expect([refused.code, refused.stdout]).toEqual([1, '']);
    }
    expect((await pipeline.ledger.get(first))?.state).toBe('SCHEDULED');
    const named = await pipelineCommand(['job', 'abcdef02']);
    expect(named.stdout).toMatch(new RegExp(`^job {8}${second}\nstate {6}SCHEDULED\n`));
  });

  it('that no id starts with says so, exit 1', async () => {
    const unknown = await pipelineCommand(['job', '00aa00aa']);
    expect([unknown.code, unknown.stderr]).toEqual([1, 'pipeline: no job has an id starting 00aa00aa\n']);
  });
});

describe('cancel and retry of several jobs', () => {
  it('act on each in turn, a line for each, and exit 1 if any was refused', async () => {
    const [a, b, c] = await Promise.all(['c0ffee01', 'c0ffee02', 'c0ffee03'].map(scheduledJob));
    const cancelled = await pipelineCommand(['cancel', 'c0ffee01', '000000', b, 'c0ffee03']);
    expect(cancelled.stdout).toBe(
      [a, b, c].map((id) => `job ${id} CANCELLED: cancelled by request\n`).join(''),
    );
    expect(cancelled.stderr).toBe('pipeline: no job has an id starting 000000\n');
    expect(cancelled.code).toBe(1);
    for (const id of [a, b, c]) expect((await pipeline.ledger.get(id))?.state).toBe('CANCELLED');

    const again = await pipelineCommand(['cancel', a, 'c0ffee02', '--json']);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(
      [a, b]
        .map((id) => `pipeline: 409: job ${id} is CANCELLED; only a job not yet ended can be cancelled\n`)
        .join(''),
    );
    expect(again.code).toBe(1);

    const retried = await pipelineCommand(['retry', 'c0ffee01', 'c0ffee02', '--json']);
    const lines = retried.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Job);
    expect(lines.map((job) => [job.id, job.attempt])).toEqual([
      [a, 2],
      [b, 2],
    ]);
    expect(retried.stderr).toBe('');
    // The worker runs with no input and fails: neither is running again after that.
    for (const id of [a, b]) await jobWhen(pipeline, id, (job) => job.state === 'FAILED');
  });

  it('end at the first failure that is not about the job: the pipeline not answering', async () => {
    const run = await cliRun(['cancel', 'c0ffee01', 'c0ffee02'], { PIPELINE_URL: 'http://127.0.0.1:9' });
    expect(run.stderr).toMatch(/^pipeline: cannot reach the pipeline at http:\/\/127\.0\.0\.1:9: /);
    expect(run.stderr.split('\n')).toHaveLength(2);
    expect(run.code).toBe(1);
  });
});
