// The task of a VM, as the dispatcher's Compute launcher writes it into the metadata key
// `pipeline-task`: data only (JSON), read and checked here before anything runs.

export interface VmTask {
  jobId: string;
  attempt: number;
  image: string;
  args: string[];
  env: Record<string, string>;
  logsUri: string;
  outputUri?: string;
  timeoutSeconds: number;
  /** gs://bucket/prefix/ of files to copy into /tmp/worker before the task starts (certificates, say). */
  sharedUri?: string;
}

export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskError';
  }
}

const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => typeof x === 'string');

export function parseVmTask(text: string | undefined): VmTask {
  if (text === undefined || text.trim() === '') throw new TaskError('the VM has no pipeline-task metadata');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TaskError('pipeline-task is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new TaskError('pipeline-task is not a JSON object');
  const t = raw as Record<string, unknown>;
  const fail = (field: string, what: string): never => {
    throw new TaskError(`pipeline-task.${field} must be ${what}`);
  };
  if (typeof t.jobId !== 'string' || !/^[0-9a-f]{32}$/.test(t.jobId))
    fail('jobId', 'a job id (32 hex digits)');
  if (!Number.isInteger(t.attempt) || (t.attempt as number) < 1) fail('attempt', 'a whole number >= 1');
  if (typeof t.image !== 'string' || t.image.trim() === '') fail('image', 'an image name');
  if (!Array.isArray(t.args) || !t.args.every((a) => typeof a === 'string'))
    fail('args', 'a list of strings');
  if (!isStringMap(t.env)) fail('env', 'an object of strings');
  if (typeof t.logsUri !== 'string' || !t.logsUri.startsWith('gs://')) fail('logsUri', 'a gs:// URI');
  if (t.outputUri !== undefined && typeof t.outputUri !== 'string') fail('outputUri', 'a string');
  if (typeof t.timeoutSeconds !== 'number' || !(t.timeoutSeconds > 0))
    fail('timeoutSeconds', 'a positive number');
  if (t.sharedUri !== undefined && (typeof t.sharedUri !== 'string' || !t.sharedUri.startsWith('gs://'))) {
    fail('sharedUri', 'a gs:// URI');
  }
  return t as unknown as VmTask;
}
