// Backfills: start one (backfill), see them and their progress (backfills), stop one
// (backfill-cancel). The pipeline does the work (POST /backfill): it lists the bucket a page at a
// time and queues each object version's job as capacity allows, carried on by its reconcile passes,
// so this command answers at once with the backfill's id and counts so far.
import { backfillProgress, parseDuration, type Backfill } from '@pipeline/core';
import { Api } from './api.ts';
import { checked, parse } from './args.ts';
import { COMMANDS } from './commands.ts';
import { say, UsageError, type Io } from './errors.ts';
import { printable, table } from './format.ts';

export async function backfillCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS.backfill, args);
  const source = positionals[0];
  if (!/^gs:\/\/[^/]+(?:\/.*)?$/s.test(source))
    throw new UsageError(`give the objects as gs://BUCKET/PREFIX, got ${JSON.stringify(source)}`, 'backfill');
  const body: Record<string, unknown> = { source };
  if (values.match !== undefined) body.match = values.match;
  if (values.since !== undefined) body.since = sinceTime(values.since);
  if (values['failed-only'] === true) body.failedOnly = true;
  const dryRun = values['dry-run'] === true;
  if (dryRun) body.dryRun = true;
  const backfill = await new Api(values.url, env, 'backfill').json<Backfill & { dryRun?: boolean }>(
    'POST',
    '/backfill',
    body,
  );
  if (values.json) say(io, JSON.stringify(backfill, null, 2));
  else if (dryRun) {
    const stopped = backfill.state === 'RUNNING' ? ' (stopped at its time limit: the counts so far)' : '';
    say(io, `dry run of ${printable(source)}, nothing made: ${backfillProgress(backfill)}${stopped}`);
  } else {
    say(io, `backfill ${backfill.id} of ${printable(source)}: ${backfillProgress(backfill)}`);
    if (backfill.state === 'RUNNING')
      say(io, `the pipeline goes on with it; see it with: pipeline backfills ${backfill.id}`);
    if (backfill.reason !== undefined) say(io, `reason: ${printable(backfill.reason)}`);
  }
  return backfill.state === 'FAILED' ? 1 : 0;
}

export async function backfillsCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS.backfills, args);
  const api = new Api(values.url, env, 'backfills');
  if (positionals[0] !== undefined) {
    const backfill = await api.json<Backfill>(
      'GET',
      `/backfills/${encodeURIComponent(checkedId(positionals[0], 'backfills'))}`,
    );
    say(io, values.json ? JSON.stringify(backfill, null, 2) : backfillDetail(backfill));
    return 0;
  }
  const answer = await api.json<{ backfills: Backfill[] }>('GET', `/backfills?limit=${values.limit}`);
  say(io, values.json ? JSON.stringify(answer, null, 2) : backfillsTable(answer.backfills));
  return 0;
}

export async function backfillCancelCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS['backfill-cancel'], args);
  const id = checkedId(positionals[0], 'backfill-cancel');
  const backfill = await new Api(values.url, env, 'backfill-cancel').json<Backfill>(
    'POST',
    `/backfills/${id}/cancel`,
  );
  say(
    io,
    values.json ? JSON.stringify(backfill, null, 2) : `backfill ${backfill.id} ${backfillProgress(backfill)}`,
  );
  return 0;
}

function checkedId(text: string, command: string): string {
  if (!/^[0-9a-f]{16}$/.test(text))
    throw new UsageError(`${JSON.stringify(text)} is not a backfill id (16 hex characters)`, command);
  return text;
}

/** --since: an ISO 8601 time (no zone: this machine's), or a DURATION that long ago ("7d", "12h"). */
export function sinceTime(text: string, now = Date.now()): string {
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(text)) {
    const time = Date.parse(text);
    if (!Number.isNaN(time)) return new Date(time).toISOString();
  } else if (/^\d/.test(text)) {
    return new Date(now - checked('backfill', () => parseDuration(text, '--since')) * 1000).toISOString();
  }
  throw new UsageError(
    `--since takes an ISO time like 2026-12-01T00:00:00Z, or DURATION ago like 7d; got ${JSON.stringify(text)}`,
    'backfill',
  );
}

const source = (b: Backfill) => `gs://${b.bucket}/${b.prefix}`;

function backfillsTable(backfills: Backfill[]): string {
  if (backfills.length === 0) return 'no backfills';
  const rows = backfills.map((b) => [
    b.id,
    b.state,
    String(b.pages),
    String(b.counts.listed),
    String(b.counts.matched),
    String(b.counts.submitted),
    String(b.counts.retried),
    String(b.counts.skipped),
    String(b.counts.errors),
    b.createdAt,
    printable(source(b)),
  ]);
  return table([
    ['ID', 'STATE', 'PAGES', 'LISTED', 'MATCHED', 'NEW', 'RETRIED', 'SKIPPED', 'ERRORS', 'CREATED', 'SOURCE'],
    ...rows,
  ]);
}

function backfillDetail(b: Backfill): string {
  const lines = [
    `backfill   ${b.id}`,
    `state      ${b.state}`,
    `source     ${printable(source(b))}`,
    ...(b.match === undefined ? [] : [`match      ${printable(b.match)}`]),
    ...(b.since === undefined ? [] : [`since      ${b.since}`]),
    ...(b.failedOnly ? ['only       FAILED jobs, run again'] : []),
    `progress   ${backfillProgress(b)}`,
    `created    ${b.createdAt}`,
    `updated    ${b.updatedAt}`,
    ...(b.finishedAt === undefined ? [] : [`finished   ${b.finishedAt}`]),
    ...(b.reason === undefined ? [] : [`reason     ${printable(b.reason)}`]),
    ...(b.lastError === undefined
      ? []
      : [`last error ${b.lastError.at} ${printable(b.lastError.message)} (tried again at the next pass)`]),
  ];
  for (const failure of b.failures ?? [])
    lines.push(
      `not submitted  ${printable(failure.name)}#${failure.generation}: ${printable(failure.error)}`,
    );
  return lines.join('\n');
}
