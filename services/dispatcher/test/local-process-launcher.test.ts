// The local process launcher with a stand-in for the worker (fixtures/task-stand-in.ts): how stop()
// ends a task's whole process group and reports it interrupted, not failed; that nothing starts once
// it stops; and that a task's gs:// URIs become local paths or refuse the task before it starts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LaunchError, newJob, type Completion, type Job } from '@pipeline/core';
import { ProcessLauncher, type Interruption } from '../src/local/process-launcher.ts';
import { until } from '../../../test/support/until.ts';

const STAND_IN = path.resolve(import.meta.dirname, 'fixtures/task-stand-in.ts');

let dir: string;
let launcher: ProcessLauncher;
let started: string[];
let completions: Completion[];
let interruptions: Interruption[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'process-launcher-'));
  started = [];
  completions = [];
  interruptions = [];
  launcher = new ProcessLauncher({
    target: 'cloud-run-job',
    workerBin: STAND_IN,
    baseEnv: { PATH: process.env.PATH ?? '' },
    buckets: { input: path.join(dir, 'input'), output: path.join(dir, 'output') },
    onStarted: (jobId) => started.push(jobId),
    onCompletion: (completion) => completions.push(completion),
    onInterrupted: (interruption) => interruptions.push(interruption),
  });
});

afterEach(async () => {
  await launcher.stop('the test ended', 100);
  fs.rmSync(dir, { recursive: true, force: true });
});

interface StandInReport {
  pid: number;
  child: number;
  args: string[];
  env: Record<string, string>;
}

let jobs = 0;
/** Launches the stand-in for a new job and waits until it says it runs. */
async function launch(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ job: Job; report: StandInReport }> {
  const job = { ...newJob(String(++jobs).padStart(32, '0'), { kind: 'request', args, env }, 't0') };
  const reportFile = path.join(dir, `report-${jobs}.json`);
  await launcher.launch({
    job,
    target: 'cloud-run-job',
    args,
    env: { ...env, STAND_IN_REPORT: reportFile },
    logsUri: path.join(dir, 'logs', `${jobs}.log`),
  });
  const report = await until(() =>
    fs.existsSync(reportFile)
      ? (JSON.parse(fs.readFileSync(reportFile, 'utf8')) as StandInReport)
      : undefined,
  );
  return { job, report };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('stopping the process launcher', () => {
  it('ends a task that ignores SIGTERM, and the child it started, with SIGKILL to its group, as interrupted', async () => {
    const { job, report } = await launch([], { STAND_IN_ON_SIGTERM: 'ignore' });
    await launcher.stop('the local pipeline stopped (SIGINT)', 100);
    expect(completions).toEqual([]);
    expect(interruptions).toEqual([
      {
        jobId: job.id,
        attempt: 1,
        at: expect.any(String),
        reason: 'the local pipeline stopped (SIGINT)',
        exitCode: 128 + os.constants.signals.SIGKILL,
      },
    ]);
    // The child is reaped by init once its parent is gone: wait for that, not for a fixed time.
    await until(() => (alive(report.pid) || alive(report.child) ? undefined : true));
    const log = fs.readFileSync(path.join(dir, 'logs', '1.log'), 'utf8');
    expect(log).toContain(
      'pipeline: attempt 1 interrupted: the local pipeline stopped (SIGINT); it runs again',
    );
  });

  it('reports a task SIGTERM ends within its grace as interrupted, with the exit code of SIGTERM', async () => {
    const { job } = await launch();
    await launcher.stop('the local pipeline stopped (SIGTERM)', 10_000);
    expect(completions).toEqual([]);
    expect(interruptions).toMatchObject([{ jobId: job.id, exitCode: 128 + os.constants.signals.SIGTERM }]);
    // A reconcile pass asking now must not take its exit code for a failure of its own.
    const found = await launcher.find({ ...job, attempt: 1 });
    expect(found.kind).toBe('found');
    if (found.kind === 'found')
      expect(await launcher.inspect(found.execution)).toEqual({
        kind: 'unknown',
        reason: 'interrupted by the local pipeline stopping',
      });
  });

  it('reports a task that ended well as it was stopped as its completion: it did its work', async () => {
    const { job } = await launch([], { STAND_IN_ON_SIGTERM: 'exit-0' });
    await launcher.stop('the local pipeline stopped (SIGINT)', 10_000);
    expect(interruptions).toEqual([]);
    expect(completions).toMatchObject([{ jobId: job.id, attempt: 1, exitCode: 0 }]);
  });

  it('starts nothing once stopped: the launch is refused for now, so the job waits QUEUED', async () => {
    await launcher.stop('the local pipeline stopped (SIGINT)', 100);
    const refusal = await launch().catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(LaunchError);
    expect(refusal).toMatchObject({ retryable: true, message: expect.stringContaining('stopping') });
    expect(started).toEqual([]);
  });
});

describe("a local task's gs:// URIs", () => {
  it('become the files and folders of the local buckets they name', async () => {
    const { report } = await launch(['--input', 'gs://input/a b/c.csv', '--output=gs://output/runs/x/'], {
      MODEL: 'gs://input/models/m.json',
      BUCKET_ROOT: 'gs://output',
      PLAIN: 'no URI here',
    });
    expect(report.args).toEqual([
      '--input',
      path.join(dir, 'input', 'a b', 'c.csv'),
      `--output=${path.join(dir, 'output', 'runs', 'x')}/`,
    ]);
    expect(report.env).toMatchObject({
      MODEL: path.join(dir, 'input', 'models', 'm.json'),
      BUCKET_ROOT: path.join(dir, 'output'),
      PLAIN: 'no URI here',
    });
  });

  it('refuse the task before it starts when one names a bucket that is not local', async () => {
    const refusal = await launch(['--input', 'gs://someone-elses/data.csv']).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(LaunchError);
    expect(refusal).toMatchObject({ retryable: false });
    expect((refusal as Error).message).toContain('argument 2 names gs://someone-elses/data.csv');
    expect((refusal as Error).message).toContain('local mode never reaches Cloud Storage');
    expect(started).toEqual([]);
  });
});
