// `run`: POST /jobs for work with no new file: a container run (a worker task or an image), or an
// object already in a bucket; now, at a time, or on a cron schedule.
import { parseDuration, type Job } from '@pipeline/core';
import { Api } from './api.ts';
import { API_OPTIONS, keyValues, parse } from './args.ts';
import { say, UsageError, type Io } from './errors.ts';
import { printable } from './format.ts';

interface Created {
  id: string;
  state: string;
  duplicate: boolean;
  job: Job;
}

export async function runCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values } = parse('run', args, {
    ...API_OPTIONS,
    task: { type: 'string' },
    image: { type: 'string' },
    input: { type: 'string' },
    arg: { type: 'string', multiple: true },
    env: { type: 'string', multiple: true },
    cpu: { type: 'string' },
    memory: { type: 'string' },
    gpu: { type: 'string' },
    'expected-duration': { type: 'string' },
    at: { type: 'string' },
    cron: { type: 'string' },
  });
  const sources = (['task', 'image', 'input'] as const).filter((k) => values[k] !== undefined);
  if (sources.length !== 1) throw new UsageError('run takes one of --task, --image or --input', 'run');
  if (values.at !== undefined && values.cron !== undefined)
    throw new UsageError('give --at or --cron, not both', 'run');
  const body: Record<string, unknown> = {};
  if (values.input !== undefined) {
    const containerOnly = ['arg', 'env', 'cpu', 'memory', 'gpu', 'expected-duration'] as const;
    const given = containerOnly.find((k) => values[k] !== undefined);
    if (given !== undefined) throw new UsageError(`--${given} is for --task or --image, not --input`, 'run');
    if (!/^gs:\/\/[^/]+\/.+/s.test(values.input))
      throw new UsageError(
        `--input must look like gs://bucket/object, got ${JSON.stringify(values.input)}`,
        'run',
      );
    body.inputUri = values.input;
  } else {
    if (values.task !== undefined) body.task = values.task;
    if (values.image !== undefined) body.image = values.image;
    if (values.arg !== undefined) body.args = values.arg;
    if (values.env !== undefined) body.env = keyValues('run', 'env', values.env);
    if (values.cpu !== undefined) {
      const cpu = Number(values.cpu);
      if (!(cpu > 0))
        throw new UsageError(`--cpu must be a positive number, got ${JSON.stringify(values.cpu)}`, 'run');
      body.cpu = cpu;
    }
    // Sizes, durations and GPUs go as given: the API checks them and says what is wrong.
    if (values.memory !== undefined) body.memory = values.memory;
    if (values.gpu !== undefined) body.gpu = values.gpu;
    if (values['expected-duration'] !== undefined) body.expectedDuration = values['expected-duration'];
  }
  if (values.at !== undefined) body.runAt = runAt(values.at);
  if (values.cron !== undefined) body.cron = values.cron;

  const created = await new Api(values.url, env, 'run').json<Created>('POST', '/jobs', body);
  if (values.json) say(io, JSON.stringify(created, null, 2));
  else say(io, describe(created));
  // A job that failed at its launch, or that a rule ignores, will not run: a script should know.
  return created.state === 'FAILED' || created.state === 'IGNORED' ? 1 : 0;
}

/**
 * --at: an ISO 8601 time ("2026-12-01T06:00:00Z"; without a zone, this machine's local time), or
 * "+DURATION" from now ("+10m", "+1h30m"). Sent as UTC, so the dispatcher's zone does not matter.
 */
export function runAt(text: string, now = Date.now()): string {
  if (text.startsWith('+')) {
    let seconds: number;
    try {
      seconds = parseDuration(text.slice(1), '--at');
    } catch (err) {
      throw new UsageError((err as Error).message, 'run');
    }
    return new Date(now + seconds * 1000).toISOString();
  }
  const time = /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(time))
    throw new UsageError(
      `--at takes an ISO time like 2026-12-01T06:00:00Z, or +DURATION like +10m; got ${JSON.stringify(text)}`,
      'run',
    );
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
