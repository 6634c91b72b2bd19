// Fit quality on the training rows: accuracy, mean log loss, and the ROC AUC: for two classes that
// of P(second class); for more, the unweighted mean over the classes of each class's probability
// against the rest (macro one-vs-rest, as scikit-learn's roc_auc_score(multi_class="ovr")). It sorts
// the rows once per class, so it is skipped beyond MACRO_AUC_MAX_CLASSES.
import type { Dataset } from './dataset.ts';
import { predictedClass } from './model.ts';

export interface Metrics {
  accuracy: number;
  logLoss: number;
  /** Two classes only. */
  auc?: number;
  /** More than two classes, up to MACRO_AUC_MAX_CLASSES. */
  macroAucOneVsRest?: number;
}

export const MACRO_AUC_MAX_CLASSES = 50;

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
  else if (columns <= MACRO_AUC_MAX_CLASSES) {
    const auc = macroAucOneVsRest(y, rows, probabilities, columns);
    if (auc !== undefined) metrics.macroAucOneVsRest = auc;
  }
  return metrics;
}

/** The mean over classes of the AUC of P(class) for that class against the others (labelled rows only). */
export function macroAucOneVsRest(
  y: Int32Array,
  rows: number,
  probabilities: Float64Array,
  columns: number,
): number | undefined {
  const perClass = new Int32Array(columns);
  let labelled = 0;
  for (let i = 0; i < rows; i++) {
    if (y[i] < 0) continue;
    perClass[y[i]]++;
    labelled++;
  }
  let sum = 0;
  let counted = 0;
  for (let k = 0; k < columns; k++) {
    const positives = new Float64Array(perClass[k]);
    const negatives = new Float64Array(labelled - perClass[k]);
    let p = 0;
    let n = 0;
    for (let i = 0; i < rows; i++) {
      if (y[i] < 0) continue;
      const score = probabilities[i * columns + k];
      if (y[i] === k) positives[p++] = score;
      else negatives[n++] = score;
    }
    const auc = rocAuc(positives, negatives);
    if (auc === undefined) continue; // a class without training rows has no AUC of its own
    sum += auc;
    counted++;
  }
  return counted === 0 ? undefined : sum / counted;
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
