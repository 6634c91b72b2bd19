// The `pipeline` command against a running local pipeline, and `npm start`'s first run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '@pipeline/core';
import { runLocal } from '../src/local/main.ts';
import type { LocalPipeline } from '../src/local/pipeline.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const PIPELINE_BIN = path.resolve(import.meta.dirname, '../bin/pipeline.js');
const CONFIG = path.resolve(import.meta.dirname, '../../../pipeline.config.json');

let dir: string;
let pipeline: LocalPipeline;
const said: string[] = [];

function pipelineCommand(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', LOOPBACK_GUARD, PIPELINE_BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', PIPELINE_URL: pipeline.url, LOCAL_DIR: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function until<T>(probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-cli-')), 'local');
  pipeline = await runLocal({ dir, port: 0, host: '127.0.0.1', config: CONFIG }, (line) => said.push(line), {
    nodeOptions: ['--import', LOOPBACK_GUARD],
  });
});
afterAll(async () => {
  await pipeline?.stop();
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

describe('npm start, the first time', () => {
  it('drops the sample into the input folder and says where its results landed', async () => {
    const results = path.join(dir, 'output/financial_statements.csv');
    await until(async () => (said.some((line) => line.includes('SUCCEEDED')) ? true : undefined));
    expect(said[0]).toBe(
      `pipeline: listening on ${pipeline.url} (GET /jobs lists jobs); drop files into ${path.join(dir, 'input')}`,
    );
    expect(said[1]).toContain(
      `first start: copied the sample into ${path.join(dir, 'input/financial_statements.csv')}`,
    );
    expect(said.find((line) => line.includes('SUCCEEDED'))).toMatch(
      new RegExp(`job [0-9a-f]{32} SUCCEEDED; results in ${results}/$`),
    );
    expect(fs.existsSync(path.join(results, '_SUCCESS'))).toBe(true);
  });
});

describe('pipeline', () => {
  it('submits a file with metadata, lists jobs and shows one', async () => {
    const file = path.join(path.dirname(dir), 'my data.csv');
    fs.copyFileSync(
      path.resolve(import.meta.dirname, '../../../jobs/worker/data/financial_statements.csv'),
      file,
    );
    const submitted = await pipelineCommand([
      'submit',
      file,
      '--name',
      'uploads/q3 data.csv',
      '--runtime',
      'vm',
    ]);
    expect(submitted.code).toBe(0);
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
      'exit code  0',
      `outputs    ${path.join(dir, 'output/uploads/q3 data.csv')}/`,
      'history',
    ]) {
      expect(detail.stdout).toContain(expected);
    }
    const json = JSON.parse((await pipelineCommand(['job', id, '--json'])).stdout);
    expect(json.id).toBe(id);
  });

  it.each([
    { args: [], message: /^usage: pipeline/ },
    { args: ['frobnicate'], message: /^pipeline: unknown command "frobnicate"/ },
    { args: ['jobs', '--state', 'DONE'], message: /^pipeline: --state must be one of SCHEDULED, RECEIVED/ },
    { args: ['job'], message: /^pipeline: expected 1 argument\(s\), got 0/ },
    { args: ['job', 'nope'], message: /^pipeline: 404: no job nope/ },
    { args: ['submit'], message: /^pipeline: submit needs at least one FILE/ },
    { args: ['submit', '/no/such/file.csv'], message: /^pipeline: \/no\/such\/file.csv is not a file/ },
    {
      args: ['submit', CONFIG, '--runtime', 'lambda'],
      message: /^pipeline: --runtime must be vm or cloud-run-job/,
    },
    { args: ['jobs', '--bogus'], message: /^pipeline: Unknown option '--bogus'/ },
  ])('pipeline $args: a clear message and exit 2', async ({ args, message }) => {
    const run = await pipelineCommand(args);
    expect(run.code).toBe(2);
    expect(args.length === 0 ? run.stdout : run.stderr).toMatch(message);
  });

  it('says when the pipeline is not running', async () => {
    const run = await pipelineCommand(['jobs'], { PIPELINE_URL: 'http://127.0.0.1:9' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^pipeline: cannot reach the pipeline at http:\/\/127.0.0.1:9 \(is it running\? npm start\)/,
    );
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
      await until(async () => (stderr.includes('SUCCEEDED; results in') ? true : undefined));
      expect(fs.existsSync(path.join(local, 'output/financial_statements.csv/_SUCCESS'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    fs.rmSync(path.dirname(local), { recursive: true, force: true });
  });
});
