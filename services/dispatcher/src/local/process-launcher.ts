// Both launch targets of the local mode, as child processes of the dispatcher:
// - cloud-run-job runs the worker command with the task's environment, as a Cloud Run job would;
// - vm runs the VM agent's entry point (`pipeline-worker agent`) with the task as JSON in
//   PIPELINE_TASK, as the VM gets it in its metadata; in local mode the agent runs the worker itself.
// Arguments and environment are passed as arrays and maps, never through a shell. stdout and stderr
// go to the job's logs/attempt-N.log; the end of the process is reported with its exit code and,
// on failure, the tail of stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { constants } from 'node:os';
import type {
  Completion,
  FoundLaunch,
  Job,
  LaunchRequest,
  Launcher,
  LocalAgentTask,
  RunStatus,
  Target,
} from '@pipeline/core';

const STDERR_TAIL_BYTES = 2048;
const MAX_REMEMBERED_EXITS = 1000;

export interface ProcessLauncherOptions {
  target: Target;
  /** The worker's command file (jobs/worker/bin/pipeline-worker.js). */
  workerBin: string;
  /** Variables every task gets besides its own (PATH, METADATA_SERVER_DETECTION, ...). */
  baseEnv: Record<string, string>;
  onStarted: (jobId: string, attempt: number, at: string) => void;
  onCompletion: (completion: Completion) => void;
  /** Extra node options for the child, e.g. ['--import', guard] in tests. */
  nodeOptions?: string[];
}

export class ProcessLauncher implements Launcher {
  private readonly options: ProcessLauncherOptions;
  private readonly running = new Set<ChildProcess>();
  private readonly ended = new Set<Promise<void>>();
  /** How each process of this launcher ended, by execution name, for inspect. */
  private readonly exits = new Map<string, { exitCode: number; finishedAt: string; error?: string }>();
  private readonly byExecution = new Map<string, ChildProcess>();

  constructor(options: ProcessLauncherOptions) {
    this.options = options;
  }

  async launch(request: LaunchRequest): Promise<{ execution: string }> {
    const { job, env, args, logsUri, target } = request;
    const { workerBin, baseEnv, nodeOptions = [] } = this.options;
    if (job.template?.image !== undefined) {
      throw new Error(
        `local mode runs the worker's tasks only; image ${job.template.image} needs a container runtime`,
      );
    }
    await fs.promises.mkdir(path.dirname(logsUri), { recursive: true });
    const log = fs.createWriteStream(logsUri, { flags: 'a' });
    const taskEnv = { ...baseEnv, ...env };
    const child =
      target === 'vm'
        ? spawn(process.execPath, [...nodeOptions, workerBin, 'agent'], {
            env: {
              ...baseEnv,
              PIPELINE_TASK: JSON.stringify({
                jobId: job.id,
                attempt: job.attempt,
                args,
                env,
              } satisfies LocalAgentTask),
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          })
        : spawn(process.execPath, [...nodeOptions, workerBin, ...args], {
            env: taskEnv,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.running.add(child);
    // Named by job and attempt as well as pid: pids are reused, and inspect must not mix up two runs.
    const execution = `local-${job.id.slice(0, 12)}-a${job.attempt}-pid${child.pid}`;
    this.byExecution.set(execution, child);
    const startedAt = new Date().toISOString();
    this.options.onStarted(job.id, job.attempt, startedAt);

    let tail = Buffer.alloc(0);
    child.stdout!.pipe(log, { end: false });
    child.stderr!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      tail = Buffer.concat([tail, chunk]).subarray(-STDERR_TAIL_BYTES);
    });
    const ended = new Promise<void>((resolve) => {
      child.once('close', (code, signal) => {
        this.running.delete(child);
        log.end(() => {
          const exitCode = code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
          const stderrTail = tail.toString('utf8').trim();
          const finishedAt = new Date().toISOString();
          const error = exitCode === 0 ? undefined : stderrTail === '' ? `exit code ${exitCode}` : stderrTail;
          this.byExecution.delete(execution);
          this.exits.set(execution, { exitCode, finishedAt, ...(error === undefined ? {} : { error }) });
          // The reconciler needs only recent ends; older ones count as gone (judged by _SUCCESS).
          if (this.exits.size > MAX_REMEMBERED_EXITS) this.exits.delete(this.exits.keys().next().value!);
          this.options.onCompletion({
            jobId: job.id,
            attempt: job.attempt,
            exitCode,
            startedAt,
            finishedAt,
            ...(error === undefined ? {} : { error }),
          });
          resolve();
        });
      });
    });
    this.ended.add(ended);
    void ended.then(() => this.ended.delete(ended));
    return { execution };
  }

  /** Running, or how it ended; a process of an earlier dispatcher (or another launcher) is gone. */
  async inspect(execution: string): Promise<RunStatus> {
    if (this.byExecution.has(execution)) return { kind: 'running' };
    const exit = this.exits.get(execution);
    return exit === undefined ? { kind: 'gone' } : { kind: 'ended', ...exit };
  }

  /**
   * The process of the job's current attempt, running or ended, if this launcher started it. A
   * process of an earlier dispatcher is not known here: absent, and so launched again.
   */
  async find(job: Job): Promise<FoundLaunch> {
    const prefix = `local-${job.id.slice(0, 12)}-a${job.attempt}-pid`;
    const execution = [...this.byExecution.keys(), ...this.exits.keys()].find((e) => e.startsWith(prefix));
    return execution === undefined ? { kind: 'absent' } : { kind: 'found', execution };
  }

  /** SIGTERM, then SIGKILL if it has not ended 5 s later. */
  async cancel(execution: string): Promise<void> {
    const child = this.byExecution.get(execution);
    if (child === undefined) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    killer.unref();
    child.once('close', () => clearTimeout(killer));
  }

  /** Ends every running task and waits until each has been reported. */
  async stop(): Promise<void> {
    for (const child of this.running) child.kill('SIGTERM');
    await Promise.all(this.ended);
  }

  /** Resolves once no task is running. */
  async idle(): Promise<void> {
    while (this.ended.size > 0) await Promise.all(this.ended);
  }
}
