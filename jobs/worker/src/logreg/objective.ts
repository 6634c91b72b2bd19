// The objective minimized by the fit, with its gradient, in one pass over the standardized matrix:
//
//   f(W) = 0.5 * ||W||^2 + C * sum over training rows of logloss_i     (intercepts are not penalized)
//
// Parameters are laid out class by class, each as [intercept, w_1 .. w_d]. Two classes use one such
// vector (sigmoid of the score = P(second class)); K > 2 classes use K of them (multinomial softmax).
// Sums are taken per block and then added, which keeps rounding error small on millions of rows.
import type { Dataset } from './dataset.ts';
import { BLOCK_ROWS } from './dataset.ts';

export type ObjectiveFn = (theta: Float64Array, gradient: Float64Array) => number;

/** Number of coefficient vectors for K classes. */
export function vectorCount(classCount: number): number {
  return classCount === 2 ? 1 : classCount;
}

export function makeObjective(ds: Dataset, classCount: number, c: number): ObjectiveFn {
  return classCount === 2 ? binaryObjective(ds, c) : multinomialObjective(ds, classCount, c);
}

function binaryObjective(ds: Dataset, c: number): ObjectiveFn {
  const { d, y, rows, blocks } = ds;
  const w = new Float64Array(d);
  const blockGradient = new Float64Array(d + 1);
  return (theta, gradient) => {
    gradient.fill(0);
    const intercept = theta[0];
    for (let j = 0; j < d; j++) w[j] = theta[1 + j];
    let loss = 0;
    for (let b = 0; b < blocks.length; b++) {
      const x = blocks[b];
      const first = b * BLOCK_ROWS;
      const count = Math.min(BLOCK_ROWS, rows - first);
      blockGradient.fill(0);
      let blockLoss = 0;
      for (let i = 0; i < count; i++) {
        const label = y[first + i];
        if (label < 0) continue;
        const base = i * d;
        let z = intercept;
        for (let j = 0; j < d; j++) z += w[j] * x[base + j];
        let p: number;
        if (z >= 0) {
          const e = Math.exp(-z);
          p = 1 / (1 + e);
          blockLoss += Math.log1p(e) + (label === 1 ? 0 : z);
        } else {
          const e = Math.exp(z);
          p = e / (1 + e);
          blockLoss += Math.log1p(e) - (label === 1 ? z : 0);
        }
        const r = p - label;
        blockGradient[0] += r;
        for (let j = 0; j < d; j++) blockGradient[1 + j] += r * x[base + j];
      }
      loss += blockLoss;
      for (let j = 0; j <= d; j++) gradient[j] += blockGradient[j];
    }
    let penalty = 0;
    for (let j = 0; j <= d; j++) gradient[j] *= c;
    for (let j = 0; j < d; j++) {
      penalty += w[j] * w[j];
      gradient[1 + j] += w[j];
    }
    return 0.5 * penalty + c * loss;
  };
}

function multinomialObjective(ds: Dataset, k: number, c: number): ObjectiveFn {
  const { d, y, rows, blocks } = ds;
  const stride = d + 1;
  const score = new Float64Array(k);
  const expScore = new Float64Array(k);
  const blockGradient = new Float64Array(k * stride);
  return (theta, gradient) => {
    gradient.fill(0);
    let loss = 0;
    for (let b = 0; b < blocks.length; b++) {
      const x = blocks[b];
      const first = b * BLOCK_ROWS;
      const count = Math.min(BLOCK_ROWS, rows - first);
      blockGradient.fill(0);
      let blockLoss = 0;
      for (let i = 0; i < count; i++) {
        const label = y[first + i];
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
        blockLoss += max + Math.log(sum) - score[label]; // logsumexp(score) - score[label]
        for (let m = 0; m < k; m++) {
          const r = expScore[m] / sum - (m === label ? 1 : 0);
          const t = m * stride;
          blockGradient[t] += r;
          for (let j = 0; j < d; j++) blockGradient[t + 1 + j] += r * x[base + j];
        }
      }
      loss += blockLoss;
      for (let j = 0; j < gradient.length; j++) gradient[j] += blockGradient[j];
    }
    let penalty = 0;
    for (let j = 0; j < gradient.length; j++) gradient[j] *= c;
    for (let m = 0; m < k; m++) {
      for (let j = 1; j <= d; j++) {
        const v = theta[m * stride + j];
        penalty += v * v;
        gradient[m * stride + j] += v;
      }
    }
    return 0.5 * penalty + c * loss;
  };
}
