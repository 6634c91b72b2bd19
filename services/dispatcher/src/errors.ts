// Errors the HTTP layer turns into answers (app.ts): RequestError into 4xx, RetryLaterError into 503.

/** A request that names something that does not exist or cannot be run: the HTTP layer says 4xx. */
export class RequestError extends Error {
  /** CONFLICT: the job's state does not allow it (cancel a finished job, retry a running one). */
  readonly code: 'NOT_FOUND' | 'INVALID' | 'CONFLICT';
  constructor(code: 'NOT_FOUND' | 'INVALID' | 'CONFLICT', message: string) {
    super(message);
    this.name = 'RequestError';
    this.code = code;
  }
}

/** Work that failed for a passing reason and was given back: the HTTP layer answers 503 so Pub/Sub redelivers. */
export class RetryLaterError extends Error {
  readonly code = 'RETRY_LATER';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryLaterError';
  }
}
