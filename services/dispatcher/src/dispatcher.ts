// Intake and bookkeeping, the same on Google Cloud and in local mode: parse, claim in the ledger,
// route, launch, record. Decisions come from @pipeline/core; this file only sequences them against
// the ports, and every write to a job is a compare-and-set retried on conflict.
import { randomBytes } from 'node:crypto';
import {
  amend,
  declaredFromMetadata,
  FINAL_STATES,
  jobIdFor,
  LaunchError,
  newJob,
  outputPrefix,
  route,
  transition,
  workerEnvironment,
  type BlobStore,
  type Completion,
  type Job,
  type JobSource,
  type JobTemplate,
  type Launcher,
  type Ledger,
  type Resources,
  type RoutingConfig,
  type StorageEvent,
  type Target,
} from '@pipeline/core';
import type { Logger } from 'pino';

export const DEFAULT_LEASE_MS = 10 * 60 * 1000;
const MAX_CONFLICT_RETRIES = 20;

export interface DispatcherPorts {
  ledger: Ledger;
  blobs: BlobStore;
  launchers: Record<Target, Launcher>;
  routing: RoutingConfig;
  outputBucket: string;
  logger: Logger;
  leaseMs?: number;
  now?: () => Date;
}

export type Intake =
  | { outcome: 'created'; job: Job }
  | { outcome: 'duplicate'; job: Job }
  | { outcome: 'skipped'; reason: string };

/** A request that names something that does not exist or cannot be run: the HTTP layer says 4xx. */
export class RequestError extends Error {
  readonly code: 'NOT_FOUND' | 'INVALID';
  constructor(code: 'NOT_FOUND' | 'INVALID', message: string) {
    super(message);
    this.name = 'RequestError';
    this.code = code;
  }
}

/** Work that failed for a passing reason and was given back: the HTTP layer answers 503 so Pub/Sub redelivers. */
export class RetryLaterError extends Error {
  readonly code = 'RETRY_LATER';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryLaterError';
  }
}

export interface ContainerRequest {
  image?: string;
  task?: string;
  args: string[];
  env: Record<string, string>;
  declared: Resources;
}

export class Dispatcher {
  private readonly ports: DispatcherPorts;
  private readonly now: () => Date;

  constructor(ports: DispatcherPorts) {
    this.ports = ports;
    this.now = ports.now ?? (() => new Date());
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

  /** POST /jobs with an input: the object's current version, or the generation asked for. */
  async submitObject(bucket: string, name: string, generation?: string): Promise<Intake> {
    const object = await this.ports.blobs.stat(bucket, name);
    if (object === undefined) throw new RequestError('NOT_FOUND', `no object ${name} in bucket ${bucket}`);
    if (generation !== undefined && generation !== object.generation) {
      throw new RequestError(
        'NOT_FOUND',
        `generation ${generation} of ${name} is not the current one (${object.generation})`,
      );
    }
    return this.onStorageEvent({ eventType: 'OBJECT_FINALIZE', object });
  }

  /** POST /jobs for a container run with no input file. */
  async submitContainer(request: ContainerRequest): Promise<Intake> {
    const source: JobSource = {
      kind: 'request',
      image: request.image,
      task: request.task,
      args: request.args,
      env: request.env,
    };
    return this.start(randomBytes(16).toString('hex'), source, request.declared);
  }

  /** A task began to run. */
  async onStarted(jobId: string, attempt: number, startedAt: string): Promise<void> {
    await this.mutate(jobId, (job) =>
      job.attempt === attempt && job.state === 'LAUNCHED'
        ? transition(job, 'RUNNING', startedAt, { startedAt })
        : undefined,
    );
  }

  /** A task ended. Late or repeated reports change nothing. */
  async onCompletion(completion: Completion): Promise<Job | undefined> {
    const job = await this.mutate(completion.jobId, (current) => {
      if (current.attempt !== completion.attempt || FINAL_STATES.includes(current.state)) return undefined;
      const succeeded = completion.exitCode === 0;
      return transition(
        current,
        succeeded ? 'SUCCEEDED' : 'FAILED',
        completion.finishedAt,
        {
          exitCode: completion.exitCode,
          finishedAt: completion.finishedAt,
          startedAt: current.startedAt ?? completion.startedAt,
          ...(succeeded ? {} : { error: completion.error ?? `exit code ${completion.exitCode}` }),
        },
        succeeded ? 'exit code 0' : `exit code ${completion.exitCode}`,
      );
    });
    if (job !== undefined)
      this.jobLogger(job).info(
        { state: job.state, exitCode: job.exitCode, error: job.error },
        `job ${job.state}`,
      );
    return job;
  }

  /** `declared`: resources a request asked for; an object declares its own in its metadata. */
  private async start(id: string, source: JobSource, requested: Resources = {}): Promise<Intake> {
    const at = this.iso();
    const claim = await this.ports.ledger.claim(
      newJob(id, source, at),
      this.ports.leaseMs ?? DEFAULT_LEASE_MS,
    );
    if (!claim.claimed) {
      this.jobLogger(claim.job).info(
        { state: claim.job.state },
        'duplicate delivery: the job exists, nothing launched',
      );
      return { outcome: 'duplicate', job: claim.job };
    }
    let job = claim.job;
    const log = this.jobLogger(job);
    const { resources: declared, errors } =
      source.kind === 'object'
        ? declaredFromMetadata(source.object.metadata)
        : { resources: requested, errors: [] as string[] };
    if (errors.length > 0) {
      const error = `the object's metadata cannot be used: ${errors.join('; ')}`;
      job = await this.write(transition(job, 'FAILED', this.iso(), { error }, error));
      log.warn({ error }, 'job FAILED');
      return { outcome: 'created', job };
    }
    const decision = route(
      { object: source.kind === 'object' ? source.object : undefined, declared },
      this.ports.routing,
    );
    if (decision.action === 'ignore') {
      job = await this.write(
        transition(
          job,
          'IGNORED',
          this.iso(),
          { reason: decision.reason, rule: decision.rule },
          decision.reason,
        ),
      );
      log.info({ reason: decision.reason, rule: decision.rule }, 'job IGNORED');
      return { outcome: 'created', job };
    }
    const { blobs, outputBucket } = this.ports;
    const prefix = outputPrefix(job);
    const outputUri = blobs.uri(outputBucket, prefix);
    const logsUri = blobs.uri(outputBucket, `${prefix}logs/attempt-${job.attempt}.log`);
    const template = source.kind === 'request' ? withRequest(decision.job, source) : decision.job;
    job = await this.write(
      transition(
        job,
        'LAUNCHED',
        this.iso(),
        {
          reason: decision.reason,
          rule: decision.rule,
          target: decision.target,
          template,
          outputUri,
          logsUri,
        },
        decision.reason,
      ),
    );
    log.info({ target: decision.target, rule: decision.rule, reason: decision.reason }, 'job routed');
    const inputUri =
      source.kind === 'object' ? blobs.uri(source.object.bucket, source.object.name) : undefined;
    const env = workerEnvironment(job, template, { inputUri, outputUri });
    try {
      const { execution } = await this.ports.launchers[decision.target].launch({
        job,
        target: decision.target,
        env,
        args: template.args,
        logsUri,
      });
      job = (await this.mutate(job.id, (current) => amend(current, this.iso(), { execution }))) ?? job;
      log.info({ execution }, 'job launched');
    } catch (err) {
      if (err instanceof LaunchError && err.retryable) {
        // Give the claim back, so that the redelivery this 503 causes claims and launches it once.
        const current = await this.ports.ledger.get(job.id);
        const released =
          current !== undefined && current.state === 'LAUNCHED' && (await this.ports.ledger.release(current));
        log.warn(
          { err, released },
          `launch on ${decision.target} failed for now; the claim is released for a retry`,
        );
        throw new RetryLaterError(`launch on ${decision.target} failed for now: ${err.message}`, {
          cause: err,
        });
      }
      const error = `launch on ${decision.target} failed: ${(err as Error).message}`;
      job =
        (await this.mutate(job.id, (current) =>
          FINAL_STATES.includes(current.state)
            ? undefined
            : transition(current, 'FAILED', this.iso(), { error }, error),
        )) ?? job;
      log.error({ err }, error);
    }
    return { outcome: 'created', job };
  }

  /** Reads the job, applies `change` (undefined: nothing to do), writes with compare-and-set, retries on conflict. */
  private async mutate(id: string, change: (job: Job) => Job | undefined): Promise<Job | undefined> {
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const current = await this.ports.ledger.get(id);
      if (current === undefined) return undefined;
      const next = change(current);
      if (next === undefined) return current;
      if (await this.ports.ledger.update(next)) return next;
    }
    throw new Error(`job ${id}: too many concurrent changes`);
  }

  private async write(next: Job): Promise<Job> {
    if (!(await this.ports.ledger.update(next))) throw new Error(`job ${next.id} changed under its owner`);
    return next;
  }

  private jobLogger(job: Job): Logger {
    const object =
      job.source.kind === 'object'
        ? `${job.source.object.bucket}/${job.source.object.name}#${job.source.object.generation}`
        : undefined;
    return this.ports.logger.child({ jobId: job.id, ...(object === undefined ? {} : { object }) });
  }

  private iso(): string {
    return this.now().toISOString();
  }
}

/** A submitted container job runs what it asked for, with the rule's resources and placement. */
function withRequest(template: JobTemplate, request: Extract<JobSource, { kind: 'request' }>): JobTemplate {
  const image = request.image ?? (request.task === undefined ? template.image : undefined);
  return {
    ...template,
    image,
    task: request.task ?? (request.image === undefined ? template.task : undefined),
    args: request.args.length > 0 ? request.args : template.args,
    env: { ...template.env, ...request.env },
  };
}
