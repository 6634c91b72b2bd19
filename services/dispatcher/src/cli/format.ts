// Tables and blocks for people. What comes from the pipeline (object names, errors, reasons) is data:
// control characters in it are shown escaped, so a name cannot break a table or send escape
// sequences to the terminal.
import { formatBytes, formatDuration, type DeadLetter, type Job } from '@pipeline/core';

/** Text with control characters (also newlines, and C1 controls like CSI) escaped as in JSON. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const escaped = JSON.stringify(c).slice(1, -1); // \n, \t, \u001b; JSON leaves DEL and C1 as they are
    return escaped.length > 1 ? escaped : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
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

/** Estimates and costs: another part of the pipeline adds them; shown only when a job has them. */
type Priced = Job & { estimate?: unknown; cost?: unknown };

export function jobDetail(job: Priced): string {
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
    [
      'schedule',
      job.schedule && `cron ${JSON.stringify(job.schedule.cron)} (UTC), series ${job.schedule.seriesId}`,
    ],
    ['due', job.state === 'SCHEDULED' ? job.runAt : undefined],
    ['attempt', job.attempt],
    ['execution', job.execution],
    ['exit code', job.exitCode],
    ['ran', ranFor(job)],
    ['outputs', job.outputUri],
    ['logs', job.logsUri],
    ['estimate', amount(job.estimate)],
    ['cost', amount(job.cost)],
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
  return [...shown, ...attemptsBlock(job), 'history', ...historyLines(job)].join('\n');
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
      printable(a.execution ?? '-'),
      // The first line says what went wrong (the worker's message; the usage or a trace follows it).
      // The whole error of the current attempt is under `error` above.
      printable(a.error?.trim().split('\n')[0].slice(0, 100) ?? ''),
    ]);
  }
  return ['attempts', table(rows, '  ').replace(/ +$/gm, '')];
}

function historyLines(job: Job): string[] {
  return job.history.map((h) => `  ${h.at}  ${h.to.padEnd(9)} ${printable(h.detail ?? '')}`.trimEnd());
}

/**
 * A price for people: a number of US dollars, or an object holding one (`usd`, `amount`, `total`,
 * `value`) with its currency and other details beside it, or a text as it is.
 */
export function amount(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return money(value, 'USD');
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || Array.isArray(value)) return JSON.stringify(value);
  const fields = { ...(value as Record<string, unknown>) };
  const key = ['usd', 'amount', 'total', 'value'].find((k) => typeof fields[k] === 'number');
  if (key === undefined) return JSON.stringify(value);
  const currency = typeof fields.currency === 'string' ? fields.currency : 'USD';
  const main = money(fields[key] as number, currency);
  delete fields[key];
  delete fields.currency;
  const details = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return details.length === 0 ? main : `${main} (${details.join(', ')})`;
}

/** Cents, or four places below one unit, where small jobs' costs are. */
function money(n: number, currency: string): string {
  const text = Math.abs(n) < 1 && n !== 0 ? n.toFixed(4) : n.toFixed(2);
  return currency === 'USD' ? `$${text}` : `${text} ${currency}`;
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
