// The agent of a task VM (`pipeline-worker agent` on Compute Engine). It reads its task from metadata,
// copies the shared files, runs the task's container through the Docker Engine API, streams the
// container's output to logs/attempt-N.log in the output bucket (at least every 30 s, and at the
// end), watches for spot preemption, and then, whatever happened, publishes one completion event and
// deletes its own instance. Its own failures (bad task JSON, an image it may not pull, an unreadable
// bucket) end the same way: a FAILED completion with the reason, and no VM left behind.
import { LogStream } from '../io/log-stream.ts';
import { TaskError, parseVmTask, type VmTask } from './vm-task.ts';

/** The exit code reported when the agent could not run the task at all (as `docker run` uses 125). */
export const AGENT_FAILURE_EXIT_CODE = 125;
/** Where shared files land and what the task container sees at the same path (AGENT_SHARED_DIR in tests). */
const SHARED_DIR = process.env.AGENT_SHARED_DIR ?? '/tmp/worker';

export interface Identity {
  project: string;
  zone: string;
  instance: string;
}

export interface ContainerSpec {
  image: string;
  args: string[];
  env: Record<string, string>;
  binds: string[];
  accessToken: string;
}

export interface AgentPorts {
  attribute(name: string): Promise<string | undefined>;
  identity(): Promise<Identity>;
  accessToken(): Promise<string>;
  /** Resolves true once the VM is preempted; stops watching (false) when `signal` aborts. */
  watchPreemption(signal: AbortSignal): Promise<boolean>;
  copyShared(uri: string, dir: string): Promise<number>;
  runContainer(
    spec: ContainerSpec,
    output: (chunk: Buffer) => void,
    signal: AbortSignal,
  ): Promise<{ exitCode: number }>;
  uploadLog(uri: string, content: Buffer): Promise<void>;
  publish(project: string, topic: string, message: object, attributes: Record<string, string>): Promise<void>;
  deleteInstance(identity: Identity): Promise<void>;
  log(message: string, fields?: Record<string, unknown>): void;
  now(): Date;
  flushIntervalMs?: number;
}

export interface Completion {
  jobId: string | null;
  attempt: number | null;
  exitCode: number;
  startedAt: string;
  finishedAt: string;
  preempted: boolean;
  instance: string;
  error?: string;
}

export async function runAgentOnVm(ports: AgentPorts): Promise<Completion> {
  const startedAt = ports.now().toISOString();
  const identity = await ports.identity();
  // Plain values the launcher sets beside the task JSON, so that even a task that can't be read is
  // reported for the right job.
  const jobId = (await ports.attribute('pipeline-job-id')) ?? null;
  const attemptText = await ports.attribute('pipeline-attempt');
  const topic = await ports.attribute('pipeline-completions-topic');
  const completion: Completion = {
    jobId,
    attempt: attemptText === undefined ? null : Number(attemptText),
    exitCode: AGENT_FAILURE_EXIT_CODE,
    startedAt,
    finishedAt: startedAt,
    preempted: false,
    instance: identity.instance,
  };
  let log: LogStream | undefined;
  try {
    const task = parseVmTask(await ports.attribute('pipeline-task'));
    completion.jobId = task.jobId;
    completion.attempt = task.attempt;
    const { logsUri } = task;
    log = new LogStream({
      upload: (content) => ports.uploadLog(logsUri, content),
      onUploadError: (err) => ports.log('log upload failed; will try again', { error: reasonOf(err) }),
      intervalMs: ports.flushIntervalMs ?? 30_000,
    });
    await runTask(ports, task, log, completion);
  } catch (err) {
    completion.error = reasonOf(err);
    ports.log('the task could not run', { error: completion.error });
    log?.write(Buffer.from(`pipeline-agent: ${completion.error}\n`));
  } finally {
    completion.finishedAt = ports.now().toISOString();
    await settle(ports, 'upload the log', () => log?.close());
    await settle(ports, 'publish the completion', async () => {
      if (topic === undefined) throw new Error('no pipeline-completions-topic in the metadata');
      await ports.publish(identity.project, topic, completion, {
        jobId: completion.jobId ?? '',
        attempt: String(completion.attempt ?? ''),
        exitCode: String(completion.exitCode),
      });
    });
    await settle(ports, 'delete this instance', () => ports.deleteInstance(identity));
  }
  return completion;
}

async function runTask(
  ports: AgentPorts,
  task: VmTask,
  log: LogStream,
  completion: Completion,
): Promise<void> {
  if (task.sharedUri !== undefined) {
    const copied = await ports.copyShared(task.sharedUri, SHARED_DIR);
    ports.log('shared files copied', { from: task.sharedUri, files: copied });
  }
  const stop = new AbortController();
  const watching = new AbortController();
  const timeout = setTimeout(
    () => stop.abort(new Error(`the task ran past its timeout of ${task.timeoutSeconds} s`)),
    task.timeoutSeconds * 1000,
  );
  const preemption = ports.watchPreemption(watching.signal).then((preempted) => {
    if (preempted) {
      completion.preempted = true;
      stop.abort(new Error('the VM was preempted'));
    }
  });
  let stderrTail = Buffer.alloc(0);
  try {
    const accessToken = await ports.accessToken();
    ports.log('running the task', { jobId: task.jobId, attempt: task.attempt, image: task.image });
    const { exitCode } = await ports.runContainer(
      {
        image: task.image,
        args: task.args,
        env: task.env,
        binds: [`${SHARED_DIR}:${SHARED_DIR}`],
        accessToken,
      },
      (chunk) => {
        log.write(chunk);
        stderrTail = Buffer.concat([stderrTail, chunk]).subarray(-2048);
      },
      stop.signal,
    );
    completion.exitCode = exitCode;
    if (exitCode !== 0) {
      const why = stop.signal.aborted ? reasonOf(stop.signal.reason) : stderrTail.toString('utf8').trim();
      completion.error = why === '' ? `exit code ${exitCode}` : why;
    }
  } finally {
    clearTimeout(timeout);
    watching.abort();
    await preemption;
  }
}

async function settle(
  ports: AgentPorts,
  what: string,
  work: () => Promise<unknown> | undefined,
): Promise<void> {
  try {
    await work();
  } catch (err) {
    ports.log(`could not ${what}`, { error: reasonOf(err) });
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof TaskError) return `bad task: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
