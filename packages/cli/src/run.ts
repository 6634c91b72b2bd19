// `run`: POST /jobs for work with no new file: a container run (a worker task or an image), or an
// object already in a bucket (with parameters of its own: --param); now, at a time, or on a cron
// schedule. Everything the API would refuse of the command line is refused here first, exit 2.
import { parseBytes, parseCron, parseDuration, type Job } from '@pipeline/core';
import { Api } from './api.ts';
import { checked, paramsOption, parse, variables, type Values } from './args.ts';
import { COMMANDS } from './commands.ts';
import { say, UsageError, type Io } from './errors.ts';
import { printable } from './format.ts';

interface Created {
  id: string;
  state: string;
  duplicate: boolean;
  job: Job;
}

type RunValues = Values<typeof COMMANDS.run.options>;

/** How far ahead the API schedules a job once (job-request.ts). */
const MAX_AT_AHEAD_MS = 366 * 24 * 3600 * 1000;

export async function runCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  // One of --task, --image and --input, and not both --at and --cron: parse checks, as declared.
  const { values } = parse(COMMANDS.run, args);
  const body = values.input === undefined ? containerBody(values) : inputBody(values.input, values);
  if (values.at !== undefined) body.runAt = runAt(values.at);
  if (values.cron !== undefined) {
    const cron = values.cron;
    checked('run', () => parseCron(cron));
    body.cron = cron;
  }

  const created = await new Api(values.url, env, 'run').json<Created>('POST', '/jobs', body);
  if (values.json) say(io, JSON.stringify(created, null, 2));
  else say(io, describe(created));
  // A job that failed at its launch, or that a rule ignores, will not run: a script should know.
  return created.state === 'FAILED' || created.state === 'IGNORED' ? 1 : 0;
}

/** An object already in a bucket, with parameters of this run (--param) if given. */
function inputBody(input: string, values: RunValues): Record<string, unknown> {
  const containerOnly = ['arg', 'env', 'cpu', 'memory', 'gpu', 'expected-duration'] as const;
  const given = containerOnly.find((k) => values[k] !== undefined);
  if (given !== undefined) throw new UsageError(`--${given} is for --task or --image, not --input`, 'run');
  if (!/^gs:\/\/[^/]+\/.+/s.test(input))
    throw new UsageError(`--input must look like gs://bucket/object, got ${JSON.stringify(input)}`, 'run');
  const body: Record<string, unknown> = { inputUri: input };
  if (values.param !== undefined) body.params = paramsOption('run', values.param);
  return body;
}

/**
 * A container run. Sizes, durations and GPUs are checked here as the API checks them, and sent as
 * given, so the API reads what the person wrote.
 */
function containerBody(values: RunValues): Record<string, unknown> {
  if (values.param !== undefined)
    throw new UsageError(
      "--param is for --input; a container run's variables go with --env NAME=VALUE",
      'run',
    );
  const body: Record<string, unknown> = {};
  if (values.task !== undefined) {
    if (!/^[a-z][a-z0-9-]*$/.test(values.task))
      throw new UsageError(
        `--task must be a task name like logreg, got ${JSON.stringify(values.task)}`,
        'run',
      );
    body.task = values.task;
  }
  if (values.image !== undefined) {
    if (values.image.trim() === '') throw new UsageError('--image must name an image', 'run');
    body.image = values.image;
  }
  if (values.arg !== undefined) body.args = values.arg;
  if (values.env !== undefined) body.env = variables('run', 'env', values.env);
  if (values.cpu !== undefined) {
    const cpu = Number(values.cpu);
    if (!(cpu > 0 && Number.isFinite(cpu)))
      throw new UsageError(`--cpu must be a positive number, got ${JSON.stringify(values.cpu)}`, 'run');
    body.cpu = cpu;
  }
  const { memory, gpu } = values;
  const duration = values['expected-duration'];
  if (memory !== undefined) {
    checked('run', () => parseBytes(memory, '--memory'));
    body.memory = memory;
  }
  if (gpu !== undefined) {
    if (!/^[a-z0-9-]+(?::\d+)?$/.test(gpu))
      throw new UsageError(
        `--gpu must look like nvidia-l4 or nvidia-l4:2, got ${JSON.stringify(gpu)}`,
        'run',
      );
    body.gpu = gpu;
  }
  if (duration !== undefined) {
    checked('run', () => parseDuration(duration, '--expected-duration'));
    body.expectedDuration = duration;
  }
  return body;
}

/**
 * --at: an ISO 8601 time ("2026-12-01T06:00:00Z"; without a zone, this machine's local time), or
 * "+DURATION" from now ("+10m", "+1h30m"). Sent as UTC, so the dispatcher's zone does not matter.
 */
export function runAt(text: string, now = Date.now()): string {
  let time: number;
  if (text.startsWith('+')) {
    time = now + checked('run', () => parseDuration(text.slice(1), '--at')) * 1000;
  } else {
    time = /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(text) ? Date.parse(text) : NaN;
    if (Number.isNaN(time))
      throw new UsageError(
        `--at takes an ISO time like 2026-12-01T06:00:00Z, or +DURATION like +10m; got ${JSON.stringify(text)}`,
        'run',
      );
  }
  if (time - now > MAX_AT_AHEAD_MS)
    throw new UsageError(`--at must be within a year, got ${JSON.stringify(text)}`, 'run');
  return new Date(time).toISOString();
}

function describe({ job, duplicate }: Created): string {
  const head = `job ${job.id} ${job.state}${duplicate ? ' (it existed already)' : ''}`;
  if (job.state === 'SCHEDULED') {
    const repeat =
      job.schedule === undefined ? '' : `, repeating on cron ${JSON.stringify(job.schedule.cron)} (UTC)`;
    return `${head}: due at ${job.runAt}${repeat}`;
  }
  if (job.state === 'FAILED') return `${head}: ${printable(job.error ?? 'no reason given')}`;
  if (job.state === 'IGNORED') return `${head}: ${printable(job.reason ?? 'no rule routes it')}`;
  return job.target === undefined ? head : `${head} on ${job.target} (rule ${printable(job.rule ?? '-')})`;
}
