// The ports: what the dispatcher needs from the world, as interfaces. Google Cloud and the local mode
// each provide adapters (the README's "The pipeline on a laptop" tables the local ones, and "The
// dispatcher on Google Cloud" lists the cloud ones); the domain depends on nothing else.
import type { StorageObject } from './events.ts';
import type { Job, JobState } from './job.ts';
import type { Target } from './template.ts';
import type { CapacityRecord } from './capacity.ts';
import type { JobEvent } from './job-events.ts';

export interface BlobStore {
  /** The current version of an object, or undefined if there is none. */
  stat(bucket: string, name: string): Promise<StorageObject | undefined>;
  /** How a task addresses an object or a prefix: gs://bucket/name, or a local path in local mode. */
  uri(bucket: string, name: string): string;
  /**
   * Part of an object named by its `uri` (a log): the bytes from `offset` on, at most `maxBytes`,
   * and the object's whole size; undefined if there is no such object.
   */
  read(uri: string, offset: number, maxBytes: number): Promise<{ data: Buffer; size: number } | undefined>;
  /** The objects whose names start with `prefix`, by name, at most `limit` (a job's outputs). */
  list(bucket: string, prefix: string, limit: number): Promise<ListedObject[]>;
  /** A small object whole, with its generation (a pointer such as _LATEST); undefined if there is none. */
  get(bucket: string, name: string): Promise<{ data: Buffer; generation: string } | undefined>;
  /**
   * Writes `data` as `name` only if the object is still at generation `ifGeneration` ('0': only if
   * there is none): compare-and-set. False when another writer changed it first.
   */
  putIf(
    bucket: string,
    name: string,
    data: Buffer,
    contentType: string,
    ifGeneration: string,
  ): Promise<boolean>;
}

export interface ListedObject {
  /** The whole name in its bucket. */
  name: string;
  size: number;
  updated?: string;
  contentType?: string;
}

export interface ClaimResult {
  /** True when this caller now owns the job: it created it, or took over a claim past its lease. */
  claimed: boolean;
  job: Job;
}

export interface JobPage {
  jobs: Job[];
  nextPageToken?: string;
}

export interface Ledger {
  /**
   * Creates the job if no job has its id: that is the claim. A job that exists is returned unclaimed,
   * unless it is still RECEIVED and was last updated more than `leaseMs` ago (its claimer died):
   * then it is taken over, atomically, by exactly one caller.
   */
  claim(job: Job, leaseMs: number, events?: readonly JobEvent[]): Promise<ClaimResult>;
  /**
   * Stores `next` only if the stored job is still at version `next.version - 1` (compare-and-set).
   * `events` (job-events.ts, eventsFor) go into the outbox in the same atomic write: stored if and
   * only if the job is. A claim stores its events only when it creates the job.
   */
  update(next: Job, events?: readonly JobEvent[]): Promise<boolean>;
  /** The outbox: events stored with their job changes and not yet published, oldest first. */
  pendingEvents(limit: number): Promise<JobEvent[]>;
  /** Removes published events from the outbox; ids no longer there are not an error. */
  markPublished(eventIds: readonly string[]): Promise<void>;
  get(id: string): Promise<Job | undefined>;
  /**
   * The jobs whose id starts with `prefix` (non-empty, a job id's lowercase hex), by id, at most
   * `limit`: what a short id (the dashboard's, one typed into the CLI) names, and what else it could.
   */
  withIdPrefix(prefix: string, limit: number): Promise<Job[]>;
  /** Newest first; optionally only one state. */
  list(query: { state?: JobState; limit: number; pageToken?: string }): Promise<JobPage>;
  /** The newest SUCCEEDED jobs routed by `rule`, at most `limit`: what duration estimates learn from. */
  succeeded(rule: string, limit: number): Promise<Job[]>;
  /** The head of the queue: QUEUED jobs, earliest `queue.dueBy` first, at most `limit`. */
  queued(limit: number): Promise<Job[]>;
  /** The shared capacity record (capacity.ts); EMPTY_CAPACITY before the first write. */
  readCapacity(): Promise<CapacityRecord>;
  /** Stores `next` only if the stored record is still at version `next.version - 1` (compare-and-set). */
  writeCapacity(next: CapacityRecord): Promise<boolean>;
}

export interface LaunchRequest {
  job: Job;
  target: Target;
  /** The task's environment (worker-env.ts): the pipeline's variables, the job's params, the template's. */
  env: Record<string, string>;
  args: string[];
  /** Where the task's stdout and stderr go, when the platform does not keep them itself. */
  logsUri: string;
}

/** What a platform says of one execution, for the reconciler. */
export type RunStatus =
  /** Queued, starting or running. */
  | { kind: 'running' }
  /** It ended; the platform knows how. */
  | { kind: 'ended'; exitCode: number; finishedAt?: string; preempted?: boolean; error?: string }
  /** The platform no longer knows it (a VM that deleted itself, a process of an earlier dispatcher). */
  | { kind: 'gone' }
  /** Asking failed; nothing can be concluded this time. */
  | { kind: 'unknown'; reason: string };

/** What a launch started, and where it was refused on the way (a VM's zones out of capacity). */
export interface LaunchResult {
  execution: string;
  /** For the attempt's record: where it was refused before it ran, like "us-central1-a: ZONE_RESOURCE_POOL_EXHAUSTED". */
  refusals?: string[];
  /** On a VM: whether it got spot capacity (it may fall back to standard where its rule allows). */
  spot?: boolean;
}

/** What a launcher's platform holds for one attempt of a job, looked for after an ambiguous launch. */
export type FoundLaunch =
  /** It runs (or ran): this is its execution. */
  | { kind: 'found'; execution: string }
  /** Certainly not there: launching it again cannot make a second run. */
  | { kind: 'absent' }
  /** Looking failed; nothing can be concluded this time. */
  | { kind: 'unknown'; reason: string };

/**
 * One execution of many tasks (Cloud Run only): task i runs `jobs[i]`, whose environment it reads
 * from entry i of the manifest at `manifestUri` (batch-manifest.ts). The jobs share the args and the
 * timeout (batchKeyOf).
 */
export interface BatchLaunchRequest {
  batchId: string;
  manifestUri: string;
  jobs: Job[];
  args: string[];
  timeoutSeconds?: number;
}

export interface Launcher {
  /** Starts the task and returns what runs it; does not wait for the task. Throws LaunchError. */
  launch(request: LaunchRequest): Promise<LaunchResult>;
  /**
   * Starts one execution for a batch, one task per job; absent on a platform without batches (a VM,
   * local processes), where each job of a batching rule is launched alone. Throws LaunchError.
   */
  launchBatch?(request: BatchLaunchRequest): Promise<LaunchResult>;
  /**
   * Looks for what a launch of `job`'s current attempt started, when its answer was lost (a timeout,
   * a reset connection, a dispatcher that died between writing LAUNCHED and the answer). For a job
   * launched as a batch's task (currentBatchTask), the batch's execution.
   */
  find(job: Job): Promise<FoundLaunch>;
  /**
   * What the platform says of an execution this launcher started (its `execution`); with `task`, of
   * that task of a batch's execution only (its index).
   */
  inspect(execution: string, task?: number): Promise<RunStatus>;
  /** Stops an execution; one that already ended or is gone is not an error. */
  cancel(execution: string): Promise<void>;
}

/**
 * A launch that did not start anything, as far as the launcher knows. `retryable`: a passing condition
 * (quota, rate limit, no capacity in the zone, unavailable), so the job waits in the queue and is
 * tried again; otherwise the request itself is wrong and trying again cannot help.
 * `ambiguous`: the request may have reached the platform and started the task before its answer was
 * lost (a timeout, a reset connection, a 5xx after sending): the launch must be looked for
 * (Launcher.find) before it is made again. `capacity`: the refusal says the platform is full (429,
 * RESOURCE_EXHAUSTED, QUOTA_EXCEEDED, a stockout), not that the request was wrong.
 */
export class LaunchError extends Error {
  readonly code = 'LAUNCH_FAILED';
  readonly retryable: boolean;
  readonly ambiguous: boolean;
  readonly capacity: boolean;
  constructor(
    message: string,
    retryable: boolean,
    options?: { cause?: unknown; ambiguous?: boolean; capacity?: boolean },
  ) {
    super(message, options);
    this.name = 'LaunchError';
    this.retryable = retryable;
    this.ambiguous = options?.ambiguous ?? false;
    this.capacity = options?.capacity ?? false;
  }
}

/** The end of one attempt of a job, as its platform reports it. */
export interface Completion {
  jobId: string;
  attempt: number;
  exitCode: number;
  startedAt?: string;
  finishedAt: string;
  preempted?: boolean;
  /** Why it failed, for people: a reason, or the tail of stderr. */
  error?: string;
}

export interface EventPublisher {
  publish(topic: string, data: unknown, attributes?: Record<string, string>): Promise<string>;
}

/** A message that reached the dead-letter topic after its subscription gave up delivering it. */
export interface DeadLetter {
  /** The dead-letter message's id; replay names it. */
  id: string;
  publishTime: string;
  /** The subscription that gave up on it (CloudPubSubDeadLetterSourceSubscription). */
  sourceSubscription?: string;
  /** How often it was delivered there (CloudPubSubDeadLetterSourceDeliveryCount). */
  deliveryAttempts?: number;
  /** Why, for people: what the dispatcher makes of the message now. */
  reason: string;
  attributes: Record<string, string>;
  /** The message's data as text, cut to 2 KiB. */
  data: string;
}

export interface DeadLetterQueue {
  /** Up to `limit` dead letters; listing does not consume them. */
  list(limit: number): Promise<DeadLetter[]>;
  /**
   * Publishes the dead letter again to the topic its subscription reads, then removes it from the
   * dead-letter subscription. Undefined if no dead letter has this id.
   */
  replay(id: string): Promise<{ topic: string; messageId: string } | undefined>;
}
