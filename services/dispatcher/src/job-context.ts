// Which job the code running now works for, across awaits (AsyncLocalStorage): set by the dispatcher
// around a job's launch, cancel and reconcile step, read by the process-level handlers (process-guard.ts)
// to say which job an error that escaped every await concerned. Node 24 runs an
// `unhandledRejection` listener in the async context in which the promise was rejected, and an
// `uncaughtException` listener in that of the callback that threw, so a library's stray rejection
// during a launch is reported with that launch's job.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Job } from '@pipeline/core';
import type { Logger } from 'pino';

export interface JobContext {
  jobId: string;
  /** bucket/name#generation, for a job made from an object. */
  object?: string;
}

const storage = new AsyncLocalStorage<JobContext>();

/** Runs `work` with `context` as the current job, for everything it starts. */
export function inJobContext<T>(context: JobContext, work: () => T): T {
  return storage.run(context, work);
}

/** The job the running code works for, if any. */
export function currentJob(): JobContext | undefined {
  return storage.getStore();
}

/** The job id and, for a job made from an object, the object: on every log line about the job. */
export function jobContextOf(job: Job): JobContext {
  const object =
    job.source.kind === 'object'
      ? `${job.source.object.bucket}/${job.source.object.name}#${job.source.object.generation}`
      : undefined;
  return { jobId: job.id, ...(object === undefined ? {} : { object }) };
}

/** `logger` for lines about `job`. */
export function jobLogger(logger: Logger, job: Job): Logger {
  return logger.child(jobContextOf(job));
}

/** Runs `work` as work for `job`: an error that escapes it to the process-level handlers names the job. */
export function inJob<T>(job: Job, work: () => Promise<T>): Promise<T> {
  return inJobContext(jobContextOf(job), work);
}
