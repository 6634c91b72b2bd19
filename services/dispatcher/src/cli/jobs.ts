// Looking at jobs and acting on one: jobs, job, cancel, retry.
import { JOB_STATES, type Job, type JobPage } from '@pipeline/core';
import { Api, MAX_PAGE } from './api.ts';
import { API_OPTIONS, integerOption, parse } from './args.ts';
import { say, UsageError, type Io } from './errors.ts';
import type { CapacityView } from '../queue-view.ts';
import { jobDetail, jobsTable, printable, type Waiting } from './format.ts';
import { queuedJobsTable, type QueuePage } from './queue-format.ts';

export async function jobsCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values } = parse('jobs', args, {
    ...API_OPTIONS,
    state: { type: 'string' },
    limit: { type: 'string' },
    'page-token': { type: 'string' },
  });
  const state = values.state?.toUpperCase();
  if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state))
    throw new UsageError(`--state must be one of ${JOB_STATES.join(', ')}`, 'jobs');
  const limit = integerOption('jobs', 'limit', values.limit, 1, MAX_PAGE) ?? 50;
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
  if (page.nextPageToken !== undefined) say(io, `more: pipeline jobs --page-token ${page.nextPageToken}`);
  return 0;
}

export async function jobCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse('job', args, API_OPTIONS, { min: 1, max: 1, what: 'job ID' });
  const api = new Api(values.url, env, 'job');
  const job = await api.json<Job>('GET', `/jobs/${encodeURIComponent(positionals[0])}`);
  if (values.json) {
    say(io, JSON.stringify(job, null, 2));
    return 0;
  }
  const waiting = job.state === 'QUEUED' ? await waitingOf(api, job.id) : undefined;
  say(io, jobDetail(job, waiting));
  return 0;
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

/** POST /jobs/:id/cancel: stops it on its platform, or before it starts. */
export async function cancelCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse('cancel', args, API_OPTIONS, { min: 1, max: 1, what: 'job ID' });
  const api = new Api(values.url, env, 'cancel');
  const job = await api.json<Job>('POST', `/jobs/${encodeURIComponent(positionals[0])}/cancel`);
  say(io, values.json ? JSON.stringify(job, null, 2) : `job ${job.id} ${job.state}: ${lastDetail(job)}`);
  return 0;
}

/** POST /jobs/:id/retry: a FAILED or CANCELLED job runs again as a new attempt on the same route. */
export async function retryCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse('retry', args, API_OPTIONS, { min: 1, max: 1, what: 'job ID' });
  const api = new Api(values.url, env, 'retry');
  const job = await api.json<Job>('POST', `/jobs/${encodeURIComponent(positionals[0])}/retry`);
  if (values.json) {
    say(io, JSON.stringify(job, null, 2));
    return 0;
  }
  const where = job.target === undefined ? '' : ` on ${job.target}`;
  const why = job.state === 'FAILED' ? `: ${printable(job.error ?? lastDetail(job))}` : '';
  say(io, `job ${job.id} attempt ${job.attempt} ${job.state}${where}${why}`);
  // A retry whose launch failed for good ends FAILED at once: the job is not running again.
  return job.state === 'FAILED' ? 1 : 0;
}

function lastDetail(job: Job): string {
  return printable(job.history.at(-1)?.detail ?? job.state.toLowerCase());
}
