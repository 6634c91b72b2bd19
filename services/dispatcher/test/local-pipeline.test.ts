// The local pipeline end to end: real folders, the real watcher, the sqlite ledger, and the worker
// run as child processes through both launch targets.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoutingConfig, type Job } from '@pipeline/core';
import { startLocalPipeline, type LocalPipeline } from '../src/local/pipeline.ts';
import { putObject } from '../src/local/put-object.ts';
import { createLogger } from '../src/logger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../../../jobs/worker/data/financial_statements.csv');

const ROUTING = parseRoutingConfig({
  rules: [
    { name: 'vm-by-metadata', match: { runtime: 'vm' }, target: 'vm', job: { task: 'logreg' } },
    {
      name: 'big',
      match: { path: '**.csv', minSize: '200KiB' },
      target: 'vm',
      job: { task: 'logreg', env: { EXCLUDE_COLUMNS: 'fiscal_year' } },
    },
    { name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } },
    { name: 'not-csv', match: { path: '**' }, target: 'ignore' },
  ],
});

let dir: string;
let pipeline: LocalPipeline;
const ended: Job[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-pipeline-'));
  pipeline = await startLocalPipeline({
    root: dir,
    routing: ROUTING,
    port: 0,
    logger: createLogger(undefined, 'silent'),
    nodeOptions: ['--import', LOOPBACK_GUARD],
    scanIntervalMs: 50,
    quietMs: 150,
    onJobEnded: (job) => ended.push(job),
  });
});

afterAll(async () => {
  await pipeline?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Polls until the job of `name` (in the input bucket) is final, or fails the test after `ms`. */
async function finalJob(name: string, ms = 10_000): Promise<Job> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const { jobs } = await pipeline.ledger.list({ limit: 200 });
    const job = jobs.find((j) => j.source.kind === 'object' && j.source.object.name === name);
    if (job !== undefined && ['SUCCEEDED', 'FAILED', 'IGNORED', 'CANCELLED'].includes(job.state)) return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no final job for ${JSON.stringify(name)} within ${ms} ms`);
}

const input = (name: string) => path.join(dir, 'input', ...name.split('/'));
/** A file of `job`'s own outputs (its prefix, outputPrefix in core). */
const output = (job: Job, file: string) => path.join(job.outputUri!, file);

function smallCsv(rows = 60): string {
  const lines = ['x1,x2,label'];
  for (let i = 0; i < rows; i++)
    lines.push(`${(i % 9) - 4},${(i * 7) % 5},${(i % 9) - 4 + ((i * 7) % 5) / 2 > 0 ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}

describe('the local pipeline', () => {
  it('takes the sample dropped into the input folder to _SUCCESS and a SUCCEEDED job within 10 s', async () => {
    const started = Date.now();
    fs.copyFileSync(SAMPLE, input('financial_statements.csv'));
    const job = await finalJob('financial_statements.csv');
    expect(job).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, target: 'vm', rule: 'big' });
    expect(fs.existsSync(output(job, '_SUCCESS'))).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    const log = fs.readFileSync(output(job, 'logs/attempt-1.log'), 'utf8');
    expect(log).toContain('agent running its task');
    expect(job.history.map((h) => h.to)).toEqual(['RECEIVED', 'QUEUED', 'LAUNCHED', 'RUNNING', 'SUCCEEDED']);
    // The callback follows the ledger's write (and the queue's drain that the freed slot starts).
    for (let i = 0; i < 100 && !ended.some((j) => j.id === job.id); i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ended.map((j) => j.id)).toContain(job.id);
  });

  it('runs a small CSV on the cloud-run-job target', async () => {
    putObject(pipeline.blobs, 'small.csv', writeTemp(smallCsv()), {});
    const job = await finalJob('small.csv');
    expect(job).toMatchObject({ state: 'SUCCEEDED', target: 'cloud-run-job', rule: 'csv' });
  });

  it('routes a file to the VM agent path by its metadata', async () => {
    putObject(pipeline.blobs, 'meta/vm.csv', writeTemp(smallCsv()), { 'pipeline-runtime': 'vm' });
    const job = await finalJob('meta/vm.csv');
    expect(job).toMatchObject({ state: 'SUCCEEDED', target: 'vm', rule: 'vm-by-metadata' });
    expect(fs.readFileSync(output(job, 'logs/attempt-1.log'), 'utf8')).toContain('agent running its task');
  });

  it('ends a file the rules ignore as IGNORED, with the rule named', async () => {
    fs.writeFileSync(input('notes.txt'), 'not data');
    const job = await finalJob('notes.txt');
    expect(job).toMatchObject({ state: 'IGNORED', rule: 'not-csv' });
    expect(job.reason).toContain('not-csv');
  });

  it('ends a file that makes the worker fail as FAILED, with its exit code and the tail of stderr', async () => {
    fs.writeFileSync(input('one-class.csv'), 'a,label\n1,x\n2,x\n');
    const job = await finalJob('one-class.csv');
    expect(job).toMatchObject({ state: 'FAILED', exitCode: 4 });
    expect(job.error).toContain('pipeline-worker: the target "label" has one class only ("x")');
    expect(fs.existsSync(output(job, '_SUCCESS'))).toBe(false);
    const health = await fetch(`${pipeline.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('makes a new job when the same path is written again (a new generation)', async () => {
    putObject(pipeline.blobs, 'again.csv', writeTemp(smallCsv(40)), {});
    const first = await finalJob('again.csv');
    await new Promise((resolve) => setTimeout(resolve, 20));
    putObject(pipeline.blobs, 'again.csv', writeTemp(smallCsv(50)), {});
    const deadline = Date.now() + 10_000;
    let jobs: Job[] = [];
    while (Date.now() < deadline) {
      jobs = (await pipeline.ledger.list({ limit: 200 })).jobs.filter(
        (j) => j.source.kind === 'object' && j.source.object.name === 'again.csv',
      );
      if (jobs.length === 2 && jobs.every((j) => j.state === 'SUCCEEDED')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(jobs.map((j) => j.state)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(2);
    expect(jobs.map((j) => j.id)).toContain(first.id);
  });

  it('waits until a file being written is complete before it starts a job', async () => {
    const file = input('slow.csv');
    const text = smallCsv(200);
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < 5; i++) {
      fs.writeSync(fd, text.slice((i * text.length) / 5, ((i + 1) * text.length) / 5));
      await new Promise((resolve) => setTimeout(resolve, 100)); // slower than one scan, faster than quiet
    }
    fs.closeSync(fd);
    const job = await finalJob('slow.csv');
    expect(job.state).toBe('SUCCEEDED');
    expect(job.source.kind === 'object' && job.source.object.size).toBe(Buffer.byteLength(text));
    const all = (await pipeline.ledger.list({ limit: 200 })).jobs.filter(
      (j) => j.source.kind === 'object' && j.source.object.name === 'slow.csv',
    );
    expect(all).toHaveLength(1);
  });

  it('carries hostile object names through unchanged, as data, to the worker and back', async () => {
    const names = [
      'with spaces and "double" and \'single\' quotes.csv',
      '$(touch PWNED)`touch PWNED2`;rm -rf nothing.csv',
      'line\nbreak.csv',
      'Zürich/東京/données.csv',
      `${Array.from({ length: 6 }, (_, i) => `${i}${'n'.repeat(199)}`).join('/')}.csv`,
    ];
    expect(Buffer.byteLength(names[4])).toBeGreaterThan(1000);
    for (const name of names) putObject(pipeline.blobs, name, writeTemp(smallCsv()), {});
    for (const name of names) {
      const job = await finalJob(name);
      expect(job.state, name).toBe('SUCCEEDED');
      expect(job.source.kind === 'object' && job.source.object.name).toBe(name);
      expect(JSON.parse(fs.readFileSync(output(job, '_SUCCESS'), 'utf8')).input).toBe(input(name));
    }
    expect(fs.existsSync(path.join(process.cwd(), 'PWNED'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'PWNED'))).toBe(false);
  });
});

function writeTemp(text: string): string {
  const file = path.join(dir, `upload-${Math.random().toString(16).slice(2)}.csv`); // beside, not in, the input bucket
  fs.writeFileSync(file, text);
  return file;
}
