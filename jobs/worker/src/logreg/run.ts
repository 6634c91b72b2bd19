// The `logreg` task: read the CSV, fit, predict, and write predictions.csv, model.json and, last,
// _SUCCESS. A stale _SUCCESS from an earlier run is removed first, so a reader never pairs it with
// new, unfinished outputs.
import type { WorkerConfig } from '../config.ts';
import { openInput } from '../io/input.ts';
import { openOutput, writeWhole, type OutputFolder } from '../io/output.ts';
import { describe } from '../io/location.ts';
import { DatasetBuilder, type Dataset } from './dataset.ts';
import { fitModel, predictProbabilities, type FittedModel } from './model.ts';
import { trainingMetrics, type Metrics } from './metrics.ts';
import { writePredictions } from './predictions.ts';
import { DEFAULT_LBFGS } from './lbfgs.ts';

export interface RunSummary {
  rows: { read: number; trained: number; predicted: number; skipped: number };
  converged: boolean;
  accuracy: number;
  seconds: { read: number; fit: number; predict: number; write: number; total: number };
}

export type Log = (message: string, fields?: Record<string, unknown>) => void;

export async function runLogreg(config: WorkerConfig, log: Log = () => {}): Promise<RunSummary> {
  const started = performance.now();
  const lap = (() => {
    let last = started;
    return () => {
      const now = performance.now();
      const seconds = (now - last) / 1000;
      last = now;
      return seconds;
    };
  })();

  const output = openOutput(config.output);
  await output.remove('_SUCCESS');
  const input = await openInput(config.input, config.inputGeneration);
  log('reading input', { input: input.uri, bytes: input.size, generation: input.generation });

  const builder = new DatasetBuilder({ target: config.target, exclude: config.exclude });
  for await (const chunk of input.read()) builder.push(chunk);
  const ds = builder.finish();
  const readSeconds = lap();
  log('input loaded', {
    rows: ds.rows,
    features: ds.d,
    skipped: ds.counts.skipped,
    classes: ds.classes.length,
  });

  const model = fitModel(ds, config.c);
  const fitSeconds = lap();
  log('model fitted', { ...model.optimizer });

  const probabilities = predictProbabilities(ds, model);
  const metrics = trainingMetrics(ds, probabilities.values, probabilities.columns);
  const predictSeconds = lap();

  const predictions = await output.create('predictions.csv', 'text/csv');
  try {
    await writePredictions(input, predictions, ds, probabilities);
    await predictions.commit();
  } catch (err) {
    await predictions.abort();
    throw err;
  }
  const seconds = {
    read: readSeconds,
    fit: fitSeconds,
    predict: predictSeconds,
    write: lap(),
    total: (performance.now() - started) / 1000,
  };
  const rows = {
    read: ds.counts.read,
    trained: ds.counts.trainable,
    predicted: ds.rows,
    skipped: ds.counts.skipped,
  };
  const modelJson = describeModel(config, input, ds, model, metrics, rows, seconds);
  await writeWhole(output, 'model.json', 'application/json', `${JSON.stringify(modelJson, null, 2)}\n`);
  await writeSuccess(output, config, input.uri, input.generation, rows, model, metrics, seconds);
  log('outputs written', { output: output.uri, seconds });
  return { rows, converged: model.optimizer.converged, accuracy: metrics.accuracy, seconds };
}

function describeModel(
  config: WorkerConfig,
  input: { uri: string; generation?: string; size: number },
  ds: Dataset,
  model: FittedModel,
  metrics: Metrics,
  rows: RunSummary['rows'],
  seconds: RunSummary['seconds'],
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
    target: ds.targetName,
    classes: model.classes,
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

async function writeSuccess(
  output: OutputFolder,
  config: WorkerConfig,
  inputUri: string,
  generation: string | undefined,
  rows: RunSummary['rows'],
  model: FittedModel,
  metrics: Metrics,
  seconds: RunSummary['seconds'],
): Promise<void> {
  const marker = {
    jobId: config.jobId ?? null,
    attempt: config.attempt,
    input: inputUri,
    inputGeneration: generation ?? null,
    output: describe(config.output),
    finishedAt: new Date().toISOString(),
    summary: { rows, converged: model.optimizer.converged, accuracy: metrics.accuracy, seconds },
  };
  await writeWhole(output, '_SUCCESS', 'application/json', `${JSON.stringify(marker)}\n`);
}
