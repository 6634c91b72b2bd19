// The objective minimized by the fit, with its gradient, in one pass over the standardized matrix:
//
//   f(W) = 0.5 * ||W||^2 + C * sum over training rows of logloss_i     (intercepts are not penalized)
//
// Parameters are laid out vector by vector, each as [intercept, w_1 .. w_d]. Two classes use one such
// vector (sigmoid of the score = P(second class)); K > 2 classes use K of them (multinomial softmax).
// The data term is computed over segments (blocks of rows with their labels) so that the rows can be
// split between threads; sums are taken per segment and then added, which keeps rounding error small.
import type { Segment } from './dataset.ts';

export type ObjectiveFn = (theta: Float64Array, gradient: Float64Array) => number;

/** Computes the data term (sum of log losses) and its gradient over part of the rows. */
export type DataTerm = (theta: Float64Array, gradient: Float64Array) => number;

/** Number of coefficient vectors for K classes. */
export function vectorCount(classCount: number): number {
  return classCount === 2 ? 1 : classCount;
}

/** f and its gradient from a data term (possibly spread over threads), C and the penalty. */
export function penalized(dataTerm: DataTerm, d: number, vectors: number, c: number): ObjectiveFn {
  const stride = d + 1;
  return (theta, gradient) => {
    const loss = dataTerm(theta, gradient);
    let penalty = 0;
    for (let j = 0; j < gradient.length; j++) gradient[j] *= c;
    for (let v = 0; v < vectors; v++) {
      for (let j = 1; j <= d; j++) {
        const w = theta[v * stride + j];
        penalty += w * w;
        gradient[v * stride + j] += w;
      }
    }
    return 0.5 * penalty + c * loss;
  };
}

export function dataTerm(segments: readonly Segment[], d: number, classCount: number): DataTerm {
  return classCount === 2 ? binaryTerm(segments, d) : multinomialTerm(segments, d, classCount);
}

function binaryTerm(segments: readonly Segment[], d: number): DataTerm {
  const w = new Float64Array(d);
  const partial = new Float64Array(d + 1);
  return (theta, gradient) => {
    gradient.fill(0);
    for (let j = 0; j < d; j++) w[j] = theta[1 + j];
    let loss = 0;
    for (const { x, y, rows } of segments) {
      loss += binarySegment(x, y, rows, d, theta[0], w, partial);
      for (let j = 0; j <= d; j++) gradient[j] += partial[j];
    }
    return loss;
  };
}

/** One segment's log loss, and its gradient into `partial`. A plain function of its arguments: V8 compiles it best that way. */
function binarySegment(
  x: Float64Array,
  y: Int32Array,
  rows: number,
  d: number,
  intercept: number,
  w: Float64Array,
  partial: Float64Array,
): number {
  partial.fill(0);
  let loss = 0;
  for (let i = 0; i < rows; i++) {
    const label = y[i];
    if (label < 0) continue;
    const base = i * d;
    let z = intercept;
    for (let j = 0; j < d; j++) z += w[j] * x[base + j];
    // log(1 + e^z) - label*z, and the sigmoid, both from e = exp(-|z|) without overflow
    const e = Math.exp(-Math.abs(z));
    const p = z >= 0 ? 1 / (1 + e) : e / (1 + e);
    loss += Math.log1p(e) + (z > 0 ? z : 0) - (label === 1 ? z : 0);
    const r = p - label;
    partial[0] += r;
    for (let j = 0; j < d; j++) partial[1 + j] += r * x[base + j];
  }
  return loss;
}

function multinomialTerm(segments: readonly Segment[], d: number, k: number): DataTerm {
  const stride = d + 1;
  const score = new Float64Array(k);
  const expScore = new Float64Array(k);
  const partial = new Float64Array(k * stride);
  return (theta, gradient) => {
    gradient.fill(0);
    let loss = 0;
    for (const { x, y, rows } of segments) {
      partial.fill(0);
      let partialLoss = 0;
      for (let i = 0; i < rows; i++) {
        const label = y[i];
        if (label < 0) continue;
        const base = i * d;
        let max = -Infinity;
        for (let m = 0; m < k; m++) {
          const t = m * stride;
          let s = theta[t];
          for (let j = 0; j < d; j++) s += theta[t + 1 + j] * x[base + j];
          score[m] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let m = 0; m < k; m++) {
          const e = Math.exp(score[m] - max);
          expScore[m] = e;
          sum += e;
        }
        partialLoss += max + Math.log(sum) - score[label]; // logsumexp(score) - score[label]
        for (let m = 0; m < k; m++) {
          const r = expScore[m] / sum - (m === label ? 1 : 0);
          const t = m * stride;
          partial[t] += r;
          for (let j = 0; j < d; j++) partial[t + 1 + j] += r * x[base + j];
        }
      }
      loss += partialLoss;
      for (let j = 0; j < gradient.length; j++) gradient[j] += partial[j];
    }
    return loss;
  };
}
