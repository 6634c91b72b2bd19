// Stopping `pipeline start` with a task running, as a user does: Ctrl-C (SIGINT to the terminal's
// process group) to a real pipeline process whose task holds (fixtures/hold-task.ts). The task is
// ended and recorded as interrupted, not failed; the next start runs it again as the same attempt,
// and it succeeds.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '@pipeline/core';
import { SqliteLedger } from '../src/local/sqlite-ledger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';
import { PIPELINE_BIN } from '../../../packages/cli/test/cli-support.ts';
import { until } from '../../../test/support/until.ts';

const HOLD_TASK = path.resolve(import.meta.dirname, 'fixtures/hold-task.ts');

let dir: string;
let running: Pipeline | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-shutdown-'));
  // The task loads the loopback guard and the hold through NODE_OPTIONS, set by its rule.
  const config = {
    rules: [
      {
        name: 'csv',
        match: { path: '**.csv' },
        target: 'cloud-run-job',
        job: {
          task: 'logreg',
          env: {
            NODE_OPTIONS: `--import ${LOOPBACK_GUARD} --import ${HOLD_TASK}`,
            HOLD_WHILE: path.join(dir, 'hold'),
            HOLD_STARTED: path.join(dir, 'task-started'),
          },
        },
      },
    ],
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.mkdirSync(path.join(dir, 'local', 'input'), { recursive: true }); // not a first start: no sample
});

afterEach(async () => {
  if (running !== undefined && running.child.exitCode === null && running.child.signalCode === null) {
    process.kill(-running.child.pid!, 'SIGKILL');
    await running.exited;
  }
  running = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Pipeline {
  child: ChildProcess;
  /** What it said on stderr so far, line by line. */
  said: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `pipeline start` in a process group of its own, as a terminal runs a command. */
function start(): Pipeline {
  const child = spawn(
    process.execPath,
    [
      '--import',
      LOOPBACK_GUARD,
      PIPELINE_BIN,
      'start',
      '--dir',
      path.join(dir, 'local'),
      '--port',
      '0',
      '--config',
      path.join(dir, 'config.json'),
    ],
    {
      env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', LOCAL_CAPACITY: '2' },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    },
  );
  const said: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    said.push(...lines);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  running = { child, said, exited };
  return running;
}

async function stopped(pipeline: Pipeline, ms = 15_000): Promise<{ code: number | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the pipeline did not exit within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([pipeline.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function theJob(): Promise<Job> {
  const ledger = new SqliteLedger(path.join(dir, 'local', 'pipeline.db'));
  try {
    const { jobs } = await ledger.list({ limit: 10 });
    expect(jobs).toHaveLength(1);
    expect((await ledger.readCapacity()).holders).toEqual([]); // no slot left held
    return jobs[0];
  } finally {
    ledger.close();
  }
}

describe('stopping the local pipeline with a task running', () => {
  it('records a Ctrl-C as an interruption, and the next start runs the job again as the same attempt', async () => {
    fs.writeFileSync(path.join(dir, 'hold'), '');
    const rows = Array.from({ length: 60 }, (_, i) => `${i % 7},${(i * 13) % 11},${i % 2}`);
    fs.writeFileSync(path.join(dir, 'local', 'input', 'data.csv'), `a,b,label\n${rows.join('\n')}\n`);

    const first = start();
    await until(
      () => (fs.existsSync(path.join(dir, 'task-started')) ? true : undefined),
      15_000,
      'the task starts',
    );
    process.kill(-first.child.pid!, 'SIGINT'); // Ctrl-C: the terminal signals the whole group
    expect(await stopped(first)).toMatchObject({ code: 0 });
    // The pipeline ended it; the terminal's SIGINT never reached it (a process group of its own).
    expect(fs.readFileSync(path.join(dir, 'task-started.signal'), 'utf8')).toBe('SIGTERM');
    const interrupted = await theJob();
    expect(first.said).toContain(
      'pipeline: SIGINT: stopping; running tasks are ended, and run again at the next start',
    );
    expect(first.said).toContain(
      `pipeline: job ${interrupted.id} interrupted; it runs again at the next start, still attempt 1`,
    );
    expect(interrupted).toMatchObject({ state: 'QUEUED', attempt: 1 });
    expect(interrupted.attempts).toMatchObject([{ attempt: 1, outcome: 'interrupted' }]);
    expect(interrupted.history.map((h) => h.to)).toEqual([
      'RECEIVED',
      'QUEUED',
      'LAUNCHED',
      'RUNNING',
      'QUEUED',
    ]);
    expect(interrupted.history.at(-1)!.detail).toContain('interrupted: the local pipeline stopped (SIGINT)');

    fs.rmSync(path.join(dir, 'hold'));
    const second = start();
    await until(
      () => (second.said.some((l) => l.includes(' SUCCEEDED; results in ')) ? true : undefined),
      15_000,
      'the job succeeds',
    );
    process.kill(-second.child.pid!, 'SIGTERM');
    expect(await stopped(second)).toMatchObject({ code: 0 });
    const done = await theJob();
    expect(done).toMatchObject({ id: interrupted.id, state: 'SUCCEEDED', attempt: 1, exitCode: 0 });
    expect(done.attempts).toMatchObject([{ attempt: 1, outcome: 'succeeded' }]);
    expect(done.history.map((h) => h.to)).toEqual([
      'RECEIVED',
      'QUEUED',
      'LAUNCHED',
      'RUNNING',
      'QUEUED',
      'LAUNCHED',
      'RUNNING',
      'SUCCEEDED',
    ]);
    const log = fs.readFileSync(done.logsUri!, 'utf8');
    expect(log).toContain(
      'pipeline: attempt 1 interrupted: the local pipeline stopped (SIGINT); it runs again',
    );
  });
});
