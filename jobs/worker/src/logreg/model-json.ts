// model.json: everything a reader needs to use the model, judge it, and show what the run did. The
// shape is documented in the README ("model.json"); fields are only ever added to it.
import type { WorkerConfig } from '../config.ts';
import type { Dataset } from './dataset.ts';
import type { FittedModel } from './model.ts';
import type { Metrics } from './metrics.ts';
import { DEFAULT_LBFGS } from './lbfgs.ts';

export interface RunRows {
  read: number;
  trained: number;
  predicted: number;
  skipped: number;
}

export interface RunSeconds {
  read: number;
  fit: number;
  predict: number;
  write: number;
  total: number;
}

export function describeModel(
  config: WorkerConfig,
  input: { uri: string; generation?: string; size: number },
  ds: Dataset,
  model: FittedModel,
  metrics: Metrics,
  rows: RunRows,
  seconds: RunSeconds,
  warnings: readonly string[],
) {
  const vectorClasses = model.classes.length === 2 ? [model.classes[1]] : model.classes;
  const byFeature = (weights: number[]) =>
    Object.fromEntries(model.featureNames.map((name, j) => [name, weights[j]]));
  const coefficients = (set: FittedModel['standardized']) =>
    vectorClasses.map((label, v) => ({
      class: label,
      intercept: set.intercepts[v],
      weights: byFeature(set.coefficients[v]),
    }));
  return {
    task: 'logreg',
    jobId: config.jobId ?? null,
    attempt: config.attempt,
    input: { uri: input.uri, generation: input.generation ?? null, bytes: input.size },
    delimiter: ds.delimiter,
    delimiterChosenBy: ds.delimiterChosenBy,
    target: ds.targetName,
    targetChosenBy: ds.targetChosenBy,
    classes: model.classes,
    classCounts: trainingRowsPerClass(ds),
    probability:
      model.classes.length === 2 ? `P(${ds.targetName} = ${model.classes[1]})` : 'one column per class',
    features: model.featureNames,
    unusedColumns: ds.unused,
    standardization: {
      mean: byFeature(Array.from(model.scaling.mean)),
      std: byFeature(Array.from(model.scaling.std)),
      constant: model.featureNames.filter((_, j) => model.scaling.constant[j]),
    },
    c: model.c,
    objective: 'minimize 0.5*||W||^2 + C * sum(logloss), intercepts not penalized, standardized features',
    coefficients: { standardized: coefficients(model.standardized), original: coefficients(model.original) },
    rows: { ...rows, predictOnly: ds.counts.predictOnly },
    skippedRows: ds.skippedExamples,
    metrics: { ...metrics, on: 'training rows' },
    warnings,
    optimizer: {
      method: 'L-BFGS',
      tolerance: DEFAULT_LBFGS.tolerance,
      ...model.optimizer,
      objectiveValue: model.objective,
    },
    seconds,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

/** Training rows (a target given) of each class, by class label. */
function trainingRowsPerClass(ds: Dataset): Record<string, number> {
  const counts = new Array<number>(ds.classes.length).fill(0);
  for (let i = 0; i < ds.rows; i++) if (ds.y[i] >= 0) counts[ds.y[i]]++;
  return Object.fromEntries(ds.classes.map((label, k) => [label, counts[k]]));
}
