// Intake and bookkeeping, the same on Google Cloud and in local mode: parse, claim in the ledger,
// route, launch, record; then the end of each attempt (retry or not), cancel, retry and logs.
// Decisions come from @pipeline/core, and so does every job it writes (transitions.ts): this file
// only loads a job, asks core for the next one, and writes it with compare-and-set, retried on
// conflict (job-writes.ts). The reconcile pass is a peer of this (reconciler.ts), built beside it.
import { randomBytes } from 'node:crypto';
import {
  ACTIVE_STATES,
  cancelled as cancelledJob,
  claimedWhenDue,
  currentBatchTask,
  DEFAULT_PRICES,
  DEFAULT_RECONCILE_SETTINGS,
  endAttempt as endedAttempt,
  placeJob,
  FINAL_STATES,
  RETRYABLE_STATES,
  isJobId,
  jobIdFor,
  notedOnce,
  outputPrefix,
  writtenOutputPrefix,
  paramsRunId,
  newJob,
  newScheduledJob,
  nextCronTime,
  occurrenceId,
  parseCron,
  retried,
  routed,
  started,
  takeOver,
  type AttemptEnded,
  type AttemptResult,
  type Placement,
  type PriceTable,
  type BlobStore,
  type Completion,
  type Job,
  type CloudRunJobShape,
  type JobSource,
  type Launcher,
  type Ledger,
  type ReconcileSettings,
  type Resources,
  type RoutingConfig,
  type StorageEvent,
  type StorageObject,
  type Target,
} from '@pipeline/core';
import type { Logger } from 'pino';
import { RequestError, RetryLaterError } from './errors.ts';
import { moveLatestPointer } from './latest-pointer.ts';
import type { LogQuery, LogRead } from './job-logs.ts';
import { DurationEstimates } from './estimates.ts';
import { EventOutbox, OutboxLedger, type JobEventSink } from './event-outbox.ts';
import { inJob, jobLogger } from './job-context.ts';
import { claimJob, MAX_CONFLICT_RETRIES, mutate, writeJob } from './job-writes.ts';
import { LaunchQueue, type CapacitySource } from './launch-queue.ts';

export const DEFAULT_LEASE_MS = DEFAULT_RECONCILE_SETTINGS.leaseMs;
/**
 * How long a push or a completion drains the queue, at most, before it answers: long enough to wait
 * out the spacing of runJob calls (1.1 s at the default 60 per minute), well inside an ack deadline.
 */
const REQUEST_DRAIN_MS = 3_000;

export interface DispatcherPorts {
  ledger: Ledger;
  blobs: BlobStore;
  launchers: Record<Target, Launcher>;
  routing: RoutingConfig;
  /** What the Cloud Run job is defined with (config's cloudRunJob); absent: what each job asks. */
  cloudRunJob?: CloudRunJobShape;
  outputBucket: string;
  logger: Logger;
  leaseMs?: number;
  /**
   * Deadlines and leases of the reconcile pass; `leaseMs` above wins for the lease. The dispatcher
   * claims with that lease; its reconciler is built with the same settings (`settings`).
   */
  reconcile?: Partial<ReconcileSettings>;
  /** What bounds launches (limits, quotas); absent: nothing does. */
  capacity?: CapacitySource;
  /**
   * Where job events go (event-outbox.ts): the job-events topic, or local mode's file and stream.
   * Absent: no events are stored or published.
   */
  events?: JobEventSink;
  now?: () => Date;
}

export type Intake =
  | { outcome: 'created'; job: Job }
  | { outcome: 'duplicate'; job: Job }
  | { outcome: 'skipped'; reason: string };

export { RequestError, RetryLaterError } from './errors.ts';

export interface ContainerRequest {
  image?: string;
  task?: string;
  args: string[];
  env: Record<string, string>;
  declared: Resources;
}

/** An object to process by request: its current version or one generation, with parameters or none. */
export interface ObjectRequest {
  bucket: string;
  name: string;
  generation?: string;
  params?: Record<string, string>;
}

/** When a submitted job runs: now (nothing), once at a time, or on a cron schedule (UTC). */
export type When = { runAt: string } | { cron: string };

export type { AttemptResult } from '@pipeline/core';

export class Dispatcher {
  readonly ports: DispatcherPorts;
  readonly settings: ReconcileSettings;
  readonly estimates: DurationEstimates;
  readonly queue: LaunchQueue;
  readonly now: () => Date;
  /** The job events' outbox and its drain; undefined without an events sink. */
  readonly outbox: EventOutbox | undefined;

  constructor(ports: DispatcherPorts) {
    // Every write of a job goes through this ledger: with a sink, one that stored events starts a
    // drain; without, events are not stored at all.
    const outbox =
      ports.events === undefined
        ? undefined
        : new EventOutbox({ ledger: ports.ledger, sink: ports.events, logger: ports.logger });
    this.outbox = outbox;
    this.ports = { ...ports, ledger: new OutboxLedger(ports.ledger, outbox && (() => outbox.drainSoon())) };
    this.now = ports.now ?? (() => new Date());
    this.estimates = new DurationEstimates({
      ledger: ports.ledger,
      routing: ports.routing,
      ...(ports.cloudRunJob === undefined ? {} : { cloudRunJob: ports.cloudRunJob }),
      logger: ports.logger,
      now: () => this.now().getTime(),
    });
    this.queue = new LaunchQueue(this, ports.capacity);
    this.settings = {
      ...DEFAULT_RECONCILE_SETTINGS,
      ...ports.reconcile,
      leaseMs: ports.leaseMs ?? ports.reconcile?.leaseMs ?? DEFAULT_LEASE_MS,
    };
  }

  /**
   * Publishes the job events the outbox holds (this request's, and any an earlier dispatcher left):
   * every request that changes jobs waits for it before it answers. Never rejects.
   */
  async publishEvents(): Promise<void> {
    await this.outbox?.drain();
  }

  /** A storage notification: only a new object version outside the output bucket starts work. */
  async onStorageEvent(event: StorageEvent): Promise<Intake> {
    const { object } = event;
    if (event.eventType !== 'OBJECT_FINALIZE')
      return { outcome: 'skipped', reason: `${event.eventType} does not start work` };
    if (object.bucket === this.ports.outputBucket) {
      return { outcome: 'skipped', reason: 'objects in the output bucket never start work' };
    }
    return this.start(jobIdFor(object.bucket, object.name, object.generation), { kind: 'object', object });
  }

  /**
   * POST /jobs with an input: the object's current version, or the generation asked for. Without
   * parameters it is the upload's own job (a duplicate if the notification made it); with them, a
   * job of its own for that version and those parameters.
   */
  async submitObject({ bucket, name, generation, params }: ObjectRequest, when?: When): Promise<Intake> {
    const object = await this.currentObject(bucket, name, generation);
    if (object.bucket === this.ports.outputBucket) {
      return { outcome: 'skipped', reason: 'objects in the output bucket never start work' };
    }
    const source: JobSource = { kind: 'object', object, ...(params && { params }) };
    if (when !== undefined) return this.schedule(source, when);
    if (params === undefined) return this.onStorageEvent({ eventType: 'OBJECT_FINALIZE', object });
    return this.start(paramsRunId(jobIdFor(bucket, name, object.generation), params), source);
  }

  /**
   * The object's current version; a RequestError NOT_FOUND when there is none, or when `generation`
   * names another version (an overwritten one: the store keeps only the current one to read).
   */
  private async currentObject(bucket: string, name: string, generation?: string): Promise<StorageObject> {
    const object = await this.ports.blobs.stat(bucket, name);
    if (object === undefined) throw new RequestError('NOT_FOUND', `no object ${name} in bucket ${bucket}`);
    if (generation !== undefined && generation !== object.generation) {
      throw new RequestError(
        'NOT_FOUND',
        `generation ${generation} of ${name} is not the current one (${object.generation})`,
      );
    }
    return object;
  }

  /** POST /jobs for a container run with no input file. */
  async submitContainer(request: ContainerRequest, when?: When): Promise<Intake> {
    const source = containerSource(request);
    if (when !== undefined) return this.schedule(source, when);
    return this.start(randomBytes(16).toString('hex'), source);
  }

  /** A task began to run. */
  async onStarted(jobId: string, attempt: number, startedAt: string): Promise<void> {
    await this.mutate(jobId, (job) => started(job, attempt, startedAt));
  }

  /** A task ended, as its platform reported it. Late or repeated reports change nothing. */
  async onCompletion(completion: Completion): Promise<Job | undefined> {
    // A preempted task may exit 0 after saving a checkpoint on SIGTERM: its work is not done.
    const outcome = completion.preempted ? 'preempted' : completion.exitCode === 0 ? 'succeeded' : 'failed';
    return this.endAttempt(completion.jobId, completion.attempt, {
      outcome,
      exitCode: completion.exitCode,
      startedAt: completion.startedAt,
      finishedAt: completion.finishedAt,
      error: completion.error,
    });
  }

  /**
   * Records the end of attempt `attempt`: SUCCEEDED, or what its rule's retry policy says (another
   * attempt, SCHEDULED after a backoff, or FAILED). Only the job's current attempt, while it runs,
   * can end; anything else is a late or repeated report and changes nothing.
   */
  async endAttempt(jobId: string, attempt: number, result: AttemptResult): Promise<Job | undefined> {
    return (await this.recordEnd(jobId, attempt, result)).job;
  }

  /** endAttempt, saying also whether this call changed the job (false: late, repeated, or beaten to it). */
  async recordEnd(
    jobId: string,
    attempt: number,
    result: AttemptResult,
  ): Promise<{ job: Job | undefined; changed: boolean }> {
    const at = this.iso();
    let ended: AttemptEnded | undefined;
    const job = await this.mutate(jobId, (current) => {
      // Set on each try: a compare-and-set that lost runs this again on the newer job.
      ended = endedAttempt(current, attempt, result, at, this.prices);
      return ended?.job;
    });
    const changed = ended !== undefined;
    const retryDue = ended?.retryDue === true;
    // A success moves the object's _LATEST pointer; a repeated report moves it again (a no-op once
    // moved), so a dispatcher that died between the ledger's write and the pointer's still moves it.
    const succeeded = job?.state === 'SUCCEEDED' && job.attempt === attempt && result.outcome === 'succeeded';
    if (job === undefined || !changed)
      return { job: (succeeded && (await this.moveLatest(job!))) || job, changed: false };
    this.logEnd(job);
    // Its slot is free: the next round gives it back and launches what waited for it; then the
    // pointer moves, so that the launch does not wait for Cloud Storage.
    this.queue.releaseSoon(jobId);
    if (retryDue && job.state === 'SCHEDULED') return { job: (await this.launchDue(job)) ?? job, changed };
    await this.queue.kick(REQUEST_DRAIN_MS);
    return { job: (succeeded && (await this.moveLatest(job))) || job, changed };
  }

  /**
   * After a success is recorded: moves the object's _LATEST pointer to the job's outputs (only an
   * upload's own job has one). When it cannot, the job stays SUCCEEDED, its outputs complete, and its
   * history says why (once); when Cloud Storage refused only for now, this throws RetryLaterError, so
   * a pushed completion is answered 503 and delivered again, which moves it then. The job as it is.
   */
  private async moveLatest(job: Job): Promise<Job | undefined> {
    const { blobs, outputBucket } = this.ports;
    // A job routed before per-job prefixes wrote under its object's path: no pointer names that.
    if (writtenOutputPrefix(job, (p) => blobs.uri(outputBucket, p)) !== outputPrefix(job)) return undefined;
    const at = this.iso();
    const failed = await moveLatestPointer(this.ports.blobs, this.ports.outputBucket, job, at);
    if (failed === undefined) return undefined;
    const { problem, passing } = failed;
    this.jobLogger(job).warn({ problem, passing }, 'results pointer not moved');
    const recorded = await this.mutate(job.id, (current) => notedOnce(current, at, problem));
    if (passing) throw new RetryLaterError(problem);
    return recorded;
  }

  /** Stops a job on its platform, or before it starts; it ends CANCELLED. */
  async cancel(id: string): Promise<Job> {
    const job = await this.existing(id);
    return this.inContext(job, () => this.cancelExisting(job));
  }

  private async cancelExisting(job: Job): Promise<Job> {
    const { id } = job;
    if (FINAL_STATES.includes(job.state)) {
      throw new RequestError(
        'CONFLICT',
        `job ${id} is ${job.state}; only a job not yet ended can be cancelled`,
      );
    }
    // Stop what runs, then write CANCELLED only if the job is still at the attempt and execution that
    // was stopped; if a retry launched another in between, go round again and stop that one too. A
    // launch still under way (no execution yet) is stopped by the launch queue's adopt, which sees
    // CANCELLED when it records the execution.
    let cancelled: Job | undefined;
    for (let round = 0; round < MAX_CONFLICT_RETRIES && cancelled === undefined; round++) {
      const current = round === 0 ? job : await this.existing(id);
      if (FINAL_STATES.includes(current.state)) return current;
      const running = ACTIVE_STATES.includes(current.state);
      // A batch's task cannot be stopped alone: stopping its execution would stop the others too.
      const alone = currentBatchTask(current) === undefined;
      if (running && alone && current.execution !== undefined && current.target !== undefined) {
        try {
          await this.ports.launchers[current.target].cancel(current.execution);
        } catch (err) {
          throw new RetryLaterError(`stopping ${current.execution} failed: ${(err as Error).message}`, {
            cause: err,
          });
        }
      }
      const next = cancelledJob(current, this.iso(), this.prices);
      if (await writeJob(this.ports.ledger, current, next)) cancelled = next;
    }
    if (cancelled === undefined) throw new Error(`job ${id}: too many concurrent changes`);
    await this.queue.release(id);
    this.jobLogger(cancelled).info({ state: cancelled.state }, 'job cancelled');
    return cancelled;
  }

  /** Runs a FAILED or CANCELLED job again, as a new attempt with the same route. */
  async retry(id: string): Promise<Job> {
    const job = await this.existing(id);
    if (!RETRYABLE_STATES.includes(job.state)) {
      throw new RequestError(
        'CONFLICT',
        `job ${id} is ${job.state}; only ${RETRYABLE_STATES.join(' or ')} jobs can be retried`,
      );
    }
    const at = this.iso();
    const claimed = await this.mutate(id, (current) => retried(current, at));
    if (claimed === undefined || claimed.state !== 'RECEIVED' || claimed.attempt !== job.attempt + 1) {
      throw new RequestError('CONFLICT', `job ${id} changed while it was being retried; look at it again`);
    }
    return this.launchClaimed(claimed);
  }

  /**
   * Launches a due SCHEDULED job, if this caller wins it (SCHEDULED -> RECEIVED is the claim);
   * for a repeating job, makes its next occurrence first. Undefined: someone else won it.
   */
  async launchDue(job: Job): Promise<Job | undefined> {
    const at = this.iso();
    const claimed = await this.mutate(job.id, (current) =>
      current.version === job.version ? claimedWhenDue(current, at) : undefined,
    );
    if (claimed === undefined || claimed.state !== 'RECEIVED' || claimed.version !== job.version + 1)
      return undefined;
    if (claimed.schedule !== undefined && claimed.attempt === 1) await this.scheduleNext(claimed, at);
    return this.launchClaimed(claimed);
  }

  /** Takes over a RECEIVED claim whose owner died (its lease ran out), and launches it. */
  async takeOverStale(job: Job): Promise<Job | undefined> {
    const takenOver = takeOver(job, this.iso());
    if (!(await writeJob(this.ports.ledger, job, takenOver))) return undefined;
    // An occurrence of a schedule whose claimer died before making the next one: make it now, from
    // the same claim time, so that it is the same next occurrence if the claimer had made it.
    const dueAt = job.history.findLast((h) => h.from === 'SCHEDULED' && h.to === 'RECEIVED')?.at;
    if (job.schedule !== undefined && job.attempt === 1 && dueAt !== undefined)
      await this.scheduleNext(job, dueAt);
    return this.launchClaimed(takenOver);
  }

  /** Reads part of an attempt's log: the tail, or from an offset (for following it). */
  async readLog(id: string, query: LogQuery): Promise<LogRead> {
    // Loaded when first used: every module the dispatcher loads at start costs cold-start time.
    const { readAttemptLog } = await import('./job-logs.ts');
    return readAttemptLog(this.ports.blobs, await this.existing(id), query);
  }

  /**
   * A new job, routed and written in one claim: QUEUED (or FAILED, IGNORED), so a push costs one
   * write. A claim taken over from a dead claimer is routed then. Then the queue drains, here unless
   * a drain already runs in this process.
   */
  private async start(id: string, source: JobSource): Promise<Intake> {
    const at = this.iso();
    const claim = await claimJob(
      this.ports.ledger,
      this.route(newJob(id, source, at), at),
      this.settings.leaseMs,
    );
    if (!claim.claimed) {
      this.jobLogger(claim.job).info(
        { state: claim.job.state },
        'duplicate delivery: the job exists, nothing launched',
      );
      // A job still waiting gets a drain: the redelivery is a request with CPU to launch it in.
      return { outcome: 'duplicate', job: await this.afterQueued(claim.job) };
    }
    if (claim.job.state === 'RECEIVED')
      return { outcome: 'created', job: await this.launchClaimed(claim.job) };
    this.logRouted(claim.job);
    return { outcome: 'created', job: await this.afterQueued(claim.job) };
  }

  /** A job for later: once at `runAt`, or on a cron schedule (its first occurrence now made). */
  private async schedule(source: JobSource, when: When): Promise<Intake> {
    const at = this.iso();
    let job: Job;
    if ('cron' in when) {
      let runAt: string;
      try {
        runAt = nextCronTime(parseCron(when.cron), this.now()).toISOString();
      } catch (err) {
        throw new RequestError('INVALID', (err as Error).message);
      }
      const seriesId = randomBytes(16).toString('hex');
      job = newScheduledJob(occurrenceId(seriesId, runAt), source, at, runAt, { cron: when.cron, seriesId });
    } else {
      job = newScheduledJob(randomBytes(16).toString('hex'), source, at, when.runAt);
    }
    const claim = await claimJob(this.ports.ledger, job, this.settings.leaseMs);
    this.jobLogger(claim.job).info({ runAt: job.runAt, cron: job.schedule?.cron }, 'job SCHEDULED');
    if (Date.parse(job.runAt!) <= Date.parse(at)) {
      return { outcome: 'created', job: (await this.launchDue(claim.job)) ?? claim.job };
    }
    return { outcome: 'created', job: claim.job };
  }

  /**
   * The occurrence after `job`'s: the first due time after both its own and the moment it was claimed
   * (`claimedAt`), so occurrences missed while nothing reconciled are skipped, not run in a burst.
   * Its id derives from the series and that time: made once, however many callers make it.
   */
  private async scheduleNext(job: Job, claimedAt: string): Promise<void> {
    const { cron, seriesId } = job.schedule!;
    const after = new Date(Math.max(Date.parse(job.runAt ?? claimedAt), Date.parse(claimedAt)));
    const runAt = nextCronTime(parseCron(cron), after).toISOString();
    const next = newScheduledJob(occurrenceId(seriesId, runAt), job.source, this.iso(), runAt, job.schedule);
    const claim = await claimJob(this.ports.ledger, next, this.settings.leaseMs);
    if (claim.claimed) this.jobLogger(next).info({ runAt, cron }, 'next occurrence SCHEDULED');
  }

  /** Routes (unless an earlier attempt was routed) a RECEIVED job this caller owns, and queues it. */
  private launchClaimed(claimed: Job): Promise<Job> {
    return this.inContext(claimed, async () => {
      const job = this.route(claimed, this.iso());
      if (!(await writeJob(this.ports.ledger, claimed, job)))
        throw new Error(`job ${job.id} changed under its owner`);
      this.logRouted(job);
      return this.afterQueued(job);
    });
  }

  /** The RECEIVED job after routing: QUEUED with its route, or FAILED or IGNORED with why. */
  private route(job: Job, at: string): Job {
    if (job.target === undefined) this.estimates.refreshSoon(); // a retry keeps its first placement
    const { routing, blobs, outputBucket } = this.ports;
    const placement = placeJob(job, routing, this.estimates.context);
    return routed(job, placement, at, routing, (p) => blobs.uri(outputBucket, p));
  }

  private logRouted(job: Job): void {
    const log = this.jobLogger(job);
    if (job.state === 'FAILED') log.warn({ error: job.error }, 'job FAILED');
    else if (job.state === 'IGNORED') log.info({ reason: job.reason, rule: job.rule }, 'job IGNORED');
    else
      log.info(
        { target: job.target, rule: job.rule, reason: job.reason, attempt: job.attempt },
        'job QUEUED',
      );
  }

  /** Drains the queue for a job just queued; the job as it is then (LAUNCHED, if it fit). */
  private async afterQueued(job: Job): Promise<Job> {
    if (job.state !== 'QUEUED') return job;
    const drained = await this.queue.kick(REQUEST_DRAIN_MS);
    return drained ? ((await this.ports.ledger.get(job.id)) ?? job) : job;
  }

  /** What attempts are priced with, as the config says: what a job's attempts cost so far. */
  private get prices(): PriceTable {
    return this.ports.routing.prices ?? DEFAULT_PRICES;
  }

  /**
   * What routing would do with an object or a request now, without a job: the rule, the target, the
   * reason, and (with prices and learned durations) the estimate on every place it priced.
   */
  async plan(source: JobSource): Promise<Placement> {
    await this.estimates.refresh();
    return placeJob(newJob('0'.repeat(32), source, this.iso()), this.ports.routing, this.estimates.context);
  }

  /**
   * plan for an object's current version, with its params: a NOT_FOUND RequestError when there is
   * none, or when the generation asked for is not the current one, as POST /jobs answers.
   */
  async planObject({ bucket, name, generation, params }: ObjectRequest): Promise<Placement> {
    const object = await this.currentObject(bucket, name, generation);
    return this.plan({ kind: 'object', object, ...(params && { params }) });
  }

  /** plan for a container run, as submitContainer would make it. */
  planContainer(request: ContainerRequest): Promise<Placement> {
    return this.plan(containerSource(request));
  }

  /** Reads the job, applies `change` (undefined: nothing to do), writes with compare-and-set, retries on conflict. */
  mutate(id: string, change: (job: Job) => Job | undefined): Promise<Job | undefined> {
    return mutate(this.ports.ledger, id, change);
  }

  private async existing(id: string): Promise<Job> {
    const job = isJobId(id) ? await this.ports.ledger.get(id) : undefined;
    if (job === undefined) throw new RequestError('NOT_FOUND', `no job ${id}`);
    return job;
  }

  private logEnd(job: Job): void {
    this.jobLogger(job).info(
      { state: job.state, attempt: job.attempt, exitCode: job.exitCode, error: job.error, runAt: job.runAt },
      `job ${job.state}`,
    );
  }

  jobLogger(job: Job): Logger {
    return jobLogger(this.ports.logger, job);
  }

  /**
   * Runs `work` as work for `job` (job-context.ts): an error that escapes it to the process-level
   * handlers is logged with the job.
   */
  inContext<T>(job: Job, work: () => Promise<T>): Promise<T> {
    return inJob(job, work);
  }

  iso(): string {
    return this.now().toISOString();
  }
}

/** What a container run's job is made from. */
function containerSource({ image, task, args, env, declared }: ContainerRequest): JobSource {
  return { kind: 'request', image, task, args, env, declared };
}
