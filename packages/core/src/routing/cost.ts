// The router's cost mode, and the estimate a launch decision carries: how long the run will take
// (declared, learned from the ledger by the caller, or the rule's prior), what each place would cost,
// and, for a cost rule, the cheapest place that meets the platform limits and the rule's deadline.
// An estimate is a distribution (estimator.ts): places are priced on the expected run, and the
// deadline is judged at the rule's deadlineQuantile of the run (DEFAULT_DEADLINE_QUANTILE, p90).

import {
  DEFAULT_PRIOR,
  estimateDuration,
  exactDuration,
  fitDurations,
  type DurationEstimate,
} from '../cost/estimator.ts';
import {
  choosePlacement,
  DEFAULT_DEADLINE_QUANTILE,
  placementOptions,
  runSpread,
  summarizeOption,
  type PlacementOption,
} from '../cost/options.ts';
import { DEFAULT_PRICES, runCost, type PriceTable } from '../cost/prices.ts';
import type { StorageObject } from '../events.ts';
import { formatDuration, formatSeconds } from '../format.ts';
import type { CloudRunJobShape } from '../platforms.ts';
import type { JobTemplate, Resources, Rule, Target } from './types.ts';

/** What route() needs to price a run: prices, and how long the rule's runs take (from history). */
export interface RouteContext {
  prices: PriceTable;
  /** The dispatcher builds it from the ledger's finished runs; without it, the rule's prior is used. */
  estimate?: (rule: Rule, inputBytes: number | undefined) => DurationEstimate;
  /**
   * What the worker's Cloud Run job is defined with: a job that needs more runs on a VM, and one that
   * runs there gets (and pays for) these. Without it, the job is taken to be defined as each task asks.
   */
  cloudRunJob?: CloudRunJobShape;
}

export interface EstimateOption {
  target: Target;
  machineType?: string;
  spot?: boolean;
  /** Expected wait from launch to the result, and expected USD; absent where it can't run. */
  seconds?: number;
  usd?: number;
  feasible: boolean;
  why?: string;
}

/** On a launch decision: where it goes, what that is expected to take and cost, and the others. */
export interface CostEstimate {
  target: Target;
  machineType?: string;
  spot?: boolean;
  /** Expected wait from launch to the result (start-up and run) and expected USD, where it goes. */
  seconds: number;
  usd: number;
  /** The run alone, expected (its mean), and what that figure rests on. */
  runSeconds: number;
  basis: string;
  /** The run's median, and the run at the deadline's quantile (when not known exactly). */
  runMedianSeconds?: number;
  runQuantileSeconds?: number;
  quantile?: number;
  options: EstimateOption[];
}

export type CostPlacement =
  | { action: 'launch'; target: Target; job: JobTemplate; reason: string; estimate: CostEstimate }
  | { action: 'ignore'; reason: string };

interface Request {
  object?: StorageObject;
  declared: Resources;
}

/** A declared duration wins (the submitter knows this run); else the caller's estimate; else the prior. */
export function runEstimate(rule: Rule, request: Request, context?: RouteContext): DurationEstimate {
  const declared = request.declared.expectedSeconds;
  if (declared !== undefined) return exactDuration(declared, `declared: ${formatDuration(declared)}`);
  const inputBytes = request.object?.size;
  if (context?.estimate) return context.estimate(rule, inputBytes);
  return estimateDuration(fitDurations([], rule.prior ?? DEFAULT_PRIOR), inputBytes ?? 0);
}

/** A cost rule's placement: the cheapest option within limits and deadline, with the numbers. */
export function placeByCost(
  rule: Rule & { target: Target[] },
  job: JobTemplate,
  request: Request,
  matched: string,
  context?: RouteContext,
): CostPlacement {
  const prices = context?.prices ?? DEFAULT_PRICES;
  const run = runEstimate(rule, request, context);
  const spread = runSpread(run, rule.deadlineQuantile ?? DEFAULT_DEADLINE_QUANTILE);
  const ask = (candidates: readonly Target[]) =>
    placementOptions({
      job,
      runSeconds: run.seconds,
      ...spread,
      prices,
      candidates,
      spotAllowed: job.spot,
      deadlineSeconds: rule.deadlineSeconds,
      ...(context?.cloudRunJob === undefined ? {} : { cloudRunJob: context.cloudRunJob }),
    });
  let options = ask(rule.target);
  let note = '';
  // As in fixed mode, what Cloud Run can't run goes to a VM even when the rule lists only Cloud Run.
  if (!options.some((option) => option.possible) && !rule.target.includes('vm')) {
    options = [...options, ...ask(['vm'])];
    note = 'no listed target can run it, so a VM; ';
  }
  const chosen = choosePlacement(options);
  const runText = `run ${describeRun(run, spread)} (${run.basis})`;
  if (chosen === undefined) {
    return {
      action: 'ignore',
      reason: `${matched}; by cost nothing can run it: ${list(options)}; ${runText}`,
    };
  }
  const missed = chosen.feasible
    ? ''
    : `none meets the ${formatDuration(rule.deadlineSeconds!)} deadline, so the fastest: `;
  const others = options.filter((option) => option !== chosen).sort((a, b) => a.usd - b.usd);
  return {
    action: 'launch',
    target: chosen.target,
    job: chosen.job,
    reason: `${matched}, by cost: ${note}${missed}${list([chosen, ...others])}; ${runText}`,
    estimate: toEstimate(chosen, options, run, spread),
  };
}

/** "est. median 18 s, mean 37 s, p90 1m 35s", or "est. 45 s" for a duration known exactly. */
export function describeRun(
  run: DurationEstimate,
  spread: { quantileRunSeconds?: number; quantile?: number } = {},
): string {
  if (run.logSigma === 0 || spread.quantile === undefined) return `est. ${formatSeconds(run.seconds)}`;
  const median = formatSeconds(run.medianSeconds);
  const p = `p${Math.round(spread.quantile * 100)}`;
  return `est. median ${median}, mean ${formatSeconds(run.seconds)}, ${p} ${formatSeconds(spread.quantileRunSeconds!)}`;
}

/**
 * The estimate of a fixed rule's decision: the decided place priced, and the other places for
 * comparison. Undefined when the decided place has no price (a machine type the table lacks).
 */
export function estimateOf(
  rule: Rule,
  decided: { target: Target; job: JobTemplate },
  request: Request,
  context: RouteContext,
): CostEstimate | undefined {
  const run = runEstimate(rule, request, context);
  const { job } = decided;
  let cost;
  try {
    cost = runCost(
      context.prices,
      {
        target: decided.target,
        cpu: job.cpu ?? 1,
        memoryBytes: job.memoryBytes ?? 0,
        machineType: job.machineType,
        spot: decided.target === 'vm' && job.spot,
        accelerator: job.accelerator,
      },
      run.seconds,
    );
  } catch {
    return undefined;
  }
  const options = placementOptions({
    job,
    runSeconds: run.seconds,
    prices: context.prices,
    candidates: ['cloud-run-job', 'vm'],
    spotAllowed: true,
    ...(context.cloudRunJob === undefined ? {} : { cloudRunJob: context.cloudRunJob }),
  });
  const vm = decided.target === 'vm';
  const spread = runSpread(run, rule.deadlineQuantile ?? DEFAULT_DEADLINE_QUANTILE);
  return {
    target: decided.target,
    ...(vm ? { machineType: job.machineType, spot: job.spot } : {}),
    seconds: cost.waitedSeconds,
    usd: cost.usd,
    runSeconds: run.seconds,
    basis: run.basis,
    ...spreadFields(run, spread),
    options: options.map(toOption),
  };
}

function toEstimate(
  chosen: PlacementOption,
  options: PlacementOption[],
  run: DurationEstimate,
  spread: { quantileRunSeconds?: number; quantile?: number },
): CostEstimate {
  const { target, machineType, spot } = toOption(chosen);
  return {
    target,
    ...(machineType === undefined ? {} : { machineType, spot }),
    seconds: chosen.seconds,
    usd: chosen.usd,
    runSeconds: run.seconds,
    basis: run.basis,
    ...spreadFields(run, spread),
    options: options.map(toOption),
  };
}

/** The estimate's median and quantile, for a run not known exactly. */
function spreadFields(
  run: DurationEstimate,
  spread: { quantileRunSeconds?: number; quantile?: number },
): Pick<CostEstimate, 'runMedianSeconds' | 'runQuantileSeconds' | 'quantile'> {
  if (spread.quantile === undefined) return {};
  return {
    runMedianSeconds: run.medianSeconds,
    runQuantileSeconds: spread.quantileRunSeconds!,
    quantile: spread.quantile,
  };
}

function toOption(option: PlacementOption): EstimateOption {
  return {
    target: option.target,
    ...(option.machineType === undefined ? {} : { machineType: option.machineType }),
    ...(option.target === 'vm' ? { spot: option.spot } : {}),
    ...(option.possible ? { seconds: option.seconds, usd: option.usd } : {}),
    feasible: option.feasible,
    ...(option.why === undefined ? {} : { why: option.why }),
  };
}

function list(options: PlacementOption[]): string {
  return options.map(summarizeOption).join('; ');
}
