// One reconcile pass: every job that is not final is looked at once. Due SCHEDULED jobs are launched,
// stale RECEIVED claims taken over, and LAUNCHED or RUNNING jobs checked against their platform:
// a run that ended without its completion is closed as it ended, one the platform forgot is closed
// as its outputs say (_SUCCESS or lost), one past its deadline is stopped and FAILED.
//
// Safe to run twice at once: every change is a compare-and-set (launchDue, takeOverStale and
// endAttempt each act only if the job is still as they read it), and stopping a run is idempotent.
// One job's trouble is reported and does not stop the pass.
import {
  amend,
  judgeStatus,
  outputPrefix,
  reconcileStep,
  withCurrentAttempt,
  type Job,
  type JobState,
} from '@pipeline/core';
import type { Dispatcher } from './dispatcher.ts';

const PAGE = 200;
const STATES: readonly JobState[] = ['SCHEDULED', 'RECEIVED', 'LAUNCHED', 'RUNNING'];

export interface ReconcileReport {
  checked: number;
  launched: string[];
  takenOver: string[];
  /** Jobs closed from what their platform said: id and how. */
  closed: { id: string; state: JobState; detail: string }[];
  timedOut: string[];
  errors: { id: string; error: string }[];
}

export async function reconcilePass(dispatcher: Dispatcher): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    checked: 0,
    launched: [],
    takenOver: [],
    closed: [],
    timedOut: [],
    errors: [],
  };
  for (const state of STATES) {
    let pageToken: string | undefined;
    do {
      const page = await dispatcher.ports.ledger.list({ state, limit: PAGE, pageToken });
      pageToken = page.nextPageToken;
      for (const job of page.jobs) {
        report.checked++;
        try {
          await dispatcher.inContext(job, () => reconcileJob(dispatcher, job, report));
        } catch (err) {
          report.errors.push({ id: job.id, error: (err as Error).message });
          dispatcher.jobLogger(job).error({ err }, 'reconciling the job failed');
        }
      }
    } while (pageToken !== undefined);
  }
  const { launched, takenOver, closed, timedOut, errors } = report;
  if (launched.length + takenOver.length + closed.length + timedOut.length + errors.length > 0) {
    dispatcher.ports.logger.info(
      {
        launched: launched.length,
        takenOver: takenOver.length,
        closed: closed.length,
        timedOut: timedOut.length,
        errors: errors.length,
      },
      'reconcile pass changed jobs',
    );
  }
  return report;
}

async function reconcileJob(dispatcher: Dispatcher, job: Job, report: ReconcileReport): Promise<void> {
  const now = dispatcher.iso();
  const step = reconcileStep(job, now, dispatcher.settings);
  switch (step.step) {
    case 'none':
      return;
    case 'launch-due': {
      const launched = await dispatcher.launchDue(job);
      if (launched !== undefined) report.launched.push(job.id);
      return;
    }
    case 'take-over': {
      const launched = await dispatcher.takeOverStale(job);
      if (launched !== undefined) report.takenOver.push(job.id);
      return;
    }
    case 'close':
      return close(dispatcher, job, report, {
        outcome: step.end.outcome as 'lost',
        finishedAt: now,
        detail: step.detail,
      });
    case 'inspect':
      break;
  }
  const launcher = dispatcher.ports.launchers[job.target!];
  const status = await launcher.inspect(step.execution);
  const verdict = judgeStatus(job, status, now, dispatcher.settings);
  if (verdict === undefined) return;
  switch (verdict.verdict) {
    case 'succeeded':
      return close(dispatcher, job, report, {
        outcome: 'succeeded',
        exitCode: 0,
        finishedAt: verdict.finishedAt ?? now,
        detail: verdict.detail,
      });
    case 'ended':
      return close(dispatcher, job, report, {
        outcome: verdict.end.outcome as 'failed' | 'preempted',
        exitCode: verdict.end.exitCode,
        finishedAt: verdict.finishedAt ?? now,
        error: verdict.error,
        detail: verdict.detail,
      });
    case 'gone-noticed':
      await dispatcher.mutate(job.id, (current) =>
        current.attempt === job.attempt && current.version === job.version
          ? amend(current, now, { attempts: withCurrentAttempt(current, { goneAt: now }) })
          : undefined,
      );
      return;
    case 'gone': {
      // Its outputs decide: the worker writes _SUCCESS last, naming the job and attempt.
      const marker = await successMarker(dispatcher, job);
      return close(
        dispatcher,
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
    case 'timed-out':
      await launcher.cancel(step.execution);
      report.timedOut.push(job.id);
      return close(dispatcher, job, report, {
        outcome: 'timed-out',
        finishedAt: now,
        error: `timed out: ${verdict.detail}`,
        detail: `${verdict.detail}; ${step.execution} was stopped`,
      });
  }
}

/** The job's _SUCCESS marker, if it is this job's and this attempt's (the name is shared by generations). */
async function successMarker(dispatcher: Dispatcher, job: Job): Promise<{ finishedAt?: string } | undefined> {
  const { blobs, outputBucket } = dispatcher.ports;
  const read = await blobs.read(blobs.uri(outputBucket, `${outputPrefix(job)}_SUCCESS`), 0, 64 * 1024);
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

async function close(
  dispatcher: Dispatcher,
  job: Job,
  report: ReconcileReport,
  result: Parameters<Dispatcher['endAttempt']>[2],
): Promise<void> {
  const { job: ended, changed } = await dispatcher.recordEnd(job.id, job.attempt, result);
  if (ended !== undefined && changed) {
    report.closed.push({ id: job.id, state: ended.state, detail: result.detail ?? result.outcome });
  }
}
