// A run its own pipeline stopped: the local pipeline shutting down (SIGINT, SIGTERM) ends the tasks
// it runs, through no fault of theirs. Such a run is neither a failure nor a cancel. The job goes
// back to the queue as the same attempt, at its place, and runs again when the pipeline runs again;
// nothing is counted against its retry budget (retry.ts counts failed and lost attempts only).
//
// The interrupted attempt's record says so until the attempt is launched again, which writes that
// attempt's record anew (one record per attempt number: reconcile.ts and the launch queue find an
// attempt by its number); the history keeps the interruption, with what was stopped.
import { ACTIVE_STATES, amend, transition, withCurrentAttempt, type Job } from './job.ts';

/**
 * `job` with its attempt `attempt` interrupted at `at`: LAUNCHED or RUNNING -> QUEUED, the same
 * attempt, keeping its queue entry (queuedAt and dueBy: its place) without any refusal backoff, and
 * with no execution; the attempt's record says `interrupted`, and when. Undefined when there is
 * nothing to interrupt: the job is not launched or running, or is at another attempt (a late or
 * repeated report changes nothing).
 */
export function interruptAttempt(job: Job, attempt: number, at: string, reason: string): Job | undefined {
  if (job.attempt !== attempt || !ACTIVE_STATES.includes(job.state)) return undefined;
  const stopped = job.execution ?? 'its launch';
  let queue = job.queue;
  if (queue !== undefined) {
    const { notBefore: _, ...entry } = queue;
    queue = {
      ...entry,
      reason: `interrupted (${reason}): it runs again, at its place, when the pipeline runs`,
    };
  }
  return transition(
    job,
    'QUEUED',
    at,
    {
      execution: undefined,
      startedAt: undefined,
      attempts: withCurrentAttempt(job, { outcome: 'interrupted', finishedAt: at }),
      ...(queue === undefined ? {} : { queue }),
    },
    `interrupted: ${reason}; ${stopped} was stopped, and attempt ${attempt} runs again, not counted as a failure`,
  );
}

/** Whether `job` waits in the queue because its pipeline stopped its current attempt. */
export function wasInterrupted(job: Job): boolean {
  const last = job.attempts.at(-1);
  return job.state === 'QUEUED' && last?.attempt === job.attempt && last.outcome === 'interrupted';
}

/**
 * An interrupted job as its pipeline finds it when it starts again, or undefined if `job` is not
 * one. Its wait for capacity starts anew at `at`, as long as its rule allows (the span from queuedAt
 * to expiresAt), since a stopped pipeline is no wait for capacity: otherwise a job interrupted
 * overnight would fail at once for its maxQueueTime. It keeps its place (dueBy). An execution
 * recorded after the interruption (a launch's answer written late) is dropped: it was stopped.
 */
export function resumeInterrupted(job: Job, at: string): Job | undefined {
  if (!wasInterrupted(job)) return undefined;
  const entry = job.queue;
  const waits =
    entry === undefined ? 0 : Math.max(0, Date.parse(entry.expiresAt) - Date.parse(entry.queuedAt));
  return amend(job, at, {
    execution: undefined,
    ...(entry === undefined
      ? {}
      : { queue: { ...entry, expiresAt: new Date(Date.parse(at) + waits).toISOString() } }),
  });
}
