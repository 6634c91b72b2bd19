// One reconcile pass: every job that is not final is looked at once. Due SCHEDULED jobs are launched,
// stale RECEIVED claims taken over, and LAUNCHED or RUNNING jobs checked against their platform:
// a run that ended without its completion is closed as it ended, one the platform forgot is closed
// as its outputs say (_SUCCESS or lost), one past its deadline is stopped and FAILED.
//
// A launch that never recorded its execution is looked for on its platform once its answer cannot
// come any more (launchAnswerMs): found, adopted; certainly absent, queued again as the same attempt,
// with no backoff and nothing counted against it. One that becomes old enough while the pass runs is
// waited for, so a dispatcher killed mid-launch costs at most one reconcile interval. The capacity
// record is made true again from what the pass saw, and the pass ends by draining the queue.
//
// Safe to run twice at once: every change is a compare-and-set (launchDue, takeOverStale and
// recordEnd each act only if the job is still as they read it), and stopping a run is idempotent.
// One job's trouble is reported and does not stop the pass.
//
// A peer of the dispatcher, not part of it: it reads the ledger, the platforms and the outputs through
// ports of its own, and asks the dispatcher and its queue only for what ReconcileActions names.
import {
  currentBatchTask,
  demandOf,
  heldIds,
  judgeStatus,
  noticedGone,
  reconcileStep,
  repairSlots,
  writtenOutputPrefix,
  type AttemptResult,
  type BlobStore,
  type CapacityRecord,
  type Job,
  type JobState,
  type Launcher,
  type Ledger,
  type ReconcileSettings,
  type SlotHolder,
  type Target,
} from '@pipeline/core';
import type { Logger } from 'pino';
import { inJob, jobLogger } from './job-context.ts';
import { mutate } from './job-writes.ts';

const PAGE = 200;
const STATES: readonly JobState[] = ['SCHEDULED', 'RECEIVED', 'LAUNCHED', 'RUNNING'];

export interface ReconcileReport {
  checked: number;
  launched: string[];
  takenOver: string[];
  /** Jobs closed from what their platform said: id and how. */
  closed: { id: string; state: JobState; detail: string }[];
  timedOut: string[];
  /** Launches whose answer was lost: found and adopted, or found absent and queued again. */
  adopted: string[];
  relaunched: string[];
  errors: { id: string; error: string }[];
}

/** What the reconciler reads and asks on its own: the ledger, the platforms, the outputs, the clock. */
export interface ReconcilerPorts {
  ledger: Ledger;
  blobs: BlobStore;
  launchers: Record<Target, Launcher>;
  outputBucket: string;
  logger: Logger;
  /** Deadlines, graces and the claim lease: the dispatcher's own (it claims with that lease). */
  settings: ReconcileSettings;
  now?: () => Date;
}

/** What the reconciler asks of the launch queue: adopt or requeue a lost launch, fix slots, drain. */
export interface ReconcileQueue {
  /** The machine type of a VM whose template names none, for its vCPUs. */
  readonly defaultMachineType: string | undefined;
  adopt(job: Job, execution: string): Promise<Job | undefined>;
  requeue(job: Job, reason: string, backoffMs: number): Promise<Job | undefined>;
  changeRecord(change: (record: CapacityRecord) => CapacityRecord | undefined): Promise<void>;
  kick(budgetMs: number, full?: boolean): Promise<boolean>;
}

/**
 * What a pass asks the dispatcher to do, each a compare-and-set that acts only if the job is still
 * as the pass read it: launch a due job, take over a dead claimer's job, record how an attempt ended.
 */
export interface ReconcileActions {
  launchDue(job: Job): Promise<Job | undefined>;
  takeOverStale(job: Job): Promise<Job | undefined>;
  /** `changed`: this call ended the attempt (false: it had ended already, or another writer won). */
  recordEnd(
    jobId: string,
    attempt: number,
    result: AttemptResult,
  ): Promise<{ job: Job | undefined; changed: boolean }>;
  readonly queue: ReconcileQueue;
}

/** How long a pass waits, at most, for launches to become old enough to look for. */
const MAX_WAIT_FOR_LAUNCHES_MS = 45_000;
/** How long a pass drains the queue at its end. */
const PASS_DRAIN_MS = 20_000;

interface PassState {
  report: ReconcileReport;
  /** Launched or running jobs as listed, for the capacity record. */
  active: Map<string, Omit<SlotHolder, 'at'>>;
  /** Launches not yet old enough to look for, and when they are. */
  later: { job: Job; at: string }[];
}

export class Reconciler {
  private readonly ports: ReconcilerPorts;
  private readonly dispatcher: ReconcileActions;
  private readonly now: () => Date;

  constructor(ports: ReconcilerPorts, dispatcher: ReconcileActions) {
    this.ports = ports;
    this.dispatcher = dispatcher;
    this.now = ports.now ?? (() => new Date());
  }

  /** One reconcile pass (POST /reconcile, or the local timer). */
  async pass(): Promise<ReconcileReport> {
    const { ledger, logger } = this.ports;
    const report: ReconcileReport = {
      checked: 0,
      launched: [],
      takenOver: [],
      closed: [],
      timedOut: [],
      adopted: [],
      relaunched: [],
      errors: [],
    };
    const started = Date.now();
    const pass: PassState = { report, active: new Map(), later: [] };
    const each = async (job: Job, work: () => Promise<void>) => {
      report.checked++;
      try {
        await inJob(job, work);
      } catch (err) {
        report.errors.push({ id: job.id, error: (err as Error).message });
        jobLogger(logger, job).error({ err }, 'reconciling the job failed');
      }
    };
    for (const state of STATES) {
      let pageToken: string | undefined;
      do {
        const page = await ledger.list({ state, limit: PAGE, pageToken });
        pageToken = page.nextPageToken;
        for (const job of page.jobs) await each(job, () => this.reconcileJob(job, pass));
      } while (pageToken !== undefined);
    }
    // Launches that become old enough to look for while this pass may still run: wait for them.
    for (const { job, at } of pass.later.sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) {
      if (Date.parse(at) - this.now().getTime() + Date.now() - started > MAX_WAIT_FOR_LAUNCHES_MS) break;
      // Most such launches are merely under way: they get their execution within a second or two.
      let current = await ledger.get(job.id);
      const unanswered = (j: Job | undefined): j is Job =>
        j?.state === 'LAUNCHED' && j.execution === undefined && j.attempt === job.attempt;
      while (unanswered(current) && this.now().getTime() < Date.parse(at)) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        current = await ledger.get(job.id);
      }
      if (!unanswered(current)) continue;
      const found = current;
      await each(found, () => this.findLaunch(found, report));
    }
    await this.repairCapacity(pass).catch((err: unknown) => {
      report.errors.push({ id: 'capacity', error: (err as Error).message });
      logger.error({ err }, 'repairing the capacity record failed');
    });
    await this.dispatcher.queue.kick(PASS_DRAIN_MS, true);
    const { launched, takenOver, closed, timedOut, adopted, relaunched, errors } = report;
    const counts = {
      launched: launched.length,
      takenOver: takenOver.length,
      closed: closed.length,
      timedOut: timedOut.length,
      adopted: adopted.length,
      relaunched: relaunched.length,
      errors: errors.length,
    };
    if (Object.values(counts).some((n) => n > 0)) logger.info(counts, 'reconcile pass changed jobs');
    return report;
  }

  /**
   * Slots of jobs no longer launched or running are given back (after a lease: one being launched now
   * holds its slot before it is LAUNCHED); a launched or running job without one, read again to be
   * sure, gets one.
   */
  private async repairCapacity(pass: PassState): Promise<void> {
    const { ledger, settings } = this.ports;
    const record = await ledger.readCapacity();
    const held = heldIds(record.holders);
    const active = new Map<string, Omit<SlotHolder, 'at'>>();
    for (const [id, holder] of pass.active) {
      if (held.has(id)) active.set(id, holder);
      else {
        const current = await ledger.get(id);
        if (current?.state === 'LAUNCHED' || current?.state === 'RUNNING') active.set(id, holder);
      }
    }
    // A job that held a slot when the record was read above and holds none when it is read again
    // gave it back meanwhile (it ended): it gets none back from a pass that saw it still running.
    const slotless = new Set([...active.keys()].filter((id) => !held.has(id)));
    const now = this.iso();
    await this.dispatcher.queue.changeRecord((r) => repairSlots(r, active, now, settings.leaseMs, slotless));
  }

  /** The platform is asked for a launch whose answer never came: adopt it, or launch it again. */
  private async findLaunch(job: Job, report: ReconcileReport): Promise<void> {
    const { queue } = this.dispatcher;
    const found = await this.ports.launchers[job.target!].find(job);
    if (found.kind === 'found') {
      await queue.adopt(job, found.execution);
      report.adopted.push(job.id);
    } else if (found.kind === 'absent') {
      const requeued = await queue.requeue(
        job,
        `attempt ${job.attempt} recorded no execution and its platform has none: launched again`,
        0,
      );
      if (requeued?.state === 'QUEUED') report.relaunched.push(job.id);
    } else {
      report.errors.push({ id: job.id, error: `looking for its launch failed: ${found.reason}` });
    }
  }

  private async reconcileJob(job: Job, pass: PassState): Promise<void> {
    const { report } = pass;
    const { settings } = this.ports;
    const now = this.iso();
    if ((job.state === 'LAUNCHED' || job.state === 'RUNNING') && job.target !== undefined) {
      const demand = demandOf(job.target, job.template, this.dispatcher.queue.defaultMachineType);
      pass.active.set(job.id, {
        ...demand,
        jobId: job.id,
        ...(job.rule === undefined ? {} : { rule: job.rule }),
      });
    }
    const step = reconcileStep(job, now, settings);
    switch (step.step) {
      case 'none':
        return;
      case 'find-launch':
        return this.findLaunch(job, report);
      case 'find-launch-later':
        pass.later.push({ job, at: step.at });
        return;
      case 'launch-due': {
        const launched = await this.dispatcher.launchDue(job);
        if (launched !== undefined) report.launched.push(job.id);
        return;
      }
      case 'take-over': {
        const launched = await this.dispatcher.takeOverStale(job);
        if (launched !== undefined) report.takenOver.push(job.id);
        return;
      }
      case 'close':
        return this.close(job, report, {
          outcome: step.end.outcome as 'lost',
          finishedAt: now,
          detail: step.detail,
        });
      case 'inspect':
        break;
    }
    const launcher = this.ports.launchers[job.target!];
    const task = currentBatchTask(job);
    const status = await launcher.inspect(step.execution, task?.index);
    const verdict = judgeStatus(job, status, now, settings);
    if (verdict === undefined) return;
    switch (verdict.verdict) {
      case 'succeeded':
        return this.close(job, report, {
          outcome: 'succeeded',
          exitCode: 0,
          finishedAt: verdict.finishedAt ?? now,
          detail: verdict.detail,
        });
      case 'ended':
        return this.close(job, report, {
          outcome: verdict.end.outcome as 'failed' | 'preempted',
          exitCode: verdict.end.exitCode,
          finishedAt: verdict.finishedAt ?? now,
          error: verdict.error,
          detail: verdict.detail,
        });
      case 'gone-noticed':
        // Only the job as this pass read it: a job that moved on since is judged by the next pass.
        await mutate(this.ports.ledger, job.id, (current) =>
          current.version === job.version ? noticedGone(current, job.attempt, now) : undefined,
        );
        return;
      case 'gone': {
        // Its outputs decide: the worker writes _SUCCESS last, naming the job and attempt.
        const marker = await this.successMarker(job);
        return this.close(
          job,
          report,
          marker !== undefined
            ? {
                outcome: 'succeeded',
                exitCode: 0,
                finishedAt: marker.finishedAt ?? now,
                detail: `${verdict.detail}; its _SUCCESS marker is there`,
              }
            : {
                outcome: 'lost',
                finishedAt: now,
                error: verdict.detail,
                detail: `${verdict.detail}; it left no _SUCCESS marker of this attempt`,
              },
        );
      }
      case 'timed-out': {
        // A batch's task is not stopped alone (it would stop its batch); Cloud Run ends it at its
        // task timeout, which is the job's.
        if (task === undefined) await launcher.cancel(step.execution);
        report.timedOut.push(job.id);
        const stopped =
          task === undefined
            ? `${step.execution} was stopped`
            : `task ${task.index} of ${step.execution} ends at its task timeout`;
        return this.close(job, report, {
          outcome: 'timed-out',
          finishedAt: now,
          error: `timed out: ${verdict.detail}`,
          detail: `${verdict.detail}; ${stopped}`,
        });
      }
    }
  }

  /**
   * The job's _SUCCESS marker, if it is this job's and this attempt's (an earlier attempt of the job
   * wrote one under the same prefix; a job from before per-job prefixes shared its object's).
   */
  private async successMarker(job: Job): Promise<{ finishedAt?: string } | undefined> {
    const { blobs, outputBucket } = this.ports;
    const prefix = writtenOutputPrefix(job, (p) => blobs.uri(outputBucket, p));
    const read = await blobs.read(blobs.uri(outputBucket, `${prefix}_SUCCESS`), 0, 64 * 1024);
    if (read === undefined) return undefined;
    let marker: unknown;
    try {
      marker = JSON.parse(read.data.toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof marker !== 'object' || marker === null) return undefined;
    const { jobId, attempt, finishedAt } = marker as Record<string, unknown>;
    if (jobId !== job.id || (attempt !== undefined && attempt !== job.attempt)) return undefined;
    return typeof finishedAt === 'string' ? { finishedAt } : {};
  }

  private async close(job: Job, report: ReconcileReport, result: AttemptResult): Promise<void> {
    const { job: ended, changed } = await this.dispatcher.recordEnd(job.id, job.attempt, result);
    if (ended !== undefined && changed) {
      report.closed.push({ id: job.id, state: ended.state, detail: result.detail ?? result.outcome });
    }
  }

  private iso(): string {
    return this.now().toISOString();
  }
}
