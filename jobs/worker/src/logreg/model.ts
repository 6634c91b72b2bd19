// Fitting the logistic regression on a loaded dataset, and predicting with it.
import { segmentsOf, type Dataset, type Segment } from './dataset.ts';
import { DEFAULT_LBFGS, minimize, type LbfgsOptions } from './lbfgs.ts';
import { dataTerm, penalized, vectorCount } from './objective.ts';
import { parallelDataTerm } from './parallel.ts';
import { availableParallelism } from 'node:os';
import { computeScaling, standardizeInPlace, type Scaling } from './standardize.ts';
import { DataError } from '../errors.ts';
import { noTrainableRows, oneClass } from './refusals.ts';

export interface FittedModel {
  classes: string[];
  featureNames: string[];
  c: number;
  scaling: Scaling;
  /** Per coefficient vector (one for two classes, one per class otherwise): intercept, then weights. */
  standardized: { intercepts: number[]; coefficients: number[][] };
  original: { intercepts: number[]; coefficients: number[][] };
  optimizer: {
    iterations: number;
    evaluations: number;
    converged: boolean;
    gradientRatio: number;
    message: string;
    threads: number;
  };
  objective: number;
  /** Parameters in standardized units, vector by vector: [intercept, w_1 .. w_d]. */
  theta: Float64Array;
}

export interface FitOptions {
  lbfgs?: LbfgsOptions;
  /** 1 or 2; default 2 when the machine has two cores and the data is large enough to gain from it. */
  threads?: number;
  /** Sample size of the warm start, used when there are more than 4x this many training rows. */
  warmStartRows?: number;
}

/** Below this many multiply-adds per pass, a helper thread costs more to start than it saves. */
const PARALLEL_MIN_WORK = 2_000_000;
/** With more training rows than 4x this, the fit starts from the optimum of a sample of about this many. */
const WARM_START_ROWS = 65536;

/** Standardizes the dataset in place and fits the model. */
export function fitModel(ds: Dataset, c: number, options: FitOptions = {}): FittedModel {
  if (!(c > 0) || !Number.isFinite(c)) throw new DataError(`C must be a positive number, got ${c}`);
  if (ds.counts.trainable === 0) throw new DataError(noTrainableRows(ds));
  if (ds.classes.length < 2) throw new DataError(oneClass(ds.targetName, ds.classes[0]));
  const scaling = computeScaling(ds);
  standardizeInPlace(ds, scaling);
  const k = ds.classes.length;
  const vectors = vectorCount(k);
  const stride = ds.d + 1;
  const parameters = vectors * stride;
  const segments = segmentsOf(ds);
  const threads =
    options.threads ??
    (ds.counts.trainable * parameters >= PARALLEL_MIN_WORK ? Math.min(2, availableParallelism()) : 1);
  const parallel = threads > 1 ? parallelDataTerm(segments, ds.d, k, parameters) : undefined;
  let result;
  try {
    const objective = penalized(parallel?.term ?? dataTerm(segments, ds.d, k), ds.d, vectors, c);
    const lbfgs = options.lbfgs ?? DEFAULT_LBFGS;
    const zero = new Float64Array(parameters);
    const start = warmStart(segments, ds, k, vectors, c, lbfgs, options.warmStartRows ?? WARM_START_ROWS);
    const referenceNorm = start === undefined ? undefined : gradientNorm(objective, zero);
    result = minimize(objective, start ?? zero, lbfgs, referenceNorm);
  } finally {
    parallel?.close();
  }
  const theta = result.x;
  if (vectors > 1) centerIntercepts(theta, vectors, stride);

  const standardized = { intercepts: [] as number[], coefficients: [] as number[][] };
  const original = { intercepts: [] as number[], coefficients: [] as number[][] };
  for (let v = 0; v < vectors; v++) {
    const intercept = theta[v * stride];
    const weights = Array.from(theta.subarray(v * stride + 1, (v + 1) * stride));
    standardized.intercepts.push(intercept);
    standardized.coefficients.push(weights);
    let shift = 0;
    const originalWeights = weights.map((w, j) => {
      if (scaling.constant[j]) return 0;
      shift += (w * scaling.mean[j]) / scaling.std[j];
      return w / scaling.std[j];
    });
    original.intercepts.push(intercept - shift);
    original.coefficients.push(originalWeights);
  }
  return {
    classes: ds.classes,
    featureNames: ds.featureNames,
    c,
    scaling,
    standardized,
    original,
    optimizer: {
      iterations: result.iterations,
      evaluations: result.evaluations,
      converged: result.converged,
      gradientRatio: result.gradientRatio,
      message: result.message,
      threads: parallel === undefined ? 1 : 2,
    },
    objective: result.value,
    theta,
  };
}

/**
 * On large data, most of the optimizer's early iterations only find the neighbourhood of the optimum.
 * A sample of whole blocks spread over the rows, with C scaled by rows / sample rows so that the
 * balance between penalty and loss is the same, finds it for a fraction of the cost. The full fit
 * then starts there and is held to the same tolerance, relative to the gradient at zero.
 */
function warmStart(
  segments: readonly Segment[],
  ds: Dataset,
  classCount: number,
  vectors: number,
  c: number,
  lbfgs: LbfgsOptions,
  sampleRows: number,
): Float64Array | undefined {
  if (ds.counts.trainable <= 4 * sampleRows) return undefined;
  const every = Math.ceil(segments.length / Math.max(1, Math.round(sampleRows / ds.blockRows)));
  const sample = segments.filter((_, i) => i % every === 0);
  let trainable = 0;
  for (const { y, rows } of sample) for (let i = 0; i < rows; i++) if (y[i] >= 0) trainable++;
  if (trainable === 0 || sample.length === segments.length) return undefined;
  const sampleC = (c * ds.counts.trainable) / trainable;
  const objective = penalized(dataTerm(sample, ds.d, classCount), ds.d, vectors, sampleC);
  const result = minimize(objective, new Float64Array(vectors * (ds.d + 1)), { ...lbfgs, tolerance: 1e-5 });
  return Number.isFinite(result.value) ? result.x : undefined;
}

function gradientNorm(objective: (x: Float64Array, g: Float64Array) => number, at: Float64Array): number {
  const g = new Float64Array(at.length);
  objective(at, g);
  return Math.hypot(...g);
}

/**
 * The softmax is unchanged when every intercept moves by the same amount, and intercepts are not
 * penalized, so the optimum fixes them only up to that shift. Report the one whose intercepts sum to 0.
 */
function centerIntercepts(theta: Float64Array, vectors: number, stride: number): void {
  let sum = 0;
  for (let v = 0; v < vectors; v++) sum += theta[v * stride];
  const mean = sum / vectors;
  for (let v = 0; v < vectors; v++) theta[v * stride] -= mean;
}

/**
 * Probabilities for every row of the (standardized) matrix: for two classes one column, P(second
 * class); otherwise one column per class. Row-major, rows x columns.
 */
export function predictProbabilities(
  ds: Dataset,
  model: FittedModel,
): { columns: number; values: Float64Array } {
  const { d, rows } = ds;
  const k = model.classes.length;
  const columns = k === 2 ? 1 : k;
  const stride = d + 1;
  const theta = model.theta;
  const values = new Float64Array(rows * columns);
  const scores = new Float64Array(k);
  let first = 0;
  for (const { x, rows: count } of segmentsOf(ds)) {
    for (let i = 0; i < count; i++) {
      const base = i * d;
      const out = (first + i) * columns;
      if (k === 2) {
        let z = theta[0];
        for (let j = 0; j < d; j++) z += theta[1 + j] * x[base + j];
        const e = Math.exp(-Math.abs(z));
        values[out] = z >= 0 ? 1 / (1 + e) : e / (1 + e);
        continue;
      }
      let max = -Infinity;
      for (let m = 0; m < k; m++) {
        let s = theta[m * stride];
        for (let j = 0; j < d; j++) s += theta[m * stride + 1 + j] * x[base + j];
        scores[m] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let m = 0; m < k; m++) {
        scores[m] = Math.exp(scores[m] - max);
        sum += scores[m];
      }
      for (let m = 0; m < k; m++) values[out + m] = scores[m] / sum;
    }
    first += count;
  }
  return { columns, values };
}

/** The predicted class of a row: the most probable one (for two classes, the second when p > 0.5). */
export function predictedClass(probabilities: Float64Array, columns: number, row: number): number {
  if (columns === 1) return probabilities[row] > 0.5 ? 1 : 0;
  let best = 0;
  const base = row * columns;
  for (let m = 1; m < columns; m++) if (probabilities[base + m] > probabilities[base + best]) best = m;
  return best;
}
