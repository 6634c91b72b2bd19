// Job ids as people type them: the whole id (32 hex characters), or any prefix of 6 or more that
// names one job, as the dashboard shows them. The form is checked before any request (exit 2); a
// prefix is then looked up with GET /jobs?idPrefix=, and one that names no job or several fails with
// what it could be (exit 1), since only the pipeline knows which jobs exist.
import type { Job, JobPage } from '@pipeline/core';
import type { Api } from './api.ts';
import { Failure, UsageError } from './errors.ts';
import { printable, sourceOf, table } from './format.ts';

const WHOLE_ID = 32;
export const MIN_PREFIX = 6;
/** The candidates an ambiguous prefix lists; one more is asked for, to say there are more. */
const CANDIDATES = 10;

/** A job id or prefix from the command line, in lower case; a UsageError if it cannot be one. */
export function jobIdArgument(command: string, text: string): string {
  const id = text.toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${MIN_PREFIX},${WHOLE_ID}}$`).test(id))
    throw new UsageError(
      `${JSON.stringify(text)} is not a job id: give its ${WHOLE_ID} hex characters, or the first ${MIN_PREFIX} or more of them`,
      command,
    );
  return id;
}

/** The whole id `id` (checked by jobIdArgument) names: itself, or the one job its prefix names. */
export async function resolveJobId(api: Api, id: string): Promise<string> {
  if (id.length === WHOLE_ID) return id;
  const query = new URLSearchParams({ idPrefix: id, limit: String(CANDIDATES + 1) });
  const page = await api.json<JobPage>('GET', `/jobs?${query}`);
  // A dispatcher from before ?idPrefix ignores it and answers its newest jobs: keep only matches.
  const jobs = page.jobs.filter((job) => job.id.startsWith(id));
  if (jobs.length === 1) return jobs[0].id;
  if (jobs.length === 0) throw new Failure(`no job has an id starting ${id}`, { status: 404 });
  const shown = jobs.slice(0, CANDIDATES);
  const count = jobs.length > CANDIDATES ? `more than ${CANDIDATES}` : String(jobs.length);
  throw new Failure(
    `${id} starts the ids of ${count} jobs; give more of it:\n${table(shown.map(candidateRow), '  ')}`,
    { status: 409 },
  );
}

function candidateRow(job: Job): string[] {
  return [job.id, job.state, printable(sourceOf(job))];
}
