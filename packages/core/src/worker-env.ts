// The environment a task runs with (the README's "The worker" > "Settings"): the pipeline's own variables,
// which nothing can override, then the job's parameters (routing/params.ts), then the template's env.
import type { StorageObject } from './events.ts';
import type { Job } from './job.ts';
import { jobIdFor } from './job-id.ts';
import { RESERVED_ENV_KEYS } from './routing/types.ts';
import type { JobTemplate } from './template.ts';

export function workerEnvironment(
  job: Job,
  template: JobTemplate,
  locations: { inputUri?: string; outputUri: string },
): Record<string, string> {
  const env: Record<string, string> = { ...template.env, ...job.params };
  for (const name of RESERVED_ENV_KEYS) delete env[name];
  env.OUTPUT_URI = locations.outputUri;
  env.JOB_ID = job.id;
  env.ATTEMPT = String(job.attempt);
  if (template.task !== undefined) env.TASK = template.task;
  if (locations.inputUri !== undefined) env.INPUT_URI = locations.inputUri;
  if (job.source.kind === 'object') env.INPUT_GENERATION = job.source.object.generation;
  return env;
}

/**
 * Where a job's outputs go in the output bucket: a prefix of its own, so no other job's outputs or
 * logs ever mix with its. An upload's job (the object version's own job, whose id derives from it)
 * writes under `<object>/<generation>/`; any other job (a container run, a rerun of an object with
 * other parameters, each occurrence of a schedule) under `runs/<job id>/`. A retry is the same job:
 * its attempts share the prefix, each with its own `logs/attempt-N.log`.
 */
export function outputPrefix(job: Job): string {
  const object = uploadObjectOf(job);
  return object === undefined ? `runs/${job.id}/` : `${object.name}/${object.generation}/`;
}

/** Where a job routed before per-job prefixes wrote: under the object's path, or jobs/<id>/. */
export function legacyOutputPrefix(job: Job): string {
  return job.source.kind === 'object' ? `${job.source.object.name}/` : `jobs/${job.id}/`;
}

/**
 * The prefix `job`'s outputs are under, as its recorded outputUri says (`uriOf`: the output bucket's
 * URI of a prefix): outputPrefix, or for a job routed before per-job prefixes existed, the layout it
 * wrote then. Readers of a job's outputs (its _SUCCESS, its files) use this, never a prefix worked
 * out afresh, so an old job's outputs are found where they are.
 */
export function writtenOutputPrefix(job: Job, uriOf: (prefix: string) => string): string {
  const current = outputPrefix(job);
  if (job.outputUri === undefined || job.outputUri === uriOf(current)) return current;
  const legacy = legacyOutputPrefix(job);
  return job.outputUri === uriOf(legacy) ? legacy : current;
}

/** The object version whose own job `job` is (its id is jobIdFor of it); undefined for any other job. */
export function uploadObjectOf(job: Job): StorageObject | undefined {
  if (job.source.kind !== 'object') return undefined;
  const { object } = job.source;
  return job.id === jobIdFor(object.bucket, object.name, object.generation) ? object : undefined;
}
