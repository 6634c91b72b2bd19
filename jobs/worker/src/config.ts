// The worker's settings, from command-line flags or, as a container entry point, from the environment
// the dispatcher sets (the README's "The worker" > "Settings" lists both). A flag wins over its
// variable. Pure: everything comes in as arguments.
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';
import { parseLocation, type Location } from './io/location.ts';
import { DELIMITER_CHOICES, parseDelimiter, type Delimiter } from './csv/delimiter.ts';

export const TASKS = ['logreg'] as const;
export type Task = (typeof TASKS)[number];

export interface WorkerConfig {
  task: Task;
  input: Location;
  inputGeneration?: string;
  output: Location;
  target?: string;
  exclude: string[];
  /** The field delimiter, when DELIMITER names one; else it is detected from the header. */
  delimiter?: Delimiter;
  c: number;
  jobId?: string;
  attempt: number;
}

export const USAGE = `usage: pipeline-worker --input PATH|gs://BUCKET/OBJECT --output DIR|gs://BUCKET/PREFIX/
                       [--target COLUMN] [--c NUMBER] [--exclude COL1,COL2] [--delimiter DELIM]
                       [--task logreg]
Every flag can also come from the environment: INPUT_URI, OUTPUT_URI, TARGET_COLUMN, REGULARIZATION_C,
EXCLUDE_COLUMNS, DELIMITER, TASK; and INPUT_GENERATION, JOB_ID, ATTEMPT. Without a target, the worker
takes the column "label", else the last column; DELIM is one of ${DELIMITER_CHOICES}, and without it the
worker detects the delimiter from the header.`;

export function parseWorkerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): WorkerConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        input: { type: 'string' },
        output: { type: 'string' },
        target: { type: 'string' },
        c: { type: 'string' },
        exclude: { type: 'string' },
        delimiter: { type: 'string' },
        task: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const setting = (flag: string | undefined, variable: string): string | undefined => {
    const value = flag ?? env[variable];
    return value === undefined || value === '' ? undefined : value;
  };

  const task = setting(values.task, 'TASK') ?? 'logreg';
  if (!(TASKS as readonly string[]).includes(task)) {
    throw new UsageError(`TASK "${task}" is not a task of this worker (known: ${TASKS.join(', ')})`);
  }
  const inputUri = setting(values.input, 'INPUT_URI');
  if (inputUri === undefined) throw new UsageError('no input: pass --input or set INPUT_URI');
  const outputUri = setting(values.output, 'OUTPUT_URI');
  if (outputUri === undefined) throw new UsageError('no output: pass --output or set OUTPUT_URI');

  const cText = setting(values.c, 'REGULARIZATION_C') ?? '1';
  const c = Number(cText);
  if (!Number.isFinite(c) || c <= 0)
    throw new UsageError(`--c / REGULARIZATION_C must be a positive number, got "${cText}"`);

  const generation = setting(undefined, 'INPUT_GENERATION');
  if (generation !== undefined && !/^\d{1,19}$/.test(generation)) {
    throw new UsageError(`INPUT_GENERATION must be an object generation (digits), got "${generation}"`);
  }
  const attemptText = setting(undefined, 'ATTEMPT') ?? '1';
  const attempt = Number(attemptText);
  if (!Number.isInteger(attempt) || attempt < 1)
    throw new UsageError(`ATTEMPT must be a whole number >= 1, got "${attemptText}"`);

  const excludeText = setting(values.exclude, 'EXCLUDE_COLUMNS');
  const exclude =
    excludeText === undefined
      ? []
      : excludeText
          .split(',')
          .map((name) => name.trim())
          .filter(Boolean);

  const delimiterText = setting(values.delimiter, 'DELIMITER');
  const delimiter = delimiterText === undefined ? undefined : parseDelimiter(delimiterText);
  if (delimiterText !== undefined && delimiter === undefined) {
    throw new UsageError(
      `--delimiter / DELIMITER must be one of ${DELIMITER_CHOICES} (or \\t for tab), got ${JSON.stringify(delimiterText)}; ` +
        'leave it unset to detect the delimiter from the header',
    );
  }

  const input = parseLocation(inputUri, 'input');
  return {
    task: task as Task,
    input,
    inputGeneration: generation,
    output: parseLocation(outputUri, 'output'),
    target: setting(values.target, 'TARGET_COLUMN'),
    exclude,
    delimiter,
    c,
    jobId: setting(undefined, 'JOB_ID'),
    attempt,
  };
}
