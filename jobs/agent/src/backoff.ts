// Retries for the agent's calls to the metadata server, which answers 503 now and then (during a
// live migration, or while the VM boots): a passing failure is tried again with a growing pause, so
// the agent neither gives up on a blip nor dies of it.

export interface BackoffOptions {
  /** Tries in all, the first included; default 8 (about 1.5 minutes of pauses at most). */
  tries?: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** An error for which another try cannot help (a 404: the key is not set). Default: none. */
  isFinal?: (err: unknown) => boolean;
  onRetry?: (err: unknown, delayMs: number) => void;
  signal?: AbortSignal;
}

/** The pause before try number `retry` (1 for the first retry): doubling from firstDelayMs, at most maxDelayMs. */
export function backoffDelay(retry: number, firstDelayMs = 500, maxDelayMs = 15_000): number {
  return Math.min(maxDelayMs, firstDelayMs * 2 ** (retry - 1));
}

export async function withBackoff<T>(work: () => Promise<T>, options: BackoffOptions = {}): Promise<T> {
  const tries = options.tries ?? 8;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= tries || options.isFinal?.(err) === true || options.signal?.aborted === true) throw err;
      const delay = backoffDelay(attempt, options.firstDelayMs, options.maxDelayMs);
      options.onRetry?.(err, delay);
      await pause(delay, options.signal);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
