// Replays a workload under a routing policy and adds up what it would have cost, how long it took and
// which deadlines it missed. Tasks run in parallel from their arrival (no queue: both platforms scale
// out). Spot runs count their expected preemption rework, not a random draw, so every policy is judged
// on the same numbers and the result doesn't depend on a seed.
//
// Policies: always-cloud-run and always-vm (a VM spot when the rule allows it); size-threshold (a VM
// from 2 GiB of input, as pipeline.config.json routes CSVs today); cost (the router's cost mode,
// learning durations online: only from tasks that finished before each arrival); oracle (knows every
// true duration and picks the cheapest place that meets the deadline). The cost policy decides as the
// router does: cost on the expected run, the deadline at a quantile of its learned distribution
// (`deadlineQuantile`, p90); with `estimates: 'point'` it takes its median as exact instead, as the
// router did before estimates carried their spread, for comparison. A fixed policy that sends a
// task where it can't run (beyond Cloud Run's limits: more than 8 vCPU or 32 GiB, a GPU other than one
// L4, a GPU run over 1 h) falls back to a VM, as the router does; the fallback is counted. A task's or
// its rule's GPUs are priced as the router prices them (Cloud Run's L4 per second, g2/a2 VMs).
//
// A run the cost policy sends to Cloud Run that outlasts its task timeout (cloudRunTaskTimeout: the
// Cloud Run job's, or Cloud Run's 168 h, 1 h with a GPU) is killed there, as Cloud Run kills it: it
// is paid up to the timeout, and then runs again on a VM (as a retry of the FAILED job on the VM
// route would), paid and waited for too. The kills are counted.
//
// Batching (a rule's `batch`, batching.ts): the rule's files that run on Cloud Run wait for their batch
// to close and run as tasks of one execution. The batches are gathered from all of the rule's files in
// arrival order; a file a policy sends to a VM leaves its batch without closing it sooner. Policies
// judge a batched file's deadline as if its batch waited its whole maxWait.

import { cloudRunTaskTimeout, type CloudRunJobShape } from '../platforms.ts';
import type { JobTemplate, Target } from '../template.ts';
import { formatDuration } from '../format.ts';
import {
  estimateDuration,
  exactDuration,
  fitDurations,
  type DurationEstimate,
  type DurationModel,
  type DurationSample,
} from './estimator.ts';
import {
  choosePlacement,
  DEFAULT_DEADLINE_QUANTILE,
  placementOptions,
  runSpread,
  type PlacementOption,
} from './options.ts';
import { gatherBatches } from './batching.ts';
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
  /** Gather the files of rules that declare `batch` (default true); false runs each file alone. */
  batching?: boolean;
  /** The quantile of a run's learned duration a deadline is judged at (0.9, as the router's default). */
  deadlineQuantile?: number;
  /** 'distribution' (default): as the router decides; 'point': the learned median taken as exact. */
  estimates?: 'distribution' | 'point';
  /**
   * What the Cloud Run job is defined with, as the dispatcher's WORKER_JOB_CPU and WORKER_JOB_MEMORY
   * say: a task that needs more can't run there, and one that runs there is billed as defined.
   * Absent: each task's own shape, as if a job were defined for it.
   */
  cloudRunJob?: CloudRunJobShape;
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
  /** Of waitedSeconds, the wait for its batch to close (batched files on Cloud Run only). */
  gatheredSeconds?: number;
  finishSeconds: number;
  usd: number;
  missedDeadline: boolean;
  /** A fixed policy's target couldn't run it; it went to a VM. */
  fellBack: boolean;
  /** Cloud Run killed it at its task timeout; it ran again on a VM (both are in usd and the wait). */
  killed?: { afterSeconds: number; rerunMachineType?: string };
}

export interface SimulationResult {
  policy: PolicyName;
  usd: number;
  /** From the first arrival to the last result. */
  makespanSeconds: number;
  deadlineMisses: number;
  tasksWithDeadlines: number;
  placements: { cloudRun: number; vmSpot: number; vmStandard: number };
  /** The Cloud Run executions it launched: one per batch, one per file that ran alone. */
  cloudRunExecutions: number;
  fallbacks: number;
  /** Runs Cloud Run killed at their task timeout (each ran again on a VM). */
  killed: number;
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
  const batchOf = options.batching === false ? new Map<string, Gathered>() : gather(workload);
  const batchesLaunched = new Set<string>();
  let launchedAlone = 0;
  const outcomes = tasks.map((task) => {
    learner.advanceTo(task.arrival);
    const rule = workload.rules[task.rule];
    // Its GPUs go with the job, so Cloud Run's GPU limits and shape, the g2/a2 machine types and the
    // GPU prices apply to it as they do to the router's jobs.
    const accelerator = task.accelerator ?? rule.accelerator;
    const job: JobTemplate = {
      args: [],
      env: {},
      cpu: task.cpu ?? rule.cpu,
      memoryBytes: task.memoryBytes ?? rule.memoryBytes,
      spot: rule.spot,
      ...(accelerator === undefined ? {} : { accelerator }),
    };
    const gathered = batchOf.get(task.id);
    // What is left of the deadline after the batch's whole wait; a deadline the wait alone uses up
    // stays above zero, so that no place meets it rather than the deadline being dropped.
    const deadlineSeconds =
      task.deadlineSeconds === undefined || gathered === undefined
        ? task.deadlineSeconds
        : Math.max(task.deadlineSeconds - gathered.maxWaitSeconds, Number.MIN_VALUE);
    const quantile = options.deadlineQuantile ?? DEFAULT_DEADLINE_QUANTILE;
    const ask = (run: DurationEstimate, candidates: readonly Target[], deadline = true) =>
      placementOptions({
        job,
        runSeconds: run.seconds,
        ...runSpread(run, quantile),
        prices,
        candidates,
        spotAllowed: rule.spot,
        deadlineSeconds: deadline ? deadlineSeconds : undefined,
        ...(options.cloudRunJob === undefined ? {} : { cloudRunJob: options.cloudRunJob }),
      });
    const truth = exactDuration(task.trueSeconds, 'the true duration');
    let chosen: PlacementOption | undefined;
    let fellBack = false;
    let estimatedSeconds: number | undefined;
    if (policy === 'cost' || policy === 'oracle') {
      const run = policy === 'oracle' ? truth : learner.estimate(task, options.estimates ?? 'distribution');
      if (policy === 'cost') estimatedSeconds = run.seconds;
      chosen = choosePlacement(ask(run, ['cloud-run-job', 'vm']));
    } else {
      const vm = policy === 'always-vm' || (policy === 'size-threshold' && task.inputBytes >= threshold);
      // A fixed policy ignores deadlines; the true duration only says whether Cloud Run can run it.
      const cloudRun = vm ? undefined : ask(truth, ['cloud-run-job'], false)[0];
      fellBack = cloudRun !== undefined && !cloudRun.possible;
      chosen = cloudRun?.possible ? cloudRun : ask(truth, ['vm'], false).find((o) => o.spot === rule.spot);
    }
    if (!chosen?.possible)
      throw new Error(`simulate: task ${task.id} can run nowhere: ${chosen?.why ?? 'no option'}`);
    const batched = chosen.target === 'cloud-run-job' ? gathered : undefined;
    if (batched !== undefined) batchesLaunched.add(batched.batch);
    else if (chosen.target === 'cloud-run-job') launchedAlone++;
    // Cloud Run kills a run that outlasts its task timeout; the job runs again on a VM.
    const timeout =
      chosen.target === 'cloud-run-job' ? cloudRunTaskTimeout(chosen.job, options.cloudRunJob) : 0;
    const killed =
      chosen.target === 'cloud-run-job' && task.trueSeconds > timeout
        ? { afterSeconds: timeout, rerun: rerunOnVm(task.id, ask(truth, ['vm'], false), rule.spot) }
        : undefined;
    const outcome = actual(task, chosen, prices, {
      fellBack,
      estimatedSeconds,
      gatheredSeconds: batched?.delaySeconds ?? 0,
      killed,
    });
    learner.finished(task, outcome.finishSeconds);
    return outcome;
  });
  return summarize(policy, tasks, outcomes, batchesLaunched.size + launchedAlone);
}

/** The VM a killed Cloud Run run is retried on; a task no VM can run is an error in the workload. */
function rerunOnVm(taskId: string, vmOptions: readonly PlacementOption[], spot: boolean): PlacementOption {
  const rerun = vmOptions.find((o) => o.spot === spot);
  if (!rerun?.possible)
    throw new Error(
      `simulate: task ${taskId} outlasted Cloud Run and can run on no VM: ${rerun?.why ?? 'no option'}`,
    );
  return rerun;
}

/** A batched file: its batch (an id), the wait for it to close, and its rule's maxWait. */
interface Gathered {
  batch: string;
  delaySeconds: number;
  maxWaitSeconds: number;
}

/** Each file of a batching rule, with the batch it joins. */
function gather(workload: Workload): Map<string, Gathered> {
  const gathered = new Map<string, Gathered>();
  for (const [name, rule] of Object.entries(workload.rules)) {
    if (rule.batch === undefined) continue;
    const files = workload.tasks.filter((task) => task.rule === name);
    const arrival = new Map(files.map((task) => [task.id, task.arrival]));
    gatherBatches(files, rule.batch).forEach((batch, i) => {
      for (const id of batch.ids)
        gathered.set(id, {
          batch: `${name} ${i}`,
          delaySeconds: batch.closedAt - arrival.get(id)!,
          maxWaitSeconds: rule.batch!.maxWaitSeconds,
        });
    });
  }
  return gathered;
}

/** Every policy, in POLICIES order. */
export function simulateAll(
  workload: Workload,
  prices: PriceTable,
  options: SimulationOptions = {},
): SimulationResult[] {
  return POLICIES.map((policy) => simulate(workload, prices, policy, options));
}

/** What the chosen place really cost, with the task's true duration (and, killed, its run again). */
function actual(
  task: WorkloadTask,
  chosen: PlacementOption,
  prices: PriceTable,
  {
    fellBack,
    estimatedSeconds,
    gatheredSeconds,
    killed,
  }: {
    fellBack: boolean;
    estimatedSeconds: number | undefined;
    gatheredSeconds: number;
    killed?: { afterSeconds: number; rerun: PlacementOption };
  },
): TaskOutcome {
  const costOf = (option: PlacementOption, seconds: number) =>
    runCost(
      prices,
      {
        target: option.target,
        cpu: option.job.cpu!,
        memoryBytes: option.job.memoryBytes!,
        machineType: option.machineType,
        spot: option.spot === true,
        accelerator: option.job.accelerator,
      },
      seconds,
    );
  let cost = costOf(chosen, task.trueSeconds);
  if (killed !== undefined) {
    const [first, again] = [costOf(chosen, killed.afterSeconds), costOf(killed.rerun, task.trueSeconds)];
    cost = {
      ...again,
      usd: first.usd + again.usd,
      billedSeconds: first.billedSeconds + again.billedSeconds,
      waitedSeconds: first.waitedSeconds + again.waitedSeconds,
    };
  }
  return {
    id: task.id,
    rule: task.rule,
    target: chosen.target,
    ...(chosen.target === 'vm' ? { machineType: chosen.machineType, spot: chosen.spot } : {}),
    ...(estimatedSeconds === undefined ? {} : { estimatedSeconds }),
    waitedSeconds: gatheredSeconds + cost.waitedSeconds,
    ...(gatheredSeconds > 0 ? { gatheredSeconds } : {}),
    finishSeconds: task.arrival + gatheredSeconds + cost.waitedSeconds,
    usd: cost.usd,
    missedDeadline:
      task.deadlineSeconds !== undefined && gatheredSeconds + cost.waitedSeconds > task.deadlineSeconds,
    fellBack,
    ...(killed === undefined
      ? {}
      : { killed: { afterSeconds: killed.afterSeconds, rerunMachineType: killed.rerun.machineType } }),
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

  /** The task's run as learned so far; 'point': its median, taken as exact. */
  estimate(task: WorkloadTask, kind: 'distribution' | 'point'): DurationEstimate {
    let model = this.models.get(task.rule);
    if (model === undefined) {
      model = fitDurations(this.history.get(task.rule) ?? [], this.workload.rules[task.rule].prior);
      this.models.set(task.rule, model);
    }
    const estimate = estimateDuration(model, task.inputBytes);
    return kind === 'point' ? exactDuration(estimate.medianSeconds, estimate.basis) : estimate;
  }
}

function summarize(
  policy: PolicyName,
  tasks: WorkloadTask[],
  outcomes: TaskOutcome[],
  cloudRunExecutions: number,
): SimulationResult {
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
    cloudRunExecutions,
    fallbacks: count((outcome) => outcome.fellBack),
    killed: count((outcome) => outcome.killed !== undefined),
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
    'killed',
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
    String(result.killed),
  ]);
  const measure = savingShare(results);
  return measure === undefined
    ? alignedTable(header, rows)
    : `${alignedTable(header, rows)}\n${formatSavingShare(measure)}`;
}

/** The cost policy against hindsight: how much of what the oracle saves over the cheapest fixed policy it saves too. */
export interface SavingShare {
  /** The cheapest of always-cloud-run, always-vm and size-threshold. */
  bestFixed: SimulationResult;
  cost: SimulationResult;
  oracle: SimulationResult;
  /**
   * (bestFixed - cost) / (bestFixed - oracle): 1 saves all the oracle saves, 0 nothing; undefined
   * when the cheapest fixed policy costs no more than the oracle (it saved by missing deadlines).
   */
  share?: number;
}

/** Undefined when the results lack the cost policy, the oracle or every fixed policy. */
export function savingShare(results: readonly SimulationResult[]): SavingShare | undefined {
  const cost = results.find((r) => r.policy === 'cost');
  const oracle = results.find((r) => r.policy === 'oracle');
  const fixed = results.filter((r) => r.policy !== 'cost' && r.policy !== 'oracle');
  if (cost === undefined || oracle === undefined || fixed.length === 0) return undefined;
  const bestFixed = fixed.reduce((best, r) => (r.usd < best.usd ? r : best));
  const saving = bestFixed.usd - oracle.usd;
  return { bestFixed, cost, oracle, ...(saving > 0 ? { share: (bestFixed.usd - cost.usd) / saving } : {}) };
}

/** "cost saves 98.9% of what the oracle saves over always-vm ($14.48 -> $9.77); deadline misses 0 (oracle 0 of 42)". */
export function formatSavingShare({ bestFixed, cost, oracle, share }: SavingShare): string {
  const saves =
    share === undefined
      ? `cost: the cheapest fixed policy, ${bestFixed.policy}, costs no more than the oracle ` +
        `($${bestFixed.usd.toFixed(2)}, $${oracle.usd.toFixed(2)}), so there is no saving to share; `
      : `cost saves ${(share * 100).toFixed(1)}% of what the oracle saves over the cheapest fixed policy, ` +
        `${bestFixed.policy} ($${bestFixed.usd.toFixed(2)} -> $${oracle.usd.toFixed(2)}); `;
  return (
    saves +
    `deadline misses ${cost.deadlineMisses}, the oracle's ${oracle.deadlineMisses} (of ${cost.tasksWithDeadlines})`
  );
}

/** The rows under the header, the first column left-aligned (a name), the others right (numbers). */
function alignedTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [header, ...rows].map(line).join('\n');
}

/**
 * Each policy with its rules' batching (`batched`) and without (`alone`, simulated with batching
 * false): Cloud Run executions, cost, deadline misses and the mean wait of batched files for their
 * batch, as an aligned table.
 */
export function formatBatching(
  batched: readonly SimulationResult[],
  alone: readonly SimulationResult[],
): string {
  const header = ['policy', 'cloud-run executions', 'cost (USD)', 'deadline misses', 'mean wait for a batch'];
  const rows = batched.map((result) => {
    const other = alone.find((a) => a.policy === result.policy);
    if (other === undefined) throw new Error(`formatBatching: no run of ${result.policy} without batching`);
    const waits = result.outcomes.flatMap((o) =>
      o.gatheredSeconds === undefined ? [] : [o.gatheredSeconds],
    );
    const mean = waits.length === 0 ? 0 : waits.reduce((sum, w) => sum + w, 0) / waits.length;
    return [
      result.policy,
      `${other.cloudRunExecutions} -> ${result.cloudRunExecutions}`,
      `${other.usd.toFixed(2)} -> ${result.usd.toFixed(2)}`,
      `${other.deadlineMisses} -> ${result.deadlineMisses}`,
      waits.length === 0 ? '-' : `${mean.toFixed(1)} s`,
    ];
  });
  return `without batching -> with the rules' batching:\n${alignedTable(header, rows)}`;
}
