// The task of a VM: what the dispatcher's Compute launcher writes into the instance's metadata and
// the VM agent reads back, and the smaller task the local mode hands its agent in PIPELINE_TASK.
// Data only (JSON), checked here by the reader before anything runs. One definition for both sides:
// services/dispatcher/src/gcp/compute-launcher.ts and local/process-launcher.ts write these; the VM
// agent (jobs/agent) and local mode's `pipeline-worker agent` (jobs/worker/src/local-task.ts) read them.

/** The metadata keys of a task VM. The start-up script reads `agentImage` and `gpu`, the agent the rest. */
export const VM_METADATA_KEYS = {
  task: 'pipeline-task',
  // Plain values beside the task, so the agent can report even a task it cannot read.
  jobId: 'pipeline-job-id',
  attempt: 'pipeline-attempt',
  completionsTopic: 'pipeline-completions-topic',
  agentImage: 'pipeline-agent-image',
  gpu: 'pipeline-gpu',
} as const;

export interface VmTask {
  jobId: string;
  attempt: number;
  image: string;
  args: string[];
  env: Record<string, string>;
  /** gs://bucket/path of the attempt's log (logs/attempt-N.log under the job's output). */
  logsUri: string;
  outputUri?: string;
  timeoutSeconds: number;
  /** gs://bucket/prefix/ of files to copy into the shared folder before the task starts (certificates, say). */
  sharedUri?: string;
  /** GPUs attached to the VM: the task container gets their devices and the driver's libraries. */
  gpus?: number;
}

/** The local mode's agent task (PIPELINE_TASK): the worker's args and env; no image, no buckets. */
export interface LocalAgentTask {
  jobId: string;
  attempt: number;
  args: string[];
  env: Record<string, string>;
}

/** A task that cannot be run as written: the agent reports it as a failure of the job, never retried blindly. */
export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskError';
  }
}

export function parseVmTask(text: string | undefined): VmTask {
  const t = jsonObject(text, VM_METADATA_KEYS.task);
  const fail = failer(VM_METADATA_KEYS.task);
  checkCommon(t, fail);
  if (typeof t.image !== 'string' || t.image.trim() === '') fail('image', 'an image name');
  if (typeof t.logsUri !== 'string' || !t.logsUri.startsWith('gs://')) fail('logsUri', 'a gs:// URI');
  if (t.outputUri !== undefined && typeof t.outputUri !== 'string') fail('outputUri', 'a string');
  if (typeof t.timeoutSeconds !== 'number' || !(t.timeoutSeconds > 0))
    fail('timeoutSeconds', 'a positive number');
  if (t.sharedUri !== undefined && (typeof t.sharedUri !== 'string' || !t.sharedUri.startsWith('gs://')))
    fail('sharedUri', 'a gs:// URI');
  if (
    t.gpus !== undefined &&
    (!Number.isInteger(t.gpus) || (t.gpus as number) < 1 || (t.gpus as number) > 16)
  )
    fail('gpus', 'a whole number from 1 to 16');
  return t as unknown as VmTask;
}

export function parseLocalAgentTask(text: string | undefined): LocalAgentTask {
  const t = jsonObject(text, 'PIPELINE_TASK');
  checkCommon(t, failer('PIPELINE_TASK'));
  return {
    jobId: t.jobId as string,
    attempt: t.attempt as number,
    args: t.args as string[],
    env: t.env as Record<string, string>,
  };
}

type Fail = (field: string, what: string) => never;

function failer(name: string): Fail {
  return (field, what) => {
    throw new TaskError(`${name}.${field} must be ${what}`);
  };
}

function jsonObject(text: string | undefined, name: string): Record<string, unknown> {
  if (text === undefined || text.trim() === '') throw new TaskError(`there is no ${name}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TaskError(`${name} is not JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new TaskError(`${name} is not a JSON object`);
  return raw as Record<string, unknown>;
}

const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => typeof x === 'string');

function checkCommon(t: Record<string, unknown>, fail: Fail): void {
  if (typeof t.jobId !== 'string' || !/^[0-9a-f]{32}$/.test(t.jobId))
    fail('jobId', 'a job id (32 hex digits)');
  if (!Number.isInteger(t.attempt) || (t.attempt as number) < 1) fail('attempt', 'a whole number >= 1');
  if (!Array.isArray(t.args) || !t.args.every((a) => typeof a === 'string'))
    fail('args', 'a list of strings');
  if (!isStringMap(t.env)) fail('env', 'an object of strings');
}
