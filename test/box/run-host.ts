// What Cloud Run does with an execution, on the real Docker engine: the Run double (fake-run.ts)
// accepts RunJob, and this host runs each of its tasks (the overrides' taskCount; a batch has one per
// file) as a container of the job's image, pulled from the registry, with the job's own env, the
// execution's overrides (env, args) and the variables Cloud Run sets for a task
// (https://cloud.google.com/run/docs/container-contract#jobs-env-vars: CLOUD_RUN_JOB,
// CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT, CLOUD_RUN_TASK_COUNT). The tasks
// run side by side, as a job without a parallelism limit runs them, two at a time here (the vfs
// driver copies an image per container). A container runs as its image's user on the host network;
// a task past its timeout is killed. Its exit settles its task in the double, as Cloud Run reports
// it: exit 0 succeeded, any other code failed with that code; the last task's end completes the
// execution. A cancelled execution's containers are killed.
import fs from 'node:fs';
import path from 'node:path';
import { docker } from '../support/docker-engine.ts';
import type { EndedExecution, ExecutionOutcome, StartedExecution } from '../support/fake-run.ts';

export interface RunHostOptions {
  /** The job's image, as its registry names it. */
  image: string;
  /** A docker CLI config logged in to that registry (Cloud Run's service agent pulls it). */
  dockerConfig: string;
  /** The job's own env (terraform's job definition), then what points the task at the box. */
  env: Record<string, string>;
  /** The label every container of the box carries (`pipeline-box=VALUE`). */
  label: string;
  /** Where each execution's container output is kept, as NAME.log. */
  logDir: string;
  /** Ends task `index` of an execution in the Run double (FakeRun.settleTask). */
  settleTask(execution: string, index: number, outcome: ExecutionOutcome): void;
}

/** Tasks of one execution that run at a time. */
const TASKS_AT_ONCE = 2;

/** One task of an execution, as a container. */
export interface HostedExecution {
  name: string;
  container: string;
  /** The execution's JOB_ID and ATTEMPT; a batch's name neither (its tasks read theirs from the manifest). */
  jobId: string;
  attempt: string;
  /** The execution's BATCH_ID, when it runs a batch. */
  batchId?: string;
  task: number;
  taskCount: number;
  /** The container's exit code, once it ended; undefined while it runs. */
  exitCode?: number;
  startedMs: number;
  endedMs?: number;
  /** Cancelled through the API: the double already says so, and the container's end changes nothing. */
  cancelled?: boolean;
}

export class RunHost {
  readonly executions: HostedExecution[] = [];
  private readonly options: RunHostOptions;
  private pulled: Promise<unknown> | undefined;
  private readonly running = new Set<Promise<void>>();
  private readonly failures: string[] = [];

  constructor(options: RunHostOptions) {
    this.options = options;
    fs.mkdirSync(options.logDir, { recursive: true });
  }

  /** The Run double's onExecutionStarted: its tasks, TASKS_AT_ONCE at a time. */
  start(execution: StartedExecution): void {
    const short = execution.name.split('/').at(-1)!;
    const tasks = Array.from({ length: execution.taskCount }, (_, task): HostedExecution => ({
      name: execution.name,
      container: execution.taskCount === 1 ? `box-run-${short}` : `box-run-${short}-${task}`,
      jobId: execution.env.JOB_ID ?? '',
      attempt: execution.env.ATTEMPT ?? '',
      ...(execution.env.BATCH_ID === undefined ? {} : { batchId: execution.env.BATCH_ID }),
      task,
      taskCount: execution.taskCount,
      startedMs: Date.now(),
    }));
    this.executions.push(...tasks);
    const runOne = (hosted: HostedExecution) =>
      this.run(execution, hosted).catch((err: Error) => {
        this.failures.push(`${short} task ${hosted.task}: ${err.message}`);
        this.settle(hosted, { phase: 'failed', message: `the box could not run it: ${err.message}` });
      });
    const queue = [...tasks];
    const lanes = Array.from({ length: Math.min(TASKS_AT_ONCE, tasks.length) }, async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        // A task not started when its execution was cancelled never runs (the double ended it).
        if (next.cancelled === true) continue;
        next.startedMs = Date.now();
        await runOne(next);
      }
    });
    const run = Promise.all(lanes).then(() => undefined);
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /** The Run double's onExecutionEnded: a cancelled execution's containers are stopped. */
  ended(execution: EndedExecution): void {
    if (execution.outcome.phase !== 'cancelled') return;
    for (const hosted of this.executions.filter((e) => e.name === execution.name)) {
      if (hosted.exitCode !== undefined) continue;
      hosted.cancelled = true;
      void docker(['kill', hosted.container]).catch(() => undefined);
    }
  }

  /** Waits for every container started so far to end; what went wrong in the host itself, if anything. */
  async settled(): Promise<string[]> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    return [...this.failures];
  }

  /** Ends the task in the double, unless it ended already (its execution was cancelled as it exited). */
  private settle(hosted: HostedExecution, outcome: ExecutionOutcome): void {
    try {
      this.options.settleTask(hosted.name, hosted.task, outcome);
    } catch (err) {
      if (!/already ended/.test((err as Error).message)) this.failures.push((err as Error).message);
    }
  }

  private async run(execution: StartedExecution, hosted: HostedExecution): Promise<void> {
    const { image, dockerConfig, env, label, logDir } = this.options;
    this.pulled ??= docker(['--config', dockerConfig, 'pull', '--quiet', image]);
    await this.pulled;
    const taskEnv = {
      ...env,
      ...execution.env,
      CLOUD_RUN_JOB: execution.job,
      CLOUD_RUN_EXECUTION: execution.name.split('/').at(-1)!,
      CLOUD_RUN_TASK_INDEX: String(hosted.task),
      CLOUD_RUN_TASK_ATTEMPT: '0',
      CLOUD_RUN_TASK_COUNT: String(hosted.taskCount),
    };
    await docker([
      'run',
      '--detach',
      '--name',
      hosted.container,
      '--label',
      `pipeline-box=${label}`,
      '--network',
      'host',
      ...Object.entries(taskEnv).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
      image,
      ...(execution.args ?? []),
    ]);
    const timeoutMs = (execution.timeoutSeconds ?? 600) * 1000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void docker(['kill', hosted.container]).catch(() => undefined);
    }, timeoutMs);
    try {
      const { stdout } = await docker(['wait', hosted.container], { timeoutMs: timeoutMs + 60_000 });
      hosted.exitCode = Number(stdout.trim());
    } finally {
      clearTimeout(timer);
      hosted.endedMs = Date.now();
    }
    const logs = await docker(['logs', hosted.container]).catch((err: Error) => ({
      stdout: '',
      stderr: err.message,
    }));
    fs.writeFileSync(path.join(logDir, `${hosted.container}.log`), `${logs.stdout}${logs.stderr}`);
    await docker(['rm', '--force', hosted.container]).catch(() => undefined);
    if (hosted.cancelled === true) return;
    // As Cloud Run words it: the task's message (fake-run.ts puts it after "Task ... failed with message:").
    const settle = (outcome: ExecutionOutcome) => this.settle(hosted, outcome);
    if (timedOut) settle({ phase: 'failed', message: `The configured timeout was reached.` });
    else if (hosted.exitCode === 0) settle({ phase: 'succeeded' });
    else
      settle({ phase: 'failed', exitCode: hosted.exitCode, message: `The container exited with an error.` });
  }
}
