// `pipeline`: start the local pipeline, put files into its input bucket, and look at jobs.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { jobIdFor, JOB_STATES, type Job, type JobPage } from '@pipeline/core';
import { localSettings, runLocalUntilSignal } from './local/main.ts';
import { FolderBlobStore, objectPath } from './local/folder-blob-store.ts';

export const USAGE = `usage: pipeline <command> [options]
  start [--port N] [--dir DIR] [--config FILE]     run the pipeline on this machine (as npm start does)
  submit FILE... [--name NAME] [--runtime vm|cloud-run-job] [--meta KEY=VALUE]... [--dir DIR]
                                                   put files into the local input bucket
  jobs [--state STATE] [--limit N] [--json]        list jobs, newest first
  job ID [--json]                                  one job: route and reason, history, exit code, outputs
Options for jobs and job: --url URL (default $PIPELINE_URL or http://127.0.0.1:8080).`;

export class CliError extends Error {}

type Out = (text: string) => void;

export async function cli(argv: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { values } = parse(
        rest,
        { port: { type: 'string' }, dir: { type: 'string' }, config: { type: 'string' } },
        0,
      );
      const port = values.port === undefined ? undefined : Number(values.port);
      await runLocalUntilSignal(
        localSettings(env, {
          port,
          dir: values.dir as string | undefined,
          config: values.config as string | undefined,
        }),
      );
      return 0;
    }
    case 'submit':
      return submit(rest, env, out);
    case 'jobs': {
      const { values } = parse(
        rest,
        {
          state: { type: 'string' },
          limit: { type: 'string' },
          json: { type: 'boolean' },
          url: { type: 'string' },
        },
        0,
      );
      const state = (values.state as string | undefined)?.toUpperCase();
      if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state))
        throw new CliError(`--state must be one of ${JOB_STATES.join(', ')}`);
      const query = new URLSearchParams({
        limit: String(values.limit ?? 50),
        ...(state === undefined ? {} : { state }),
      });
      const page = (await request(env, values.url as string | undefined, `/jobs?${query}`)) as JobPage;
      out(values.json ? JSON.stringify(page, null, 2) : jobsTable(page.jobs));
      return 0;
    }
    case 'job': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' }, url: { type: 'string' } }, 1);
      const job = (await request(
        env,
        values.url as string | undefined,
        `/jobs/${encodeURIComponent(positionals[0])}`,
      )) as Job;
      out(values.json ? JSON.stringify(job, null, 2) : jobDetail(job));
      return 0;
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}`);
  }
}

function parse(args: string[], options: ParseArgsOptionsConfig, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (positionals > 0 && parsed.positionals.length !== positionals)
    throw new CliError(`expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  return parsed;
}

async function submit(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        name: { type: 'string' },
        runtime: { type: 'string' },
        meta: { type: 'string', multiple: true },
        dir: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const { values, positionals: files } = parsed;
  if (files.length === 0) throw new CliError('submit needs at least one FILE');
  if (values.name !== undefined && files.length > 1) throw new CliError('--name works with one FILE only');
  const metadata: Record<string, string> = {};
  for (const pair of values.meta ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`--meta takes KEY=VALUE, got ${JSON.stringify(pair)}`);
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (values.runtime !== undefined) {
    if (values.runtime !== 'vm' && values.runtime !== 'cloud-run-job')
      throw new CliError('--runtime must be vm or cloud-run-job');
    metadata['pipeline-runtime'] = values.runtime;
  }
  const settings = localSettings(env, { dir: values.dir });
  const blobs = new FolderBlobStore(settings.dir, { input: path.join(settings.dir, 'input') });
  for (const file of files) {
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw new CliError(`${file} is not a file`);
    const name = values.name ?? path.basename(file);
    const generation = putObject(blobs, name, file, metadata);
    out(
      `submitted ${name} to the input bucket (generation ${generation}): job ${jobIdFor('input', name, generation)}`,
    );
  }
  return 0;
}

/** Copies a file into the input folder under a hidden name, writes its metadata, then renames it into place. */
export function putObject(
  blobs: FolderBlobStore,
  name: string,
  file: string,
  metadata: Record<string, string>,
): string {
  const target = objectPath(blobs.folder('input'), name);
  const temporary = path.join(blobs.folder('input'), `.submit-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(file, temporary);
  const sidecar = blobs.sidecarPath('input', name);
  if (Object.keys(metadata).length > 0) {
    fs.mkdirSync(path.dirname(sidecar), { recursive: true });
    fs.writeFileSync(sidecar, JSON.stringify({ metadata }));
  } else {
    fs.rmSync(sidecar, { force: true });
  }
  fs.renameSync(temporary, target);
  return fs.statSync(target, { bigint: true }).mtimeNs.toString();
}

async function request(env: NodeJS.ProcessEnv, url: string | undefined, route: string): Promise<unknown> {
  const base = url ?? env.PIPELINE_URL ?? 'http://127.0.0.1:8080';
  let response: Response;
  try {
    response = await fetch(new URL(route, base));
  } catch (err) {
    throw new CliError(
      `cannot reach the pipeline at ${base} (is it running? npm start): ${(err as Error).cause ?? (err as Error).message}`,
    );
  }
  const body = (await response.json().catch(() => ({}))) as { error?: string };
  if (!response.ok) throw new CliError(`${response.status}: ${body.error ?? response.statusText}`);
  return body;
}

function sourceOf(job: Job): string {
  return job.source.kind === 'object'
    ? `${job.source.object.bucket}/${job.source.object.name}`
    : (job.source.image ?? `task ${job.source.task}`);
}

export function jobsTable(jobs: Job[]): string {
  if (jobs.length === 0) return 'no jobs';
  const rows = [['ID', 'STATE', 'TARGET', 'RULE', 'CREATED', 'SOURCE']];
  for (const job of jobs)
    rows.push([
      job.id,
      job.state,
      job.target ?? '-',
      job.rule ?? '-',
      job.createdAt,
      JSON.stringify(sourceOf(job)).slice(1, -1),
    ]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '))
    .join('\n');
}

export function jobDetail(job: Job): string {
  const seconds =
    job.startedAt && job.finishedAt
      ? `${((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000).toFixed(1)} s`
      : undefined;
  const lines: [string, string | number | undefined][] = [
    ['job', job.id],
    ['state', job.state],
    [
      'source',
      job.source.kind === 'object'
        ? `${JSON.stringify(sourceOf(job))} generation ${job.source.object.generation}, ${job.source.object.size} bytes`
        : sourceOf(job),
    ],
    ['route', job.target === undefined ? undefined : `${job.target} (rule ${job.rule})`],
    ['reason', job.reason],
    ['attempt', job.attempt],
    ['execution', job.execution],
    ['exit code', job.exitCode],
    ['ran', seconds === undefined ? undefined : `${seconds} (${job.startedAt} to ${job.finishedAt})`],
    ['outputs', job.outputUri],
    ['logs', job.logsUri],
    ['error', job.error],
  ];
  const shown = lines
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k.padEnd(10)} ${String(v).replaceAll('\n', '\n           ')}`);
  const history = job.history.map((h) => `  ${h.at}  ${h.to.padEnd(9)} ${h.detail ?? ''}`.trimEnd());
  return [...shown, 'history', ...history].join('\n');
}
