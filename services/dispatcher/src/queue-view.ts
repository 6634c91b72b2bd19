// What GET /capacity answers (and the CLI and dashboard show): the queue's limits, what is in use
// per target, the ceilings learned from refusals, and the head of the queue with each job's place
// and why it waits, from a dry run of the same admission a drain makes.
import {
  admit,
  queuedJob,
  usageOf,
  type CapacityLimits,
  type CapacityRecord,
  type SlotHolder,
} from '@pipeline/core';
import type { Dispatcher } from './dispatcher.ts';

/** What the view needs of the launch queue (launch-queue.ts), which imports this module. */
export interface QueueLimits {
  limits(held: readonly SlotHolder[]): Promise<CapacityLimits>;
  capacity: { defaultMachineType?: string };
}

/** The queue as GET /capacity shows it. */
export interface CapacityView {
  limits: CapacityLimits;
  inUse: { cloudRunExecutions: number; vmCpus: number; gpus: Record<string, number>; total: number };
  runLaunchesLastMinute: number;
  ceilings: CapacityRecord['ceilings'];
  queue: { jobs: QueuedView[]; more: boolean };
}

export interface QueuedView {
  id: string;
  rule?: string;
  target?: string;
  position: number;
  reason: string;
  queuedAt?: string;
  expiresAt?: string;
  refusals: number;
}

/** The limits, what is in use, and each queued job at the head with its position and why it waits. */
export async function queueView(
  queue: QueueLimits,
  dispatcher: Dispatcher,
  limit: number,
): Promise<CapacityView> {
  const { ledger } = dispatcher.ports;
  const [record, head] = await Promise.all([ledger.readCapacity(), ledger.queued(limit + 1)]);
  const limits = await queue.limits(record.holders);
  const shown = head.slice(0, limit);
  const now = dispatcher.iso();
  const dry = admit(
    record,
    shown.map((job) => queuedJob(job, queue.capacity.defaultMachineType)),
    limits,
    now,
  );
  const why = new Map<string, { position: number; reason: string }>();
  dry.waiting.forEach((w) => why.set(w.jobId, w));
  dry.failNow.forEach((f) =>
    why.set(f.jobId, { position: 0, reason: `fails at the next drain: ${f.reason}` }),
  );
  dry.admitted.forEach((a, i) =>
    why.set(a.jobId, { position: i + 1, reason: 'fits now: launched by the next drain' }),
  );
  const usage = usageOf(record.holders);
  const gpus: Record<string, number> = {};
  for (const [pool, n] of usage) if (pool.startsWith('gpus:')) gpus[pool.slice(5)] = n;
  const nowMs = Date.parse(now);
  return {
    limits,
    inUse: {
      cloudRunExecutions: usage.get('run') ?? 0,
      vmCpus: usage.get('vm-cpus') ?? 0,
      gpus,
      total: usage.get('total') ?? 0,
    },
    runLaunchesLastMinute: record.runLaunches.filter((t) => nowMs - Date.parse(t) < 60_000).length,
    ceilings: record.ceilings.filter((c) => Date.parse(c.until) > nowMs),
    queue: {
      jobs: shown
        .map((job) => ({
          id: job.id,
          ...(job.rule === undefined ? {} : { rule: job.rule }),
          ...(job.target === undefined ? {} : { target: job.target }),
          position: why.get(job.id)?.position ?? 0,
          reason: why.get(job.id)?.reason ?? 'held by a launch under way',
          ...(job.queue === undefined
            ? {}
            : { queuedAt: job.queue.queuedAt, expiresAt: job.queue.expiresAt }),
          refusals: job.queue?.refusals ?? 0,
        }))
        .sort((a, b) => (a.position || Infinity) - (b.position || Infinity)),
      more: head.length > limit,
    },
  };
}
