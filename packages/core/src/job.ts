// Jobs and their states. Every change of state goes through `transition`, a pure function that
// refuses what this state machine (ALLOWED below; the README's "HTTP API" says it for users) does not
// allow:
//
//   RECEIVED -> QUEUED -> LAUNCHED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED, and IGNORED for
//   skipped events. RECEIVED is the claim; QUEUED is routed and waits for capacity (capacity.ts
//   decides when it may launch); a launch the platform refuses for want of capacity goes back
//   LAUNCHED -> QUEUED, keeping its place; so does a run its own pipeline stopped (interruption.ts),
//   from LAUNCHED or RUNNING, as the same attempt. A job that can never fit, or waited longer than
//   its rule's maxQueueTime, ends FAILED from QUEUED. A run that ends before it was seen running
//   goes from LAUNCHED straight to its end.
//   SCHEDULED waits for its time (runAt): a job submitted for later, or a failure with attempts left
//   waiting out its backoff. When due, whoever moves it SCHEDULED -> RECEIVED (compare-and-set) owns
//   it and launches it. A FAILED or CANCELLED job goes back to RECEIVED when someone retries it.
import type { StorageObject } from './events.ts';
import type { JobTemplate, Resources, Target } from './template.ts';
import type { RetryPolicy } from './retry.ts';
import type { CostEstimate } from './routing/cost.ts';
import type { ActualCost } from './cost/actual.ts';

export type JobState =
  | 'SCHEDULED'
  | 'RECEIVED'
  | 'QUEUED'
  | 'LAUNCHED'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELLED'
  | 'IGNORED';
export const JOB_STATES: readonly JobState[] = [
  'SCHEDULED',
  'RECEIVED',
  'QUEUED',
  'LAUNCHED',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'IGNORED',
];
export const FINAL_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'IGNORED'];

/** States in which something runs or is about to: a cancel must stop it on its platform. */
export const ACTIVE_STATES: readonly JobState[] = ['LAUNCHED', 'RUNNING'];

const ALLOWED: Record<JobState, readonly JobState[]> = {
  SCHEDULED: ['RECEIVED', 'CANCELLED', 'FAILED'],
  RECEIVED: ['QUEUED', 'IGNORED', 'FAILED', 'CANCELLED'],
  QUEUED: ['LAUNCHED', 'FAILED', 'CANCELLED'],
  LAUNCHED: ['RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'SCHEDULED', 'QUEUED'],
  RUNNING: ['SUCCEEDED', 'FAILED', 'CANCELLED', 'SCHEDULED', 'QUEUED'],
  FAILED: ['RECEIVED'],
  CANCELLED: ['RECEIVED'],
  SUCCEEDED: [],
  IGNORED: [],
};

/** The final states a job may leave: a retry takes a FAILED or CANCELLED job back to RECEIVED. */
export const RETRYABLE_STATES: readonly JobState[] = FINAL_STATES.filter((state) =>
  ALLOWED[state].includes('RECEIVED'),
);

export class IllegalTransitionError extends Error {
  readonly code = 'ILLEGAL_TRANSITION';
  readonly from: JobState;
  readonly to: JobState;
  constructor(from: JobState, to: JobState) {
    super(`a job cannot go from ${from} to ${to}`);
    this.name = 'IllegalTransitionError';
    this.from = from;
    this.to = to;
  }
}

export function canTransition(from: JobState, to: JobState): boolean {
  return ALLOWED[from].includes(to);
}

/** What started the job: an object version, or a request for a container run with no input file. */
export type JobSource =
  | {
      kind: 'object';
      object: StorageObject;
      /** Parameters a request gave this run of the object (POST /jobs "params"), over its metadata's. */
      params?: Record<string, string>;
    }
  | {
      kind: 'request';
      image?: string;
      task?: string;
      args: string[];
      env: Record<string, string>;
      /** What the request said it needs, for routing when it is launched (later, if scheduled). */
      declared?: Resources;
    };

/**
 * How one attempt ended. `lost`: its platform no longer knows it and no completion arrived.
 * `interrupted`: its own pipeline stopped it (interruption.ts); the same attempt runs again.
 */
export type AttemptOutcome =
  'succeeded' | 'failed' | 'preempted' | 'timed-out' | 'lost' | 'cancelled' | 'interrupted';

/** One launch of a job: each has its own execution, logs and end. */
export interface AttemptRecord {
  attempt: number;
  target: Target;
  /** On a VM: whether it ran on spot capacity. */
  spot?: boolean;
  execution?: string;
  logsUri?: string;
  launchedAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  outcome?: AttemptOutcome;
  error?: string;
  /** When the reconciler first found its platform no longer knew it. */
  goneAt?: string;
  /** Where the launch was refused before it ran (a zone out of capacity) and why. */
  refusals?: string[];
  /** On Cloud Run, as one task of a batch's execution (batch-gathering.ts): which batch, which task. */
  batch?: BatchTask;
}

/** A job's place in a batch: the batch's id, its task index in the execution, and the batch's size. */
export interface BatchTask {
  id: string;
  index: number;
  size: number;
}

/** The batch task of the job's current attempt, if it runs as one. */
export function currentBatchTask(job: Job): BatchTask | undefined {
  return job.attempts?.find((a) => a.attempt === job.attempt)?.batch;
}

/** A job's place in the queue: set when it is first QUEUED, kept while it waits and after. */
export interface QueueEntry {
  /** When it first joined the queue; a refused launch keeps it, so the job keeps its place. */
  queuedAt: string;
  /** Its order: the earliest first (capacity.ts, queueDueBy). */
  dueBy: string;
  /** When it fails if it has not launched (its rule's maxQueueTime). */
  expiresAt: string;
  /** After a refused launch: not tried again before this time. */
  notBefore?: string;
  /** How many launches the platforms refused for now (429, quota, stockout). */
  refusals: number;
  /** What it waits for, as last known; GET /capacity and the job list say it live. */
  reason?: string;
}

/** A repeating job: each occurrence is a job of its own, made when the previous one is launched. */
export interface JobSchedule {
  /** Five fields, minute hour day-of-month month day-of-week, in UTC (see cron.ts). */
  cron: string;
  /** The id shared by every occurrence; the next occurrence's id derives from it and its time. */
  seriesId: string;
}

export interface JobHistoryEntry {
  at: string;
  from?: JobState;
  to: JobState;
  detail?: string;
}

export interface Job {
  id: string;
  state: JobState;
  /** Incremented by every change; the ledger's compare-and-set checks it. */
  version: number;
  source: JobSource;
  /** Why it was routed (or ignored) as it was. */
  reason?: string;
  rule?: string;
  target?: Target;
  template?: JobTemplate;
  /**
   * Per-job parameters (object metadata pipeline-param-NAME, or a request's "params"), as the rule
   * allowed them: the task gets each as an environment variable, over the template's env.
   */
  params?: Record<string, string>;
  /** The rule's retry policy, kept from routing so that a later change of config cannot strand it. */
  retry?: RetryPolicy;
  attempt: number;
  /** What runs it: a Cloud Run execution, an instance name, or a local process id. */
  execution?: string;
  outputUri?: string;
  exitCode?: number;
  /** Why it failed: the launcher's error, or the tail of the task's stderr. */
  error?: string;
  logsUri?: string;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** When a SCHEDULED job is due. */
  runAt?: string;
  schedule?: JobSchedule;
  /** What routing expected: where, how long, how much, and the other places it priced. */
  estimate?: CostEstimate;
  /** What its attempts cost, from their measured run times (set when it ends). */
  cost?: ActualCost;
  /** Every launch so far, oldest first; the last is the current attempt. */
  attempts: AttemptRecord[];
  /** Its place in the queue (see QueueEntry). */
  queue?: QueueEntry;
  history: JobHistoryEntry[];
}

export type JobChanges = Partial<
  Omit<Job, 'id' | 'state' | 'version' | 'source' | 'createdAt' | 'updatedAt' | 'history'>
>;

/** The job after a change of state; throws IllegalTransitionError if the state machine forbids it. */
export function transition(
  job: Job,
  to: JobState,
  at: string,
  changes: JobChanges = {},
  detail?: string,
): Job {
  if (!canTransition(job.state, to)) throw new IllegalTransitionError(job.state, to);
  return {
    ...job,
    ...changes,
    state: to,
    version: job.version + 1,
    updatedAt: at,
    history: [...job.history, { at, from: job.state, to, ...(detail === undefined ? {} : { detail }) }],
  };
}

export function newJob(id: string, source: JobSource, at: string): Job {
  return {
    id,
    state: 'RECEIVED',
    version: 1,
    source,
    attempt: 1,
    createdAt: at,
    updatedAt: at,
    attempts: [],
    history: [{ at, to: 'RECEIVED' }],
  };
}

/** A job that waits until `runAt` (a submission for later, or one occurrence of a schedule). */
export function newScheduledJob(
  id: string,
  source: JobSource,
  at: string,
  runAt: string,
  schedule?: JobSchedule,
): Job {
  return {
    ...newJob(id, source, at),
    state: 'SCHEDULED',
    runAt,
    ...(schedule === undefined ? {} : { schedule }),
    history: [{ at, to: 'SCHEDULED', detail: `due at ${runAt}` }],
  };
}

/** The job with its current attempt's record changed (the last one, if it is the job's attempt). */
export function withCurrentAttempt(job: Job, changes: Partial<AttemptRecord>): AttemptRecord[] {
  const attempts = job.attempts ?? [];
  const last = attempts[attempts.length - 1];
  if (last === undefined || last.attempt !== job.attempt) return attempts;
  return [...attempts.slice(0, -1), { ...last, ...changes }];
}

/** The job with changes that are not a change of state (an execution name, say); bumps the version. */
export function amend(job: Job, at: string, changes: JobChanges): Job {
  return { ...job, ...changes, version: job.version + 1, updatedAt: at };
}

/**
 * A claim whose dispatcher died: the job is still RECEIVED and was last written more than `leaseMs`
 * before `at`. Its new claimer gets it back through `takeOver`.
 */
export function claimLeaseRanOut(existing: Job, at: string, leaseMs: number): boolean {
  return existing.state === 'RECEIVED' && Date.parse(at) - Date.parse(existing.updatedAt) > leaseMs;
}

/** The job as a caller that takes over a claim past its lease writes it (compare-and-set on its version). */
export function takeOver(existing: Job, at: string): Job {
  return {
    ...existing,
    version: existing.version + 1,
    updatedAt: at,
    history: [
      ...existing.history,
      { at, to: 'RECEIVED', detail: 'claim taken over after its lease ran out' },
    ],
  };
}

/** A finished run, as the duration estimator learns from it. */
export interface FinishedRun {
  inputBytes: number;
  seconds: number;
  target: Target;
}

/** How long a SUCCEEDED job's last attempt ran, on what, for how many input bytes; undefined if unknown. */
export function finishedRunOf(job: Job): FinishedRun | undefined {
  const last = job.attempts?.at(-1);
  if (job.state !== 'SUCCEEDED' || last === undefined || last.outcome !== 'succeeded') return undefined;
  const started = Date.parse(last.startedAt ?? '');
  const finished = Date.parse(last.finishedAt ?? '');
  if (!(finished >= started)) return undefined;
  return {
    inputBytes: job.source.kind === 'object' ? job.source.object.size : 0,
    seconds: (finished - started) / 1000,
    target: last.target,
  };
}

/** The job with a note in its history and no change of state (a success whose pointer did not move). */
export function noted(job: Job, at: string, detail: string): Job {
  return {
    ...job,
    version: job.version + 1,
    updatedAt: at,
    history: [...job.history, { at, to: job.state, detail }],
  };
}
