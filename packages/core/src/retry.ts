// What happens after an attempt ends without success: another attempt (after a backoff, maybe on a
// standard VM instead of spot) or the end of the job. Pure; each routing rule carries its policy,
// like the lifecycle policies of Batch: which exit codes retry, how often, how long to wait.
//
// Failures and preemptions are counted apart. A preemption is not the task's fault: it has its own,
// larger budget, and after `spotFallbackAfter` of them the job moves from spot to a standard VM, which
// is not preempted. A timed-out attempt is not retried (it would time out again), nor is a cancelled one.
import type { AttemptOutcome, AttemptRecord, Job } from './job.ts';
import { formatDuration } from './format.ts';

export interface RetryPolicy {
  /** Attempts that may fail (not counting preemptions) before the job is FAILED; 1 never retries. */
  maxAttempts: number;
  /** The wait before the first retry; doubled (by `backoffMultiplier`) for each later one. */
  backoffSeconds: number;
  backoffMultiplier: number;
  maxBackoffSeconds: number;
  /** When given, only these exit codes retry. */
  retryExitCodes?: number[];
  /** These exit codes never retry (the worker's 2, a usage error, and 4, bad data, by default). */
  noRetryExitCodes: number[];
  /** Preemptions tolerated before the job is FAILED. */
  maxPreemptions: number;
  /** After this many preemptions on spot, the next attempts run on standard VMs. */
  spotFallbackAfter: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 3,
  backoffSeconds: 30,
  backoffMultiplier: 2,
  maxBackoffSeconds: 600,
  noRetryExitCodes: [2, 4],
  maxPreemptions: 6,
  spotFallbackAfter: 3,
};

/**
 * How an attempt ended, as the completion or the reconciler saw it. An interrupted attempt did not
 * end: it runs again as itself (interruption.ts), so it never comes here.
 */
export interface AttemptEnd {
  outcome: Exclude<AttemptOutcome, 'succeeded' | 'interrupted'>;
  exitCode?: number;
}

export type RetryDecision =
  | { action: 'retry'; attempt: number; runAt: string; spot: boolean; detail: string }
  | { action: 'fail'; detail: string };

/**
 * The next step for a job whose current attempt ended as `end`. `attempts` must already hold the
 * ended attempt's record with its outcome.
 */
export function afterFailedAttempt(
  job: Pick<Job, 'attempt' | 'attempts' | 'target' | 'template'>,
  end: AttemptEnd,
  policy: RetryPolicy,
  now: string,
): RetryDecision {
  const what = describeEnd(end);
  if (end.outcome === 'cancelled')
    return { action: 'fail', detail: `${what}: cancelled jobs are not retried` };
  if (end.outcome === 'timed-out') return { action: 'fail', detail: `${what}: a timeout is not retried` };
  const attempts: AttemptRecord[] = job.attempts;
  const preemptions = attempts.filter((a) => a.outcome === 'preempted').length;
  const failures = attempts.filter((a) => a.outcome === 'failed' || a.outcome === 'lost').length;
  const spotNow = job.target === 'vm' && job.template?.spot === true;
  if (end.outcome === 'preempted') {
    if (preemptions > policy.maxPreemptions) {
      return {
        action: 'fail',
        detail: `${what}: ${preemptions} preemptions, more than the ${policy.maxPreemptions} allowed`,
      };
    }
    const fallBack = spotNow && preemptions >= policy.spotFallbackAfter;
    return {
      action: 'retry',
      attempt: job.attempt + 1,
      runAt: now, // a preemption is not the task's fault: no backoff
      spot: spotNow && !fallBack,
      detail: fallBack
        ? `${what} (${preemptions} preemptions): retrying at once on a standard VM`
        : `${what} (${preemptions} of ${policy.maxPreemptions} preemptions allowed): retrying at once`,
    };
  }
  if (end.exitCode !== undefined) {
    if (policy.noRetryExitCodes.includes(end.exitCode)) {
      return { action: 'fail', detail: `${what}: exit code ${end.exitCode} is not retried` };
    }
    if (policy.retryExitCodes !== undefined && !policy.retryExitCodes.includes(end.exitCode)) {
      return {
        action: 'fail',
        detail: `${what}: only exit codes ${policy.retryExitCodes.join(', ')} are retried`,
      };
    }
  }
  if (failures >= policy.maxAttempts) {
    return { action: 'fail', detail: `${what}: ${failures} of ${policy.maxAttempts} attempts failed` };
  }
  const wait = backoffSeconds(failures, policy);
  return {
    action: 'retry',
    attempt: job.attempt + 1,
    runAt: new Date(Date.parse(now) + wait * 1000).toISOString(),
    spot: spotNow,
    detail: `${what} (failure ${failures} of ${policy.maxAttempts}): retrying ${wait === 0 ? 'at once' : `in ${formatDuration(wait)}`}`,
  };
}

/** The wait before the retry that follows the `failures`-th failure (1-based). */
export function backoffSeconds(failures: number, policy: RetryPolicy): number {
  const wait = policy.backoffSeconds * policy.backoffMultiplier ** Math.max(0, failures - 1);
  return Math.min(policy.maxBackoffSeconds, Math.round(wait));
}

/** How an attempt ended, for people: "the VM was preempted". */
export function describeEnd(end: AttemptEnd): string {
  switch (end.outcome) {
    case 'failed':
      return end.exitCode === undefined
        ? 'the attempt failed'
        : `the attempt failed with exit code ${end.exitCode}`;
    case 'preempted':
      return 'the VM was preempted';
    case 'lost':
      return 'the attempt ended without a completion';
    case 'timed-out':
      return 'the attempt ran past its timeout';
    case 'cancelled':
      return 'the attempt was cancelled';
  }
}
