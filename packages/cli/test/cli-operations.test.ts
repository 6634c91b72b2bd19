// The operations commands against a real local pipeline: logs (and --follow), cancel, retry, run,
// deadletters and replay, for people and with --json.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, jobIdFor, type Job } from '@pipeline/core';
import { putObject } from '../../../services/dispatcher/src/local/put-object.ts';
import { jobWhen, ONE_CLASS_CSV, cliRun as run, SAMPLE, startTestPipeline } from './cli-support.ts';

let pipeline: Awaited<ReturnType<typeof startTestPipeline>>;

beforeAll(async () => {
  pipeline = await startTestPipeline();
});
afterAll(async () => {
  await pipeline?.removeAll();
});

const pipelineCommand = (args: string[]) => run(args, { PIPELINE_URL: pipeline.url });

/** Puts `text` into the local input bucket as `name` and waits for its job to end; the job. */
async function finishedJob(name: string, text: string | Buffer): Promise<Job> {
  const file = path.join(pipeline.root, `upload-${Math.random().toString(16).slice(2)}`);
  fs.writeFileSync(file, text);
  const generation = putObject(pipeline.blobs, name, file, {});
  return jobWhen(pipeline, jobIdFor('input', name, generation), (job) => FINAL_STATES.includes(job.state));
}

/** The log of a job's attempt, where the local pipeline keeps it: under the job's outputs. */
const attemptLog = (job: Job, attempt: number) =>
  fs.readFileSync(path.join(job.outputUri!, `logs/attempt-${attempt}.log`), 'utf8');

describe('pipeline logs', () => {
  it("prints the tail of the current attempt's log, and says when it is cut", async () => {
    const job = await finishedJob('logs/ok.csv', fs.readFileSync(SAMPLE));
    expect(job.state).toBe('SUCCEEDED');
    const whole = attemptLog(job, 1);
    const all = await pipelineCommand(['logs', job.id]);
    expect(all.code).toBe(0);
    expect(all.stdout).toBe(whole);
    expect(all.stdout).toContain('"message":"input loaded"');
    expect(all.stderr).toBe('');

    const tail = await pipelineCommand(['logs', job.id, '--tail', '20']);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toBe(Buffer.from(whole).subarray(-20).toString());
    const size = Buffer.byteLength(whole);
    expect(tail.stderr).toBe(
      `(the last 20 of ${size} bytes of attempt 1; --tail BYTES shows more, up to 1 MiB)\n`,
    );

    const json = JSON.parse((await pipelineCommand(['logs', job.id, '--json'])).stdout);
    expect(json).toEqual({ attempt: 1, offset: 0, nextOffset: size, size, state: 'SUCCEEDED', text: whole });
  });

  it('follows a scheduled job from before it starts to its end, and exits 0 when it SUCCEEDED', async () => {
    putObject(pipeline.blobs, 'later/data.csv', SAMPLE, {});
    const created = await pipelineCommand([
      'run',
      '--input',
      'gs://input/later/data.csv',
      '--at',
      '+1s',
      '--json',
    ]);
    expect(created.code).toBe(0);
    const { id, state } = JSON.parse(created.stdout);
    expect(state).toBe('SCHEDULED');

    // It starts reading while the job waits for its time, with no log yet.
    const followed = await pipelineCommand(['logs', id, '--follow', '--interval', '0.1']);
    const job = (await pipeline.ledger.get(id))!;
    expect(job.state).toBe('SUCCEEDED');
    expect(followed.stdout).toBe(fs.readFileSync(job.logsUri!, 'utf8'));
    expect(followed.stdout).toContain('"message":"input loaded"');
    expect(followed.stderr).toBe(`(job ${id} SUCCEEDED)\n`);
    expect(followed.code).toBe(0);
  });

  it('follows a job that fails to its end, and exits 1', async () => {
    const created = await pipelineCommand(['run', '--task', 'logreg', '--at', '+1s', '--json']);
    const { id } = JSON.parse(created.stdout);
    const followed = await pipelineCommand(['logs', id, '-f', '--interval', '0.1']);
    expect(followed.stdout).toContain('pipeline-worker: no input: pass --input or set INPUT_URI');
    expect(followed.stderr).toBe(`(job ${id} FAILED)\n`);
    expect(followed.code).toBe(1);
  });
});

describe('pipeline retry', () => {
  it('runs a FAILED job again as attempt 2; job shows both attempts, logs either one', async () => {
    const failed = await finishedJob('retry/bad.csv', ONE_CLASS_CSV);
    expect(failed).toMatchObject({ state: 'FAILED', exitCode: 4 });

    const retried = await pipelineCommand(['retry', failed.id]);
    expect(retried.stdout).toMatch(
      new RegExp(`^job ${failed.id} attempt 2 (LAUNCHED|RUNNING) on cloud-run-job\n$`),
    );
    expect(retried.code).toBe(0);
    await jobWhen(pipeline, failed.id, (job) => job.attempt === 2 && job.state === 'FAILED');

    const detail = await pipelineCommand(['job', failed.id]);
    expect(detail.stdout).toContain('attempt    2\n');
    const rows = detail.stdout.split('\n').filter((line) => /^ {2}\d +cloud-run-job/.test(line));
    expect(rows).toHaveLength(2);
    for (const [i, row] of rows.entries())
      expect(row).toMatch(
        new RegExp(
          `^ {2}${i + 1} +cloud-run-job +failed +4 +\\d+\\.\\d s .* pipeline-worker: the target "label" has one class only`,
        ),
      );
    expect(detail.stdout).toContain('RECEIVED  retried by request');

    expect((await pipelineCommand(['logs', failed.id, '--attempt', '1'])).stdout).toBe(attemptLog(failed, 1));
    expect((await pipelineCommand(['logs', failed.id])).stdout).toBe(attemptLog(failed, 2));
    const missing = await pipelineCommand(['logs', failed.id, '--attempt', '9']);
    expect(missing.stderr).toBe(`pipeline: 404: job ${failed.id} has no attempt 9\n`);
    expect(missing.code).toBe(1);

    const json = JSON.parse((await pipelineCommand(['retry', failed.id, '--json'])).stdout);
    expect(json).toMatchObject({ id: failed.id, attempt: 3 });
  });

  it('refuses to retry a job that SUCCEEDED, with the API message and exit 1', async () => {
    const done = await finishedJob('retry/ok.csv', fs.readFileSync(SAMPLE));
    const refused = await pipelineCommand(['retry', done.id]);
    expect(refused.stderr).toBe(
      `pipeline: 409: job ${done.id} is SUCCEEDED; only FAILED or CANCELLED jobs can be retried\n`,
    );
    expect(refused.code).toBe(1);
  });
});

describe('pipeline cancel', () => {
  it('cancels a SCHEDULED job, and refuses a second time with exit 1', async () => {
    const created = await pipelineCommand(['run', '--task', 'logreg', '--at', '+1h']);
    expect(created.code).toBe(0);
    const [, id, due] = /^job ([0-9a-f]{32}) SCHEDULED: due at (\S+)\n$/.exec(created.stdout)!;
    expect(Math.abs(Date.parse(due) - Date.now() - 3600_000)).toBeLessThan(60_000);

    const cancelled = await pipelineCommand(['cancel', id]);
    expect(cancelled.stdout).toBe(`job ${id} CANCELLED: cancelled by request\n`);
    expect(cancelled.code).toBe(0);
    expect((await pipeline.ledger.get(id))?.state).toBe('CANCELLED');

    const again = await pipelineCommand(['cancel', id]);
    expect(again.stderr).toBe(
      `pipeline: 409: job ${id} is CANCELLED; only a job not yet ended can be cancelled\n`,
    );
    expect(again.code).toBe(1);
  });

  it('answers the job as JSON with --json', async () => {
    const { id } = JSON.parse(
      (await pipelineCommand(['run', '--task', 'logreg', '--at', '+1h', '--json'])).stdout,
    );
    const json = JSON.parse((await pipelineCommand(['cancel', id, '--json'])).stdout);
    expect(json).toMatchObject({ id, state: 'CANCELLED' });
  });
});

describe('pipeline run', () => {
  it('starts a task now, with its arguments, environment and resources', async () => {
    const created = await pipelineCommand([
      'run',
      '--task',
      'logreg',
      '--arg=--target',
      '--arg',
      'label',
      '--env',
      'REGULARIZATION_C=2=two',
      '--cpu',
      '1',
      '--memory',
      '1GiB',
    ]);
    expect(created.code).toBe(0);
    const [, id] = /^job ([0-9a-f]{32}) (?:LAUNCHED|RUNNING) on cloud-run-job \(rule containers\)\n$/.exec(
      created.stdout,
    )!;
    const job = (await pipeline.ledger.get(id))!;
    expect(job.source).toEqual({
      kind: 'request',
      task: 'logreg',
      args: ['--target', 'label'],
      env: { REGULARIZATION_C: '2=two' },
      declared: { cpu: 1, memoryBytes: 1024 ** 3 },
    });
  });

  it('schedules a repeating job with --cron; job shows its schedule and when it is due', async () => {
    const created = await pipelineCommand(['run', '--task', 'logreg', '--cron', '*/5 * * * *']);
    expect(created.code).toBe(0);
    const [, id, due] =
      /^job ([0-9a-f]{32}) SCHEDULED: due at (\S+), repeating on cron "\*\/5 \* \* \* \*" \(UTC\)\n$/.exec(
        created.stdout,
      )!;
    expect(new Date(due).getUTCMinutes() % 5).toBe(0);
    const detail = await pipelineCommand(['job', id]);
    expect(detail.stdout).toMatch(/\nschedule +cron "\*\/5 \* \* \* \*" \(UTC\), series [0-9a-f]{32}\n/);
    expect(detail.stdout).toContain(`\ndue        ${due}\n`);
    await pipelineCommand(['cancel', id]);
  });

  it('exits 1 when the job failed at its launch: local mode runs no images', async () => {
    const created = await pipelineCommand(['run', '--image', 'busybox']);
    expect(created.stdout).toMatch(
      /^job [0-9a-f]{32} FAILED: launch on vm failed: local mode runs the worker's tasks only; image busybox needs a container runtime\n$/,
    );
    expect(created.code).toBe(1);
  });

  it('says what the API refuses that only it can know, exit 1', async () => {
    const refused = await pipelineCommand(['run', '--input', 'gs://input/no/such.csv']);
    expect(refused.stderr).toBe('pipeline: 404: no object no/such.csv in bucket input\n');
    expect(refused.code).toBe(1);
  });
});

describe('pipeline deadletters and replay', () => {
  it('lists none in local mode, with the note why', async () => {
    const listed = await pipelineCommand(['deadletters']);
    expect(listed.stdout).toBe('no dead letters\n(local mode has no Pub/Sub, so no dead letters)\n');
    expect(listed.code).toBe(0);
    const json = JSON.parse((await pipelineCommand(['deadletters', '--limit', '10', '--json'])).stdout);
    expect(json).toEqual({ messages: [], note: 'local mode has no Pub/Sub, so no dead letters' });
  });

  it('says there is no such dead letter to replay, exit 1', async () => {
    const replayed = await pipelineCommand(['replay', 'abc123']);
    expect(replayed.stderr).toBe('pipeline: 404: no dead letter abc123\n');
    expect(replayed.code).toBe(1);
    const bad = await pipelineCommand(['replay', 'not/an id']);
    expect(bad.stderr).toMatch(/^pipeline: "not\/an id" is not a message id\nusage: pipeline replay /);
    expect(bad.code).toBe(2);
  });
});
