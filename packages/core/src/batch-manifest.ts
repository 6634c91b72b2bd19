// The batch manifest: how one Cloud Run execution runs many jobs, one task each. A Cloud Run
// execution's overrides are the same for all its tasks, so what differs per task (which job, which
// attempt, which input, where its outputs and its log go, its parameters) is written by the
// dispatcher to one JSON object before the execution starts, and each task reads its own entry by
// CLOUD_RUN_TASK_INDEX, which Cloud Run sets from 0 to CLOUD_RUN_TASK_COUNT - 1
// (https://cloud.google.com/run/docs/container-contract#jobs-env-vars). The execution's env carries
// BATCH_ID and BATCH_MANIFEST_URI; an entry's `env` is what a task of its own would have been given
// (worker-env.ts, with LOGS_URI). A null entry is a job that left the batch (cancelled) after its
// index was given: its task does nothing and exits 0.
//
// One definition for both sides: the dispatcher builds it with batchManifest, a worker (this
// project's, or a user's image that takes the worker's place) reads it with parseBatchManifest and
// batchTaskEnvironment. The README's "The worker" > "Batched tasks" documents it for user images.
import { createHash } from 'node:crypto';

/** Where manifests are written in the output bucket; terraform's grant and lifecycle rule name it too. */
export const BATCH_MANIFEST_PREFIX = '_pipeline/batches/';
/** The execution's env: the batch, and where its manifest is. */
export const BATCH_ID_ENV = 'BATCH_ID';
export const BATCH_MANIFEST_ENV = 'BATCH_MANIFEST_URI';

export interface BatchManifestTask {
  jobId: string;
  attempt: number;
  /** The task's environment: JOB_ID, ATTEMPT, INPUT_URI, OUTPUT_URI, LOGS_URI, parameters, ... */
  env: Record<string, string>;
}

export interface BatchManifest {
  batchId: string;
  /** By task index. */
  tasks: (BatchManifestTask | null)[];
}

/** The id of a batch: the same for the same attempts in the same order, so a relaunch writes the same manifest. */
export function batchIdFor(members: readonly { jobId: string; attempt: number }[]): string {
  const key = members.map((m) => `${m.jobId}#${m.attempt}`).join(',');
  return `batch-${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 24)}`;
}

/** The manifest's object name in the output bucket. */
export function batchManifestName(batchId: string): string {
  return `${BATCH_MANIFEST_PREFIX}${batchId}.json`;
}

export class BatchManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BatchManifestError';
  }
}

/** A manifest's JSON, checked: every entry is null or a job id, an attempt and string env values. */
export function parseBatchManifest(data: unknown): BatchManifest {
  const fail = (why: string): never => {
    throw new BatchManifestError(`the batch manifest ${why}`);
  };
  if (typeof data !== 'object' || data === null || Array.isArray(data)) fail('is not a JSON object');
  const { batchId, tasks } = data as Record<string, unknown>;
  if (typeof batchId !== 'string' || !/^batch-[0-9a-f]{24}$/.test(batchId)) fail('has no valid batchId');
  if (!Array.isArray(tasks) || tasks.length === 0) fail('has no tasks');
  const checked = (tasks as unknown[]).map((task, index) => {
    if (task === null) return null;
    const t = task as Record<string, unknown>;
    if (typeof t !== 'object' || typeof t.jobId !== 'string' || !/^[0-9a-f]{32}$/.test(t.jobId))
      fail(`task ${index} has no valid jobId`);
    if (!Number.isInteger(t.attempt) || (t.attempt as number) < 1) fail(`task ${index} has no valid attempt`);
    const env = t.env as Record<string, unknown>;
    if (typeof env !== 'object' || env === null || Array.isArray(env)) fail(`task ${index} has no env`);
    for (const [name, value] of Object.entries(env))
      if (typeof value !== 'string') fail(`task ${index}'s env ${name} is not a string`);
    return { jobId: t.jobId as string, attempt: t.attempt as number, env: env as Record<string, string> };
  });
  return { batchId: batchId as string, tasks: checked };
}

/**
 * The environment of task `indexText` (CLOUD_RUN_TASK_INDEX) of `manifest`: the execution's env with
 * the entry's over it; null for an entry that left the batch. Throws for an index the manifest lacks.
 */
export function batchTaskEnvironment(
  manifest: BatchManifest,
  indexText: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string | undefined> | null {
  const index = Number(indexText);
  if (indexText === undefined || !/^\d+$/.test(indexText) || index >= manifest.tasks.length) {
    throw new BatchManifestError(
      `CLOUD_RUN_TASK_INDEX ${JSON.stringify(indexText ?? null)} names no task of batch ${manifest.batchId}, which has ${manifest.tasks.length}`,
    );
  }
  const task = manifest.tasks[index];
  return task === null ? null : { ...env, ...task.env };
}
