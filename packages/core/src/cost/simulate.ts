// Replays a workload under a routing policy and adds up what it would have cost, how long it took and
// which deadlines it missed. Tasks run in parallel from their arrival (no queue: both platforms scale
// out). Spot runs count their expected preemption rework, not a random draw, so every policy is judged
// on the same numbers and the result doesn't depend on a seed.
//
// Policies: always-cloud-run and always-vm (a VM spot when the rule allows it); size-threshold (a VM
// from 2 GiB of input, as pipeline.config.json routes CSVs today); cost (the router's cost mode,
// learning durations online: only from tasks that finished before each arrival); oracle (knows every
// true duration and picks the cheapest place that meets the deadline). A fixed policy that sends a
// task where it can't run (beyond Cloud Run's limits) falls back to a VM, as the router does; the
// fallback is counted.

import type { Target } from '../template.ts';
import { formatDuration } from '../format.ts';
import { estimateDuration, fitDurations, type DurationModel, type DurationSample } from './estimator.ts';
import { choosePlacement, placementOptions, type PlacementOption } from './options.ts';
import { runCost, type PriceTable } from './prices.ts';
import type { Workload, WorkloadTask } from './workload.ts';

export type PolicyName = 'always-cloud-run' | 'always-vm' | 'size-threshold' | 'cost' | 'oracle';
export const POLICIES: readonly PolicyName[] = [
  'always-cloud-run',
  'always-vm',
  'size-threshold',
  'cost',
  'oracle',
];

export interface SimulationOptions {
  /** size-threshold: inputs from this size run on a VM (2 GiB). */
  sizeThresholdBytes?: number;
}

export interface TaskOutcome {
  id: string;
  rule: string;
  target: Target;
  machineType?: string;
  spot?: boolean;
  /** What the policy expected the run to take (cost policy only). */
  estimatedSeconds?: number;
  waitedSeconds: number;
  finishSeconds: number;
  usd: number;
  missedDeadline: boolean;
  /** A fixed policy's target couldn't run it; it went to a VM. */
  fellBack: boolean;
}

export interface SimulationResult {
  policy: PolicyName;
  usd: number;
  /** From the first arrival to the last result. */
  makespanSeconds: number;
  deadlineMisses: number;
  tasksWithDeadlines: number;
  placements: { cloudRun: number; vmSpot: number; vmStandard: number };
  fallbacks: number;
  outcomes: TaskOutcome[];
}

export function simulate(
  workload: Workload,
  prices: PriceTable,
  policy: PolicyName,
  options: SimulationOptions = {},
): SimulationResult {
  const threshold = options.sizeThresholdBytes ?? 2 * 1024 ** 3;
  const tasks = [...workload.tasks].sort((a, b) => a.arrival - b.arrival);
  const learner = new OnlineDurations(workload);
  const outcomes = tasks.map((task) => {
    learner.advanceTo(task.arrival);
    const rule = workload.rules[task.rule];
    const job = {
      args: [],
      env: {},
      cpu: task.cpu ?? rule.cpu,
      memoryBytes: task.memoryBytes ?? rule.memoryBytes,
      spot: rule.spot,
    };
    const ask = (runSeconds: number, candidates: readonly Target[], deadline = true) =>
      placementOptions({
        job,
        runSeconds,
        prices,
        candidates,
        spotAllowed: rule.spot,
        deadlineSeconds: deadline ? task.deadlineSeconds : undefined,
      });
    let chosen: PlacementOption | undefined;
    let fellBack = false;
    let estimatedSeconds: number | undefined;
    if (policy === 'cost' || policy === 'oracle') {
      const runSeconds = policy === 'oracle' ? task.trueSeconds : learner.estimate(task);
      if (policy === 'cost') estimatedSeconds = runSeconds;
      chosen = choosePlacement(ask(runSeconds, ['cloud-run-job', 'vm']));
    } else {
      const vm = policy === 'always-vm' || (policy === 'size-threshold' && task.inputBytes >= threshold);
      // A fixed policy ignores deadlines; the true duration only says whether Cloud Run can run it.
      const cloudRun = vm ? undefined : ask(task.trueSeconds, ['cloud-run-job'], false)[0];
      fellBack = cloudRun !== undefined && !cloudRun.possible;
      chosen = cloudRun?.possible
        ? cloudRun
        : ask(task.trueSeconds, ['vm'], false).find((o) => o.spot === rule.spot);
    }
    if (!chosen?.possible)
      throw new Error(`simulate: task ${task.id} can run nowhere: ${chosen?.why ?? 'no option'}`);
    const outcome = actual(task, chosen, prices, fellBack, estimatedSeconds);
    learner.finished(task, outcome.finishSeconds);
    return outcome;
  });
  return summarize(policy, tasks, outcomes);
}

/** Every policy, in POLICIES order. */
export function simulateAll(
  workload: Workload,
  prices: PriceTable,
  options: SimulationOptions = {},
): SimulationResult[] {
  return POLICIES.map((policy) => simulate(workload, prices, policy, options));
}

/** What the chosen place really cost, with the task's true duration. */
function actual(
  task: WorkloadTask,
  chosen: PlacementOption,
  prices: PriceTable,
  fellBack: boolean,
  estimatedSeconds: number | undefined,
): TaskOutcome {
  const { job } = chosen;
  const cost = runCost(
    prices,
    {
      target: chosen.target,
      cpu: job.cpu!,
      memoryBytes: job.memoryBytes!,
      machineType: chosen.machineType,
      spot: chosen.spot === true,
      accelerator: job.accelerator,
    },
    task.trueSeconds,
  );
  return {
    id: task.id,
    rule: task.rule,
    target: chosen.target,
    ...(chosen.target === 'vm' ? { machineType: chosen.machineType, spot: chosen.spot } : {}),
    ...(estimatedSeconds === undefined ? {} : { estimatedSeconds }),
    waitedSeconds: cost.waitedSeconds,
    finishSeconds: task.arrival + cost.waitedSeconds,
    usd: cost.usd,
    missedDeadline: task.deadlineSeconds !== undefined && cost.waitedSeconds > task.deadlineSeconds,
    fellBack,
  };
}

/**
 * Each rule's durations as the dispatcher would know them at a moment: the runs that finished before
 * it, in the order they finished. No peeking at the duration of a task still running.
 */
class OnlineDurations {
  private readonly workload: Workload;
  private readonly running: { finish: number; task: WorkloadTask }[] = [];
  private readonly history = new Map<string, DurationSample[]>();
  private readonly models = new Map<string, DurationModel>();

  constructor(workload: Workload) {
    this.workload = workload;
  }

  finished(task: WorkloadTask, finish: number): void {
    this.running.push({ finish, task });
  }

  advanceTo(time: number): void {
    const done = this.running.filter((run) => run.finish <= time).sort((a, b) => a.finish - b.finish);
    if (done.length === 0) return;
    for (const { task } of done) {
      const samples = this.history.get(task.rule) ?? [];
      samples.push({ inputBytes: task.inputBytes, seconds: task.trueSeconds });
      this.history.set(task.rule, samples);
      this.models.delete(task.rule);
    }
    const left = this.running.filter((run) => run.finish > time);
    this.running.splice(0, this.running.length, ...left);
  }

  estimate(task: WorkloadTask): number {
    let model = this.models.get(task.rule);
    if (model === undefined) {
      model = fitDurations(this.history.get(task.rule) ?? [], this.workload.rules[task.rule].prior);
      this.models.set(task.rule, model);
    }
    return estimateDuration(model, task.inputBytes).seconds;
  }
}

function summarize(policy: PolicyName, tasks: WorkloadTask[], outcomes: TaskOutcome[]): SimulationResult {
  const count = (test: (outcome: TaskOutcome) => boolean) => outcomes.filter(test).length;
  const firstArrival = Math.min(...tasks.map((task) => task.arrival));
  return {
    policy,
    usd: outcomes.reduce((sum, outcome) => sum + outcome.usd, 0),
    makespanSeconds: Math.max(...outcomes.map((outcome) => outcome.finishSeconds)) - firstArrival,
    deadlineMisses: count((outcome) => outcome.missedDeadline),
    tasksWithDeadlines: tasks.filter((task) => task.deadlineSeconds !== undefined).length,
    placements: {
      cloudRun: count((outcome) => outcome.target === 'cloud-run-job'),
      vmSpot: count((outcome) => outcome.target === 'vm' && outcome.spot === true),
      vmStandard: count((outcome) => outcome.target === 'vm' && outcome.spot !== true),
    },
    fallbacks: count((outcome) => outcome.fellBack),
    outcomes,
  };
}

/** The results as an aligned table, cost relative to the oracle's. */
export function formatSimulation(results: readonly SimulationResult[]): string {
  const oracle = results.find((result) => result.policy === 'oracle');
  const header = [
    'policy',
    'cost (USD)',
    'vs oracle',
    'makespan',
    'deadline misses',
    'cloud-run',
    'vm spot',
    'vm standard',
    'fallbacks',
  ];
  const rows = results.map((result) => [
    result.policy,
    result.usd.toFixed(2),
    oracle
      ? `${result.usd >= oracle.usd ? '+' : ''}${((result.usd / oracle.usd - 1) * 100).toFixed(1)}%`
      : '-',
    formatDuration(result.makespanSeconds),
    `${result.deadlineMisses} of ${result.tasksWithDeadlines}`,
    String(result.placements.cloudRun),
    String(result.placements.vmSpot),
    String(result.placements.vmStandard),
    String(result.fallbacks),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  // The policy name reads left-aligned; numbers line up on the right.
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
