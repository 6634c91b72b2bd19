// `pipeline plan` against a real local pipeline with a cost rule, `pipeline simulate` on the shipped
// workload, and estimates and costs on real jobs: stored when routed and when ended, learned from
// the ledger's history, shown by `pipeline job`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJob, parseRoutingConfig, transition, type Job, type Placement } from '@pipeline/core';
import { startLocalPipeline, type LocalPipeline } from '../../../services/dispatcher/src/local/pipeline.ts';
import { createLogger } from '../../../services/dispatcher/src/logger.ts';
import { DurationEstimates } from '../../../services/dispatcher/src/estimates.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';
import { cliRun, jobWhen, SAMPLE } from './cli-support.ts';

const WORKLOAD = path.resolve(import.meta.dirname, '../../../workloads/week.json');

const ROUTING = parseRoutingConfig({
  rules: [
    {
      name: 'train',
      match: { path: 'train/**' },
      mode: 'cost',
      target: ['cloud-run-job', 'vm'],
      prior: { base: '2h', perGiB: '1m' },
      job: { task: 'logreg', cpu: 4, memory: '16GiB', spot: true },
    },
    { name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } },
  ],
});

let root: string;
let pipeline: LocalPipeline;
let url: string;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-plan-'));
  pipeline = await startLocalPipeline({
    root,
    routing: ROUTING,
    port: 0,
    logger: createLogger(undefined, 'silent'),
    nodeOptions: ['--import', LOOPBACK_GUARD],
    scanIntervalMs: 50,
    quietMs: 150,
  });
  url = pipeline.url;
});
afterAll(async () => {
  await pipeline.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('pipeline plan', () => {
  it('prices a long training file on every place and picks the cheapest, with the numbers', async () => {
    const file = path.join(root, 'model.csv');
    fs.writeFileSync(file, 'a,label\n1,0\n');
    // A local file is planned under its own name; put it under train/ with a gs:// object instead.
    fs.mkdirSync(path.join(root, 'input', 'train'), { recursive: true });
    fs.copyFileSync(file, path.join(root, 'input', 'train', 'model.csv'));
    const run = await cliRun(['plan', 'gs://input/train/model.csv', '--url', url]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const text = run.stdout;
    expect(text).toMatch(/^gs:\/\/input\/train\/model\.csv\n {2}route {3}vm \(rule train\)\n/);
    expect(text).toMatch(
      /\n {2}reason {2}rule "train" matched \(path matches "train\/\*\*"\), by cost: vm e2-standard-4 spot: est\. 2h[^,]*, \$[\d.]+; vm e2-standard-4 standard: est\. [^;]+; cloud-run-job 4 vCPU, 16 GiB: est\. [^;]+;/,
    );
    // The prior is a distribution too: its line the median, its mean and p90 above.
    expect(text).toMatch(
      /\n {2}run {5}median 2h, mean 2h \d+m \d+s, p90 3h \d+m \d+s \(prior: no history yet/,
    );
    expect(text).toMatch(/\n {2}\* vm e2-standard-4 spot {2,}2h/); // the chosen place is marked
    expect(text).toMatch(/\n {4}cloud-run-job {2,}2h/);
    expect(text).toMatch(/\n {4}vm e2-standard-4 standard {2,}2h/);
  });

  it('plans local files and answers JSON with every option', async () => {
    const run = await cliRun(['plan', SAMPLE, '--url', url, '--json']);
    expect(run.code).toBe(0);
    const [plan] = JSON.parse(run.stdout) as { input: string; placement: Placement }[];
    expect(plan.input).toBe(SAMPLE);
    expect(plan.placement).toMatchObject({ kind: 'launch', rule: 'csv', target: 'cloud-run-job' });
    if (plan.placement.kind !== 'launch') throw new Error('not launched');
    expect(plan.placement.estimate).toMatchObject({ target: 'cloud-run-job' });
    expect(plan.placement.estimate!.usd).toBeGreaterThan(0);
  });

  it('fails clearly for what it cannot plan', async () => {
    const missing = await cliRun(['plan', 'gs://input/nope.csv', '--url', url]);
    expect([missing.code, missing.stderr]).toEqual([
      1,
      'pipeline: 404: no object nope.csv in bucket input\n',
    ]);
    const nofile = await cliRun(['plan', path.join(root, 'absent.csv'), '--url', url]);
    expect(nofile.code).toBe(2);
    expect(nofile.stderr).toMatch(/^pipeline: cannot plan .*absent\.csv: ENOENT.*\nusage: pipeline plan /);
    const none = await cliRun(['plan', '--url', url]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^pipeline: plan takes at least one FILE or gs:\/\/BUCKET\/OBJECT, got 0\n/);
  });
});

describe('pipeline simulate', () => {
  it('prints every policy on a workload, or JSON', async () => {
    // The shipped week's first 300 tasks, every rule kept: the command's table and JSON, not the
    // week's figures (core's simulate.test.ts holds those), and quick even in-process.
    const week = JSON.parse(fs.readFileSync(WORKLOAD, 'utf8')) as { tasks: unknown[] };
    const small = path.join(root, 'small-week.json');
    fs.writeFileSync(small, JSON.stringify({ ...week, tasks: week.tasks.slice(0, 300) }));
    const run = await cliRun(['simulate', small]);
    expect(run.code).toBe(0);
    const [table, batching] = run.stdout.trim().split('\n\n');
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^policy +cost \(USD\) +vs oracle +makespan +deadline misses/);
    const policies = ['always-cloud-run', 'always-vm', 'size-threshold', 'cost', 'oracle'];
    // The last line: the cost policy's share of the oracle's saving.
    expect(lines.pop()).toMatch(
      /^cost saves \d+\.\d% of what the oracle saves over the cheapest fixed policy/,
    );
    expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual(policies);
    // The week's ingest rule batches, so the same tasks each alone are shown beside it.
    const compared = batching.split('\n');
    expect(compared[0]).toBe("without batching -> with the rules' batching:");
    expect(compared[1]).toMatch(/^policy +cloud-run executions +cost \(USD\) +deadline misses +mean wait/);
    expect(compared.slice(2).map((line) => line.split(/\s+/)[0])).toEqual(policies);
    const [, before, after] = /^cost +(\d+) -> (\d+) /.exec(compared[5])!;
    expect(Number(after)).toBeLessThan(Number(before));
    const json = await cliRun(['simulate', small, '--json', '--threshold', '1GiB']);
    const results = JSON.parse(json.stdout) as { policy: string; usd: number; cloudRunExecutions: number }[];
    expect(results.map((r) => r.policy)).toContain('cost');
    expect(results.every((r) => r.usd > 0)).toBe(true);
    expect(results.find((r) => r.policy === 'always-vm')!.cloudRunExecutions).toBe(0);
  });

  it('refuses a missing workload, a bad threshold and no argument', async () => {
    const missing = await cliRun(['simulate', '/nonexistent/week.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^pipeline: cannot read workload \/nonexistent\/week\.json: ENOENT/);
    expect((await cliRun(['simulate', WORKLOAD, '--threshold', 'big'])).code).toBe(2);
    expect((await cliRun(['simulate'])).code).toBe(2);
  });

  it('takes what the Cloud Run job is defined with, as the dispatcher reads it, and refuses what it would', async () => {
    // A tiny workload of one 2 h CPU run: a Cloud Run job whose 1 h timeout is its own kills it there
    // (always-cloud-run falls back to a VM, knowing it); without one, Cloud Run allows 168 h.
    const workload = path.join(root, 'one-long.json');
    fs.writeFileSync(
      workload,
      JSON.stringify({
        rules: { long: { cpu: 2, memory: '4GiB', spot: false, prior: { base: '2h' } } },
        tasks: [{ id: 'a', rule: 'long', arrival: 0, inputBytes: 1, trueSeconds: 7200 }],
      }),
    );
    const fallbacks = async (args: string[]) => {
      const run = await cliRun(['simulate', workload, '--json', ...args]);
      expect(run.stderr).toBe('');
      const results = JSON.parse(run.stdout) as { policy: string; fallbacks: number }[];
      return results.find((r) => r.policy === 'always-cloud-run')!.fallbacks;
    };
    expect(await fallbacks([])).toBe(0);
    expect(await fallbacks(['--cloud-run-job', 'cpu=2,memory=4Gi,timeout=3600s'])).toBe(1);
    // 4 vCPU is more than the job has: it can't run there either.
    const bigger = path.join(root, 'one-big.json');
    fs.writeFileSync(
      bigger,
      JSON.stringify({
        rules: { big: { cpu: 4, memory: '8GiB', spot: false } },
        tasks: [{ id: 'b', rule: 'big', arrival: 0, inputBytes: 1, trueSeconds: 60 }],
      }),
    );
    const run = await cliRun(['simulate', bigger, '--json', '--cloud-run-job', 'cpu=2,memory=4Gi']);
    const results = JSON.parse(run.stdout) as { policy: string; fallbacks: number }[];
    expect(results.find((r) => r.policy === 'always-cloud-run')!.fallbacks).toBe(1);

    for (const [value, error] of [
      ['cpu=3,memory=4Gi', /^pipeline: --cloud-run-job cpu: "3" is not 1, 2, 4, 6 or 8/],
      ['cpu=2', /--cloud-run-job memory: is required with --cloud-run-job cpu/],
      ['cpu=2,memory=4Gi,timeout=200h', /--cloud-run-job timeout: 200h is beyond Cloud Run's 7d for a task/],
      ['cpu=2,memory=4Gi,disk=10Gi', /--cloud-run-job takes cpu=N,memory=SIZE.*got "disk=10Gi"/],
      ['timeout=1h', /--cloud-run-job timeout: needs --cloud-run-job cpu and --cloud-run-job memory/],
      [
        'cpu=1,memory=8Gi',
        /--cloud-run-job memory: 8Gi is not from 512Mi to 4Gi, what Cloud Run allows with 1 vCPU/,
      ],
      ['cpu=2,memory=8Gi,gpu=nvidia-l4', /--cloud-run-job gpu: nvidia-l4 needs at least 4 vCPU and 16Gi/],
    ] as const) {
      const refused = await cliRun(['simulate', workload, '--cloud-run-job', value]);
      expect(refused.code, value).toBe(2);
      expect(refused.stderr, value).toMatch(error);
    }
  });
});

describe('estimates and costs on jobs', () => {
  it('stores the estimate when routed and the cost when ended; pipeline job shows both', async () => {
    fs.copyFileSync(SAMPLE, path.join(root, 'input', 'sample.csv'));
    const id = await (async () => {
      for (;;) {
        const { jobs } = await pipeline.ledger.list({ limit: 50 });
        const job = jobs.find((j) => j.source.kind === 'object' && j.source.object.name === 'sample.csv');
        if (job !== undefined) return job.id;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const done = await jobWhen(pipeline, id, (job) => job.state === 'SUCCEEDED');
    expect(done.estimate).toMatchObject({ target: 'cloud-run-job' });
    expect(done.cost?.usd).toBeGreaterThan(0);
    expect(done.cost?.detail[0]).toMatch(/^attempt 1 cloud-run-job: \d+ s run, \$/);
    const shown = await cliRun(['job', id, '--url', url]);
    expect(shown.stdout).toMatch(/\nestimate {3}\$[\d.]+ on cloud-run-job, /);
    expect(shown.stdout).toMatch(/\ncost {7}\$[\d.]+ \(attempt 1 cloud-run-job: /);
  });

  it("learns a rule's durations from the ledger's SUCCEEDED jobs", async () => {
    // Twelve finished training runs of about 40 minutes, as the ledger would hold them.
    for (let i = 0; i < 12; i++) {
      const object = {
        bucket: 'input',
        name: `train/run-${i}.csv`,
        generation: '1',
        size: 1e6 * (i + 1),
        metadata: {},
      };
      const start = Date.UTC(2026, 10, 20, i);
      const at = (s: number) => new Date(start + s * 1000).toISOString();
      const id = (0x7000 + i).toString(16).padStart(32, '0');
      const { job } = await pipeline.ledger.claim(newJob(id, { kind: 'object', object }, at(0)), 1000);
      const queued = transition(job, 'QUEUED', at(1));
      await pipeline.ledger.update(queued);
      const launched: Job = transition(queued, 'LAUNCHED', at(1), {
        rule: 'train',
        target: 'vm',
        attempts: [
          {
            attempt: 1,
            target: 'vm',
            launchedAt: at(1),
            startedAt: at(60),
            finishedAt: at(60 + 2400 + i),
            outcome: 'succeeded',
          },
        ],
      });
      await pipeline.ledger.update(launched);
      await pipeline.ledger.update(transition(launched, 'SUCCEEDED', at(3000)));
    }
    // The dispatcher reloads them at most once a minute; a fresh reader sees them now.
    const fresh = new DurationEstimates({
      ledger: pipeline.ledger,
      routing: ROUTING,
      logger: createLogger(undefined, 'silent'),
    });
    await fresh.refresh();
    const estimate = fresh.context.estimate!(ROUTING.rules[0], 5e6);
    expect(estimate.basis).toMatch(/^history: 12 runs/);
    expect(estimate.seconds).toBeGreaterThan(2300);
    expect(estimate.seconds).toBeLessThan(2500);
  });
});
