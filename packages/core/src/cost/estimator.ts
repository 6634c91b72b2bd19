// How long a run of a rule takes, as a function of its input size, learned from finished runs.
//
// The fit is Theil–Sen: the slope is the median of the slopes between every pair of runs, the
// intercept the median of what is left. Medians ignore a minority of wild runs (a slow disk, a
// retried download): up to ~29% of outliers leave the slope where the rest put it, where a least-
// squares line would chase them. The prior (the rule's, or 30 s + 60 s/GiB) joins both medians as a
// few pseudo-values: with two runs it decides, with a dozen the runs do, and with hundreds it moves
// the medians by a rank or two. A prior that was far off so leaves no lasting bias, where averaging
// it in as k pseudo-runs would keep k/(n+k) of its error for good.
//
// The line is the median run for a size; how far runs stray from it is kept too, in log space, where
// run times spread by factors: ln(run / line) has a centre (the median of the log residuals) and a
// spread σ (their root mean square about the centre), taken as normal, so a run is lognormal around
// the line. While history is short the prior's spread (PRIOR_LOG_SIGMA, a factor of 1.65 either way)
// joins σ² as one pseudo-value (SPREAD_PRIOR_WEIGHT), as the prior joins the medians: with a dozen
// runs the runs decide. From the distribution: the median, the mean (median x e^(σ²/2), what a run costs on average,
// about twice the median at σ = 1.2) and any quantile (median x e^(z σ)), which a deadline is judged at.

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
  /** ln(run / line): its median, and its spread σ (with the prior's while history is short). */
  logCenter: number;
  logSigma: number;
}

/** A run's duration: its expected value, and what is needed for any quantile of it. */
export interface DurationEstimate {
  /** The expected run (the mean): what the run costs on average is priced on it. */
  seconds: number;
  /** The median run. */
  medianSeconds: number;
  /** The spread of ln(run) (0: known exactly, as a declared duration is). */
  logSigma: number;
  basis: string;
}

/**
 * How far a prior may be off, as a σ of ln(run): 0.5, a factor of 1.65 either way for one σ, so a
 * prior's p90 is 1.9 times its line and its mean 1.13 times. Wider, a rule's prior (an operator's
 * "about an hour") would be priced well above what it says; the runs soon replace it anyway.
 */
export const PRIOR_LOG_SIGMA = 0.5;
/**
 * How many pseudo-residuals of PRIOR_LOG_SIGMA join the runs' spread: one. The prior's σ² is many
 * times a steady rule's (0.15² for runs within +-15%), so more would keep σ inflated for hundreds
 * of runs: with one, 10 runs of a steady rule give σ ≈ 0.21, 200 give 0.15.
 */
const SPREAD_PRIOR_WEIGHT = 1;

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
    return {
      ...prior,
      runs: 0,
      basis: `prior: no history yet, ${line(prior)}`,
      logCenter: 0,
      logSigma: PRIOR_LOG_SIGMA,
    };
  }
  const xs = recent.map((sample) => sample.inputBytes / GIB);
  const ys = recent.map((sample) => sample.seconds);
  // The slopes between every pair of runs of different sizes, then the prior's as `weight` more.
  const slopes = new Float64Array((n * (n - 1)) / 2 + weight);
  let pairs = 0;
  for (let i = 0; i < n; i += 1) {
    for (let j = i + 1; j < n; j += 1) {
      if (xs[i] !== xs[j]) slopes[pairs++] = (ys[j] - ys[i]) / (xs[j] - xs[i]);
    }
  }
  const priorValues = (value: number) => Array.from({ length: weight }, () => value);
  // With one input size there is no slope to see: the prior's stays, and only the intercept is fit.
  const hasSlope = pairs > 0;
  slopes.fill(prior.secondsPerGiB, pairs, pairs + weight);
  const slope = hasSlope ? medianInPlace(slopes.subarray(0, pairs + weight)) : prior.secondsPerGiB;
  const model = {
    // A run does not get faster with more input; a negative slope is noise between similar sizes.
    secondsPerGiB: Math.max(0, slope),
    baseSeconds: 0,
  };
  const residuals = xs.map((x, i) => ys[i] - model.secondsPerGiB * x);
  model.baseSeconds = Math.max(0, median([...residuals, ...priorValues(prior.baseSeconds)]));
  const method = hasSlope ? 'Theil–Sen' : 'median (one input size, slope from the prior)';
  const runs = `${n} run${n === 1 ? '' : 's'}`;
  const spread = logSpread(
    recent.map((sample, i) => Math.log(Math.max(1, sample.seconds) / lineAt(model, xs[i]))),
    SPREAD_PRIOR_WEIGHT,
  );
  return {
    ...model,
    ...spread,
    runs: n,
    basis: `history: ${runs} + prior as ${weight}, ${method}, ${line(model)}, spread x${Math.exp(spread.logSigma).toFixed(2)}`,
  };
}

/** The median of the log residuals, and their spread with the prior's as `weight` pseudo-values. */
function logSpread(residuals: number[], weight: number): { logCenter: number; logSigma: number } {
  const logCenter = median(residuals);
  const squares = residuals.reduce((sum, r) => sum + (r - logCenter) ** 2, 0);
  const logSigma = Math.sqrt((weight * PRIOR_LOG_SIGMA ** 2 + squares) / (weight + residuals.length));
  return { logCenter, logSigma };
}

/** The line at `gib` of input: the median run there, at least a second. */
function lineAt(model: DurationPrior, gib: number): number {
  return Math.max(1, model.baseSeconds + model.secondsPerGiB * gib);
}

/** The model's duration for an input of `inputBytes`: median, mean and spread (at least a second). */
export function estimateDuration(model: DurationModel, inputBytes: number): DurationEstimate {
  const medianSeconds = Math.max(1, lineAt(model, inputBytes / GIB) * Math.exp(model.logCenter));
  const { logSigma } = model;
  return {
    seconds: medianSeconds * Math.exp(logSigma ** 2 / 2),
    medianSeconds,
    logSigma,
    basis: model.basis,
  };
}

/** A duration known exactly (declared, or the truth in a simulation). */
export function exactDuration(seconds: number, basis: string): DurationEstimate {
  return { seconds, medianSeconds: seconds, logSigma: 0, basis };
}

/** The run at quantile `q` (0 < q < 1) of the estimate: the median for 0.5. */
export function durationQuantile(estimate: DurationEstimate, q: number): number {
  return estimate.medianSeconds * Math.exp(normalQuantile(q) * estimate.logSigma);
}

/**
 * The standard normal's quantile: Acklam's rational approximation, relative error below 1.2e-9
 * (P. J. Acklam, "An algorithm for computing the inverse normal cumulative distribution function").
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be within (0, 1), got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/**
 * The median by selection (Hoare's quickselect on a copy): linear on average where a sort is n log n,
 * so a fit's 20,000 pair slopes cost about as much to take the median of as to compute
 * (bench/estimator.ts measures the fit against its pair loop alone).
 */
export function median(values: readonly number[]): number {
  return medianInPlace(Float64Array.from(values));
}

/** The median of `values`, which it reorders. */
function medianInPlace(values: Float64Array): number {
  const middle = values.length >> 1;
  const upper = select(values, middle);
  if (values.length % 2 === 1) return upper;
  // Left of `middle` all are at most `upper`: the lower middle is their largest.
  let lower = -Infinity;
  for (let i = 0; i < middle; i += 1) if (values[i] > lower) lower = values[i];
  return (lower + upper) / 2;
}

/** The k-th smallest of `values` (0-based), moving it to index k, the smaller ones left of it. */
function select(values: Float64Array, k: number): number {
  let [left, right] = [0, values.length - 1];
  while (left < right) {
    // The middle element as pivot: deterministic, and fine on sorted input (history comes in order).
    const pivot = values[(left + right) >> 1];
    let [i, j] = [left, right];
    while (i <= j) {
      while (values[i] < pivot) i += 1;
      while (values[j] > pivot) j -= 1;
      if (i <= j) {
        const swap = values[i];
        values[i] = values[j];
        values[j] = swap;
        i += 1;
        j -= 1;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return values[k];
}

function line(model: DurationPrior): string {
  return `${formatSeconds(model.baseSeconds)} + ${formatSeconds(model.secondsPerGiB)}/GiB`;
}
