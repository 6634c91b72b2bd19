// The worker's failures, each with the exit code it ends the process with. A retry can help an
// IoError (the bucket was briefly unreachable); it cannot help a UsageError or a DataError.

export class WorkerError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/** Wrong arguments or environment: a flag, a column name, a URI. Exit code 2. */
export class UsageError extends WorkerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 2, options);
    this.name = 'UsageError';
  }
}

/** The input could not be read or the outputs could not be written. Exit code 3. */
export class IoError extends WorkerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 3, options);
    this.name = 'IoError';
  }
}

/** The input was read but cannot make a model: no rows, one class, no features. Exit code 4. */
export class DataError extends WorkerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 4, options);
    this.name = 'DataError';
  }
}
