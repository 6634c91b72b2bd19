// What each event does to a job: pure functions from (job, event, now) to the job to write. The
// dispatcher, the launch queue and the reconciler load a job, call one of these, and write what it
// returns with compare-and-set (a conflict calls it again on the newer job).
//
// Each function checks that the event still applies to the job as loaded: its state, and that it is
// at the attempt the event is about. When it does not (a late or repeated report, a job someone else
// moved on), it returns undefined: nothing to write. Checks that the job is still the very version a
// caller read belong to the caller, beside its compare-and-set.
import { actualCost } from './cost/actual.ts';
import type { PriceTable } from './cost/prices.ts';
import {
  ACTIVE_STATES,
  amend,
  currentBatchTask,
  FINAL_STATES,
  noted,
  transition,
  withCurrentAttempt,
  type AttemptOutcome,
  type AttemptRecord,
  type BatchTask,
  type Job,
} from './job.ts';
import type { Placement } from './placement.ts';
import { afterFailedAttempt, DEFAULT_RETRY_POLICY, describeEnd } from './retry.ts';
import { DEFAULT_QUEUE_POLICY, type RoutingConfig } from './routing/types.ts';
import { outputPrefix } from './worker-env.ts';

/** How one attempt ended, from a completion or from what the reconciler found. */
export interface AttemptResult {
  outcome: Exclude<AttemptOutcome, 'cancelled' | 'interrupted'>;
  exitCode?: number;
  startedAt?: string;
  finishedAt: string;
  error?: string;
  /** For the history: how it became known. */
  detail?: string;
}

/**
 * A routed RECEIVED job: QUEUED with its route, outputs and place in the queue (its rule's
 * maxQueueTime and deadline set when it fails and its order), or FAILED or IGNORED with why.
 * `uriOf` names an object of the output bucket.
 */
export function routed(
  job: Job,
  placement: Placement,
  at: string,
  routing: RoutingConfig,
  uriOf: (path: string) => string,
): Job {
  if (placement.kind === 'fail')
    return transition(job, 'FAILED', at, { error: placement.error, finishedAt: at }, placement.error);
  if (placement.kind === 'ignore') {
    const { reason, rule } = placement;
    return transition(job, 'IGNORED', at, { reason, rule }, reason);
  }
  const rule = routing.rules.find((r) => r.name === placement.rule);
  const policy = rule?.queue ?? DEFAULT_QUEUE_POLICY;
  const queuedMs = Date.parse(at);
  const expiresAt = new Date(queuedMs + policy.maxQueueSeconds * 1000).toISOString();
  const dueBy =
    rule?.deadlineSeconds === undefined
      ? expiresAt
      : new Date(queuedMs + Math.min(rule.deadlineSeconds, policy.maxQueueSeconds) * 1000).toISOString();
  const prefix = outputPrefix(job);
  return transition(
    job,
    'QUEUED',
    at,
    {
      reason: placement.reason,
      rule: placement.rule,
      target: placement.target,
      template: placement.template,
      retry: placement.retry,
      estimate: placement.estimate,
      ...(placement.params && { params: placement.params }),
      outputUri: uriOf(prefix),
      logsUri: uriOf(`${prefix}logs/attempt-${job.attempt}.log`),
      startedAt: undefined,
      queue: { queuedAt: at, dueBy, expiresAt, refusals: 0 },
    },
    job.attempt === 1 ? placement.reason : `attempt ${job.attempt} queued for ${placement.target}`,
  );
}

/** A QUEUED job that can never fit, or waited past its rule's maxQueueTime: FAILED with `reason`. */
export function failedInQueue(job: Job, attempt: number, at: string, reason: string): Job | undefined {
  if (job.state !== 'QUEUED' || job.attempt !== attempt) return undefined;
  return transition(job, 'FAILED', at, { error: reason, finishedAt: at }, reason);
}

/**
 * A QUEUED job admitted to launch: LAUNCHED, with a fresh record of its attempt (one record per
 * attempt number: an interrupted attempt's record is replaced).
 */
export function launching(job: Job, attempt: number, at: string, batch?: BatchTask): Job | undefined {
  if (job.state !== 'QUEUED' || job.attempt !== attempt) return undefined;
  const { target, template } = job;
  const record: AttemptRecord = {
    attempt: job.attempt,
    target: target!,
    ...(target === 'vm' ? { spot: template!.spot } : {}),
    ...(job.logsUri === undefined ? {} : { logsUri: job.logsUri }),
    launchedAt: at,
    ...(batch === undefined ? {} : { batch }),
  };
  const shape = target === 'vm' ? (template!.spot ? ' (spot)' : ' (standard)') : '';
  const inBatch = batch === undefined ? '' : ` as task ${batch.index} of ${batch.size} of batch ${batch.id}`;
  return transition(
    job,
    'LAUNCHED',
    at,
    { attempts: [...job.attempts.filter((a) => a.attempt !== job.attempt), record] },
    `launching on ${target}${shape}${inBatch}`,
  );
}

/** What a platform said it started for a launch: its execution, where it was refused first, spot or not. */
export interface Launched {
  execution: string;
  refusals?: string[];
  spot?: boolean;
}

/** The attempt's execution recorded (no change of state); undefined if it has one already. */
export function adopted(job: Job, attempt: number, at: string, launch: Launched): Job | undefined {
  if (job.attempt !== attempt || job.execution !== undefined) return undefined;
  const { execution, refusals, spot } = launch;
  return amend(job, at, {
    execution,
    attempts: withCurrentAttempt(job, {
      execution,
      ...(refusals === undefined || refusals.length === 0 ? {} : { refusals }),
      ...(spot === undefined ? {} : { spot }),
    }),
    ...(spot === undefined || job.template === undefined ? {} : { template: { ...job.template, spot } }),
  });
}

/** A launch its platform refused for good: FAILED with `error`, and so is its attempt. */
export function launchFailed(job: Job, attempt: number, at: string, error: string): Job | undefined {
  if (FINAL_STATES.includes(job.state) || job.attempt !== attempt) return undefined;
  return transition(
    job,
    'FAILED',
    at,
    {
      error,
      finishedAt: at,
      attempts: withCurrentAttempt(job, { outcome: 'failed', error, finishedAt: at }),
    },
    error,
  );
}

/** A launch that started nothing (LAUNCHED, no execution yet): only such a one may be undone. */
function unstarted(job: Job, attempt: number): boolean {
  return job.state === 'LAUNCHED' && job.attempt === attempt && job.execution === undefined;
}

/** How a launch that started nothing goes back to the queue. */
export interface Requeue {
  reason: string;
  /** Not tried again before this long after `at`; 0: at once. */
  backoffMs: number;
  /** The refusals so far; absent: as the queue entry says. */
  refusals?: number;
}

/**
 * A launch that started nothing, back to QUEUED as the same attempt, keeping its place in the queue;
 * not counted as a failure, and its attempt's record dropped (it never ran).
 */
export function requeued(job: Job, attempt: number, at: string, requeue: Requeue): Job | undefined {
  if (!unstarted(job, attempt)) return undefined;
  const { reason, backoffMs, refusals } = requeue;
  const notBefore = new Date(Date.parse(at) + backoffMs).toISOString();
  return transition(
    job,
    'QUEUED',
    at,
    {
      attempts: job.attempts.filter((a) => a.attempt !== job.attempt),
      queue: {
        ...(job.queue ?? { queuedAt: at, dueBy: at, expiresAt: at, refusals: 0 }),
        ...(backoffMs > 0 ? { notBefore } : {}),
        refusals: refusals ?? job.queue?.refusals ?? 0,
        reason,
      },
    },
    reason,
  );
}

/** A launch refused for now after its wait for capacity ran out: FAILED with `error`, its attempt dropped. */
export function refusedPastMaxQueue(job: Job, attempt: number, at: string, error: string): Job | undefined {
  if (!unstarted(job, attempt)) return undefined;
  return transition(
    job,
    'FAILED',
    at,
    { error, finishedAt: at, attempts: job.attempts.filter((a) => a.attempt !== job.attempt) },
    error,
  );
}

/** A launched task began to run: RUNNING, since `startedAt`. */
export function started(job: Job, attempt: number, startedAt: string): Job | undefined {
  if (job.attempt !== attempt || job.state !== 'LAUNCHED') return undefined;
  return transition(job, 'RUNNING', startedAt, {
    startedAt,
    attempts: withCurrentAttempt(job, { startedAt }),
  });
}

/** The job after its attempt ended, and whether the retry it was SCHEDULED for is due at once. */
export interface AttemptEnded {
  job: Job;
  retryDue: boolean;
}

/**
 * The end of attempt `attempt` at `at`: SUCCEEDED, or what its retry policy says (SCHEDULED for
 * another attempt after a backoff, maybe off spot, or FAILED). Its attempt record gets the end, and
 * the job what its attempts cost, priced with `prices`. Only the job's current attempt, while it is
 * launched or running, can end.
 */
export function endAttempt(
  job: Job,
  attempt: number,
  result: AttemptResult,
  at: string,
  prices: PriceTable,
): AttemptEnded | undefined {
  if (job.attempt !== attempt || !ACTIVE_STATES.includes(job.state)) return undefined;
  const startedAt = job.startedAt ?? result.startedAt;
  const failed = result.outcome !== 'succeeded';
  const error = failed ? (result.error ?? describeResult(result)) : undefined;
  const attempts = withCurrentAttempt(job, {
    ...(startedAt === undefined ? {} : { startedAt }),
    finishedAt: result.finishedAt,
    outcome: result.outcome,
    ...(result.exitCode === undefined ? {} : { exitCode: result.exitCode }),
    ...(error === undefined ? {} : { error }),
  });
  const ended = {
    exitCode: result.exitCode,
    finishedAt: result.finishedAt,
    startedAt,
    attempts,
    cost: actualCost({ ...job, attempts }, prices),
  };
  const why = result.detail === undefined ? '' : ` (${result.detail})`;
  if (!failed) {
    const succeeded = transition(job, 'SUCCEEDED', at, { ...ended, error: undefined }, `exit code 0${why}`);
    return { job: succeeded, retryDue: false };
  }
  const decision = afterFailedAttempt(
    { ...job, attempts },
    {
      outcome: result.outcome as Exclude<AttemptOutcome, 'succeeded' | 'interrupted'>,
      exitCode: result.exitCode,
    },
    job.retry ?? DEFAULT_RETRY_POLICY,
    at,
  );
  if (decision.action === 'fail') {
    return {
      job: transition(job, 'FAILED', at, { ...ended, error }, `${decision.detail}${why}`),
      retryDue: false,
    };
  }
  const rescheduled = transition(
    job,
    'SCHEDULED',
    at,
    {
      ...ended,
      error,
      runAt: decision.runAt,
      attempt: decision.attempt,
      execution: undefined,
      ...(job.template === undefined ? {} : { template: { ...job.template, spot: decision.spot } }),
    },
    `${decision.detail}${why}`,
  );
  return { job: rescheduled, retryDue: Date.parse(decision.runAt) <= Date.parse(at) };
}

/** The error of an attempt that ended without saying why. */
function describeResult({ outcome, exitCode }: AttemptResult): string {
  if (outcome === 'failed' || outcome === 'succeeded')
    return exitCode === undefined ? 'the attempt failed' : `exit code ${exitCode}`;
  return describeEnd({ outcome, exitCode });
}

/**
 * A job not yet ended, cancelled by request at `at` (what ran already stopped): CANCELLED; a
 * launched or running attempt is recorded as cancelled, and the job's cost so far with it.
 */
export function cancelled(job: Job, at: string, prices: PriceTable): Job {
  const running = ACTIVE_STATES.includes(job.state);
  if (!running) return transition(job, 'CANCELLED', at, { finishedAt: at }, 'cancelled by request');
  const attempts = withCurrentAttempt(job, { finishedAt: at, outcome: 'cancelled' });
  return transition(
    job,
    'CANCELLED',
    at,
    { finishedAt: at, attempts, cost: actualCost({ ...job, attempts }, prices) },
    cancelledNote(job),
  );
}

/**
 * What a cancel did to what ran the job. A task of a batch's execution cannot be stopped alone
 * (Cloud Run cancels whole executions), so it runs on and what it reports is not recorded.
 */
function cancelledNote(job: Job): string {
  const task = currentBatchTask(job);
  if (task !== undefined && job.execution !== undefined)
    return `cancelled by request; its task ${task.index} of ${job.execution} runs on with the batch's other tasks, and its end is not recorded`;
  return `cancelled by request; ${job.execution ?? 'its launch'} was stopped`;
}

/** A FAILED or CANCELLED job run again by request: RECEIVED, as the next attempt, its last end cleared. */
export function retried(job: Job, at: string): Job | undefined {
  if (job.state !== 'FAILED' && job.state !== 'CANCELLED') return undefined;
  return transition(
    job,
    'RECEIVED',
    at,
    {
      attempt: job.attempt + 1,
      execution: undefined,
      exitCode: undefined,
      error: undefined,
      finishedAt: undefined,
    },
    'retried by request',
  );
}

/** A SCHEDULED job claimed when due: RECEIVED (whoever writes this owns it and launches it). */
export function claimedWhenDue(job: Job, at: string): Job | undefined {
  if (job.state !== 'SCHEDULED') return undefined;
  return transition(job, 'RECEIVED', at, {}, `due at ${job.runAt ?? at}`);
}

/** The first time the reconciler found the attempt's platform no longer knew it (no change of state). */
export function noticedGone(job: Job, attempt: number, at: string): Job | undefined {
  if (job.attempt !== attempt) return undefined;
  return amend(job, at, { attempts: withCurrentAttempt(job, { goneAt: at }) });
}

/** `detail` noted in the history, unless it is the last thing noted there already (said once). */
export function notedOnce(job: Job, at: string, detail: string): Job | undefined {
  return job.history.at(-1)?.detail === detail ? undefined : noted(job, at, detail);
}
