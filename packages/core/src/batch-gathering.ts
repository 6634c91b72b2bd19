// Batching at run time: which queued jobs of a batching rule (routing rule `batch`) launch together
// now, as the tasks of one Cloud Run execution. The same gathering as the simulator's
// (cost/batching.ts, gatherBatches), on the queue as it stands: a batch opens with its first queued
// file and closes at maxFiles, before a file that would pass maxBytes, or maxWait after it opened. A
// closed batch is ready; the open one waits, and the caller drains again when it closes.
//
// Jobs gather only with jobs of the same rule whose execution would be overridden the same way (the
// args, the timeout and the task, which the execution's overrides carry for all its tasks): what
// differs per job goes in the batch manifest (batch-manifest.ts). A job waiting out a refusal's
// backoff joins no batch until its backoff ends. A "batch" of one file is launched as a job of its
// own: it needs no manifest.
import { gatherBatches, type BatchPolicy } from './cost/batching.ts';
import { batchIdFor } from './batch-manifest.ts';
import type { QueuedJob } from './capacity.ts';
import type { Job } from './job.ts';

/** A queued job, as gathering sees it. */
export interface BatchableJob {
  jobId: string;
  attempt: number;
  rule: string;
  /** Jobs with the same key may share an execution (batchKeyOf). */
  key: string;
  queuedAt: string;
  inputBytes: number;
  /** After a refused launch: not before this time. */
  notBefore?: string;
}

export interface ReadyBatch {
  batchId: string;
  rule: string;
  /** Job ids, in task order. */
  members: string[];
  closedBy: 'maxFiles' | 'maxBytes' | 'maxWait';
}

export interface Gathering {
  /** Batches of two or more that close by now: each launches as one execution. */
  batches: ReadyBatch[];
  /** Jobs that launch now on their own: the whole of a batch of one. */
  alone: string[];
  /** Jobs waiting for their batch to close, or for their backoff to end. */
  holding: string[];
  /** When the next open batch closes or a backoff ends. */
  nextChangeAt?: string;
}

/** What a job's execution overrides for all its tasks: jobs gather only with the same. */
export function batchKeyOf(job: Job): string {
  const t = job.template;
  return JSON.stringify([job.rule ?? '', t?.task ?? '', t?.args ?? [], t?.timeoutSeconds ?? null]);
}

/**
 * Gathers `jobs` (queued, of batching rules, routed to Cloud Run) into batches under their rule's
 * policy (`policyOf`), as of `now`.
 */
export function gatherReady(
  jobs: readonly BatchableJob[],
  policyOf: (rule: string) => BatchPolicy | undefined,
  now: string,
): Gathering {
  const nowMs = Date.parse(now);
  const gathering: Gathering = { batches: [], alone: [], holding: [] };
  let next: number | undefined;
  const later = (ms: number) => {
    if (next === undefined || ms < next) next = ms;
  };
  const groups = new Map<string, BatchableJob[]>();
  for (const job of jobs) {
    if (job.notBefore !== undefined && Date.parse(job.notBefore) > nowMs) {
      gathering.holding.push(job.jobId);
      later(Date.parse(job.notBefore));
      continue;
    }
    if (policyOf(job.rule) === undefined) {
      gathering.alone.push(job.jobId);
      continue;
    }
    const group = groups.get(job.key) ?? [];
    group.push(job);
    groups.set(job.key, group);
  }
  for (const group of groups.values()) {
    const policy = policyOf(group[0].rule)!;
    const byId = new Map(group.map((job) => [job.jobId, job]));
    const candidates = group.map((job) => ({
      id: job.jobId,
      arrival: Date.parse(job.queuedAt) / 1000,
      inputBytes: job.inputBytes,
    }));
    for (const batch of gatherBatches(candidates, policy)) {
      const closesAt = batch.closedAt * 1000;
      if (closesAt > nowMs) {
        gathering.holding.push(...batch.ids);
        later(closesAt);
      } else if (batch.ids.length === 1) {
        gathering.alone.push(batch.ids[0]);
      } else {
        const members = batch.ids.map((id) => byId.get(id)!);
        gathering.batches.push({
          batchId: batchIdFor(members),
          rule: group[0].rule,
          members: batch.ids,
          closedBy: batch.closedBy,
        });
      }
    }
  }
  if (next !== undefined) gathering.nextChangeAt = new Date(next).toISOString();
  return gathering;
}

/**
 * A ready batch as admission sees it: one Cloud Run execution, in the queue at its earliest member's
 * place, expiring with its earliest member. `members` are the QueuedJobs of its jobs, in task order.
 */
export function batchQueuedJob(batchId: string, members: readonly QueuedJob[]): QueuedJob {
  const earliest = (pick: (q: QueuedJob) => string) =>
    members.map(pick).reduce((a, b) => (Date.parse(b) < Date.parse(a) ? b : a));
  const first = members[0];
  return {
    jobId: batchId,
    ...(first.rule === undefined ? {} : { rule: first.rule }),
    demand: first.demand,
    queuedAt: earliest((q) => q.queuedAt),
    dueBy: earliest((q) => q.dueBy),
    expiresAt: earliest((q) => q.expiresAt),
    members: members.map((q) => q.jobId),
  };
}
