// The reconciler's decisions, pure: what to do with a job that is not final, given the time and, for
// a job that runs, what its platform says. The dispatcher's reconcile pass (POST /reconcile, every
// minute from Cloud Scheduler; a timer in local mode) lists the jobs, asks, and carries these out with
// compare-and-set writes, so two passes at once do each thing once.
import { claimLeaseRanOut, type Job } from './job.ts';
import type { RunStatus } from './ports.ts';
import type { AttemptEnd } from './retry.ts';

export interface ReconcileSettings {
  /** A RECEIVED claim older than this is taken over. */
  leaseMs: number;
  /**
   * A launch that recorded no execution this long after it began has lost its answer (the runJob
   * call is bounded well below this) or its dispatcher died: it is looked for on its platform.
   */
  launchAnswerMs: number;
  /** A task's timeout when its template sets none. */
  defaultTimeoutSeconds: number;
  /** Allowed beyond the timeout before the job is failed: boot, image pull, uploads, the last report. */
  deadlineGraceSeconds: number;
  /**
   * How long a run must have been gone before it is judged: a VM agent publishes its completion and
   * then deletes its VM, so the platform may forget a run a little before its report arrives.
   */
  goneGraceSeconds: number;
}

/**
 * A task's timeout when its template sets none: what a VM is given to run (the Compute launcher) and
 * what the reconciler and the reaper judge a run by.
 */
export const DEFAULT_TASK_TIMEOUT_SECONDS = 24 * 3600;

export const DEFAULT_RECONCILE_SETTINGS: ReconcileSettings = {
  leaseMs: 10 * 60 * 1000,
  launchAnswerMs: 30 * 1000,
  defaultTimeoutSeconds: DEFAULT_TASK_TIMEOUT_SECONDS,
  deadlineGraceSeconds: 15 * 60,
  goneGraceSeconds: 3 * 60,
};

/** What a pass does with a job, before asking any platform. */
export type ReconcileStep =
  | { step: 'launch-due' }
  | { step: 'take-over' }
  | { step: 'inspect'; execution: string }
  /** LAUNCHED with no execution, past launchAnswerMs: look for it (Launcher.find); `at`: when it may be. */
  | { step: 'find-launch' }
  | { step: 'find-launch-later'; at: string }
  | { step: 'close'; end: AttemptEnd; detail: string }
  | { step: 'none' };

export function reconcileStep(job: Job, now: string, settings: ReconcileSettings): ReconcileStep {
  switch (job.state) {
    case 'SCHEDULED':
      return job.runAt !== undefined && Date.parse(job.runAt) <= Date.parse(now)
        ? { step: 'launch-due' }
        : { step: 'none' };
    case 'RECEIVED':
      return claimLeaseRanOut(job, now, settings.leaseMs) ? { step: 'take-over' } : { step: 'none' };
    case 'LAUNCHED':
    case 'RUNNING': {
      if (job.execution !== undefined) return { step: 'inspect', execution: job.execution };
      // Its launcher never recorded what runs it: the dispatcher died between writing LAUNCHED and
      // the launch's answer, the answer was lost, or the launch is still under way. Once the launch's
      // answer cannot come any more, the platform is asked: found, adopted; absent, launched again.
      const checkAt = Date.parse(currentLaunchedAt(job)) + settings.launchAnswerMs;
      return Date.parse(now) >= checkAt
        ? { step: 'find-launch' }
        : { step: 'find-launch-later', at: new Date(checkAt).toISOString() };
    }
    default:
      return { step: 'none' };
  }
}

/** What a running job's platform status means for it; undefined: leave it be. */
export type StatusVerdict =
  | { verdict: 'succeeded'; exitCode: 0; finishedAt?: string; detail: string }
  | { verdict: 'ended'; end: AttemptEnd; finishedAt?: string; error: string; detail: string }
  /** The platform forgot it: succeeded if its outputs are complete (_SUCCESS), else lost. */
  | { verdict: 'gone'; detail: string }
  /** First seen gone: note the time on the attempt, and judge it in a later pass. */
  | { verdict: 'gone-noticed' }
  | { verdict: 'timed-out'; detail: string };

export function judgeStatus(
  job: Job,
  status: RunStatus,
  now: string,
  settings: ReconcileSettings,
): StatusVerdict | undefined {
  if (status.kind === 'ended') {
    if (status.exitCode === 0) {
      return {
        verdict: 'succeeded',
        exitCode: 0,
        finishedAt: status.finishedAt,
        detail: 'the platform reports exit code 0; its completion never arrived',
      };
    }
    const end: AttemptEnd = status.preempted
      ? { outcome: 'preempted', exitCode: status.exitCode }
      : { outcome: 'failed', exitCode: status.exitCode };
    return {
      verdict: 'ended',
      end,
      finishedAt: status.finishedAt,
      error: status.error ?? (status.preempted ? 'the VM was preempted' : `exit code ${status.exitCode}`),
      detail: `the platform reports ${status.preempted ? 'a preemption' : `exit code ${status.exitCode}`}; its completion never arrived`,
    };
  }
  if (status.kind === 'gone') {
    const goneAt = job.attempts?.find((a) => a.attempt === job.attempt)?.goneAt;
    if (goneAt === undefined) return { verdict: 'gone-noticed' };
    if (Date.parse(now) - Date.parse(goneAt) < settings.goneGraceSeconds * 1000) return undefined;
    return {
      verdict: 'gone',
      detail: `${job.execution ?? 'its execution'} no longer exists and no completion arrived`,
    };
  }
  const deadline = deadlineOf(job, settings);
  if (Date.parse(now) > Date.parse(deadline)) {
    return { verdict: 'timed-out', detail: `still not ended at its deadline ${deadline}` };
  }
  return undefined;
}

/** When the current attempt must have ended: its launch, plus its timeout, plus the grace. */
export function deadlineOf(job: Job, settings: ReconcileSettings): string {
  const timeout = job.template?.timeoutSeconds ?? settings.defaultTimeoutSeconds;
  return new Date(
    Date.parse(currentLaunchedAt(job)) + (timeout + settings.deadlineGraceSeconds) * 1000,
  ).toISOString();
}

function currentLaunchedAt(job: Job): string {
  const record = job.attempts?.find((a) => a.attempt === job.attempt);
  return record?.launchedAt ?? job.updatedAt;
}
