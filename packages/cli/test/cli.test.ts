// The `pipeline` command against a running local pipeline, and `npm start`'s first run. The cases
// run cli() in this process; a few run the command file as a user does (exit codes, what it prints on
// stdout and stderr, a SIGTERM to `pipeline start`).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '@pipeline/core';
import { runLocal } from '../../../services/dispatcher/src/local/main.ts';
import type { LocalPipeline } from '../../../services/dispatcher/src/local/pipeline.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';
import {
  closedPort,
  CONFIG,
  cliRun,
  PIPELINE_BIN,
  pipelineCommand as spawned,
  SAMPLE,
  until,
} from './cli-support.ts';

let dir: string;
let pipeline: LocalPipeline;
const said: string[] = [];

/** The environment of `pipeline ARGS` against the pipeline of this file, its local folder given by LOCAL_DIR. */
const envOf = (env: Record<string, string>) => ({ PIPELINE_URL: pipeline.url, LOCAL_DIR: dir, ...env });
/** `pipeline ARGS` through cli(), in this process. */
const pipelineCommand = (args: string[], env: Record<string, string> = {}) => cliRun(args, envOf(env));
/** `pipeline ARGS` as a process: the command file, as a user runs it. */
const pipelineProcess = (args: string[], env: Record<string, string> = {}) => spawned(args, envOf(env));

beforeAll(async () => {
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-cli-')), 'local');
  pipeline = await runLocal(
    { dir, port: 0, host: '127.0.0.1', config: CONFIG, capacity: 4 },
    (line) => said.push(line),
    {
      nodeOptions: ['--import', LOOPBACK_GUARD],
    },
  );
});
afterAll(async () => {
  await pipeline?.stop();
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

describe('npm start, the first time', () => {
  it('drops the sample into the input folder and says where its results landed', async () => {
    await until(async () => (said.some((line) => line.includes('SUCCEEDED')) ? true : undefined));
    expect(said[0]).toBe(
      `pipeline: listening on ${pipeline.url} (GET /jobs lists jobs); drop files into ${path.join(dir, 'input')}`,
    );
    expect(said[1]).toContain(
      `first start: copied the sample into ${path.join(dir, 'input/financial_statements.csv')}`,
    );
    const [, id, results] = /job ([0-9a-f]{32}) SUCCEEDED; results in (.+)$/.exec(
      said.find((line) => line.includes('SUCCEEDED'))!,
    )!;
    const job = (await pipeline.ledger.get(id))!;
    expect(job.source).toMatchObject({ object: { name: 'financial_statements.csv' } });
    expect(results).toBe(job.outputUri);
    expect(results.startsWith(path.join(dir, 'output/financial_statements.csv/'))).toBe(true);
    expect(fs.existsSync(path.join(results, '_SUCCESS'))).toBe(true);
  });
});

describe('pipeline', () => {
  it('submits a file with metadata, lists jobs and shows one', async () => {
    const file = path.join(path.dirname(dir), 'my data.csv');
    fs.copyFileSync(SAMPLE, file);
    const submitted = await pipelineCommand([
      'submit',
      file,
      '--name',
      'uploads/q3 data.csv',
      '--runtime',
      'vm',
    ]);
    expect(submitted.code).toBe(0);
    expect(submitted.stdout).toMatch(
      /^submitted .*my data\.csv as gs:\/\/input\/uploads\/q3 data\.csv \(generation \d+\): job [0-9a-f]{32}\n$/,
    );
    const id = /job ([0-9a-f]{32})/.exec(submitted.stdout)![1];
    const job = await until(async () => {
      const res = await fetch(`${pipeline.url}/jobs/${id}`);
      const body = (await res.json()) as Job;
      return body.state === 'SUCCEEDED' ? body : undefined;
    });
    expect(job).toMatchObject({ target: 'vm', rule: 'vm-by-metadata' });

    const jobs = await pipelineCommand(['jobs', '--state', 'succeeded']);
    expect(jobs.code).toBe(0);
    expect(jobs.stdout.split('\n')[0]).toMatch(/^ID +STATE +TARGET +RULE +CREATED +SOURCE$/);
    expect(jobs.stdout).toContain(`${id}  SUCCEEDED  vm`);
    expect(jobs.stdout).toContain('input/uploads/q3 data.csv');

    const detail = await pipelineCommand(['job', id]);
    expect(detail.code).toBe(0);
    for (const expected of [
      'state      SUCCEEDED',
      'route      vm (rule vm-by-metadata)',
      'reason     rule "vm-by-metadata" matched',
      'exit code  0',
      `outputs    ${job.outputUri}`,
      `logs       ${job.logsUri}`,
      'history',
    ]) {
      expect(detail.stdout).toContain(expected);
    }
    // The attempts table: one row, its target (a spot VM, as the rule asks), outcome, exit code, duration.
    expect(detail.stdout).toMatch(
      /\nattempts\n {2}# +TARGET +OUTCOME +EXIT +DURATION +LAUNCHED +EXECUTION +ERROR\n/,
    );
    expect(detail.stdout).toMatch(
      /\n {2}1 +vm \(spot\) +succeeded +0 +\d+\.\d s +\S+Z +local-[0-9a-f]{12}-a1-pid\d+\n/,
    );
    // Routed with the prior (no history yet), and priced from its measured run once it ended.
    expect(detail.stdout).toMatch(
      /\nestimate {3}\$[\d.]+ on vm e2-standard-2 spot, [^\n]*\(prior: no history yet/,
    );
    expect(detail.stdout).toMatch(/\ncost {7}\$[\d.]+ \(attempt 1 vm e2-standard-2 spot: \d+ s run/);
    const json = JSON.parse((await pipelineCommand(['job', id, '--json'])).stdout);
    expect(json).toMatchObject({ id, state: 'SUCCEEDED' });

    // Two jobs by now (the sample's and this one): one per page.
    const page = JSON.parse((await pipelineCommand(['jobs', '--limit', '1', '--json'])).stdout);
    expect(page.jobs.map((j: Job) => j.id)).toEqual([id]);
    const first = await pipelineCommand(['jobs', '--limit', '1']);
    expect(first.stdout.split('\n').at(-2)).toBe(
      `more: pipeline jobs --limit 1 --page-token ${page.nextPageToken}`,
    );
    const next = await pipelineCommand(['jobs', '--limit', '1', '--page-token', page.nextPageToken]);
    expect(next.code).toBe(0);
    expect(next.stdout).toMatch(
      /^ID .*\n[0-9a-f]{32} +SUCCEEDED +cloud-run-job +csv +\S+ +input\/financial_statements.csv\n$/,
    );
  });

  it.each([
    { args: [], message: /^pipeline: no command given\nusage: pipeline <command>/ },
    { args: ['frobnicate'], message: /^pipeline: unknown command "frobnicate"\nusage: pipeline <command>/ },
    {
      args: ['jobs', '--state', 'DONE'],
      message: /^pipeline: --state must be one of SCHEDULED, RECEIVED.*\nusage: pipeline jobs /,
    },
    {
      args: ['jobs', '--limit', '0'],
      message: /^pipeline: --limit must be a whole number from 1 to 200, got "0"/,
    },
    { args: ['jobs', 'extra'], message: /^pipeline: jobs takes no arguments, got "extra"/ },
    { args: ['jobs', '--bogus'], message: /^pipeline: Unknown option '--bogus'.*\nusage: pipeline jobs / },
    { args: ['job'], message: /^pipeline: job takes one job ID, got 0\nusage: pipeline job ID/ },
    { args: ['job', 'a', 'b'], message: /^pipeline: job takes one job ID, got 2/ },
    { args: ['logs'], message: /^pipeline: logs takes one job ID, got 0\nusage: pipeline logs ID/ },
    { args: ['logs', 'x', '--attempt', 'first'], message: /^pipeline: --attempt must be a whole number/ },
    {
      args: ['logs', 'x', '--follow', '--interval', '0'],
      message: /^pipeline: --interval must be 0.05 to 60/,
    },
    {
      args: ['cancel'],
      message: /^pipeline: cancel takes at least one job ID, got 0\nusage: pipeline cancel ID\.\.\./,
    },
    {
      args: ['retry'],
      message: /^pipeline: retry takes at least one job ID, got 0\nusage: pipeline retry ID\.\.\./,
    },
    { args: ['replay'], message: /^pipeline: replay takes one message ID, got 0/ },
    {
      args: ['deadletters', '--limit', '5000'],
      message: /^pipeline: --limit must be a whole number from 1 to 1000/,
    },
    { args: ['run'], message: /^pipeline: run takes one of --task, --image or --input\nusage: pipeline run/ },
    {
      args: ['run', '--task', 't', '--image', 'i'],
      message: /^pipeline: run takes one of --task, --image or --input/,
    },
    { args: ['run', '--task', 't', '--at', 'tomorrow'], message: /^pipeline: --at takes an ISO time/ },
    { args: ['run', '--task', 't', '--at', '+soon'], message: /^pipeline: --at: "soon" is not a duration/ },
    {
      args: ['run', '--task', 't', '--at', '+1m', '--cron', '* * * * *'],
      message: /^pipeline: give --at or --cron, not both/,
    },
    {
      args: ['run', '--task', 't', '--env', 'NOEQUALS'],
      message: /^pipeline: --env takes KEY=VALUE, got "NOEQUALS"/,
    },
    { args: ['run', '--task', 't', '--cpu', 'many'], message: /^pipeline: --cpu must be a positive number/ },
    {
      args: ['run', '--input', 'input/x.csv'],
      message: /^pipeline: --input must look like gs:\/\/bucket\/object/,
    },
    {
      args: ['run', '--input', 'gs://b/o', '--cpu', '2'],
      message: /^pipeline: --cpu is for --task or --image/,
    },
    { args: ['submit'], message: /^pipeline: submit takes at least one FILE, got 0\nusage: pipeline submit/ },
    { args: ['submit', '/no/such/file.csv'], message: /^pipeline: \/no\/such\/file.csv is not a file/ },
    {
      args: ['submit', CONFIG, '--runtime', 'lambda'],
      message: /^pipeline: --runtime must be vm or cloud-run-job/,
    },
    {
      args: ['submit', CONFIG, CONFIG, '--name', 'x'],
      message: /^pipeline: --name works with one FILE only/,
    },
    {
      args: ['submit', CONFIG, '--bucket', 'Not A Bucket'],
      message: /^pipeline: "Not A Bucket" is not a bucket name/,
    },
    {
      args: ['jobs', '--url', 'ftp://example.com'],
      message: /^pipeline: --url must be an http:\/\/ or https:\/\/ URL/,
    },
  ])('pipeline $args: a clear message, the usage, and exit 2', async ({ args, message }) => {
    const run = await pipelineCommand(args);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
  });

  it.each([
    { args: [], message: /^pipeline: no command given\nusage: pipeline <command>/ },
    { args: ['jobs', '--bogus'], message: /^pipeline: Unknown option '--bogus'.*\nusage: pipeline jobs / },
    { args: ['logs'], message: /^pipeline: logs takes one job ID, got 0\nusage: pipeline logs ID/ },
  ])(
    'pipeline $args as a process: the message and the usage on stderr, exit 2',
    async ({ args, message }) => {
      const run = await pipelineProcess(args);
      expect(run.stderr).toMatch(message);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
    },
  );

  it('shows the usage for help and --help, with exit 0 (a process)', async () => {
    const all = await pipelineProcess(['help']);
    expect(all.code).toBe(0);
    for (const command of [
      'start',
      'submit',
      'jobs',
      'job',
      'logs',
      'cancel',
      'retry',
      'run',
      'deadletters',
      'replay',
    ])
      expect(all.stdout).toMatch(new RegExp(`\n {2}${command} `));
    const one = await pipelineProcess(['logs', '--help']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^usage: pipeline logs ID .*--follow/);
    expect(one.stdout).not.toContain('deadletters');
  });

  it('says the API refused with its own message, and exits 1 (a process)', async () => {
    const unknown = '0'.repeat(32);
    const run = await pipelineProcess(['job', unknown]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`pipeline: 404: no job ${unknown}\n`);
  });

  it('says when the pipeline is not running, and exits 1', async () => {
    const port = await closedPort();
    const id = '0'.repeat(32);
    for (const args of [
      ['jobs'],
      ['job', id],
      ['job', '3f2a1b'],
      ['logs', id],
      ['cancel', id],
      ['deadletters'],
    ]) {
      const run = await pipelineCommand(args, { PIPELINE_URL: `http://127.0.0.1:${port}` });
      expect(run.stderr).toBe(
        `pipeline: cannot reach the pipeline at http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; is it running? (npm start)\n`,
      );
      expect(run.code).toBe(1);
    }
  });

  it('refuses to drop files into the local folder when the pipeline is elsewhere and no bucket is named', async () => {
    const run = await pipelineCommand(['submit', CONFIG, '--url', 'https://dispatcher.example.run.app']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^pipeline: the pipeline at https:\/\/dispatcher.example.run.app reads its input bucket: name it with --bucket or \$PIPELINE_INPUT_BUCKET/,
    );
    expect(fs.existsSync(path.join(dir, 'input/pipeline.config.json'))).toBe(false);
  });
});

describe('pipeline start as a process', () => {
  it('runs the sample to SUCCEEDED on a free port, then stops cleanly on SIGTERM', async () => {
    const local = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-start-')), 'local');
    const child = spawn(process.execPath, ['--import', LOOPBACK_GUARD, PIPELINE_BIN, 'start'], {
      env: { PATH: process.env.PATH ?? '', PORT: '0', LOCAL_DIR: local, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const results = await until(async () => /SUCCEEDED; results in (.+)\n/.exec(stderr)?.[1]);
      expect(results.startsWith(path.join(local, 'output/financial_statements.csv/'))).toBe(true);
      expect(fs.existsSync(path.join(results, '_SUCCESS'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    fs.rmSync(path.dirname(local), { recursive: true, force: true });
  });
});
