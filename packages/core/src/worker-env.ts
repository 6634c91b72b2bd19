// The environment a task runs with (DESIGN.md, "Worker environment"): the pipeline's own variables,
// which a template cannot override, then the template's env.
import type { Job } from './job.ts';
import { RESERVED_ENV_KEYS, type JobTemplate } from './routing.ts';

export function workerEnvironment(
  job: Job,
  template: JobTemplate,
  locations: { inputUri?: string; outputUri: string },
): Record<string, string> {
  const env: Record<string, string> = { ...template.env };
  for (const name of RESERVED_ENV_KEYS) delete env[name];
  env.OUTPUT_URI = locations.outputUri;
  env.JOB_ID = job.id;
  env.ATTEMPT = String(job.attempt);
  if (template.task !== undefined) env.TASK = template.task;
  if (locations.inputUri !== undefined) env.INPUT_URI = locations.inputUri;
  if (job.source.kind === 'object') env.INPUT_GENERATION = job.source.object.generation;
  return env;
}

/** Where a job's outputs go in the output bucket: the object's path, or jobs/<id>/ for a request. */
export function outputPrefix(job: Job): string {
  return job.source.kind === 'object' ? `${job.source.object.name}/` : `jobs/${job.id}/`;
}
