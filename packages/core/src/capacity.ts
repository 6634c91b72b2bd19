// What may launch now: the queue's admission, pure. Every dispatcher instance reads the same capacity
// record from the ledger (who holds a launch slot, the recent runJob calls, what refusals taught),
// runs `admit` on it with the head of the queue, and writes the result back with compare-and-set: of
// two instances that admit at once, one write wins and the other reads again, so the slots are never
// overbooked and each queued job is launched by the one instance that took its slot.
//
// The pools: Cloud Run executions launched or running (the platform allows 1,000 per project and
// region, https://cloud.google.com/run/quotas "Maximum number of running Job executions"), the rate
// of runJob calls ("Job run requests per minute per region", a quota of its own), VM vCPUs and GPUs
// per region (Compute's region quotas), a rule's own `maxConcurrent`, and in local mode a number of
// processes. Order: earliest `dueBy` first, which is FIFO within a rule (dueBy = queuedAt + a fixed
// span) and earliest deadline first across rules; since every job's dueBy is at most its
// maxQueueTime away, a job of a rule without a deadline is never passed over for ever. A job that
// does not fit blocks those after it in the same pool (no backfill), so a large VM is not starved by
// small ones; a rule at its own cap blocks nobody else.
import { MACHINE_TYPES } from './platforms.ts';
import type { Job } from './job.ts';
import type { Accelerator, JobTemplate, Target } from './template.ts';

/** Cloud Run's hard limit of running job executions per project and region (the quotas page above). */
export const CLOUD_RUN_MAX_RUNNING_EXECUTIONS = 1000;
/** Below CLOUD_RUN_MAX_RUNNING_EXECUTIONS: room for executions started by hand. */
export const DEFAULT_RUN_EXECUTIONS = 900;
/** runJob calls per minute; the quota is per project and region, shown on the console's Quotas page. */
export const DEFAULT_RUN_JOBS_PER_MINUTE = 60;
/** The most runJob calls admitted at once at a fast rate (under 0.1 s apart). */
const MAX_RATE_BURST = 64;
/** How long a ceiling learned from a refusal holds before the configured limit is tried again. */
export const CEILING_HOLD_MS = 60_000;

export interface CapacityLimits {
  /** The region, for reasons. */
  region: string;
  /** Cloud Run executions launched or running at once. */
  runExecutions: number;
  /** runJob calls per minute. */
  runJobsPerMinute: number;
  /** vCPUs of this deployment's VMs at once (configured, or what the region's quota leaves); absent: unknown. */
  vmCpus?: number;
  /** The most vCPUs there can ever be (the region's whole quota, or VM_MAX_VCPUS if lower): a VM that needs more never runs. */
  vmCpuQuota?: number;
  /** Per accelerator type (nvidia-l4): GPUs at once, and the region's whole quota for them. */
  gpus?: Record<string, { limit: number; quota?: number }>;
  /** Local mode: jobs launched or running at once, whatever their target. */
  total?: number;
  /** A rule's maxConcurrent, by rule name. */
  ruleMaxConcurrent?: Record<string, number>;
  /** What could not be known (a quota that could not be read), for people. */
  notes?: string[];
}

/** What one job takes while it is launched or running. */
export interface Demand {
  target: Target;
  cpus: number;
  gpus?: Accelerator;
}

/** A job that holds a launch slot: taken when it was admitted, given back when its attempt ends. */
export interface SlotHolder extends Demand {
  /** The job, or for a batch (batch-gathering.ts) the batch's id. */
  jobId: string;
  rule?: string;
  at: string;
  /** A batch's jobs that have not ended: the one slot is given back when the last one ends. */
  members?: string[];
}

/** A limit learned from a refusal: the platform said full at this many in use. Holds until `until`. */
export interface Ceiling {
  pool: string;
  limit: number;
  until: string;
  reason: string;
}

/** The shared record every admission reads and writes (compare-and-set on `version`). */
export interface CapacityRecord {
  version: number;
  holders: SlotHolder[];
  /** When runJob was called, for the rate; only the last minute is kept. */
  runLaunches: string[];
  ceilings: Ceiling[];
}

export const EMPTY_CAPACITY: CapacityRecord = { version: 0, holders: [], runLaunches: [], ceilings: [] };

/** A queued job as admission sees it. */
export interface QueuedJob {
  jobId: string;
  rule?: string;
  demand: Demand;
  queuedAt: string;
  dueBy: string;
  expiresAt: string;
  /** After a refused launch: not before this time. */
  notBefore?: string;
  /** What the last refusal said, for the reason while it waits out notBefore. */
  lastRefusal?: string;
  /** A batch: its jobs, in task order (batchQueuedJob); jobId is then the batch's id. */
  members?: string[];
}

export interface Waiting {
  jobId: string;
  /** 1 is next. */
  position: number;
  reason: string;
}

export interface Admission {
  /** Admitted, in order: each now holds a slot in `record` and is launched by the caller. */
  admitted: SlotHolder[];
  /** The record with those slots taken (and the runJob calls they make); `version` one more. */
  record: CapacityRecord;
  waiting: Waiting[];
  /** Jobs that can never fit, or waited past their maxQueueTime: they fail with the reason. */
  failNow: { jobId: string; reason: string }[];
  /** When something that waits may fit without a slot being freed: a rate slot, a backoff, a ceiling's end. */
  nextChangeAt?: string;
}

type Pool = string; // 'run', 'vm-cpus', 'gpus:<type>', 'total'

/** The order of the queue: earliest dueBy, then earliest queued, then the id. */
export function queueOrder(a: QueuedJob, b: QueuedJob): number {
  return (
    Date.parse(a.dueBy) - Date.parse(b.dueBy) ||
    Date.parse(a.queuedAt) - Date.parse(b.queuedAt) ||
    (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0)
  );
}

/**
 * Admits, in order, what fits now: at most `maxAdmit` (what the caller can launch within its
 * deadline). Jobs already holding a slot (another instance launches them) are left out.
 */
export function admit(
  record: CapacityRecord,
  queue: readonly QueuedJob[],
  limits: CapacityLimits,
  now: string,
  maxAdmit = Number.POSITIVE_INFINITY,
): Admission {
  const nowMs = Date.parse(now);
  const ceilings = record.ceilings.filter((c) => Date.parse(c.until) > nowMs);
  const held = heldIds(record.holders);
  const usage = usageOf(record.holders);
  const spacingMs = launchSpacingMs(limits.runJobsPerMinute);
  const runLaunches = record.runLaunches.filter((t) => nowMs - Date.parse(t) < 60_000);
  let lastLaunch = runLaunches.reduce(
    (latest, t) => Math.max(latest, Date.parse(t)),
    Number.NEGATIVE_INFINITY,
  );
  // Launches the rate allows now. Spaced more than 0.1 s apart (up to 600 a minute), one at a time,
  // so no second sees more than the rate; faster, as many as the time since the last one allows.
  let runTokens =
    spacingMs === 0
      ? Number.POSITIVE_INFINITY
      : spacingMs >= 100
        ? nowMs - lastLaunch >= spacingMs
          ? 1
          : 0
        : Math.min(MAX_RATE_BURST, Math.floor((nowMs - lastLaunch) / spacingMs));
  const ruleUse = new Map<string, number>();
  for (const h of record.holders)
    if (h.rule !== undefined) ruleUse.set(h.rule, (ruleUse.get(h.rule) ?? 0) + 1);

  const admitted: SlotHolder[] = [];
  const waiting: Waiting[] = [];
  const failNow: Admission['failNow'] = [];
  const blocked = new Map<Pool, { reason: string; count: number }>();
  let nextChange: number | undefined;
  const later = (ms: number) => {
    if (ms > nowMs && (nextChange === undefined || ms < nextChange)) nextChange = ms;
  };
  for (const c of ceilings) later(Date.parse(c.until));

  const ordered = queue
    .filter((q) => !held.has(q.jobId) && !(q.members ?? []).some((id) => held.has(id)))
    .sort(queueOrder);
  ordered.forEach((job, index) => {
    const position = index + 1;
    const wait = (reason: string) => {
      if (Date.parse(job.expiresAt) <= nowMs) {
        failNow.push({
          jobId: job.jobId,
          reason: `no capacity came within its rule's maxQueueTime (queued at ${job.queuedAt}): ${reason}`,
        });
      } else {
        waiting.push({ jobId: job.jobId, position, reason });
        later(Date.parse(job.expiresAt));
      }
    };
    const pools = poolsOf(job.demand, limits);
    const never = neverFits(job.demand, limits);
    if (never !== undefined) {
      failNow.push({ jobId: job.jobId, reason: never });
      return;
    }
    const blocker = pools.map((p) => blocked.get(p)).find((b) => b !== undefined);
    if (blocker !== undefined) {
      blocker.count++;
      return wait(`behind ${blocker.count} earlier job${blocker.count === 1 ? '' : 's'} ${blocker.reason}`);
    }
    if (job.notBefore !== undefined && Date.parse(job.notBefore) > nowMs) {
      later(Date.parse(job.notBefore));
      return wait(`${job.lastRefusal ?? 'its launch was refused'}; tried again after ${job.notBefore}`);
    }
    const cap = job.rule === undefined ? undefined : limits.ruleMaxConcurrent?.[job.rule];
    if (cap !== undefined && (ruleUse.get(job.rule!) ?? 0) >= cap) {
      return wait(
        `waiting for rule ${job.rule}'s maxConcurrent: ${ruleUse.get(job.rule!) ?? 0} of ${cap} launched or running`,
      );
    }
    for (const pool of pools) {
      const need = needOf(job.demand, pool);
      const configured = configuredLimit(pool, limits)!;
      const ceiling = ceilings.find((c) => c.pool === pool);
      const limit = ceiling === undefined ? configured : Math.min(configured, ceiling.limit);
      const used = usage.get(pool) ?? 0;
      if (used + need > limit) {
        const reason = poolReason(pool, used, limit, need, limits, ceiling);
        blocked.set(pool, { reason: `waiting for ${poolName(pool, limits)}`, count: 0 });
        return wait(reason);
      }
    }
    if (job.demand.target === 'cloud-run-job' && runTokens < 1) {
      // The next call may go one spacing after the last, made now or earlier.
      later(lastLaunch + spacingMs > nowMs ? lastLaunch + spacingMs : nowMs + spacingMs);
      blocked.set('run', { reason: 'waiting for the runJob rate', count: 0 });
      return wait(
        `waiting for the runJob rate: one launch every ${(spacingMs / 1000).toFixed(2)} s (limit ${limits.runJobsPerMinute} per minute)`,
      );
    }
    if (admitted.length >= maxAdmit) return wait('next in line: launching');
    const holder: SlotHolder = {
      ...job.demand,
      jobId: job.jobId,
      ...(job.rule === undefined ? {} : { rule: job.rule }),
      at: now,
      ...(job.members === undefined ? {} : { members: [...job.members] }),
    };
    admitted.push(holder);
    for (const pool of pools) usage.set(pool, (usage.get(pool) ?? 0) + needOf(job.demand, pool));
    if (job.rule !== undefined) ruleUse.set(job.rule, (ruleUse.get(job.rule) ?? 0) + 1);
    if (job.demand.target === 'cloud-run-job') {
      runTokens--;
      lastLaunch = nowMs;
      runLaunches.push(now);
    }
  });
  return {
    admitted,
    record: {
      version: record.version + 1,
      holders: [...record.holders, ...admitted],
      runLaunches: runLaunches.slice(-1000), // for the view; admission needs only the last
      ceilings,
    },
    waiting,
    failNow,
    ...(nextChange === undefined ? {} : { nextChangeAt: new Date(nextChange).toISOString() }),
  };
}

/**
 * Whether any pool has room now (a slot free under its limit and any ceiling): when none has, a
 * drain need not read the queue at all. VMs with no known vCPU limit always have room.
 */
export function hasRoom(record: CapacityRecord, limits: CapacityLimits, now: string): boolean {
  const usage = usageOf(record.holders);
  const nowMs = Date.parse(now);
  const limitOf = (pool: Pool, configured: number | undefined) => {
    const ceiling = record.ceilings.find((c) => c.pool === pool && Date.parse(c.until) > nowMs);
    return ceiling === undefined ? configured : Math.min(configured ?? Infinity, ceiling.limit);
  };
  const free = (pool: Pool, configured: number | undefined) => {
    const limit = limitOf(pool, configured);
    return limit === undefined || (usage.get(pool) ?? 0) < limit;
  };
  if (limits.total !== undefined && !free('total', limits.total)) return false;
  return free('run', limits.runExecutions) || free('vm-cpus', limits.vmCpus);
}

/** Ids that hold a slot: jobs, batches, and the jobs of batches. */
export function heldIds(holders: readonly SlotHolder[]): Set<string> {
  return new Set(holders.flatMap((h) => [h.jobId, ...(h.members ?? [])]));
}

/**
 * The record without `jobId`'s slot (its attempt ended, or its launch was refused); version one more.
 * A job of a batch leaves its batch's slot, which is given back with the last of them.
 */
export function releaseSlot(
  record: CapacityRecord,
  jobId: string,
  version = record.version + 1,
): CapacityRecord | undefined {
  if (!record.holders.some((h) => h.jobId === jobId || h.members?.includes(jobId))) return undefined;
  const holders = record.holders.flatMap((h): SlotHolder[] => {
    if (h.jobId === jobId) return [];
    if (h.members === undefined || !h.members.includes(jobId)) return [h];
    const members = h.members.filter((id) => id !== jobId);
    return members.length === 0 ? [] : [{ ...h, members }];
  });
  return { ...record, version, holders };
}

/**
 * After a refusal for want of capacity (not of rate) with what of the pool is held by others: that is
 * the platform's real limit for now, whatever the configuration says. It holds for CEILING_HOLD_MS; then the
 * configured limit is tried again. The refused job's own slot is released as well.
 */
export function learnCeiling(
  record: CapacityRecord,
  refused: SlotHolder,
  limits: CapacityLimits,
  now: string,
  reason: string,
): CapacityRecord {
  const holders = record.holders.filter((h) => h.jobId !== refused.jobId);
  const usage = usageOf(holders);
  const pools = poolsOf(refused, limits).filter((p) => p !== 'total');
  const pool =
    refused.target === 'cloud-run-job' ? 'run' : (pools.find((p) => p.startsWith('gpus:')) ?? 'vm-cpus');
  const until = new Date(Date.parse(now) + CEILING_HOLD_MS).toISOString();
  // At least one: a refusal with nothing of ours in use (the quota is used by others) still lets one
  // launch probe, after its backoff, rather than none for the whole hold.
  const ceiling: Ceiling = { pool, limit: Math.max(1, usage.get(pool) ?? 0), until, reason };
  return {
    ...record,
    version: record.version + 1,
    holders,
    ceilings: [
      ...record.ceilings.filter((c) => c.pool !== pool && Date.parse(c.until) > Date.parse(now)),
      ceiling,
    ],
  };
}

/**
 * The record made true again from the ledger: slots of jobs that are no longer launched or running
 * are given back once older than `graceMs` (a dispatcher that died between taking a slot and
 * writing LAUNCHED), and a launched or running job without a slot gets one. A batch's slot is kept
 * while any of its jobs is active (and its jobs that are not leave it, after the grace).
 * `active` is keyed by job id. Only jobs in `slotless` get a slot (default: every active job): those
 * the caller saw without one, since a job that held one when the caller looked and has none now gave
 * it back meanwhile, as it ended. Undefined: nothing to change.
 */
export function repairSlots(
  record: CapacityRecord,
  active: ReadonlyMap<string, Omit<SlotHolder, 'at'>>,
  now: string,
  graceMs: number,
  slotless?: ReadonlySet<string>,
): CapacityRecord | undefined {
  const nowMs = Date.parse(now);
  let changed = false;
  const kept = record.holders.flatMap((h): SlotHolder[] => {
    const young = nowMs - Date.parse(h.at) < graceMs;
    if (h.members === undefined) {
      if (active.has(h.jobId) || young) return [h];
      changed = true;
      return [];
    }
    const members = young ? h.members : h.members.filter((id) => active.has(id));
    if (members.length === h.members.length) return [h];
    changed = true;
    return members.length === 0 ? [] : [{ ...h, members }];
  });
  const have = heldIds(kept);
  const added = [...active.values()]
    .filter((a) => !have.has(a.jobId) && (slotless === undefined || slotless.has(a.jobId)))
    .map((a) => ({ ...a, at: now }));
  if (!changed && added.length === 0) return undefined;
  return { ...record, version: record.version + 1, holders: [...kept, ...added] };
}

/**
 * A QUEUED job as admission sees it: its demand on its target, its place (an entry-less job, from
 * before the queue, waits as if queued when last updated, and never expires).
 */
export function queuedJob(job: Job, defaultMachineType?: string): QueuedJob {
  const entry = job.queue ?? {
    queuedAt: job.updatedAt,
    dueBy: job.updatedAt,
    expiresAt: '9999-12-31T00:00:00.000Z',
    refusals: 0,
  };
  return {
    jobId: job.id,
    ...(job.rule === undefined ? {} : { rule: job.rule }),
    demand: demandOf(job.target ?? 'cloud-run-job', job.template, defaultMachineType),
    queuedAt: entry.queuedAt,
    dueBy: entry.dueBy,
    expiresAt: entry.expiresAt,
    ...(entry.notBefore === undefined ? {} : { notBefore: entry.notBefore }),
    ...(entry.reason === undefined ? {} : { lastRefusal: entry.reason }),
  };
}

/** What capacity a job's template takes on its target. */
export function demandOf(
  target: Target,
  template: JobTemplate | undefined,
  defaultMachineType?: string,
): Demand {
  if (target === 'cloud-run-job') return { target, cpus: template?.cpu ?? 1 };
  const machineType = template?.machineType ?? defaultMachineType;
  const known = MACHINE_TYPES.find((m) => m.name === machineType);
  const cpus = known?.cpu ?? cpusOfMachineType(machineType) ?? template?.cpu ?? 1;
  const gpus = template?.accelerator ?? known?.gpu;
  return { target, cpus, ...(gpus === undefined ? {} : { gpus: { type: gpus.type, count: gpus.count } }) };
}

/** e2-standard-8 -> 8, n2-custom-6-24576 -> 6, a2-highgpu-2g -> undefined (listed in MACHINE_TYPES). */
function cpusOfMachineType(name: string | undefined): number | undefined {
  const match = name === undefined ? null : (/-custom-(\d+)-\d+$/.exec(name) ?? /-(\d+)$/.exec(name));
  return match === null ? undefined : Number(match[1]);
}

/** What is in use, per pool: Cloud Run executions, VM vCPUs, GPUs by type, everything (local). */
export function usageOf(holders: readonly Demand[]): Map<Pool, number> {
  const usage = new Map<Pool, number>();
  const add = (pool: Pool, n: number) => usage.set(pool, (usage.get(pool) ?? 0) + n);
  for (const h of holders) {
    add('total', 1);
    if (h.target === 'cloud-run-job') add('run', 1);
    else {
      add('vm-cpus', h.cpus);
      if (h.gpus !== undefined) add(`gpus:${h.gpus.type}`, h.gpus.count);
    }
  }
  return usage;
}

function poolsOf(demand: Demand, limits: CapacityLimits): Pool[] {
  const pools: Pool[] = [];
  if (limits.total !== undefined) pools.push('total');
  if (demand.target === 'cloud-run-job') pools.push('run');
  else {
    if (limits.vmCpus !== undefined) pools.push('vm-cpus');
    if (demand.gpus !== undefined && limits.gpus?.[demand.gpus.type] !== undefined)
      pools.push(`gpus:${demand.gpus.type}`);
  }
  return pools;
}

function needOf(demand: Demand, pool: Pool): number {
  if (pool === 'vm-cpus') return demand.cpus;
  if (pool.startsWith('gpus:')) return demand.gpus?.count ?? 0;
  return 1;
}

function configuredLimit(pool: Pool, limits: CapacityLimits): number | undefined {
  if (pool === 'total') return limits.total;
  if (pool === 'run') return limits.runExecutions;
  if (pool === 'vm-cpus') return limits.vmCpus;
  return limits.gpus?.[pool.slice('gpus:'.length)]?.limit;
}

/**
 * Why a job can never run here, or undefined. Only the whole quota counts (or, without one, the
 * configured limit): what others use now passes, and so do ceilings learned from refusals.
 */
function neverFits(demand: Demand, limits: CapacityLimits): string | undefined {
  if (demand.target !== 'vm') return undefined;
  const cpuCap = limits.vmCpuQuota ?? limits.vmCpus;
  if (cpuCap !== undefined && demand.cpus > cpuCap) {
    const what = limits.vmCpuQuota === undefined ? 'limit' : 'quota';
    return `it needs ${demand.cpus} vCPUs, and the vCPU ${what} in ${limits.region} is ${cpuCap}: it can never run there`;
  }
  if (demand.gpus !== undefined) {
    const gpu = limits.gpus?.[demand.gpus.type];
    const gpuCap = gpu?.quota ?? gpu?.limit;
    if (gpuCap !== undefined && demand.gpus.count > gpuCap) {
      const what = gpu?.quota === undefined ? 'limit' : 'quota';
      return `it needs ${demand.gpus.count} ${demand.gpus.type} GPU${demand.gpus.count === 1 ? '' : 's'}, and the ${limits.region} ${what} for them is ${gpuCap}: it can never run there`;
    }
  }
  return undefined;
}

function poolName(pool: Pool, limits: CapacityLimits): string {
  if (pool === 'total') return 'a local slot';
  if (pool === 'run') return 'a Cloud Run execution';
  if (pool === 'vm-cpus') return `vCPUs in ${limits.region}`;
  return `${pool.slice('gpus:'.length)} GPUs in ${limits.region}`;
}

function poolReason(
  pool: Pool,
  used: number,
  limit: number,
  need: number,
  limits: CapacityLimits,
  ceiling: Ceiling | undefined,
): string {
  const learned =
    ceiling === undefined
      ? ''
      : ` (the platform refused a launch at ${ceiling.limit} in use: ${ceiling.reason}; more is tried after ${ceiling.until})`;
  if (pool === 'total') return `waiting for capacity: ${used} of ${limit} local slots in use${learned}`;
  if (pool === 'run')
    return `waiting for capacity: ${used} of ${limit} Cloud Run executions in use${learned}`;
  const what = pool === 'vm-cpus' ? 'vCPU quota' : `${pool.slice('gpus:'.length)} GPU quota`;
  return `waiting for capacity: ${what} in ${limits.region}: ${used} of ${limit} in use, this job needs ${need}${learned}`;
}

/** Whether a refusal is of a rate (requests per minute), not of capacity in use: it teaches no ceiling. */
export function isRateRefusal(message: string): boolean {
  return /per minute|per second|rate limit|rateLimitExceeded|RATE_EXCEEDED|too many requests/i.test(message);
}

/**
 * The time between two runJob calls at `perMinute`, with a tenth to spare: a quota counted per
 * second or per minute by Google's clock then sees no more than it allows, whatever the jitter
 * between admitting a launch and its call arriving. 180 per minute: one every 0.37 s.
 */
export function launchSpacingMs(perMinute: number): number {
  return Number.isFinite(perMinute) ? Math.ceil((60_000 / perMinute) * 1.1) : 0;
}
