// How long a run of a rule takes, as a function of its input size, learned from finished runs.
//
// The fit is Theil–Sen: the slope is the median of the slopes between every pair of runs, the
// intercept the median of what is left. Medians ignore a minority of wild runs (a slow disk, a
// retried download): up to ~29% of outliers leave the slope where the rest put it, where a least-
// squares line would chase them. The prior (the rule's, or 30 s + 60 s/GiB) joins both medians as a
// few pseudo-values: with two runs it decides, with a dozen the runs do, and with hundreds it moves
// the medians by a rank or two. A prior that was far off so leaves no lasting bias, where averaging
// it in as k pseudo-runs would keep k/(n+k) of its error for good.

import { formatSeconds } from '../format.ts';

const GIB = 1024 ** 3;

export interface DurationSample {
  inputBytes: number;
  /** The run itself, measured by the worker: start-up excluded. */
  seconds: number;
}

export interface DurationPrior {
  baseSeconds: number;
  secondsPerGiB: number;
}

/** The prior of a rule that gives none: half a minute, plus a minute per GiB of input. */
export const DEFAULT_PRIOR: DurationPrior = { baseSeconds: 30, secondsPerGiB: 60 };

export interface DurationModel extends DurationPrior {
  /** Runs the fit used (the most recent ones). */
  runs: number;
  /** What the model rests on: "history: 23 runs, Theil–Sen, 41 s + 12 s/GiB". */
  basis: string;
}

export interface DurationEstimate {
  seconds: number;
  basis: string;
}

export interface EstimatorOptions {
  /** How many values the prior adds to each median (3). */
  priorWeight?: number;
  /** Only the most recent runs count (200): work changes, and pairs grow with the square. */
  maxSamples?: number;
}

/** The model of a rule's durations from its finished runs, oldest first. */
export function fitDurations(
  samples: readonly DurationSample[],
  prior: DurationPrior = DEFAULT_PRIOR,
  options: EstimatorOptions = {},
): DurationModel {
  const weight = options.priorWeight ?? 3;
  const recent = samples.slice(-(options.maxSamples ?? 200));
  const n = recent.length;
  if (n === 0) {
    return { ...prior, runs: 0, basis: `prior: no history yet, ${line(prior)}` };
  }
  const xs = recent.map((sample) => sample.inputBytes / GIB);
  const ys = recent.map((sample) => sample.seconds);
  const pairSlopes: number[] = [];
  for (let i = 0; i < n; i += 1) {
    for (let j = i + 1; j < n; j += 1) {
      if (xs[i] !== xs[j]) pairSlopes.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
    }
  }
  const priorValues = (value: number) => Array.from({ length: weight }, () => value);
  // With one input size there is no slope to see: the prior's stays, and only the intercept is fit.
  const hasSlope = pairSlopes.length > 0;
  const slope = hasSlope ? median([...pairSlopes, ...priorValues(prior.secondsPerGiB)]) : prior.secondsPerGiB;
  const model = {
    // A run does not get faster with more input; a negative slope is noise between similar sizes.
    secondsPerGiB: Math.max(0, slope),
    baseSeconds: 0,
  };
  const residuals = xs.map((x, i) => ys[i] - model.secondsPerGiB * x);
  model.baseSeconds = Math.max(0, median([...residuals, ...priorValues(prior.baseSeconds)]));
  const method = hasSlope ? 'Theil–Sen' : 'median (one input size, slope from the prior)';
  const runs = `${n} run${n === 1 ? '' : 's'}`;
  return { ...model, runs: n, basis: `history: ${runs} + prior as ${weight}, ${method}, ${line(model)}` };
}

/** The model's duration for an input of `inputBytes` (at least a second). */
export function estimateDuration(model: DurationModel, inputBytes: number): DurationEstimate {
  const seconds = Math.max(1, model.baseSeconds + model.secondsPerGiB * (inputBytes / GIB));
  return { seconds, basis: model.basis };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function line(model: DurationPrior): string {
  return `${formatSeconds(model.baseSeconds)} + ${formatSeconds(model.secondsPerGiB)}/GiB`;
}
