// The launch queue: every routed job waits here as QUEUED until capacity.ts admits it, then it is
// launched. A drain reads the capacity record and the head of the queue, admits what fits, writes the
// record back with compare-and-set (the slots it took are then this caller's alone), and launches.
//
// Drains run inside requests, because on Cloud Run without always-on CPU work after a response is
// not reliable: a push whose job was queued, every completion (a slot was just freed) and every
// reconcile pass. Within one process, one drain runs at a time; a caller that finds one running
// leaves its job to it and answers at once, so a push costs a claim and little else.
//
// A refusal never loses the job: 429, RESOURCE_EXHAUSTED, QUOTA_EXCEEDED and stockouts put it back
// in the queue, at its place, not tried again before a backoff, and teach the record a ceiling (the
// platform was full at that many in use). A launch whose answer was lost is looked for (Launcher.find)
// before anything else: found, it is adopted; certainly absent, it is queued again; unknown, it stays
// LAUNCHED without an execution for the reconciler to look again.
//
// Every job it writes comes from @pipeline/core's transitions (launching, adopted, requeued, ...).
import {
  admit,
  adopted,
  currentBatchTask,
  failedInQueue,
  hasRoom,
  heldIds,
  isRateRefusal,
  launchFailed,
  LaunchError,
  launching,
  learnCeiling,
  refusedPastMaxQueue,
  releaseSlot,
  requeued,
  workerEnvironment,
  type Admission,
  type CapacityLimits,
  type CapacityRecord,
  type Job,
  type SlotHolder,
} from '@pipeline/core';
import { gatherHead, launchBatch, type GatheredHead } from './batch-launch.ts';
import type { Dispatcher } from './dispatcher.ts';
import { writeJob } from './job-writes.ts';
import { queueView, type CapacityView } from './queue-view.ts';

/** How many queued jobs a drain reads from the head of the queue (a rule at its cap can hide the rest). */
const QUEUE_HEAD = 100;
/** How many jobs one round of a drain launches, and how many of those at once. */
const MAX_ADMIT = 64;
const PARALLEL_LAUNCHES = 16;
const CAS_ATTEMPTS = 20;
/** After a refused launch: 2 s, doubling, at most a minute (a ceiling keeps the others from trying). */
const REFUSAL_BACKOFF_MS = 2_000;
const MAX_REFUSAL_BACKOFF_MS = 60_000;
/** How long a drain sleeps, at most, for a rate slot or a backoff that ends soon. */
const MAX_NAP_MS = 2_000;

/** What bounds launches; `limits` may read the region's quotas (cached by its source). */
export interface CapacitySource {
  limits(held: readonly SlotHolder[]): Promise<CapacityLimits>;
  /** A launch was refused for quota: read the quotas again before the next admission. */
  quotaRefused?(): void;
  /** The machine type of a VM whose template names none, for its vCPUs. */
  defaultMachineType?: string;
}

/** No bound at all: for a dispatcher given no capacity (tests of other things). */
export const UNBOUNDED: CapacitySource = {
  async limits() {
    return {
      region: 'local',
      runExecutions: Number.POSITIVE_INFINITY,
      runJobsPerMinute: Number.POSITIVE_INFINITY,
    };
  },
};

export class LaunchQueue {
  private readonly dispatcher: Dispatcher;
  readonly capacity: CapacitySource;
  private draining: Promise<void> | undefined;
  private closed = false;
  private again = false;
  private full = false;
  /** Slots to give back in the next round (releaseSoon). */
  private readonly releases = new Set<string>();

  constructor(dispatcher: Dispatcher, capacity: CapacitySource = UNBOUNDED) {
    this.dispatcher = dispatcher;
    this.capacity = capacity;
  }

  get defaultMachineType(): string | undefined {
    return this.capacity.defaultMachineType;
  }

  /**
   * Drains for at most `budgetMs`, unless a drain already runs in this process: then the running one
   * takes the new work (it drains again before it stops) and this returns false at once.
   */
  /**
   * No more drains in this process, and waits for the one under way: the local pipeline stopping,
   * whose launchers refuse from now on (a refused launch would overwrite what its stop records).
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.draining;
  }

  async kick(budgetMs: number, full = false): Promise<boolean> {
    if (this.closed) return false;
    this.again = true;
    if (full) this.full = true;
    if (this.draining !== undefined) return false;
    this.draining = this.drain(budgetMs).finally(() => {
      this.draining = undefined;
    });
    await this.draining;
    return true;
  }

  private async drain(budgetMs: number): Promise<void> {
    const end = Date.now() + budgetMs;
    while (this.again && Date.now() < end) {
      this.again = false;
      const full = this.full;
      this.full = false;
      let nextChangeAt: string | undefined;
      try {
        nextChangeAt = await this.round(full);
      } catch (err) {
        // The queue is durable: what this round could not do, the next trigger does.
        this.dispatcher.ports.logger.error({ err }, 'draining the launch queue failed');
        return;
      }
      if (nextChangeAt !== undefined) {
        // On the dispatcher's clock (tests set it): a change due already is drained at once.
        const nap = Date.parse(nextChangeAt) - this.dispatcher.now().getTime();
        if (nap <= MAX_NAP_MS && Date.now() + Math.max(0, nap) < end) {
          if (nap > 0) await new Promise((resolve) => setTimeout(resolve, nap));
          this.again = true;
        }
      }
    }
  }

  /**
   * One admission and its launches; returns when something waiting may fit without a slot freed.
   * `full`: read the queue even when no pool has room (to fail what waited too long).
   */
  private async round(full: boolean): Promise<string | undefined> {
    let admission: Admission | undefined;
    let limits: CapacityLimits | undefined;
    let queue: Job[] = [];
    let gathered: GatheredHead = { queued: [], batches: new Map() };
    for (let i = 0; i < CAS_ATTEMPTS && admission === undefined; i++) {
      const { ledger } = this.dispatcher.ports;
      // Slots of attempts that ended since the last round are given back in this round's write.
      const releasing = [...this.releases];
      const read = await ledger.readCapacity();
      const record = releasing.reduce((r, id) => releaseSlot(r, id, r.version) ?? r, read);
      const released = record !== read;
      const held = heldIds(read.holders);
      for (const id of releasing) if (!held.has(id)) this.releases.delete(id); // nothing to give back
      const commit = async (next: CapacityRecord) => {
        if (!(await ledger.writeCapacity({ ...next, version: read.version + 1 }))) return false;
        for (const id of releasing) this.releases.delete(id);
        return true;
      };
      limits = await this.limits(record.holders);
      const now = this.dispatcher.iso();
      // Full everywhere: nothing could launch, so the queue is not read (a reconcile pass reads it
      // anyway, for the jobs past their maxQueueTime).
      const head = !full && !hasRoom(record, limits, now) ? [] : await ledger.queued(QUEUE_HEAD);
      queue = head;
      const { launchers, routing } = this.dispatcher.ports;
      const canBatch = launchers['cloud-run-job'].launchBatch !== undefined;
      gathered = gatherHead(head, routing.rules, canBatch, now, this.capacity.defaultMachineType);
      const candidate = admit(record, gathered.queued, limits, now, MAX_ADMIT);
      const nothing = candidate.admitted.length === 0 && candidate.failNow.length === 0;
      if (nothing && !released) return earliest(candidate.nextChangeAt, gathered.nextChangeAt);
      if (candidate.admitted.length === 0 && !released) admission = candidate;
      else if (await commit(candidate.record)) admission = candidate;
    }
    if (admission === undefined) throw new Error('the capacity record kept changing under this drain');
    const byId = new Map(queue.map((job) => [job.id, job]));
    const now = Date.parse(this.dispatcher.iso());
    for (const { jobId, reason } of admission.failNow) {
      // A batch that waited too long: those of its jobs whose own maxQueueTime passed fail; the
      // others gather again.
      const batch = gathered.batches.get(jobId);
      const expired = (job: Job) => job.queue !== undefined && Date.parse(job.queue.expiresAt) <= now;
      for (const job of batch === undefined ? [byId.get(jobId)!] : batch.filter(expired))
        await this.failQueued(job, reason);
    }
    const pending = [...admission.admitted];
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL_LAUNCHES, pending.length) }, async () => {
        for (let holder = pending.shift(); holder !== undefined; holder = pending.shift()) {
          const batch = gathered.batches.get(holder.jobId);
          if (batch !== undefined) {
            await launchBatch(this, this.dispatcher, holder.jobId, batch, holder, limits!);
            continue;
          }
          const job = byId.get(holder.jobId)!;
          await this.dispatcher.inContext(job, () => this.launchAdmitted(job, holder, limits!));
        }
      }),
    );
    return earliest(admission.nextChangeAt, gathered.nextChangeAt);
  }

  /** A job that can never fit, or waited past its maxQueueTime. */
  private async failQueued(job: Job, reason: string): Promise<void> {
    const at = this.dispatcher.iso();
    const failed = await this.dispatcher.mutate(job.id, (current) =>
      failedInQueue(current, job.attempt, at, reason),
    );
    if (failed?.state === 'FAILED')
      this.dispatcher.jobLogger(failed).warn({ error: reason }, 'job FAILED in the queue');
  }

  /** Launches a job whose slot this caller took; whatever happens, the job ends in a recorded state. */
  private async launchAdmitted(queued: Job, holder: SlotHolder, limits: CapacityLimits): Promise<void> {
    const d = this.dispatcher;
    const log = d.jobLogger(queued);
    const launchedAt = d.iso();
    let mine = false;
    const launch = (current: Job) => {
      const next = launching(current, queued.attempt, launchedAt);
      mine = next !== undefined;
      return next;
    };
    // The job as the queue read it is most likely still so: write over it at once, and read it
    // again only if that write lost.
    const direct = launch(queued)!;
    const job = (await writeJob(d.ports.ledger, queued, direct)) ? direct : await d.mutate(queued.id, launch);
    if (job === undefined || !mine) {
      // Cancelled, or launched by someone else, while it was being admitted: the slot goes back.
      await this.release(queued.id);
      return;
    }
    const target = job.target!;
    const { blobs } = d.ports;
    const source = job.source;
    const inputUri =
      source.kind === 'object' ? blobs.uri(source.object.bucket, source.object.name) : undefined;
    const env = workerEnvironment(job, job.template!, { inputUri, outputUri: job.outputUri! });
    try {
      const result = await d.ports.launchers[target].launch({
        job,
        target,
        env,
        args: job.template!.args,
        logsUri: job.logsUri!,
      });
      await this.adopt(job, result.execution, result.refusals, result.spot);
    } catch (err) {
      if (err instanceof LaunchError && (err.ambiguous || err.retryable))
        return this.settleRefusedLaunch([job], holder, err, limits);
      const error = `launch on ${target} failed: ${(err as Error).message}`;
      const at = d.iso();
      await d.mutate(job.id, (current) => launchFailed(current, job.attempt, at, error));
      await this.release(job.id);
      log.error({ err }, error);
    }
  }

  /** Records what runs the job's current attempt; a job cancelled meanwhile has it stopped. */
  async adopt(job: Job, execution: string, refusals?: string[], spot?: boolean): Promise<Job | undefined> {
    const d = this.dispatcher;
    const adoption = (current: Job): Job | undefined =>
      adopted(current, job.attempt, d.iso(), { execution, refusals, spot });
    const direct = adoption(job);
    const recorded =
      direct !== undefined && (await writeJob(d.ports.ledger, job, direct))
        ? direct
        : await d.mutate(job.id, adoption);
    d.jobLogger(job).info({ execution, refusals }, 'job launched');
    // A batch's task is not stopped alone: the batch's other tasks run in the same execution.
    const alone = recorded === undefined || currentBatchTask(recorded) === undefined;
    if (recorded?.state === 'CANCELLED' && recorded.attempt === job.attempt && alone) {
      await d.ports.launchers[job.target!].cancel(execution);
      d.jobLogger(job).info({ execution }, 'cancelled during its launch: stopped');
    }
    return recorded;
  }

  /**
   * A launch of `jobs` (one job, or a batch's) that started nothing for sure, or whose answer was
   * lost: looked for, queued again after a refusal for now, or FAILED for a refusal for good.
   */
  async settleRefusedLaunch(
    jobs: readonly Job[],
    holder: SlotHolder,
    err: LaunchError,
    limits: CapacityLimits,
  ): Promise<void> {
    if (err.ambiguous) return this.lookFor(jobs, err);
    if (err.retryable) return this.refused(jobs, holder, err, limits);
    const d = this.dispatcher;
    const at = d.iso();
    for (const job of jobs) {
      const error = `launch on ${job.target} failed: ${err.message}`;
      await d.mutate(job.id, (current) => launchFailed(current, job.attempt, at, error));
      d.jobLogger(job).error({ err }, error);
    }
    await this.release(holder.jobId);
  }

  /**
   * The launch's answer was lost: look for what it started before launching anything again. A
   * batch's jobs share one execution, found through any of them (Launcher.find).
   */
  private async lookFor(jobs: readonly Job[], err: LaunchError): Promise<void> {
    const d = this.dispatcher;
    const found = await d.ports.launchers[jobs[0].target!].find(jobs[0]).catch((e: unknown) => ({
      kind: 'unknown' as const,
      reason: (e as Error).message,
    }));
    for (const job of jobs) {
      const log = d.jobLogger(job);
      if (found.kind === 'found') {
        log.warn(
          { err, execution: found.execution },
          'the launch answer was lost; its execution was found and adopted',
        );
        await this.adopt(job, found.execution);
      } else if (found.kind === 'absent') {
        log.warn({ err }, 'the launch answer was lost and nothing was started: queued again');
        await this.requeue(job, `its launch was not answered (${err.message}) and started nothing`, 0);
      } else {
        // Neither: it may run. It stays LAUNCHED, holding its slot; the reconciler looks again.
        log.warn(
          { err, reason: found.reason },
          'the launch answer was lost and looking for it failed; the reconciler looks again',
        );
      }
    }
  }

  /** A refusal for now: back to the queue at its place, after a backoff; a capacity refusal teaches a ceiling. */
  private async refused(
    jobs: readonly Job[],
    holder: SlotHolder,
    err: LaunchError,
    limits: CapacityLimits,
  ): Promise<void> {
    const d = this.dispatcher;
    if (err.capacity && !isRateRefusal(err.message)) {
      await this.changeRecord((record) => learnCeiling(record, holder, limits, d.iso(), err.message));
      if (/QUOTA_EXCEEDED|quota/i.test(err.message)) this.capacity.quotaRefused?.();
    } else {
      await this.release(holder.jobId);
    }
    for (const job of jobs) {
      const message = `launch on ${job.target} refused for now: ${err.message}`;
      const refusals = (job.queue?.refusals ?? 0) + 1;
      const expiresAt = job.queue?.expiresAt;
      if (expiresAt !== undefined && Date.parse(d.iso()) >= Date.parse(expiresAt)) {
        // Its wait is over: the last refusal is what it waited for.
        const error = `no capacity came within its rule's maxQueueTime (queued at ${job.queue!.queuedAt}): ${message}`;
        const at = d.iso();
        await d.mutate(job.id, (current) => refusedPastMaxQueue(current, job.attempt, at, error));
        d.jobLogger(job).warn({ err, refusals }, error);
        continue;
      }
      const backoff = Math.min(MAX_REFUSAL_BACKOFF_MS, REFUSAL_BACKOFF_MS * 2 ** (refusals - 1));
      await this.requeue(job, message, backoff, refusals);
      d.jobLogger(job).warn({ err, refusals }, `${message}; queued again`);
    }
  }

  /** LAUNCHED without an execution -> QUEUED, keeping its place; the same attempt, not counted as failed. */
  async requeue(job: Job, reason: string, backoffMs: number, refusals?: number): Promise<Job | undefined> {
    const d = this.dispatcher;
    const at = d.iso();
    const next = await d.mutate(job.id, (current) =>
      requeued(current, job.attempt, at, { reason, backoffMs, refusals }),
    );
    await this.release(job.id);
    return next;
  }

  /** The source's limits, with each rule's maxConcurrent from the routing config. */
  async limits(held: readonly SlotHolder[]): Promise<CapacityLimits> {
    const limits = await this.capacity.limits(held);
    const caps = Object.fromEntries(
      this.dispatcher.ports.routing.rules
        .filter((rule) => rule.queue?.maxConcurrent !== undefined)
        .map((rule) => [rule.name, rule.queue.maxConcurrent!]),
    );
    return Object.keys(caps).length === 0 ? limits : { ...limits, ruleMaxConcurrent: caps };
  }

  /**
   * Gives back `jobId`'s slot in the next round's write (the caller kicks a drain): the ends of many
   * attempts at once cost one write of the record, not one each, racing.
   */
  releaseSoon(jobId: string): void {
    this.releases.add(jobId);
  }

  /** What GET /capacity shows (queue-view.ts). */
  async view(limit = QUEUE_HEAD): Promise<CapacityView> {
    return queueView(this, this.dispatcher, limit);
  }

  /** Gives back `jobId`'s slot, if it holds one. */
  async release(jobId: string): Promise<void> {
    await this.changeRecord((record) => releaseSlot(record, jobId));
  }

  /** Applies `change` to the capacity record with compare-and-set, retried on conflict; undefined: nothing. */
  async changeRecord(change: (record: CapacityRecord) => CapacityRecord | undefined): Promise<void> {
    const { ledger } = this.dispatcher.ports;
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const next = change(await ledger.readCapacity());
      if (next === undefined || (await ledger.writeCapacity(next))) return;
    }
    throw new Error('the capacity record kept changing');
  }
}

/** The earlier of two times, either may be absent. */
function earliest(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return Date.parse(a) <= Date.parse(b) ? a : b;
}
