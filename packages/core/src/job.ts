// Jobs and their states. Every change of state goes through `transition`, a pure function that
// refuses what the state machine of DESIGN.md does not allow:
//
//   RECEIVED -> LAUNCHED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED, and IGNORED for skipped events.
//   A launch that fails ends FAILED from RECEIVED; a run that ends before it was seen running goes
//   from LAUNCHED straight to its end; a failure with attempts left goes back to LAUNCHED.
import type { StorageObject } from './events.ts';
import type { JobTemplate, Target } from './routing.ts';

export type JobState = 'RECEIVED' | 'LAUNCHED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'IGNORED';
export const JOB_STATES: readonly JobState[] = [
  'RECEIVED',
  'LAUNCHED',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'IGNORED',
];
export const FINAL_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'IGNORED'];

const ALLOWED: Record<JobState, readonly JobState[]> = {
  RECEIVED: ['LAUNCHED', 'IGNORED', 'FAILED', 'CANCELLED'],
  LAUNCHED: ['RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'LAUNCHED'],
  RUNNING: ['SUCCEEDED', 'FAILED', 'CANCELLED', 'LAUNCHED'],
  FAILED: ['LAUNCHED'],
  SUCCEEDED: [],
  CANCELLED: [],
  IGNORED: [],
};

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
  | { kind: 'object'; object: StorageObject }
  | { kind: 'request'; image?: string; task?: string; args: string[]; env: Record<string, string> };

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
    history: [{ at, to: 'RECEIVED' }],
  };
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
