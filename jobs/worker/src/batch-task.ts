// A task of a batch's execution: with BATCH_MANIFEST_URI set, Cloud Run runs this image as one of
// CLOUD_RUN_TASK_COUNT tasks that share the execution's env, and the task's own job (JOB_ID, ATTEMPT,
// INPUT_URI, OUTPUT_URI, LOGS_URI, parameters) is entry CLOUD_RUN_TASK_INDEX of the manifest the
// dispatcher wrote (@pipeline/core's batch-manifest.ts, the one definition of it). The task then runs
// as if that env had been its own, and reports its own completion.
//
// When no job is known (the manifest cannot be read, is malformed, or has no entry for the index) no
// completion can be published: the task says why in one line on stderr and exits 3 (unreadable, as
// for an input: a retry may read it) or 2 (malformed: no retry helps), and the dispatcher's
// reconciler reads the task's exit code from Cloud Run.
import fs from 'node:fs/promises';
import {
  BATCH_ID_ENV,
  BATCH_MANIFEST_ENV,
  batchTaskEnvironment,
  parseBatchManifest,
  type BatchManifest,
} from '@pipeline/core/messages';
import { storageClient } from './io/gcs.ts';
import { parseLocation, type Location } from './io/location.ts';

/** What a task does: run its job with this env, or end now with this exit code (no job to run). */
export type BatchTask = { kind: 'run'; env: NodeJS.ProcessEnv } | { kind: 'exit'; exitCode: number };

type Log = (message: string, fields: Record<string, unknown>) => void;

/** `env` itself outside a batch; in one, the task's env from its manifest entry, or an exit code. */
export async function batchTask(env: NodeJS.ProcessEnv, log: Log): Promise<BatchTask> {
  const uri = env[BATCH_MANIFEST_ENV];
  if (uri === undefined || uri === '') return { kind: 'run', env };
  const index = env.CLOUD_RUN_TASK_INDEX;
  const fail = (exitCode: number, why: string): BatchTask => {
    const line = `pipeline-worker: task ${index ?? '(no CLOUD_RUN_TASK_INDEX)'} of batch manifest ${uri}: ${why}`;
    process.stderr.write(`${line.replaceAll('\n', ' ')}\n`);
    return { kind: 'exit', exitCode };
  };
  let location: Location;
  try {
    location = parseLocation(uri, BATCH_MANIFEST_ENV);
  } catch (err) {
    return fail(2, (err as Error).message);
  }
  let text: string;
  try {
    text = await readManifest(location);
  } catch (err) {
    return fail(3, `cannot be read: ${(err as Error).message}`);
  }
  let manifest: BatchManifest;
  let taskEnv: NodeJS.ProcessEnv | null;
  try {
    manifest = parseBatchManifest(JSON.parse(text));
    taskEnv = batchTaskEnvironment(manifest, index, env);
  } catch (err) {
    return fail(2, (err as Error).message);
  }
  // The execution's BATCH_ID and the manifest's: a manifest of another batch has other jobs.
  const batchId = env[BATCH_ID_ENV];
  if (batchId !== undefined && batchId !== '' && batchId !== manifest.batchId) {
    return fail(2, `it is batch ${manifest.batchId}'s, not ${batchId}'s`);
  }
  if (taskEnv === null) {
    // Cancelled after the batch was written: nothing to run and no one waiting for a completion.
    log("the task's job left the batch: nothing to do", { batchId: manifest.batchId, task: Number(index) });
    return { kind: 'exit', exitCode: 0 };
  }
  return { kind: 'run', env: taskEnv };
}

/** The manifest's text: a gs:// object through the worker's storage client, or a local file. */
async function readManifest(location: Location): Promise<string> {
  if (location.kind === 'local') return fs.readFile(location.path, 'utf8');
  const storage = await storageClient();
  const [content] = await storage.bucket(location.bucket).file(location.name).download();
  return content.toString('utf8');
}
