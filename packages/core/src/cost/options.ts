// Where a job could run and what each place would cost: a Cloud Run Job execution, and a VM on the
// cheapest machine type that fits, standard and (when the rule allows it) spot. The router's cost
// mode and the simulator choose from the same options, so the simulation measures the router.
//
// A run's duration is not known, only its distribution (estimator.ts): a place is priced on the
// expected run (the mean, with spot's expected rework, which runCost adds), since cost grows with run
// time and the mean is what a place costs on average; and a deadline is judged on a quantile of it
// (the rule's deadlineQuantile, p90 by default): a place is feasible when its start-up plus the run at
// that quantile (with the rework) meets the deadline.

import {
  cloudRunLimitBreaches,
  cloudRunShapeBreaches,
  onDefinedCloudRunJob,
  machineFits,
  MACHINE_TYPES,
  shapeForCloudRun,
  type CloudRunJobShape,
  type MachineType,
} from '../platforms.ts';
import type { JobTemplate, Target } from '../template.ts';
import { formatBytes, formatDuration, formatSeconds, formatUsd } from '../format.ts';
import { durationQuantile, type DurationEstimate } from './estimator.ts';
import { runCost, type PriceTable } from './prices.ts';

export interface PlacementOption {
  target: Target;
  machineType?: string;
  spot?: boolean;
  /** The job as it would launch there: Cloud Run's shape, or the VM's machine type and GPUs. */
  job: JobTemplate;
  /** Expected wait from launch to the result. */
  seconds: number;
  /** The wait with the run at the deadline's quantile (what the deadline is judged on). */
  quantileSeconds: number;
  /** That quantile (0.9), when the run's duration is not known exactly. */
  quantile?: number;
  /** Expected USD. */
  usd: number;
  /** Within the platform's limits and the deadline. */
  feasible: boolean;
  /** Within the platform's limits (it may still miss the deadline). */
  possible: boolean;
  why?: string;
  detail: string;
}

export interface OptionsRequest {
  /** The job as the rule and the request make it (cpu, memory, GPU, image, timeout). */
  job: JobTemplate;
  /** The run's expected duration (its mean), start-up excluded: what the cost is priced on. */
  runSeconds: number;
  /** The run at the deadline's quantile; absent: runSeconds (a duration known exactly). */
  quantileRunSeconds?: number;
  /**
   * The run at LIMIT_QUANTILE (p99), judged against Cloud Run's task timeout (1 h with a GPU, 168 h
   * without); absent: runSeconds. A run that passes it is killed, and a timeout is not retried.
   */
  limitRunSeconds?: number;
  /** Which quantile that is (0.9), for reasons. */
  quantile?: number;
  prices: PriceTable;
  candidates: readonly Target[];
  /** Spot VMs are considered only when allowed. */
  spotAllowed: boolean;
  deadlineSeconds?: number;
  /** What the worker's Cloud Run job is defined with; absent: as the job asks (platforms.ts). */
  cloudRunJob?: CloudRunJobShape;
}

/**
 * The quantile of a run's duration judged against Cloud Run's task timeout: 0.99. Passing a deadline
 * is a late result; passing the timeout is a killed task and a failed job, so the bar is higher.
 */
export const LIMIT_QUANTILE = 0.99;

/** The quantile a deadline is judged at when a rule names none: p90. */
export const DEFAULT_DEADLINE_QUANTILE = 0.9;

/**
 * What a request needs of a run's distribution: the run at the deadline's quantile `q` and at
 * LIMIT_QUANTILE; nothing for a duration known exactly.
 */
export function runSpread(
  run: DurationEstimate,
  q: number,
): Pick<OptionsRequest, 'quantileRunSeconds' | 'quantile' | 'limitRunSeconds'> {
  if (run.logSigma === 0) return {};
  return {
    quantileRunSeconds: durationQuantile(run, q),
    quantile: q,
    limitRunSeconds: durationQuantile(run, LIMIT_QUANTILE),
  };
}

/** Every placement of the candidates, priced, with why the impossible ones are. */
export function placementOptions(request: OptionsRequest): PlacementOption[] {
  const options: PlacementOption[] = [];
  if (request.candidates.includes('cloud-run-job')) options.push(onCloudRun(request));
  if (request.candidates.includes('vm')) {
    const spots = request.spotAllowed ? [true, false] : [false];
    for (const spot of spots) options.push(onVm(request, spot));
  }
  const deadline = request.deadlineSeconds;
  const at = request.quantile === undefined ? '' : ` at p${Math.round(request.quantile * 100)}`;
  const quantile = request.quantile === undefined ? {} : { quantile: request.quantile };
  return options.map((option) =>
    option.possible && deadline !== undefined && option.quantileSeconds > deadline
      ? {
          ...option,
          ...quantile,
          feasible: false,
          why: `misses the ${formatDuration(deadline)} deadline${at}`,
        }
      : { ...option, ...quantile },
  );
}

/** The cheapest feasible option; when none meets the deadline, the fastest possible one. */
export function choosePlacement(options: readonly PlacementOption[]): PlacementOption | undefined {
  const by = (key: 'usd' | 'seconds') => (a: PlacementOption, b: PlacementOption) => a[key] - b[key];
  return (
    options.filter((option) => option.feasible).sort(by('usd'))[0] ??
    options.filter((option) => option.possible).sort(by('seconds'))[0]
  );
}

/** "vm e2-standard-8 spot", "cloud-run-job 8 vCPU, 32 GiB". */
export function describeOption(option: PlacementOption): string {
  if (option.target === 'vm') {
    return `vm ${option.machineType ?? '(none fits)'} ${option.spot ? 'spot' : 'standard'}`;
  }
  const { cpu, memoryBytes } = option.job;
  return cpu === undefined ? 'cloud-run-job' : `cloud-run-job ${cpu} vCPU, ${formatBytes(memoryBytes ?? 0)}`;
}

/**
 * "vm e2-standard-8 spot: est. 41m (p90 55m), $0.060" with ", misses the 2m deadline at p90" when it
 * does: the expected wait, the wait at the deadline's quantile, the expected cost.
 */
export function summarizeOption(option: PlacementOption): string {
  // Where it can't run, the reason says why; a shape it would have had would only confuse.
  if (!option.possible) return `${option.target}: ${option.why}`;
  const name = describeOption(option);
  const likely =
    option.quantile === undefined || option.quantileSeconds === option.seconds
      ? ''
      : ` (p${Math.round(option.quantile * 100)} ${formatSeconds(option.quantileSeconds)})`;
  const numbers = `est. ${formatSeconds(option.seconds)}${likely}, ${formatUsd(option.usd)}`;
  return option.feasible ? `${name}: ${numbers}` : `${name}: ${numbers}, ${option.why}`;
}

function onCloudRun({
  job,
  runSeconds,
  quantileRunSeconds,
  limitRunSeconds,
  prices,
  cloudRunJob,
}: OptionsRequest): PlacementOption {
  const impossible = (why: string): PlacementOption => ({
    target: 'cloud-run-job',
    job,
    seconds: Infinity,
    quantileSeconds: Infinity,
    usd: Infinity,
    feasible: false,
    possible: false,
    why,
    detail: why,
  });
  // The pipeline's Cloud Run job runs the worker image; an execution can't swap it.
  if (job.image !== undefined) return impossible(`its image ${job.image} can only run on a VM`);
  // The run must fit the task timeout too, at LIMIT_QUANTILE: the task timeout kills a run that
  // passes it, and the job fails (a timeout is not retried), where a deadline is only missed.
  const expected = Math.max(job.timeoutSeconds ?? 0, Math.ceil(runSeconds));
  const breaches = cloudRunLimitBreaches({ ...job, timeoutSeconds: expected }, cloudRunJob);
  if (breaches.length > 0) return impossible(`needs ${breaches.join(' and ')}`);
  const unlikely = Math.max(expected, Math.ceil(limitRunSeconds ?? 0));
  const atLimit = cloudRunLimitBreaches({ ...job, timeoutSeconds: unlikely }, cloudRunJob);
  if (atLimit.length > 0) {
    return impossible(`needs ${atLimit.join(' and ')} at p${Math.round(LIMIT_QUANTILE * 100)} of the run`);
  }
  // A job without a timeout of its own runs with the definition's, which kills a longer run.
  const defined = job.timeoutSeconds === undefined ? cloudRunJob?.timeoutSeconds : undefined;
  if (defined !== undefined && unlikely > defined) {
    return impossible(
      `needs ${formatDuration(unlikely)} at p${Math.round(LIMIT_QUANTILE * 100)} of the run ` +
        `(the Cloud Run job's timeout is ${formatDuration(defined)}; the rule's job.timeout overrides it)`,
    );
  }
  const lacks = cloudRunJob === undefined ? [] : cloudRunShapeBreaches(job, cloudRunJob);
  if (lacks.length > 0) return impossible(`needs ${lacks.join(' and ')}`);
  // A task runs, and is billed, with what the Cloud Run job is defined with.
  const shaped = cloudRunJob === undefined ? shapeForCloudRun(job) : onDefinedCloudRunJob(job, cloudRunJob);
  if (shaped.accelerator && prices.cloudRun.gpuSecond[shaped.accelerator.type] === undefined) {
    return impossible(`no Cloud Run price for a ${shaped.accelerator.type} GPU`);
  }
  const shape = {
    target: 'cloud-run-job' as const,
    cpu: shaped.cpu!,
    memoryBytes: shaped.memoryBytes!,
    spot: false,
    accelerator: shaped.accelerator,
  };
  const cost = runCost(prices, shape, runSeconds);
  return {
    target: 'cloud-run-job',
    job: shaped,
    seconds: cost.waitedSeconds,
    quantileSeconds: runCost(prices, shape, quantileRunSeconds ?? runSeconds).waitedSeconds,
    usd: cost.usd,
    feasible: true,
    possible: true,
    detail: cost.detail,
  };
}

function onVm(
  { job, runSeconds, quantileRunSeconds, prices }: OptionsRequest,
  spot: boolean,
): PlacementOption {
  const machine = machineFor(job, prices, spot);
  if (typeof machine === 'string') {
    return {
      target: 'vm',
      spot,
      job,
      seconds: Infinity,
      quantileSeconds: Infinity,
      usd: Infinity,
      feasible: false,
      possible: false,
      why: machine,
      detail: machine,
    };
  }
  // G2 and A2 machine types come with their GPUs; the job says how many it will see.
  const accelerator = machine.gpu ? { ...machine.gpu } : job.accelerator;
  const placed: JobTemplate = {
    ...job,
    machineType: machine.name,
    spot,
    ...(accelerator ? { accelerator } : {}),
  };
  const shape = {
    target: 'vm' as const,
    cpu: job.cpu ?? 1,
    memoryBytes: job.memoryBytes ?? 0,
    machineType: machine.name,
    spot,
    accelerator,
  };
  const cost = runCost(prices, shape, runSeconds);
  return {
    target: 'vm',
    machineType: machine.name,
    spot,
    job: placed,
    seconds: cost.waitedSeconds,
    quantileSeconds: runCost(prices, shape, quantileRunSeconds ?? runSeconds).waitedSeconds,
    usd: cost.usd,
    feasible: true,
    possible: true,
    detail: cost.detail,
  };
}

/**
 * The rule's machine type when it names one that is priced and not known to be too small; else the
 * cheapest priced type that fits. A string says why there is none.
 */
function machineFor(
  job: JobTemplate,
  prices: PriceTable,
  spot: boolean,
): Pick<MachineType, 'name' | 'gpu'> | string {
  const [cpu, memory, gpu] = [job.cpu ?? 1, job.memoryBytes ?? 0, job.accelerator];
  const named = job.machineType;
  if (named !== undefined && prices.machineTypes[named] !== undefined) {
    const known = MACHINE_TYPES.find((machine) => machine.name === named);
    if (known === undefined) return { name: named };
    if (machineFits(known, cpu, memory, gpu)) return known;
  }
  const hourly = (machine: MachineType) => {
    const price = prices.machineTypes[machine.name];
    const gpuPrice = machine.gpu && prices.accelerators[machine.gpu.type];
    if (!price || (machine.gpu && !gpuPrice)) return undefined;
    const pick = (p: { onDemand: number; spot: number }) => (spot ? p.spot : p.onDemand);
    return pick(price) + (machine.gpu && gpuPrice ? machine.gpu.count * pick(gpuPrice) : 0);
  };
  const fitting = MACHINE_TYPES.filter((machine) => machineFits(machine, cpu, memory, gpu))
    .map((machine) => ({ machine, hourly: hourly(machine) }))
    .filter((entry): entry is { machine: MachineType; hourly: number } => entry.hourly !== undefined)
    .sort((a, b) => a.hourly - b.hourly);
  if (fitting.length > 0) return fitting[0].machine;
  const needs = [
    `${cpu} vCPU`,
    `${formatBytes(memory)} memory`,
    ...(gpu ? [`${gpu.count} ${gpu.type}`] : []),
  ];
  return `no priced machine type fits ${needs.join(', ')}`;
}
