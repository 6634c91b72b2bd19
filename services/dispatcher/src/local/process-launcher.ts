// Both launch targets of the local mode, as child processes of the dispatcher:
// - cloud-run-job runs the worker command with the task's environment, as a Cloud Run job would;
// - vm runs the VM agent's entry point (`pipeline-worker agent`) with the task as JSON in
//   PIPELINE_TASK, as the VM gets it in its metadata; in local mode the agent runs the worker itself.
// Arguments and environment are passed as arrays and maps, never through a shell, and a gs:// URI in
// them becomes its local bucket's path or refuses the task (gs-uris.ts). stdout and stderr go to
// the job's logs/attempt-N.log; the end of the process is reported with its exit code and, on
// failure, the tail of stderr.
//
// Each task runs in a process group of its own: a Ctrl-C at the terminal reaches the pipeline only,
// which then ends its tasks itself (stop), whole groups, so nothing a task started is left running.
// A task that stop() ended is reported as interrupted, not as its completion: it did not fail.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { constants } from 'node:os';
import {
  LaunchError,
  type Completion,
  type FoundLaunch,
  type Job,
  type LaunchRequest,
  type Launcher,
  type LocalAgentTask,
  type RunStatus,
  type Target,
} from '@pipeline/core';
import { localizeTask, NotLocalError } from './gs-uris.ts';

const STDERR_TAIL_BYTES = 2048;
const MAX_REMEMBERED_EXITS = 1000;
/** Between SIGTERM and SIGKILL when a task is cancelled or the launcher stops. */
export const DEFAULT_STOP_GRACE_MS = 5000;
/** How long a task SIGKILL was sent to may take to be seen ending before it is reported anyway. */
const AFTER_KILL_MS = 2000;

/** A task that stop() ended: its attempt did not fail, and runs again. */
export interface Interruption {
  jobId: string;
  attempt: number;
  /** When stop() began to end it. */
  at: string;
  reason: string;
  /** How it ended: 128 + the signal, or its own exit code; undefined if it was not seen to end. */
  exitCode?: number;
}

export interface ProcessLauncherOptions {
  target: Target;
  /** The worker's command file (jobs/worker/bin/pipeline-worker.js). */
  workerBin: string;
  /** Variables every task gets besides its own (PATH, METADATA_SERVER_DETECTION, ...). */
  baseEnv: Record<string, string>;
  /** The local buckets by name, and their folders: where a task's gs:// URIs point. None: any is refused. */
  buckets?: Record<string, string>;
  onStarted: (jobId: string, attempt: number, at: string) => void;
  onCompletion: (completion: Completion) => void;
  /** A task stop() ended. Without it, such a task's end is reported as its completion. */
  onInterrupted?: (interruption: Interruption) => void;
  /** Extra node options for the child, e.g. ['--import', guard] in tests. */
  nodeOptions?: string[];
}

/** One task process, from its spawn to the report of its end. */
interface Run {
  child: ChildProcess;
  jobId: string;
  attempt: number;
  /** Set when stop() begins to end it. */
  interrupted?: { at: string; reason: string };
  /** Resolves once its end has been reported (once, whichever of close or stop() comes first). */
  reported: Promise<void>;
  report(exitCode: number | undefined): void;
}

export class ProcessLauncher implements Launcher {
  private readonly options: ProcessLauncherOptions;
  /** Running tasks by execution name. */
  private readonly running = new Map<string, Run>();
  private readonly ended = new Set<Promise<void>>();
  /** How each process of this launcher ended, by execution name, for inspect. */
  private readonly exits = new Map<string, { exitCode: number; finishedAt: string; error?: string }>();
  /** Set by stop(): no task starts any more. */
  private stopping = false;
  /** Runs stop() ended, reported as interrupted rather than as completions. */
  private readonly interrupting = new Set<string>();
  /** Launches under way (spawning): stop() waits for them, then ends what they started. */
  private readonly launching = new Set<Promise<unknown>>();

  constructor(options: ProcessLauncherOptions) {
    this.options = options;
  }

  async launch(request: LaunchRequest): Promise<{ execution: string }> {
    if (this.stopping) {
      // Retryable: the job waits QUEUED, at its place, for the next start.
      throw new LaunchError(
        'the local pipeline is stopping; it launches queued jobs when it starts again',
        true,
      );
    }
    const launching = this.spawnTask(request);
    this.launching.add(launching);
    try {
      return await launching;
    } finally {
      this.launching.delete(launching);
    }
  }

  private async spawnTask(request: LaunchRequest): Promise<{ execution: string }> {
    const { job, logsUri, target } = request;
    const { workerBin, baseEnv, nodeOptions = [], buckets = {} } = this.options;
    if (job.template?.image !== undefined) {
      throw new Error(
        `local mode runs the worker's tasks only; image ${job.template.image} needs a container runtime`,
      );
    }
    let task: { args: string[]; env: Record<string, string> };
    try {
      task = localizeTask(request, buckets);
    } catch (err) {
      if (err instanceof NotLocalError) throw new LaunchError(err.message, false, { cause: err });
      throw err;
    }
    const { args, env } = task;
    await fs.promises.mkdir(path.dirname(logsUri), { recursive: true });
    const log = fs.createWriteStream(logsUri, { flags: 'a' });
    const child =
      target === 'vm'
        ? spawn(process.execPath, [...nodeOptions, workerBin, 'agent'], {
            stdio: ['ignore', 'pipe', 'pipe'],
            detached: true,
            env: {
              ...baseEnv,
              PIPELINE_TASK: JSON.stringify({
                jobId: job.id,
                attempt: job.attempt,
                args,
                env,
              } satisfies LocalAgentTask),
            },
          })
        : spawn(process.execPath, [...nodeOptions, workerBin, ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
            detached: true,
            env: { ...baseEnv, ...env },
          });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (err) {
      log.end();
      throw err;
    }
    // Named by job and attempt as well as pid: pids are reused, and inspect must not mix up two runs.
    const execution = `local-${job.id.slice(0, 12)}-a${job.attempt}-pid${child.pid}`;
    const startedAt = new Date().toISOString();

    // Once spawned, a child's errors (a signal it could not be sent) are for its log, not fatal.
    child.on('error', (err) => log.write(`\npipeline: ${err.message}\n`));
    let tail = Buffer.alloc(0);
    child.stdout!.pipe(log, { end: false });
    // A log that cannot be written (its folder removed) loses the log, not the pipeline: the end is
    // still reported, with why in its error.
    log.on('error', (err) => {
      tail = Buffer.concat([tail, Buffer.from(`\npipeline: writing ${logsUri} failed: ${err.message}`)]);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      tail = Buffer.concat([tail, chunk]).subarray(-STDERR_TAIL_BYTES);
    });
    let reported = false;
    let settle!: () => void;
    const run: Run = {
      child,
      jobId: job.id,
      attempt: job.attempt,
      reported: new Promise<void>((resolve) => (settle = resolve)),
      report: (code) => {
        if (reported) return; // a close that follows a report made without it
        reported = true;
        this.running.delete(execution);
        const finishedAt = new Date().toISOString();
        const exitCode = code ?? 128 + constants.signals.SIGKILL;
        const stderrTail = tail.toString('utf8').trim();
        const error = exitCode === 0 ? undefined : stderrTail === '' ? `exit code ${exitCode}` : stderrTail;
        this.exits.set(execution, { exitCode, finishedAt, ...(error === undefined ? {} : { error }) });
        // The reconciler needs only recent ends; older ones count as gone (judged by _SUCCESS).
        if (this.exits.size > MAX_REMEMBERED_EXITS) this.exits.delete(this.exits.keys().next().value!);
        const { interrupted } = run;
        const { onInterrupted, onCompletion } = this.options;
        // A task that ended well as it was being stopped did its work: that is its completion.
        const asInterruption = interrupted !== undefined && exitCode !== 0 && onInterrupted !== undefined;
        if (asInterruption) {
          this.interrupting.add(execution);
          log.write(`\npipeline: attempt ${job.attempt} interrupted: ${interrupted.reason}; it runs again\n`);
        }
        log.end(() => {
          if (asInterruption) {
            onInterrupted({
              jobId: job.id,
              attempt: job.attempt,
              at: interrupted.at,
              reason: interrupted.reason,
              ...(code === undefined ? {} : { exitCode: code }),
            });
          } else {
            onCompletion({
              jobId: job.id,
              attempt: job.attempt,
              exitCode,
              startedAt,
              finishedAt,
              ...(error === undefined ? {} : { error }),
            });
          }
          settle();
        });
      },
    };
    child.once('close', (code, signal) =>
      run.report(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0))),
    );
    this.running.set(execution, run);
    this.ended.add(run.reported);
    void run.reported.then(() => this.ended.delete(run.reported));
    this.options.onStarted(job.id, job.attempt, startedAt);
    return { execution };
  }

  /** Running, or how it ended; a process of an earlier dispatcher (or another launcher) is gone. */
  async inspect(execution: string): Promise<RunStatus> {
    if (this.running.has(execution)) return { kind: 'running' };
    // Its stop is being recorded as an interruption: its exit code (143) is no failure of its own.
    if (this.interrupting.has(execution))
      return { kind: 'unknown', reason: 'interrupted by the local pipeline stopping' };
    const exit = this.exits.get(execution);
    return exit === undefined ? { kind: 'gone' } : { kind: 'ended', ...exit };
  }

  /**
   * The process of the job's current attempt, running or ended, if this launcher started it. A
   * process of an earlier dispatcher is not known here: absent, and so launched again.
   */
  async find(job: Job): Promise<FoundLaunch> {
    const prefix = `local-${job.id.slice(0, 12)}-a${job.attempt}-pid`;
    const execution = [...this.running.keys(), ...this.exits.keys()].find((e) => e.startsWith(prefix));
    return execution === undefined ? { kind: 'absent' } : { kind: 'found', execution };
  }

  /** SIGTERM to the task's process group, then SIGKILL if it has not ended 5 s later. */
  async cancel(execution: string): Promise<void> {
    const run = this.running.get(execution);
    if (run !== undefined) void this.end(run, DEFAULT_STOP_GRACE_MS);
  }

  /**
   * Starts no task any more, ends every running one (SIGTERM to its process group, SIGKILL after
   * `graceMs`) and waits until each has been reported: as interrupted for `reason`, unless it ended
   * well on its own meanwhile.
   */
  async stop(reason = 'the local pipeline stopped', graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.launching]);
    const at = new Date().toISOString();
    await Promise.all(
      [...this.running.values()].map((run) => {
        run.interrupted ??= { at, reason };
        return this.end(run, graceMs);
      }),
    );
    await Promise.all(this.ended);
  }

  /** Resolves once no task is running. */
  async idle(): Promise<void> {
    while (this.ended.size > 0) await Promise.all(this.ended);
  }

  /** Ends a task's whole process group: SIGTERM, then SIGKILL; reported even if it never closes. */
  private async end(run: Run, graceMs: number): Promise<void> {
    signalGroup(run.child, 'SIGTERM');
    if (await within(run.reported, graceMs)) return;
    signalGroup(run.child, 'SIGKILL');
    if (await within(run.reported, AFTER_KILL_MS)) return;
    // Not seen to end even after SIGKILL (its output held open, or stuck in the kernel): reported
    // now, so that its job is not left waiting for a close that may never come.
    run.report(undefined);
    await run.reported;
  }
}

/**
 * Signals the process group a detached child leads. A group already gone is no error; one that may
 * not be signalled (it cannot be, as the launcher's own children) gets its leader signalled alone.
 */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') child.kill(signal);
  }
}

/** Whether `promise` settles within `ms`. */
async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
