// Fit quality on the training rows: accuracy, mean log loss, and for two classes the ROC AUC.
import type { Dataset } from './dataset.ts';
import { predictedClass } from './model.ts';

export interface Metrics {
  accuracy: number;
  logLoss: number;
  auc?: number;
}

/** Probabilities below this are clipped in the log loss, as scikit-learn does, so one row can't make it infinite. */
const LOG_LOSS_FLOOR = 1e-15;

export function trainingMetrics(ds: Dataset, probabilities: Float64Array, columns: number): Metrics {
  const { y, rows } = ds;
  let correct = 0;
  let loss = 0;
  let n = 0;
  const positives: number[] = [];
  const negatives: number[] = [];
  for (let i = 0; i < rows; i++) {
    const label = y[i];
    if (label < 0) continue;
    n++;
    if (predictedClass(probabilities, columns, i) === label) correct++;
    let p: number;
    if (columns === 1) {
      const p1 = probabilities[i];
      p = label === 1 ? p1 : 1 - p1;
      (label === 1 ? positives : negatives).push(p1);
    } else {
      p = probabilities[i * columns + label];
    }
    loss -= Math.log(Math.max(p, LOG_LOSS_FLOOR));
  }
  const metrics: Metrics = { accuracy: correct / n, logLoss: loss / n };
  if (columns === 1) metrics.auc = rocAuc(Float64Array.from(positives), Float64Array.from(negatives));
  return metrics;
}

/**
 * The probability that a random positive scores above a random negative, ties counting one half
 * (the Mann-Whitney U statistic over the product of the counts). Undefined with an empty class.
 */
export function rocAuc(positives: Float64Array, negatives: Float64Array): number | undefined {
  if (positives.length === 0 || negatives.length === 0) return undefined;
  positives.sort();
  negatives.sort();
  let below = 0; // negatives strictly below the current positive score
  let wins = 0;
  let i = 0;
  while (i < positives.length) {
    const score = positives[i];
    let same = 0;
    while (i + same < positives.length && positives[i + same] === score) same++;
    while (below < negatives.length && negatives[below] < score) below++;
    let ties = 0;
    while (below + ties < negatives.length && negatives[below + ties] === score) ties++;
    wins += same * (below + ties / 2);
    i += same;
  }
  return wins / (positives.length * negatives.length);
}
