// Which job the code running now works for, across awaits (AsyncLocalStorage): set by the dispatcher
// around a job's launch, cancel and reconcile step, read by the process-level handlers (process-guard.ts)
// to say which job an error that escaped every await concerned. Node 24 runs an
// `unhandledRejection` listener in the async context in which the promise was rejected, and an
// `uncaughtException` listener in that of the callback that threw, so a library's stray rejection
// during a launch is reported with that launch's job.
import { AsyncLocalStorage } from 'node:async_hooks';

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
