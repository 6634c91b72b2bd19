// The launch queue and capacity for people: what waits, in order, and why; each pool's use against its
// limit; the ceilings refusals taught. Reasons and names come from the pipeline and are data.
import type { Job } from '@pipeline/core';
import type { CapacityView, QueuedView } from '@pipeline/dispatcher/queue-view.ts';
import { duration, printable, sourceOf, table, type Waiting } from './format.ts';

/** GET /jobs?state=QUEUED without a page token: the head of the queue, in launch order. */
export interface QueuePage {
  jobs: (Job & { waiting?: Waiting })[];
  more?: true;
}

/** A limit as the API sends it: JSON has no Infinity, so no limit comes as null. */
type Limit = number | null | undefined;

const noLimit = (n: Limit): n is null | undefined => n === null || n === undefined || !Number.isFinite(n);

/** Position 0: not in line (it fails at the next drain, or a launch of it is under way). */
const positionOf = (position: number) => (position === 0 ? '-' : String(position));

const waitedFor = (queuedAt: string | undefined, now: string) => duration(queuedAt, now) ?? '-';

function moreNote(shown: number, more: boolean | undefined): string[] {
  return more ? [`(the first ${shown} in line; more wait: --limit N shows up to 200)`] : [];
}

/** `pipeline jobs --state queued`. */
export function queuedJobsTable(page: QueuePage, now: string): string {
  if (page.jobs.length === 0) return 'nothing queued';
  const rows = [['POS', 'ID', 'TARGET', 'RULE', 'WAITED', 'SOURCE', 'REASON']];
  for (const job of page.jobs)
    rows.push([
      positionOf(job.waiting?.position ?? 0),
      job.id,
      job.target ?? '-',
      printable(job.rule ?? '-'),
      waitedFor(job.queue?.queuedAt, now),
      printable(sourceOf(job)),
      printable(job.waiting?.reason ?? job.queue?.reason ?? '-'),
    ]);
  return [table(rows), ...moreNote(page.jobs.length, page.more)].join('\n');
}

/** `pipeline capacity`: limits and use per target, ceilings in force, the head of the queue. */
export function capacityReport(view: CapacityView, now: string): string {
  return [...poolLines(view), ...ceilingLines(view), ...queueLines(view.queue, now)].join('\n');
}

function poolLines({ limits, inUse, runLaunchesLastMinute, ceilings }: CapacityView): string[] {
  const learned = (pool: string) => {
    const ceiling = ceilings.find((c) => c.pool === pool);
    return ceiling === undefined ? '' : `; ${ceiling.limit} until ${ceiling.until} (learned)`;
  };
  const limit = (n: Limit, quota: Limit, pool: string) =>
    `${noLimit(n) ? 'none' : n}${noLimit(quota) ? '' : ` (quota ${quota})`}${learned(pool)}`;
  const rows = [
    ['TARGET', 'POOL', 'IN USE', 'LIMIT'],
    [
      'cloud-run-job',
      'executions',
      String(inUse.cloudRunExecutions),
      limit(limits.runExecutions, null, 'run'),
    ],
    [
      'cloud-run-job',
      'runJob calls, last minute',
      String(runLaunchesLastMinute),
      noLimit(limits.runJobsPerMinute) ? 'none' : `${limits.runJobsPerMinute} per minute`,
    ],
    ['vm', 'vCPUs', String(inUse.vmCpus), limit(limits.vmCpus, limits.vmCpuQuota, 'vm-cpus')],
  ];
  const types = [...new Set([...Object.keys(limits.gpus ?? {}), ...Object.keys(inUse.gpus)])].sort();
  for (const type of types) {
    const gpu = limits.gpus?.[type];
    rows.push([
      'vm',
      `${printable(type)} GPUs`,
      String(inUse.gpus[type] ?? 0),
      limit(gpu?.limit, gpu?.quota, `gpus:${type}`),
    ]);
  }
  const local = !noLimit(limits.total);
  rows.push([
    'any',
    local ? 'local slots' : 'launched or running',
    String(inUse.total),
    limit(limits.total, null, 'total'),
  ]);
  const caps = Object.entries(limits.ruleMaxConcurrent ?? {}).map(([rule, n]) => `${printable(rule)} ${n}`);
  const where = limits.region === 'local' ? 'capacity (local)' : `capacity in ${printable(limits.region)}`;
  // What the dispatcher could not know (a quota it could not read), where its version says so.
  const { notes = [] } = limits as typeof limits & { notes?: string[] };
  return [
    where,
    table(rows, '  '),
    ...notes.map((note) => `note: ${printable(note)}`),
    ...(caps.length === 0
      ? []
      : [`rule caps (queue.maxConcurrent, launched or running at once): ${caps.join(', ')}`]),
  ];
}

const POOL_NAMES: Record<string, string> = {
  run: 'cloud-run-job executions',
  'vm-cpus': 'vm vCPUs',
  total: 'local slots',
};

const poolName = (pool: string) =>
  POOL_NAMES[pool] ?? (pool.startsWith('gpus:') ? `vm ${pool.slice(5)} GPUs` : pool);

function ceilingLines({ ceilings }: CapacityView): string[] {
  if (ceilings.length === 0) return ['ceilings learned from refusals: none in force'];
  const rows = [['POOL', 'LIMIT', 'UNTIL', 'REASON']];
  for (const c of ceilings)
    rows.push([printable(poolName(c.pool)), String(c.limit), c.until, printable(c.reason)]);
  return ['ceilings learned from refusals', table(rows, '  ')];
}

function queueLines(queue: CapacityView['queue'], now: string): string[] {
  if (queue.jobs.length === 0) return ['queue: nothing waits'];
  const rows = [['POS', 'ID', 'TARGET', 'RULE', 'WAITED', 'REFUSALS', 'REASON']];
  for (const q of queue.jobs as QueuedView[])
    rows.push([
      positionOf(q.position),
      q.id,
      q.target ?? '-',
      printable(q.rule ?? '-'),
      waitedFor(q.queuedAt, now),
      String(q.refusals),
      printable(q.reason),
    ]);
  const count = `${queue.jobs.length}${queue.more ? '+' : ''}`;
  return [
    `queue: ${count} queued, in launch order`,
    table(rows, '  '),
    ...moreNote(queue.jobs.length, queue.more).map((l) => `  ${l}`),
  ];
}
