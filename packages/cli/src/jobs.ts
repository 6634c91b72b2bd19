// Looking at jobs and acting on them: jobs, job, cancel, retry. A job id may be a prefix (job-ids.ts).
import { uploadObjectOf, type Job, type JobPage, type LatestPointer } from '@pipeline/core';
import type { CapacityView } from '@pipeline/dispatcher/queue-view.ts';
import { Api, MAX_PAGE } from './api.ts';
import { parse } from './args.ts';
import { COMMANDS } from './commands.ts';
import { Failure, say, type Io } from './errors.ts';
import { jobDetail, jobsTable, printable, shellWord, type Newest, type Waiting } from './format.ts';
import { jobIdArgument, resolveJobId } from './job-ids.ts';
import { queuedJobsTable, type QueuePage } from './queue-format.ts';

export async function jobsCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, given } = parse(COMMANDS.jobs, args);
  const { state, limit } = values;
  const api = new Api(values.url, env, 'jobs');
  const query = new URLSearchParams({ limit: String(limit) });
  if (state !== undefined) query.set('state', state);
  if (values['page-token'] !== undefined) query.set('pageToken', values['page-token']);
  // Without a page token the API answers QUEUED in launch order, each with why it waits.
  const inLine = state === 'QUEUED' && values['page-token'] === undefined;
  const page = await api.json<JobPage & QueuePage>('GET', `/jobs?${query}`);
  if (values.json) {
    say(io, JSON.stringify(page, null, 2));
    return 0;
  }
  if (inLine) {
    say(io, queuedJobsTable(page, new Date().toISOString()));
    return 0;
  }
  say(io, jobsTable(page.jobs));
  if (page.nextPageToken !== undefined) say(io, `more: ${nextPageCommand(given, page.nextPageToken)}`);
  return 0;
}

/** The command line of the next page: the options given, as given, and the page token after them. */
function nextPageCommand(given: Record<string, unknown>, token: string): string {
  const options = ['state', 'limit', 'url'].flatMap((name) =>
    typeof given[name] === 'string' ? [`--${name}`, given[name]] : [],
  );
  return ['pipeline', 'jobs', ...options, '--page-token', token].map(shellWord).join(' ');
}

export async function jobCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS.job, args);
  const given = jobIdArgument('job', positionals[0]);
  const api = new Api(values.url, env, 'job');
  const job = await api.json<Job>('GET', `/jobs/${await resolveJobId(api, given)}`);
  if (values.json) {
    say(io, JSON.stringify(job, null, 2));
    return 0;
  }
  const waiting = job.state === 'QUEUED' ? await waitingOf(api, job.id) : undefined;
  say(io, jobDetail(job, waiting, undefined, await newestOf(api, job)));
  return 0;
}

/**
 * For a succeeded upload's job: where its object's newest results are, as the object's _LATEST
 * pointer says (GET /latest). Undefined for any other job, or when it cannot be told.
 */
async function newestOf(api: Api, job: Job): Promise<Newest | undefined> {
  const object = uploadObjectOf(job);
  if (object === undefined || job.state !== 'SUCCEEDED') return undefined;
  try {
    return await api.json<Newest & LatestPointer>('GET', `/latest?object=${encodeURIComponent(object.name)}`);
  } catch (err) {
    if (err instanceof Failure && err.status === 404) return undefined; // not moved yet
    throw err;
  }
}

/**
 * A queued job's place and reason now, if it is within the API's largest page of the queue. Without
 * it (further back, or a dispatcher without GET /capacity) the job shows the reason it recorded.
 */
async function waitingOf(api: Api, id: string): Promise<Waiting | undefined> {
  try {
    const view = await api.json<CapacityView>('GET', `/capacity?limit=${MAX_PAGE}`);
    return view.queue.jobs.find((q) => q.id === id);
  } catch {
    return undefined;
  }
}

/** POST /jobs/:id/cancel for each: stops it on its platform, or before it starts. */
export function cancelCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  return forEachJob('cancel', args, env, io, (job) => ({
    line: `job ${job.id} ${job.state}: ${lastDetail(job)}`,
    failed: false,
  }));
}

/** POST /jobs/:id/retry for each: a FAILED or CANCELLED job runs again as a new attempt on the same route. */
export function retryCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  return forEachJob('retry', args, env, io, (job) => {
    const where = job.target === undefined ? '' : ` on ${job.target}`;
    const why = job.state === 'FAILED' ? `: ${printable(job.error ?? lastDetail(job))}` : '';
    // A retry whose launch failed for good ends FAILED at once: the job is not running again.
    return {
      line: `job ${job.id} attempt ${job.attempt} ${job.state}${where}${why}`,
      failed: job.state === 'FAILED',
    };
  });
}

/**
 * POST /jobs/:id/<command> for every id given, in turn, each answered on a line of its own: the job
 * on stdout (a JSON line with --json), or why not on stderr. A refusal of one job (400, 404, 409, an
 * unknown or ambiguous prefix) does not stop the others; a failure of the pipeline itself (not
 * reachable, 401, 403, 5xx) ends the command there, since every job after would meet it too. Every
 * id's form is checked before the first request. Exit 1 if any job was refused or `outcome` says so.
 */
async function forEachJob(
  command: 'cancel' | 'retry',
  args: string[],
  env: NodeJS.ProcessEnv,
  io: Io,
  outcome: (job: Job) => { line: string; failed: boolean },
): Promise<number> {
  const { values, positionals } = parse(COMMANDS[command], args);
  const ids = positionals.map((text) => jobIdArgument(command, text));
  const api = new Api(values.url, env, command);
  let failed = false;
  for (const given of ids) {
    let job: Job;
    try {
      job = await api.json<Job>('POST', `/jobs/${await resolveJobId(api, given)}/${command}`);
    } catch (err) {
      if (!(err instanceof Failure && refusesThisJob(err))) throw err;
      io.stderr.write(`pipeline: ${err.message}\n`);
      failed = true;
      continue;
    }
    const { line, failed: jobFailed } = outcome(job);
    say(io, values.json ? JSON.stringify(job) : line);
    failed ||= jobFailed;
  }
  return failed ? 1 : 0;
}

/** A refusal about the job asked for, not about the caller or the pipeline. */
function refusesThisJob(err: Failure): boolean {
  const { status } = err;
  return status !== undefined && status >= 400 && status < 500 && status !== 401 && status !== 403;
}

function lastDetail(job: Job): string {
  return printable(job.history.at(-1)?.detail ?? job.state.toLowerCase());
}
