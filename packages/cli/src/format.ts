// Tables and blocks for people. What comes from the pipeline (object names, errors, reasons) is data:
// control characters in it are shown escaped (printable, which `npm start`'s lines use too), so a
// name cannot break a table or send escape sequences to the terminal.
import {
  formatBytes,
  formatDuration,
  formatSeconds,
  formatUsd,
  type ActualCost,
  type CostEstimate,
  type DeadLetter,
  type Job,
} from '@pipeline/core';
import { printable } from '@pipeline/dispatcher/printable.ts';

export { printable };

/** A word as a POSIX shell reads it back: as it is when it can be, else in single quotes. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Rows as columns two spaces apart; the last column is not padded. */
export function table(rows: string[][], indent = ''): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => indent + r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '))
    .join('\n');
}

/** "0.8 s", "42.0 s", "3m 5s": tenths below a minute, where they still tell something. */
export function duration(from: string | undefined, to: string | undefined): string | undefined {
  if (from === undefined || to === undefined) return undefined;
  const seconds = (Date.parse(to) - Date.parse(from)) / 1000;
  if (!Number.isFinite(seconds) || seconds < 0) return undefined;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : formatDuration(seconds);
}

export function sourceOf(job: Job): string {
  const { source } = job;
  if (source.kind === 'object') return `${source.object.bucket}/${source.object.name}`;
  const what = source.image ?? `task ${source.task}`;
  return source.args.length === 0 ? what : `${what} ${JSON.stringify(source.args)}`;
}

export function jobsTable(jobs: Job[]): string {
  if (jobs.length === 0) return 'no jobs';
  return table([
    ['ID', 'STATE', 'TARGET', 'RULE', 'CREATED', 'SOURCE'],
    ...jobs.map((job) => [
      job.id,
      job.state,
      job.target ?? '-',
      printable(job.rule ?? '-'),
      job.createdAt,
      printable(sourceOf(job)),
    ]),
  ]);
}

/** A queued job's place as GET /capacity says it now. */
export interface Waiting {
  position: number;
  reason: string;
}

/** "" when `generation` is newer than `job`'s object's; else a warning that the pointer lags. */
function newerOrNot(job: Job, generation: string): string {
  const own = job.source.kind === 'object' ? job.source.object.generation : undefined;
  return own === undefined || BigInt(generation) > BigInt(own) ? '' : '(not moved to this newer job) ';
}

/** Where an object's newest results are: its _LATEST pointer, as GET /latest answers. */
export interface Newest {
  jobId: string;
  generation: string;
  outputUri: string;
}

/** The job as a block; `waiting`: its place in the queue now, when it is QUEUED and that is known; `newest`: where its object's _LATEST points. */
export function jobDetail(
  job: Job,
  waiting?: Waiting,
  now = new Date().toISOString(),
  newest?: Newest,
): string {
  const { source } = job;
  const lines: [string, string | number | undefined][] = [
    ['job', job.id],
    ['state', job.state],
    [
      'source',
      source.kind === 'object'
        ? `${JSON.stringify(sourceOf(job))} generation ${source.object.generation}, ${formatBytes(source.object.size)}`
        : sourceOf(job),
    ],
    ['route', job.target === undefined ? undefined : `${job.target} (rule ${job.rule})`],
    ['reason', job.reason],
    ['params', paramsLines(job.params)],
    [
      'schedule',
      job.schedule && `cron ${JSON.stringify(job.schedule.cron)} (UTC), series ${job.schedule.seriesId}`,
    ],
    ['due', job.state === 'SCHEDULED' ? job.runAt : undefined],
    ...queueLines(job, waiting, now),
    ['attempt', job.attempt],
    ['execution', job.execution],
    ['exit code', job.exitCode],
    ['ran', ranFor(job)],
    ['outputs', job.outputUri],
    [
      'newest',
      newest &&
        (newest.jobId === job.id
          ? "these: the object's _LATEST names this job"
          : `${newerOrNot(job, newest.generation)}generation ${newest.generation}, job ${newest.jobId}: ${newest.outputUri}`),
    ],
    ['logs', job.logsUri],
    ['estimate', estimateLine(job.estimate)],
    ['cost', costLine(job.cost)],
    ['error', job.error],
  ];
  const shown = lines
    .filter(([, v]) => v !== undefined)
    // A multi-line value (an error's stderr tail) keeps its lines, indented under the first.
    .map(
      ([k, v]) =>
        `${k.padEnd(10)} ${String(v)
          .split('\n')
          .map(printable)
          .join(`\n${' '.repeat(11)}`)}`,
    );
  return [
    ...shown,
    ...optionsBlock(job.estimate),
    ...attemptsBlock(job),
    ...zoneRefusalsBlock(job),
    'history',
    ...historyLines(job),
  ].join('\n');
}

/** The job's parameters, NAME=VALUE, one a line: a newline in a value is escaped, not a new line. */
function paramsLines(params: Record<string, string> | undefined): string | undefined {
  const entries = Object.entries(params ?? {});
  if (entries.length === 0) return undefined;
  return entries.map(([name, value]) => `${printable(name)}=${printable(value)}`).join('\n');
}

function ranFor(job: Job): string | undefined {
  const took = duration(job.startedAt, job.finishedAt);
  return took === undefined ? undefined : `${took} (${job.startedAt} to ${job.finishedAt})`;
}

function attemptsBlock(job: Job): string[] {
  const attempts = job.attempts ?? [];
  if (attempts.length === 0) return [];
  const rows = [['#', 'TARGET', 'OUTCOME', 'EXIT', 'DURATION', 'LAUNCHED', 'EXECUTION', 'ERROR']];
  for (const a of attempts) {
    const target =
      a.target === 'vm' && a.spot !== undefined ? `vm (${a.spot ? 'spot' : 'standard'})` : a.target;
    rows.push([
      String(a.attempt),
      target,
      a.outcome ?? (a.finishedAt === undefined ? 'running' : '-'),
      a.exitCode === undefined ? '-' : String(a.exitCode),
      duration(a.startedAt, a.finishedAt) ?? '-',
      a.launchedAt,
      // A batch's task: which (CLOUD_RUN_TASK_INDEX) of how many, after the execution they share.
      printable(a.execution ?? '-') +
        (a.batch === undefined ? '' : ` (task ${a.batch.index} of ${a.batch.size})`),
      // The first line says what went wrong (the worker's message; the usage or a trace follows it).
      // The whole error of the current attempt is under `error` above.
      printable(a.error?.trim().split('\n')[0].slice(0, 100) ?? ''),
    ]);
  }
  return ['attempts', table(rows, '  ').replace(/ +$/gm, '')];
}

/** When it joined the queue, why it waits (live when known, else as last recorded) and its refusals. */
function queueLines(job: Job, waiting: Waiting | undefined, now: string): [string, string | undefined][] {
  const { queue } = job;
  if (queue === undefined) return [];
  const queued = job.state === 'QUEUED';
  const launchedAt = job.attempts?.find((a) => a.attempt === job.attempt)?.launchedAt;
  const waited = duration(queue.queuedAt, queued ? now : launchedAt);
  const since =
    waited === undefined
      ? ''
      : queued
        ? `, waiting ${waited} so far; fails if not launched by ${queue.expiresAt}`
        : `, launched after ${waited}`;
  // Live (GET /capacity) when known; the recorded reason does not say when a refusal is tried again.
  const stored = queued && waiting === undefined;
  const place = waiting === undefined || waiting.position === 0 ? '' : `#${waiting.position} in line: `;
  const why = !queued ? undefined : waiting === undefined ? queue.reason : place + waiting.reason;
  const notBefore =
    stored && queue.notBefore !== undefined && queue.notBefore > now
      ? `, not tried again before ${queue.notBefore}`
      : '';
  // The last refusal, unless the reason above says it already.
  const last = queue.reason === undefined || why?.includes(queue.reason) ? '' : `; last: ${queue.reason}`;
  return [
    ['queued', `${queue.queuedAt}${since}`],
    ['waiting', why],
    ['refusals', queue.refusals === 0 ? undefined : `${queue.refusals}${notBefore}${last}`],
  ];
}

/** The zones that refused an attempt's VM before one took it, one line each. */
function zoneRefusalsBlock(job: Job): string[] {
  const lines: string[] = [];
  for (const a of job.attempts ?? []) {
    const label = `attempt ${a.attempt}`;
    (a.refusals ?? []).forEach((refusal, i) =>
      lines.push(`  ${(i === 0 ? label : '').padEnd(label.length)}  ${printable(refusal)}`),
    );
  }
  return lines.length === 0 ? [] : ['refused by zones', ...lines];
}

function historyLines(job: Job): string[] {
  return job.history.map((h) => `  ${h.at}  ${h.to.padEnd(9)} ${printable(h.detail ?? '')}`.trimEnd());
}

/** Where routing expected the job to run, how long and at what cost: "$0.061 on vm e2-standard-8 spot, 42m". */
export function estimateLine(estimate: CostEstimate | undefined): string | undefined {
  if (estimate === undefined) return undefined;
  return `${formatUsd(estimate.usd)} on ${placeOf(estimate)}, ${formatSeconds(estimate.seconds)} (${estimate.basis})`;
}

/** The places routing priced, cheapest expected first, those that could not take it last. */
function optionsBlock(estimate: CostEstimate | undefined): string[] {
  if (estimate === undefined || estimate.options.length < 2) return [];
  const rows = [['PLACE', 'EXPECTED', 'COST', 'NOTE']];
  for (const option of estimate.options) {
    rows.push([
      placeOf(option),
      option.seconds === undefined ? '-' : formatSeconds(option.seconds),
      option.usd === undefined ? '-' : formatUsd(option.usd),
      printable(option.feasible ? (option.why ?? '') : `cannot: ${option.why ?? 'over its limits'}`),
    ]);
  }
  return ['priced', table(rows, '  ').replace(/ +$/gm, '')];
}

function placeOf(place: { target: string; machineType?: string; spot?: boolean }): string {
  if (place.target !== 'vm') return place.target;
  const machine = place.machineType === undefined ? '' : ` ${place.machineType}`;
  return `vm${machine}${place.spot === undefined ? '' : place.spot ? ' spot' : ' standard'}`;
}

/** What the attempts cost from their measured run times: "$0.072 (attempt 1 ...; attempt 2 ...)". */
export function costLine(cost: ActualCost | undefined): string | undefined {
  return cost === undefined ? undefined : `${formatUsd(cost.usd)} (${cost.detail.join('; ')})`;
}

export function deadLettersTable(messages: DeadLetter[], note: string | undefined): string {
  const footer = note === undefined ? [] : [`(${note})`];
  if (messages.length === 0) return ['no dead letters', ...footer].join('\n');
  const rows = [['ID', 'PUBLISHED', 'DELIVERIES', 'SUBSCRIPTION', 'REASON']];
  for (const m of messages)
    rows.push([
      printable(m.id),
      m.publishTime,
      m.deliveryAttempts === undefined ? '-' : String(m.deliveryAttempts),
      // projects/P/subscriptions/S: the name says which; the project is the deployment's.
      printable(m.sourceSubscription?.split('/').at(-1) ?? '-'),
      printable(m.reason),
    ]);
  return [table(rows), ...footer].join('\n');
}
