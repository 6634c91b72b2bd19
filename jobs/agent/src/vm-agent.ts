// The agent of a task VM (`pipeline-agent` on Compute Engine). It reads its task from metadata,
// copies the shared files, runs the task's container through the Docker Engine API, streams the
// container's output to logs/attempt-N.log in the output bucket (at least every 30 s, and at the
// end), watches for spot preemption, and then, whatever happened, publishes one completion event and
// deletes its own instance. Its own failures (bad task JSON, an image it may not pull, an unreadable
// bucket) end the same way: a FAILED completion whose reason names the step and what it was about
// ("pulling IMAGE failed: ...", "copying gs://B/P failed: ..."), and no VM left behind. No watcher
// can end the agent by itself: each one retries, and every way out goes through the report and the
// delete.
import {
  completionAttributes,
  parseVmTask,
  TaskError,
  VM_METADATA_KEYS,
  type CompletionEvent,
  type VmTask,
} from '@pipeline/core/messages';
import { LogStream } from '@pipeline/core/log-stream';
import { taskContainer, type TaskContainer } from './task-container.ts';

/** The exit code reported when the agent could not run the task at all (as `docker run` uses 125). */
export const AGENT_FAILURE_EXIT_CODE = 125;
/**
 * Between SIGTERM and SIGKILL when the task is stopped. A spot VM gets the ACPI soft-off when it is
 * preempted and is powered off 30 s later
 * (https://cloud.google.com/compute/docs/instances/spot#preemption-process); the shutdown stops the
 * Docker daemon, which stops each container with its own stop timeout: the task's is this grace
 * (docker.ts), the agent's 28 s (vm-startup.sh). 15 s for the task leaves the agent about 13 s to
 * upload the log and publish the completion.
 */
export const STOP_GRACE_SECONDS = 15;
/**
 * The VM's folder of the shared files, on its disk (COS's /tmp is memory, and noexec); the task sees
 * it at /tmp/worker. The start-up script sets AGENT_SHARED_DIR, as the tests do.
 */
const SHARED_DIR = process.env.AGENT_SHARED_DIR ?? '/var/lib/pipeline/shared';

export interface Identity {
  project: string;
  zone: string;
  instance: string;
}

/** The task's container (task-container.ts decides it) and what running it takes. */
export interface ContainerSpec extends TaskContainer {
  accessToken: string;
  stopGraceSeconds: number;
}

export interface AgentPorts {
  attribute(name: string): Promise<string | undefined>;
  identity(): Promise<Identity>;
  accessToken(): Promise<string>;
  /** Resolves true once the VM is preempted; stops watching (false) when `signal` aborts. */
  watchPreemption(signal: AbortSignal): Promise<boolean>;
  /** Whether the VM is being preempted now (one read, for a stop that came from outside). */
  isPreempted(): Promise<boolean>;
  copyShared(uri: string, dir: string): Promise<number>;
  runContainer(
    spec: ContainerSpec,
    output: (chunk: Buffer) => void,
    signal: AbortSignal,
  ): Promise<{ exitCode: number; removed?: Promise<void> }>;
  uploadLog(uri: string, content: Buffer): Promise<void>;
  publish(
    project: string,
    topic: string,
    message: CompletionEvent,
    attributes: Record<string, string>,
  ): Promise<void>;
  deleteInstance(identity: Identity): Promise<void>;
  log(message: string, fields?: Record<string, unknown>): void;
  now(): Date;
  flushIntervalMs?: number;
  stopGraceSeconds?: number;
}

/** How the attempt ended, as the agent saw it: the completion event, with the job unknown if even that was. */
export type AgentOutcome = Omit<CompletionEvent, 'jobId' | 'attempt'> & {
  jobId: string | null;
  attempt: number | null;
};

/** `stop` aborts the run from outside (SIGTERM to the agent: the VM is shutting down). */
export async function runAgentOnVm(ports: AgentPorts, stop?: AbortSignal): Promise<AgentOutcome> {
  const startedAt = ports.now().toISOString();
  const outcome: AgentOutcome = {
    jobId: null,
    attempt: null,
    exitCode: AGENT_FAILURE_EXIT_CODE,
    startedAt,
    finishedAt: startedAt,
    preempted: false,
  };
  let identity: Identity | undefined;
  let topic: string | undefined;
  let log: LogStream | undefined;
  const cleanup: TaskCleanup = {};
  try {
    identity = await step('reading this VM from the metadata server', () => ports.identity());
    outcome.instance = identity.instance;
    // Plain values the launcher sets beside the task, so that even a task that can't be read is
    // reported for the right job.
    const [jobId, attemptText, completionsTopic, taskText] = await step(
      'reading the task from the metadata server',
      () =>
        Promise.all([
          ports.attribute(VM_METADATA_KEYS.jobId),
          ports.attribute(VM_METADATA_KEYS.attempt),
          ports.attribute(VM_METADATA_KEYS.completionsTopic),
          ports.attribute(VM_METADATA_KEYS.task),
        ]),
    );
    outcome.jobId = jobId ?? null;
    outcome.attempt = attemptText === undefined ? null : Number(attemptText);
    topic = completionsTopic;
    const task = parseVmTask(taskText);
    outcome.jobId = task.jobId;
    outcome.attempt = task.attempt;
    const { logsUri } = task;
    log = new LogStream({
      upload: (content) => ports.uploadLog(logsUri, content),
      onUploadError: (err) => ports.log('log upload failed; will try again', { error: reasonOf(err) }),
      intervalMs: ports.flushIntervalMs ?? 30_000,
    });
    await runTask(ports, task, log, outcome, stop, cleanup);
  } catch (err) {
    outcome.error = reasonOf(err);
    ports.log('the task could not run', { error: outcome.error });
    log?.write(Buffer.from(`pipeline-agent: ${outcome.error}\n`));
  } finally {
    outcome.finishedAt = ports.now().toISOString();
    await settle(ports, 'upload the log', () => log?.close());
    await settle(ports, 'publish the completion', () => publish(ports, identity, topic, outcome));
    // Only now is the task's container waited for: its removal may take seconds, and a preempted VM
    // has 30 s from the notice to stop the task and report (deleting the VM would take it anyway).
    await cleanup.containerRemoved;
    await settle(ports, 'delete this instance', async () => {
      if (identity === undefined) throw new Error('this VM could not be read from the metadata server');
      await ports.deleteInstance(identity);
    });
  }
  return outcome;
}

async function publish(
  ports: AgentPorts,
  identity: Identity | undefined,
  topic: string | undefined,
  outcome: AgentOutcome,
): Promise<void> {
  if (topic === undefined) throw new Error(`no ${VM_METADATA_KEYS.completionsTopic} in the metadata`);
  if (identity === undefined) throw new Error('the project is unknown: the metadata server did not answer');
  const { jobId, attempt } = outcome;
  // Without its job a completion could only be dead-lettered; the reaper and the reconciler close it.
  if (jobId === null || attempt === null || !Number.isInteger(attempt))
    throw new Error('the job of this VM is unknown');
  const event: CompletionEvent = { ...outcome, jobId, attempt };
  await ports.publish(identity.project, topic, event, completionAttributes(event));
}

/** What is left to wait for once the task has been reported. */
interface TaskCleanup {
  containerRemoved?: Promise<void>;
}

async function runTask(
  ports: AgentPorts,
  task: VmTask,
  log: LogStream,
  outcome: AgentOutcome,
  external: AbortSignal | undefined,
  cleanup: TaskCleanup,
): Promise<void> {
  if (task.sharedUri !== undefined) {
    const sharedUri = task.sharedUri;
    const copied = await step(`copying ${sharedUri}`, () => ports.copyShared(sharedUri, SHARED_DIR));
    ports.log('shared files copied', { from: sharedUri, files: copied });
  }
  const stop = new AbortController();
  const watching = new AbortController();
  const timeout = setTimeout(
    () => stop.abort(new Error(`the task ran past its timeout of ${task.timeoutSeconds} s`)),
    task.timeoutSeconds * 1000,
  );
  const onExternalStop = () => stop.abort(external?.reason ?? new Error('the agent was stopped'));
  external?.addEventListener('abort', onExternalStop, { once: true });
  if (external?.aborted) onExternalStop();
  const preemption = ports
    .watchPreemption(watching.signal)
    .then((preempted) => {
      if (!preempted) return;
      outcome.preempted = true;
      stop.abort(new Error('the VM was preempted'));
    })
    // The watcher retries on its own; should it still fail, the task runs on to its end or timeout.
    .catch((err: unknown) => ports.log('watching for preemption failed', { error: reasonOf(err) }));
  let outputTail = Buffer.alloc(0);
  try {
    const accessToken = await step("getting this VM's access token", () => ports.accessToken());
    ports.log('running the task', { jobId: task.jobId, attempt: task.attempt, image: task.image });
    const { exitCode, removed } = await ports.runContainer(
      {
        ...taskContainer(task, SHARED_DIR),
        accessToken,
        stopGraceSeconds: ports.stopGraceSeconds ?? STOP_GRACE_SECONDS,
      },
      (chunk) => {
        log.write(chunk);
        outputTail = Buffer.concat([outputTail, chunk]).subarray(-2048);
      },
      stop.signal,
    );
    outcome.exitCode = exitCode;
    cleanup.containerRemoved = removed;
    // A preemption shuts the VM down, so the agent's SIGTERM may come before the watcher sees it.
    if (external?.aborted === true && !outcome.preempted && (await ports.isPreempted().catch(() => false))) {
      outcome.preempted = true;
      outcome.error = 'the VM was preempted';
    } else if (stop.signal.aborted) outcome.error = reasonOf(stop.signal.reason);
    else if (exitCode !== 0) {
      const tail = outputTail.toString('utf8').trim();
      outcome.error = tail === '' ? `exit code ${exitCode}` : tail;
    }
  } finally {
    clearTimeout(timeout);
    external?.removeEventListener('abort', onExternalStop);
    watching.abort();
    await preemption;
  }
}

/** Runs one step of the agent's own; its failure says which step it was. */
async function step<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new Error(`${what} failed: ${reasonOf(err)}`, { cause: err });
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
