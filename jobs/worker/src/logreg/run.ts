// The `logreg` task: read the CSV, fit, predict, and write predictions.csv, model.json and, last,
// _SUCCESS. A stale _SUCCESS from an earlier run is removed first, so a reader never pairs it with
// new, unfinished outputs. The log says what the run chose (delimiter, target, and why) as it goes.
import type { WorkerConfig } from '../config.ts';
import type { Log } from '../log.ts';
import { openInput } from '../io/input.ts';
import { openOutput, writeWhole, type OutputFolder } from '../io/output.ts';
import { describe } from '../io/location.ts';
import { ReadProgress, type ProgressOptions } from '../io/progress.ts';
import { delimiterName } from '../csv/delimiter.ts';
import { DatasetBuilder, type Dataset, type HeaderChoices } from './dataset.ts';
import { fitModel, predictProbabilities, type FittedModel } from './model.ts';
import { trainingMetrics, type Metrics } from './metrics.ts';
import { writePredictions } from './predictions.ts';
import { describeModel, type RunRows, type RunSeconds } from './model-json.ts';
import { describeChoice, MAX_GUESSED_CLASSES } from './target.ts';

export interface RunSummary {
  rows: RunRows;
  converged: boolean;
  accuracy: number;
  seconds: RunSeconds;
}

export interface RunOptions {
  /** When and how often reading reports progress (tests set a clock and a threshold). */
  progress?: Partial<ProgressOptions>;
}

export async function runLogreg(
  config: WorkerConfig,
  log: Log = () => {},
  options: RunOptions = {},
): Promise<RunSummary> {
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

  const builder = new DatasetBuilder({
    target: config.target,
    exclude: config.exclude,
    delimiter: config.delimiter,
    onHeader: (header) => logChoices(header, log),
  });
  const progress = new ReadProgress(input.size, log, options.progress);
  let bytesRead = 0;
  for await (const chunk of input.read()) {
    builder.push(chunk);
    bytesRead += chunk.length;
    progress.update(bytesRead, builder.rowsRead);
  }
  progress.finish(bytesRead, builder.rowsRead);
  const ds = builder.finish();
  const readSeconds = lap();
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    log(message, { severity: 'WARNING' });
  };
  if (ds.classes.length > MAX_GUESSED_CLASSES) warn(manyClasses(ds));
  log('input loaded', {
    rows: ds.rows,
    features: ds.d,
    skipped: ds.counts.skipped,
    classes: ds.classes.length,
  });

  const model = fitModel(ds, config.c);
  const fitSeconds = lap();
  log('model fitted', { ...model.optimizer });
  if (!model.optimizer.converged) {
    warn(
      `the optimizer stopped before converging (${model.optimizer.message}): the coefficients may be ` +
        'short of the optimum; a smaller REGULARIZATION_C (stronger regularization) usually converges sooner',
    );
  }

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
  const modelJson = describeModel(config, input, ds, model, metrics, rows, seconds, warnings);
  await writeWhole(output, 'model.json', 'application/json', `${JSON.stringify(modelJson, null, 2)}\n`);
  await writeSuccess(output, config, input.uri, input.generation, rows, model, metrics, seconds);
  log('outputs written', { output: output.uri, seconds });
  return { rows, converged: model.optimizer.converged, accuracy: metrics.accuracy, seconds };
}

function logChoices(header: HeaderChoices, log: Log): void {
  const how = header.delimiterChosenBy === 'DELIMITER' ? 'as DELIMITER says' : 'detected from the header';
  log(`delimiter ${delimiterName(header.delimiter)}, ${how} (${header.columns.length} columns)`, {
    delimiter: header.delimiter,
    delimiterChosenBy: header.delimiterChosenBy,
  });
  log(`target column "${header.targetName}": ${describeChoice(header.targetChosenBy)}`, {
    target: header.targetName,
    targetChosenBy: header.targetChosenBy,
  });
}

function manyClasses(ds: Dataset): string {
  return (
    `the target "${ds.targetName}" has ${ds.classes.length} classes: each gets its own coefficients, and a ` +
    `class with few rows is barely learned; if "${ds.targetName}" is a measurement rather than a class, ` +
    'logistic regression is not the model for it'
  );
}

async function writeSuccess(
  output: OutputFolder,
  config: WorkerConfig,
  inputUri: string,
  generation: string | undefined,
  rows: RunRows,
  model: FittedModel,
  metrics: Metrics,
  seconds: RunSeconds,
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
