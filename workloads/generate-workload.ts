// Generates workloads/week.json, the workload `pipeline simulate` replays: a week of the batch work of
// a small data team that replaced an always-on server with this pipeline. Seeded, so running this
// again writes the same file. Then prints the simulation of it.
//
//   node workloads/generate-workload.ts            # writes workloads/week.json and prints the table
//   node workloads/generate-workload.ts --check    # fails if the file differs from what it would write
//
// The kinds of work (each a routing rule), what each stands for, and why its numbers are plausible.
// Break-even points are from DEFAULT_PRICES: a VM bills its ~100 s of boot, image pull and teardown
// (at least a minute) on top of the run, Cloud Run only ~5 s.
//
//   ingest  Most of the jobs: event-driven small files. 12 sites (shops, a warehouse, partners'
//           systems) export what is new every quarter hour, as exporters are commonly scheduled: a
//           site has something new in 60% of the quarter hours from 07:00 to 22:00 on weekdays, 20%
//           at weekends, 3% at night, so ~2,500 files a week, each landing within 10 s of the quarter
//           hour. A file is 20 KiB to 25 MiB (a quarter hour of sales or scans); its run parses,
//           validates, looks up reference data and appends to the dashboard's tables: ~3 s fixed
//           (interpreter, reference tables) plus ~1.5 s per MiB, +-20%, and 2% are held up 2-4x (a
//           lock on a table, a throttled lookup): seconds to about a minute on 1 vCPU and 1 GiB. The
//           dashboard promises data within 5 minutes of the export, so a 300 s deadline. Not spot:
//           a run cut off midway leaves part of a file appended, and a preemption's second boot
//           would blow the deadline. On a standard VM each such file pays the boot and the billed
//           minute, several times its run: Cloud Run is the cheaper place up to ~24 min of run.
//           Batched: the files of a quarter hour, up to 50 and 1 GiB, gathered for 30 s into one
//           execution, which the 5-minute promise leaves room for.
//   csv     Analysts' ad-hoc CSVs through the logistic regression (the pipeline's first task): 40 a
//           weekday, 8 a weekend day; mostly 100 KiB to 1 GiB, 8% multi-GiB exports; 2 s + 45 s/GiB,
//           4% much slower (a cold read). Spot allowed: a rerun is harmless, no one waits on the
//           minute. Break-even with a spot VM ~55 s, so the larger ones belong on a VM.
//   heavy   Short but heavy: 8 vCPU for 5-40 s on a small input (a feature build); the break-even
//           with a spot VM is ~17 s, inside their range, so the estimate decides.
//   report  Customers' exports from the product: a 1-20 KiB request (a query and a date range), run
//           for 20 s to 15 min depending on the range and the query, not on the request's size, so
//           the estimator can learn only their median. 25 a weekday, 5 a weekend day, in office
//           hours; 4 vCPU, 16 GiB. Customer-facing, with a 30 min promise: not spot. The break-even
//           with a standard VM is ~50 s, inside their range: knowing only the median, the cost
//           policy sends them all to a VM, where hindsight would keep the short ones on Cloud Run.
//   nightly The day's full export, 30-50 GiB at about 02:00: 1 min + 35 s/GiB on 8 vCPU (20-30 min),
//           due within 4 h (before the morning). Restartable, so spot.
//   train   Model training: a small config and sample (1-50 MiB), 10-30 min (40%), 1-3 h (45%) or
//           4-8 h (15%) depending on the search it describes, not on the input's size; 4 a weekday,
//           1 a weekend day, 8 vCPU and 32 GiB. It checkpoints, so spot. A size threshold sends
//           these to Cloud Run, at six times a spot VM's price.
//   urgent  Someone waiting at a screen: a 25-60 s run with a 90-110 s deadline, which a VM's ~90 s
//           boot and image pull can't meet; only Cloud Run can. 4 a weekday, 1 a weekend day.
//   join    16 vCPU and 64 GiB, beyond Cloud Run's limits, and not restartable (it writes to a
//           database), so never spot; 2 a weekday.
//   infer   The search team's embeddings on one NVIDIA L4, with 4 vCPU and 16 GiB (the least Cloud Run
//           gives an L4, and a g2-standard-4's shape). A customer's uploaded document set, 2 MiB to
//           1 GiB of extracted text, 8 a weekday and 2 a weekend day: ~1 min to start and load the
//           model, then ~40 min per GiB (a base-size embedding model does ~100k tokens/s on an L4,
//           and a GiB of text is ~250M tokens), +-15%: 1 to 50 min. Due within the hour, when the
//           customer is told the set is searchable. On 40% of weekday evenings one customer's whole
//           corpus, 2-5 GiB, is re-embedded (a new model or chunking): 1.4-3.4 h, beyond Cloud Run's
//           1 h for a task with a GPU, so only a g2 VM can run it; due by morning (8 h). Not spot: a
//           preemption late in a 40-minute upload, then a second boot and model load, would miss the
//           hour. Cloud Run's L4 ($1.05/h with its vCPU and memory) against a standard
//           g2-standard-4 ($0.73/h, and its billed boot): even at ~3 min of run, so sets under ~57
//           MiB belong on Cloud Run and the rest on a VM, and the estimate decides. These tasks
//           come from a second seeded stream, so adding them left every other task as it was.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { DEFAULT_PRICES } from '../packages/core/src/index.ts';
import {
  formatBatching,
  formatSimulation,
  parseWorkload,
  simulateAll,
  type WorkloadTask,
} from '../packages/core/src/simulation.ts';
import { normal, random } from './seeded-random.ts';

const SEED = 8; // the number
const DAYS = 7;
const SITES = 12; // that export to the ingest
const DAY = 86_400;
const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const OUT = fileURLToPath(new URL('./week.json', import.meta.url));

/** The distributions the kinds of work are drawn from, each taking its numbers from `next`. */
function draws(next: () => number) {
  const uniform = (low: number, high: number) => low + (high - low) * next();
  return {
    uniform,
    logUniform: (low: number, high: number) => Math.exp(uniform(Math.log(low), Math.log(high))),
    /** A lognormal factor around 1: most runs within +-15%, like the same work on a shared machine. */
    jitter: (sigma = 0.15) => Math.exp(sigma * normal(next)),
    /** Office hours mostly, some at any time. */
    timeOfDay: () => (next() < 0.75 ? uniform(8, 19) : uniform(0, 24)) * 3600,
  };
}

const next = random(SEED);
const { uniform, logUniform, jitter, timeOfDay } = draws(next);

type Task = Pick<WorkloadTask, 'id' | 'rule' | 'arrival' | 'inputBytes' | 'trueSeconds' | 'deadlineSeconds'>;

const tasks: Omit<Task, 'id'>[] = [];
const add = (
  rule: string,
  arrival: number,
  inputBytes: number,
  trueSeconds: number,
  deadlineSeconds?: number,
) =>
  tasks.push({
    rule,
    arrival: round(arrival),
    inputBytes: Math.round(inputBytes),
    trueSeconds: round(trueSeconds),
    ...(deadlineSeconds === undefined ? {} : { deadlineSeconds: Math.round(deadlineSeconds) }),
  });

for (let day = 0; day < DAYS; day += 1) {
  const start = day * DAY;
  const weekend = day >= 5;
  for (let tick = 0; tick < DAY; tick += 15 * 60) {
    const open = tick >= 7 * 3600 && tick < 22 * 3600;
    const chance = open ? (weekend ? 0.2 : 0.6) : 0.03;
    for (let site = 0; site < SITES; site += 1) {
      if (next() >= chance) continue;
      const size = logUniform(20 * KiB, 25 * MiB);
      const slow = next() < 0.02 ? uniform(2, 4) : 1;
      const seconds = (3 + 1.5 * (size / MiB)) * jitter(0.2) * slow;
      add('ingest', start + tick + uniform(0, 10), size, seconds, 300);
    }
  }
  for (let i = 0; i < (weekend ? 8 : 40); i += 1) {
    const size = next() < 0.92 ? logUniform(100 * KiB, 1 * GiB) : logUniform(1 * GiB, 4 * GiB);
    const cold = next() < 0.04 ? uniform(4, 12) : 1;
    add('csv', start + timeOfDay(), size, (2 + 45 * (size / GiB)) * jitter() * cold);
  }
  for (let i = 0; i < (weekend ? 3 : 12); i += 1) {
    add('heavy', start + timeOfDay(), logUniform(5 * MiB, 50 * MiB), logUniform(5, 40));
  }
  for (let i = 0; i < (weekend ? 5 : 25); i += 1) {
    add('report', start + uniform(8, 19) * 3600, logUniform(1 * KiB, 20 * KiB), logUniform(20, 900), 1800);
  }
  const nightly = uniform(30, 50) * GiB;
  add(
    'nightly',
    start + 2 * 3600 + uniform(-600, 600),
    nightly,
    (60 + 35 * (nightly / GiB)) * jitter(0.08),
    4 * 3600,
  );
  for (let i = 0; i < (weekend ? 1 : 4); i += 1) {
    const kind = next();
    const minutes = kind < 0.4 ? uniform(10, 30) : kind < 0.85 ? uniform(60, 180) : uniform(240, 480);
    add('train', start + timeOfDay(), logUniform(1 * MiB, 50 * MiB), minutes * 60);
  }
  for (let i = 0; i < (weekend ? 1 : 4); i += 1) {
    add(
      'urgent',
      start + uniform(9, 18) * 3600,
      logUniform(1 * MiB, 20 * MiB),
      uniform(25, 60),
      uniform(90, 110),
    );
  }
  for (let i = 0; i < (weekend ? 0 : 2); i += 1) {
    const size = uniform(5, 15) * GiB;
    add('join', start + uniform(6, 20) * 3600, size, (300 + 90 * (size / GiB)) * jitter(0.1));
  }
}

// The GPU team came later: its own stream, so the tasks above stay as they were.
const nextGpu = random(SEED + 1);
const gpu = draws(nextGpu);
/** Start-up and model load, then ~40 min per GiB of text. */
const embedding = (size: number) => (60 + 2400 * (size / GiB)) * gpu.jitter();
for (let day = 0; day < DAYS; day += 1) {
  const start = day * DAY;
  const weekend = day >= 5;
  for (let i = 0; i < (weekend ? 2 : 8); i += 1) {
    const size = gpu.logUniform(2 * MiB, 1 * GiB);
    add('infer', start + gpu.timeOfDay(), size, embedding(size), 3600);
  }
  if (!weekend && nextGpu() < 0.4) {
    const size = gpu.uniform(2, 5) * GiB;
    add('infer', start + gpu.uniform(20, 23) * 3600, size, embedding(size), 8 * 3600);
  }
}

tasks.sort((a, b) => a.arrival - b.arrival);
const counters = new Map<string, number>();
const numbered: Task[] = tasks.map((task) => {
  const n = (counters.get(task.rule) ?? 0) + 1;
  counters.set(task.rule, n);
  return { id: `${task.rule}-${String(n).padStart(4, '0')}`, ...task };
});

const workload = {
  description:
    `A week of batch work, generated by workloads/generate-workload.ts with seed ${SEED}: ` +
    "event-driven small files for a dashboard (not spot, 5 min deadline), analysts' CSVs, short heavy " +
    "jobs, customers' exports whose length does not follow their input (not spot), a nightly large " +
    'file, training runs on spot, urgent jobs with deadlines only Cloud Run meets, joins beyond ' +
    "Cloud Run, and embeddings on an NVIDIA L4 (not spot, due within the hour), some beyond Cloud Run's " +
    '1 h GPU limit.',
  rules: {
    ingest: {
      cpu: 1,
      memory: '1GiB',
      spot: false,
      prior: { base: '10s', perGiB: '25m' },
      batch: { maxFiles: 50, maxWait: '30s', maxBytes: '1GiB' },
    },
    csv: { cpu: 1, memory: '2GiB', spot: true, prior: { base: '10s', perGiB: '60s' } },
    heavy: { cpu: 8, memory: '16GiB', spot: true },
    report: { cpu: 4, memory: '16GiB', spot: false, prior: { base: '2m', perGiB: '0s' } },
    nightly: { cpu: 8, memory: '32GiB', spot: true, prior: { base: '5m', perGiB: '60s' } },
    train: { cpu: 8, memory: '32GiB', spot: true, prior: { base: '1h', perGiB: '0s' } },
    urgent: { cpu: 2, memory: '4GiB', spot: true, prior: { base: '45s', perGiB: '60s' } },
    join: { cpu: 16, memory: '64GiB', spot: false, prior: { base: '20m', perGiB: '90s' } },
    infer: {
      cpu: 4,
      memory: '16GiB',
      accelerator: { type: 'nvidia-l4', count: 1 },
      spot: false,
      prior: { base: '1m', perGiB: '40m' },
    },
  },
  tasks: numbered,
};

// One task a line (prettier keeps an object on one line when it was written so and fits).
const text = JSON.stringify(workload, null, 2).replace(
  /\{\n\s+"id"[^}]+\}/g,
  (task) =>
    `{ ${task
      .slice(1, -1)
      .trim()
      .split(/,\n\s+/)
      .join(', ')} }`,
);
const options = { ...(await prettier.resolveConfig(OUT)), filepath: OUT };
const formatted = await prettier.format(text, options);

if (process.argv.includes('--check')) {
  if (readFileSync(OUT, 'utf8') !== formatted) {
    console.error(`${OUT} differs from what the generator writes; run it again`);
    process.exit(1);
  }
} else {
  writeFileSync(OUT, formatted);
  console.log(`wrote ${numbered.length} tasks to ${OUT}`);
}
const shipped = parseWorkload(JSON.parse(formatted));
const batched = simulateAll(shipped, DEFAULT_PRICES);
console.log(formatSimulation(batched));
console.log(`\n${formatBatching(batched, simulateAll(shipped, DEFAULT_PRICES, { batching: false }))}`);

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
